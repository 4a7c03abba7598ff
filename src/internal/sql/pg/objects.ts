/**
 * The PostgreSQL objects a store's statements name, derived once from its tables, and the
 * helpers every PostgreSQL statement module shares.
 *
 * The append, read and migration statements are raw text (`run`, `sql.unsafe`): they pass arrays
 * to `unnest` with explicit casts, and the hot ones are built from text fixed once per store, not
 * compiled per call. The rest (projections, snapshots) use @effect/sql's tagged template.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Dialect } from "../dialect.js"
import { eventRowOf } from "../rows.js"
import { runStatement, runValues } from "../shared.js"
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
}

export const objectsOf = (tables: Tables): PgObjects => {
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
    s.version AS stream_version`
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

/** Runs one of the store's statements with the `SqlClient` in context. */
export const run = <A extends object>(query: string, values: ReadonlyArray<unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => runStatement<A>(sql, query, values))

/** Runs one of the store's reads of event rows (selecting `columns`), taking its rows as values. */
export const readEventRows = (query: string, values: ReadonlyArray<unknown>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => Effect.map(runValues(sql, query, values), (rows) => rows.map(eventRowOf))
  )

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
            : Effect.zipRight(run(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`, []), effect)
        ))
  )
