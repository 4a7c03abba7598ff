/**
 * The PostgreSQL objects a store's statements name, derived once from its tables, and the
 * helpers every PostgreSQL statement module shares.
 *
 * The append and read statements are raw text (`run`): they pass arrays to `unnest` with explicit
 * casts, and their texts come from a small fixed set per store, so each is sent as a named
 * prepared statement (see `run`). The rest (migrations, projections, snapshots) use @effect/sql's
 * tagged template.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Dialect } from "../dialect.js"
import type { EventRow } from "../rows.js"
import { eventRowOf } from "../rows.js"
import { onHeldConnection, runStatement, runValues } from "../shared.js"
import type { Tables } from "../tables.js"
import { quote, schemaOf } from "../tables.js"

export interface PgObjects {
  readonly tables: Tables
  /** Names the advisory locks of this store's streams apart from other stores' in the database. */
  readonly lockSpace: string
  /** The sequence positions are drawn from. */
  readonly sequenceName: string
  /** The function that moves the sequence past a position (migration 5). */
  readonly advancePositions: string
  /** The trigger function that calls it for the rows of plain protocol writers. */
  readonly positionAhead: string
  /**
   * The columns of an event row as the reads select them (`e` the events, `s` the entities), in
   * the order `eventRowOf` reads them.
   */
  readonly columns: string
  /** Whether the store's statements go as named prepared statements (see `run`). */
  readonly prepared: boolean
}

/**
 * Whether named prepared statements can be sent through this client: it is @effect/sql-pg's
 * (which hands a query config to node-postgres as it is, see `run`), and the application did not
 * turn them off. Read by its type id, so that the module needs no import of @effect/sql-pg, an
 * optional dependency.
 */
export const canPrepare = (sql: SqlClient.SqlClient, wanted: boolean): boolean =>
  wanted && "~@effect/sql-pg/PgClient" in sql

export const objectsOf = (tables: Tables, prepared: boolean): PgObjects => {
  /** An object named after the events table, in its schema. */
  const namedAfterEvents = (suffix: string) => {
    const schema = schemaOf(tables.names.events)
    return `${schema === undefined ? "" : `${quote(schema)}.`}${tables.eventsObject(suffix)}`
  }
  return {
    tables,
    lockSpace: `effect-eventsourcing ${tables.names.events}`,
    sequenceName: namedAfterEvents("position_seq"),
    advancePositions: namedAfterEvents("advance_positions"),
    positionAhead: namedAfterEvents("position_ahead"),
    columns: `e.entity_id, s.type, e.ordinal, e.position::text AS position, e.transaction_id::text AS transaction_id,
    e.name, e.details, e.actor, e.timestamp::text AS timestamp, e.event_id, e.metadata, e.schema_version,
    s.version AS stream_version`,
    prepared
  }
}

/** The statement's time as the protocol stores it: days since the epoch. */
export const now = "(EXTRACT(EPOCH FROM statement_timestamp()) / 86400)::numeric(12,7)"

/** Positional parameters: `param(value)` adds a value and returns its placeholder. */
export const parameters = () => {
  const values: Array<unknown> = []
  return {
    values,
    param: (value: unknown) => {
      values.push(value)
      return `$${values.length}`
    }
  }
}

/**
 * Runs one of the store's statements with the `SqlClient` in context, to its end (as
 * `runStatement` does).
 *
 * A statement goes as a named prepared statement when the store prepares them: node-postgres
 * parses it once per connection, and the server plans it once per connection (after five
 * executions, a generic plan when it is no dearer), instead of parsing and planning its text for
 * each call. For the combined append that planning was more than half of the server's time
 * (measured in bench/README.md). @effect/sql-pg has no API for names, but its
 * `Connection.execute` hands the query to node-postgres's `client.query` as it is, so a query
 * config (`text`, `name`, `rowMode`) reaches the driver; a connection is reserved for the
 * statement outside a transaction (the transaction's own inside one). The test "statements are
 * prepared by name" fails if a later @effect/sql-pg stops passing it on.
 */
export const run = <A extends object>(
  objects: PgObjects,
  query: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<A>, SqlError, SqlClient.SqlClient> =>
  runOwn(objects, query, values, "objects") as Effect.Effect<ReadonlyArray<A>, SqlError, SqlClient.SqlClient>

/** Runs one of the store's reads of event rows (selecting `columns`), taking its rows as values. */
export const readEventRows = (
  objects: PgObjects,
  query: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<Array<EventRow>, SqlError, SqlClient.SqlClient> =>
  Effect.map(runOwn(objects, query, values, "array"), (rows) => rows.map(eventRowOf))

/** A store statement, prepared by name when the store prepares them, its rows as objects or arrays. */
const runOwn = (
  objects: PgObjects,
  query: string,
  values: ReadonlyArray<unknown>,
  rows: "objects" | "array"
): Effect.Effect<ReadonlyArray<any>, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const name = objects.prepared ? preparedName(query) : undefined
    if (name === undefined) return rows === "array" ? runValues(sql, query, values) : runStatement(sql, query, values)
    return runPrepared(sql, rows === "array" ? { text: query, name, rowMode: "array" } : { text: query, name }, values)
  })

/** The part of node-postgres's query config the store uses. */
interface QueryConfig {
  readonly text: string
  readonly name: string
  readonly rowMode?: "array"
}

const runPrepared = (
  sql: SqlClient.SqlClient,
  config: QueryConfig,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<any>, SqlError> => {
  const use = (connection: SqlConnection.Connection) =>
    // A fresh config per call: node-postgres writes the values and callback into it.
    connection.execute({ ...config } as unknown as string, values, undefined)
  return onHeldConnection(sql, use)
}

/**
 * The name of a statement's text: a hash of it, so that two stores (or two copies of the
 * library) sharing a pool never give one name to two texts, which node-postgres refuses. The
 * texts a store runs come from a small fixed set; past `mostPrepared` distinct texts in the
 * process, a new one goes unnamed, so that a store can never fill the server's memory with
 * statements.
 */
const preparedName = (text: string): string | undefined => {
  let name = preparedNames.get(text)
  if (name === undefined && preparedNames.size < mostPrepared) {
    name = `effect_eventsourcing_${hash(text)}`
    preparedNames.set(text, name)
  }
  return name
}

const preparedNames = new Map<string, string>()
const mostPrepared = 1_000

/** A 64-bit hash of a text (two 32-bit FNV-1a lanes with different seeds), in hex. */
const hash = (text: string): string => {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ text.length
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    a = Math.imul(a ^ code, 0x01000193)
    b = Math.imul(b ^ code, 0x5bd1e995)
  }
  return `${(a >>> 0).toString(16).padStart(8, "0")}${(b >>> 0).toString(16).padStart(8, "0")}`
}

/**
 * A transaction of the store's own at READ COMMITTED, which appends need (see `makeAppend`),
 * asked for only when the server's default (`readCommitted`: whether it is READ COMMITTED) is
 * another. Inside a transaction, a savepoint, which keeps the transaction's level.
 */
export const transaction = (readCommitted: boolean): Dialect["transaction"] => (effect) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
        sql.withTransaction(
          readCommitted || Option.isSome(outer)
            ? effect
            : Effect.zipRight(runStatement(sql, `SET TRANSACTION ISOLATION LEVEL READ COMMITTED`), effect)
        ))
  )
