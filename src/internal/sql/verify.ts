/**
 * The checks of `EventStore.verify` on the SQL backends: whole-table queries for rows that
 * break what the store promises of them, written by another writer of the protocol's tables.
 * Each lists at most `limit` violations (one more is asked for, to tell whether it was cut).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { VerifyReport, Violation } from "../../EventStore.js"
import type * as Position from "../../Position.js"
import { runStatement } from "./shared.js"
import type { Tables } from "./tables.js"

/** What the checks need to know of a database. */
export interface Ordering {
  /** The columns of the global order of an event row, most significant first, as text. */
  readonly columns: ReadonlyArray<string>
  /** The position of a row from those columns (as text, in the same order). */
  readonly position: (values: ReadonlyArray<string>) => Position.Position
  /**
   * A query for the positions that two appends share, with `stream_ids` (an array of the
   * streams) and the order columns as `c0`, `c1`, ...; none where the database cannot tell.
   */
  readonly sharedPositions?: string | undefined
}

type Row = Record<string, unknown>

const text = (value: unknown) => String(value)

export const verify = (
  tables: Tables,
  ordering: Ordering,
  limit: number
): Effect.Effect<VerifyReport, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { entities, events } = tables
    const orderOf = (alias: string) =>
      ordering.columns.map((column, index) => `CAST(${alias}.${column} AS TEXT) AS c${index}`).join(", ")
    const positionOf = (row: Row) => ordering.position(ordering.columns.map((_, index) => text(row[`c${index}`])))
    const rows = (query: string) => runStatement<Row>(sql, `${query} LIMIT ${limit + 1}`)

    const checks: ReadonlyArray<Effect.Effect<ReadonlyArray<Violation>, SqlError>> = [
      Effect.map(
        rows(
          `SELECT e.entity_id, e.ordinal, ${orderOf("e")} FROM ${events} e
          WHERE NOT EXISTS (SELECT 1 FROM ${entities} s WHERE s.id = e.entity_id)
          ORDER BY e.entity_id, e.ordinal`
        ),
        (found) =>
          found.map((row): Violation => ({
            _tag: "EventWithoutStream",
            streamId: text(row.entity_id),
            version: Number(row.ordinal),
            position: positionOf(row)
          }))
      ),
      Effect.map(
        rows(
          `SELECT s.id, s.version, count(e.ordinal) AS events, COALESCE(min(e.ordinal), 1) AS first_version,
            COALESCE(max(e.ordinal), 0) AS last_version
          FROM ${entities} s LEFT JOIN ${events} e ON e.entity_id = s.id
          GROUP BY s.id, s.version
          HAVING count(e.ordinal) <> COALESCE(max(e.ordinal), 0) OR COALESCE(min(e.ordinal), 1) <> 1
            OR COALESCE(max(e.ordinal), 0) <> s.version
          ORDER BY s.id`
        ),
        (found) =>
          found.flatMap((row): ReadonlyArray<Violation> => {
            const streamId = text(row.id)
            const count = Number(row.events)
            const lastVersion = Number(row.last_version)
            const version = Number(row.version)
            const gap = count !== lastVersion || Number(row.first_version) !== 1
            return [
              ...(gap ? [{ _tag: "VersionGap" as const, streamId, events: count, lastVersion }] : []),
              ...(lastVersion !== version ? [{ _tag: "StaleVersion" as const, streamId, version, lastVersion }] : [])
            ]
          })
      ),
      Effect.map(
        rows(
          `SELECT entity_id, ordinal FROM (
            SELECT entity_id, ordinal, ${ordering.columns.join(", ")},
              ${ordering.columns.map((column) => `LAG(${column}) OVER stream AS previous_${column}`).join(", ")}
            FROM ${events} WINDOW stream AS (PARTITION BY entity_id ORDER BY ordinal)
          ) AS ordered
          WHERE (${ordering.columns.join(", ")}) < (${
            ordering.columns.map((column) => `previous_${column}`).join(", ")
          })
          ORDER BY entity_id, ordinal`
        ),
        (found) =>
          found.map((row): Violation => ({
            _tag: "OutOfOrder",
            streamId: text(row.entity_id),
            version: Number(row.ordinal)
          }))
      ),
      ordering.sharedPositions === undefined ? Effect.succeed([]) : Effect.map(
        rows(ordering.sharedPositions),
        (found) =>
          found.map((row): Violation => ({
            _tag: "SharedPosition",
            position: positionOf(row),
            streamIds: (row.stream_ids as ReadonlyArray<unknown>).map(text)
          }))
      )
    ]
    const found = yield* Effect.all(checks)
    return {
      violations: found.flatMap((violations) => violations.slice(0, limit)),
      complete: found.every((violations) => violations.length <= limit)
    }
  })
