/**
 * The SQLite statements.
 *
 * SQLite has one writer at a time, so its commit order is its write order: an append takes the
 * write lock first (`BEGIN IMMEDIATE`, so that two processes sharing a file queue on the lock
 * instead of failing), checks and moves each stream's version, numbers its position after the
 * greatest one stored, and inserts its events. Readers see whole transactions, so the global
 * order needs no fence.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { Dialect } from "./dialect.js"
import { causeCode } from "./dialect.js"
import { positionOf } from "./rows.js"
import { append, combined } from "./sqlite/append.js"
import { migrations } from "./sqlite/migrations.js"
import { chunks, idsPerQuery, now, objectsOf, placeholders, run } from "./sqlite/objects.js"
import { projectionStatements } from "./sqlite/projections.js"
import { reads } from "./sqlite/reads.js"
import { betweenPages, withImmediateTransaction } from "./sqlite/transactions.js"
import type { Tables } from "./tables.js"
import { baseName, problems, schemaOf } from "./tables.js"

export { withImmediateTransaction } from "./sqlite/transactions.js"

export const make = (tables: Tables): Dialect => {
  const objects = objectsOf(tables)
  const tableNames = [
    tables.names.entities,
    tables.names.events,
    tables.names.projections,
    tables.deadLettersName,
    tables.names.snapshots
  ].map((name) => ({ name, schema: schemaOf(name) ?? "main", base: baseName(name) }))

  return {
    tables,
    transaction: withImmediateTransaction,
    currentTimestamp: now,
    projections: projectionStatements(objects),
    nameProblems: problems(tables, Infinity),
    missingTables: Effect.map(
      run<{ name: string }>(
        `SELECT json_extract(value, '$.name') AS name FROM json_each(?) AS wanted
        WHERE NOT EXISTS (
          SELECT 1 FROM pragma_table_list AS t
          WHERE t.schema = json_extract(wanted.value, '$.schema') COLLATE NOCASE
            AND t.name = json_extract(wanted.value, '$.base') COLLATE NOCASE
        )`,
        [JSON.stringify(tableNames)]
      ),
      (rows) => rows.map((row) => row.name)
    ),
    migrations: migrations(objects),
    withMigrationLock: withImmediateTransaction,
    betweenPages,
    append: append(objects),
    combined: combined(objects),
    ...reads(objects),
    // Appends that share a position look like one append over several streams here.
    ordering: { columns: ["position"], position: ([sequence]) => positionOf(sequence!, null) },
    isUniqueViolation: (error: SqlError) => {
      const code = causeCode(error)
      return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY"
    },
    // One writer at a time, in commit order: no serialization conflicts, no stale transactions.
    transient: () => undefined,
    brokenStreams: (streamIds) =>
      Effect.map(
        Effect.forEach(chunks(streamIds, idsPerQuery), (ids) =>
          run<{ id: string }>(
            `SELECT DISTINCT e.entity_id AS id FROM ${tables.events} e
            WHERE e.entity_id IN (${placeholders(ids.length)})
              AND e.ordinal > COALESCE((SELECT version FROM ${tables.entities} WHERE id = e.entity_id), 0)`,
            ids
          )),
        (batches) => batches.flat().map((row) => row.id)
      ),
    staleStreams: () => Effect.succeed([])
  }
}
