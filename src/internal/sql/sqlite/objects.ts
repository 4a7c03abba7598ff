/**
 * What the SQLite statement modules share: the store's tables and read columns, and helpers.
 *
 * The append, read and migration statements are raw text (`run`, `sql.unsafe`): multi-row
 * inserts and `IN` lists are chunked under SQLite's limit on bound values, and the hot ones are
 * built from text fixed once per store. The rest (projections, snapshots) use the tagged template.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { eventRowOf } from "../rows.js"
import { onHeldConnection } from "../shared.js"
import type { Tables } from "../tables.js"

export interface SqliteObjects {
  readonly tables: Tables
  /**
   * The columns of an event row as the reads select them (`e` the events, `s` the entities), in
   * the order `eventRowOf` reads them.
   */
  readonly columns: string
}

export const objectsOf = (tables: Tables): SqliteObjects => ({
  tables,
  columns:
    `e.entity_id, s.type, e.ordinal, e.position, NULL AS transaction_id, e.name, e.details, e.actor, e.timestamp, e.event_id, e.metadata,
  e.schema_version, s.version AS stream_version`
})

/** The current time as the snapshots and dead-letters tables keep it: ISO 8601 text, in UTC. */
export const now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/** Rows per INSERT: at ten values a row, well under SQLite's limit of 32,766 bound values. */
export const rowsPerInsert = 1_000
/** Values per `IN (...)` list. */
export const idsPerQuery = 500

export const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size))

export const placeholders = (count: number) => Array.from({ length: count }, () => "?").join(", ")

/** Runs `use` on the store's one connection, held while it runs (see `onHeldConnection`). */
const onConnection = <A>(
  use: (connection: SqlConnection.Connection) => Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => onHeldConnection(sql, use))

/** Runs one of the store's statements (see `onConnection`). */
export const run = <A extends object>(
  query: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<A>, SqlError, SqlClient.SqlClient> =>
  onConnection((connection) => connection.execute(query, values, undefined))

/** Runs one of the store's reads of event rows (selecting `columns`), taking its rows as values. */
export const readEventRows = (query: string, values: ReadonlyArray<unknown>) =>
  onConnection((connection) => Effect.map(connection.executeValues(query, values), (rows) => rows.map(eventRowOf)))
