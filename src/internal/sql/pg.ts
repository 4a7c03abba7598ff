/**
 * The PostgreSQL statements.
 *
 * An append to one stream is one statement: a data-modifying CTE updates the stream's row only
 * if the expected version and type hold, draws the position from a sequence, and inserts the
 * events numbered from the version it returned. When the check fails the CTE returns no row and
 * nothing is written; two writers of one stream queue on its row lock and the second re-checks
 * the version the first committed. Outside a transaction the statement commits by itself (one
 * round trip); inside the application's transaction it runs in a savepoint, so a failure leaves
 * that transaction usable. An append to several streams takes their rows in stream id order,
 * so two such appends cannot deadlock.
 *
 * Every event row records its writing transaction's id. The global order is
 * `(transaction_id, position)`, and a reader only reads rows of transactions older than the
 * oldest one still running (`pg_snapshot_xmin`), so a transaction that drew its position early
 * and commits late is never skipped: readers wait for it instead.
 *
 * Ordering by transaction id keeps each stream's versions in order only if, of two appends to
 * one stream, the one that got the smaller version also got the smaller transaction id. A
 * transaction gets its id when it first writes, which can be before it waits for the stream's
 * row, so an append takes an advisory lock on each of its streams before it writes anything:
 * whoever holds a stream's lock gets its id (and its version) before the next writer of that
 * stream can get either. This holds when the append is the first write of its transaction; an
 * application transaction that wrote before appending already has its id.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Dialect } from "./dialect.js"
import { causeCode } from "./dialect.js"
import { makeAppend } from "./pg/append.js"
import { migrations, withMigrationLock } from "./pg/migrations.js"
import { makeNotifier } from "./pg/notifier.js"
import { objectsOf, transaction } from "./pg/objects.js"
import { projectionStatements } from "./pg/projections.js"
import { brokenStreams, missingTables, reads, staleStreams } from "./pg/reads.js"
import { positionOf } from "./rows.js"
import type { Tables } from "./tables.js"
import { pgIdentifierBytes, problems } from "./tables.js"

/** The isolation level the server gives a transaction that asks for none. */
export const defaultIsolation = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql.unsafe<{ isolation: string }>(`SELECT current_setting('default_transaction_isolation') AS isolation`)
      .withoutTransform,
    (rows) => rows[0]?.isolation ?? "read committed"
  )

export interface Options {
  /** The server's default isolation level (`default_transaction_isolation`). */
  readonly isolation: string
  /** Whether the statements go as named prepared statements (see `run` in pg/objects.ts). */
  readonly prepared: boolean
}

export const make = (
  tables: Tables,
  options: Options
): Effect.Effect<Dialect, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.map(makeNotifier(tables.channel), (notify) => assemble(tables, options, notify))

/** The dialect, from the modules of its statements (pg/). */
const assemble = (tables: Tables, options: Options, notify: Effect.Effect<void>): Dialect => {
  const objects = objectsOf(tables, options.prepared)
  return {
    tables,
    transaction: transaction(options.isolation === "read committed"),
    currentTimestamp: "now()",
    projections: projectionStatements(objects),
    nameProblems: [
      ...problems(tables, pgIdentifierBytes),
      // @effect/sql's migrator looks its table up by an unquoted name, which PostgreSQL folds to
      // lower case.
      ...(/[A-Z"]/.test(tables.names.migrations)
        ? [`the migrations table name ${JSON.stringify(tables.names.migrations)} must be lower case`]
        : [])
    ],
    missingTables: missingTables(objects),
    migrations: migrations(objects),
    withMigrationLock: withMigrationLock(objects),
    // node-postgres waits for the server without holding the event loop.
    betweenPages: Effect.void,
    ...makeAppend(objects, options.isolation === "read committed", notify),
    ...reads(objects),
    ordering: {
      columns: ["transaction_id", "position"],
      position: ([transaction, sequence]) => positionOf(sequence!, transaction!),
      // One append is one transaction: two transaction ids at one position are two appends.
      sharedPositions: `SELECT array_agg(DISTINCT entity_id) AS stream_ids, min(transaction_id)::text AS c0,
        position::text AS c1
        FROM ${tables.events} GROUP BY position HAVING count(DISTINCT transaction_id) > 1 ORDER BY position`
    },
    isUniqueViolation: (error: SqlError) => causeCode(error) === "23505",
    // serialization_failure (under REPEATABLE READ or SERIALIZABLE) and deadlock_detected
    // refuse the transaction. A cancel the store did not ask for stops only the statement: it
    // is another client's, for a query it interrupted, arriving after that query ended and its
    // connection was handed on (@effect/sql-pg does not wait for the cancel before releasing).
    transient: (error: SqlError) => {
      const code = causeCode(error)
      if (code === "40001" || code === "40P01") return "transaction"
      return code === "57014" && /user request/.test(String((error.cause as { message?: unknown }).message))
        ? "statement"
        : undefined
    },
    brokenStreams: brokenStreams(objects),
    staleStreams: staleStreams(objects)
  }
}
