/**
 * What every SQL part of the store shares: how it runs a statement, and how it reports a failure
 * of the database.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { EventStoreError } from "../../Errors.js"

/**
 * Runs one of the store's statements as written (no name transforms), on a held connection
 * (`onHeldConnection`), to its end: a fiber interrupted meanwhile waits for the statement and is
 * then interrupted, instead of cancelling it. @effect/sql-pg cancels an interrupted query by
 * signalling its connection's server process, but gives the connection back to the pool as soon
 * as the query ends, which can be before the signal lands: it then cancels the next statement on
 * that connection, another fiber's.
 *
 * The statement goes straight to the connection: @effect/sql would find the same connection
 * after building a span, a scope and the statement's compiled text for it (about 100 fiber
 * operations, against some 20 for the connection alone). The store's spans belong around whole
 * appends, reads and projection batches, not around each of their statements.
 */
export const runStatement = <A extends object>(
  sql: SqlClient.SqlClient,
  query: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<A>, SqlError> =>
  onHeldConnection(sql, (connection) => connection.execute(query, values, undefined))

/** `use` on the connection of the transaction in context, if there is one; `outside` otherwise. */
export const onTransactionConnection = <A, R>(
  use: (connection: SqlConnection.Connection) => Effect.Effect<A, SqlError>,
  outside: Effect.Effect<A, SqlError, R>
): Effect.Effect<A, SqlError, R> =>
  Effect.flatMap(
    Effect.serviceOption(SqlClient.TransactionConnection),
    (transaction) => Option.isSome(transaction) ? use(transaction.value[0]) : outside
  )

/**
 * `use` on a connection held for it alone: the transaction's inside one; outside, one reserved
 * from the client for the statement (as a transaction reserves it), to the statement's end.
 *
 * @effect/sql-sqlite-node gives its one connection's permit back as soon as a statement has the
 * connection, before the statement runs: a fiber that yields just then (its turn of the
 * scheduler ended) runs its statement later, possibly inside another fiber's transaction, and
 * reads what that transaction has not committed and may still roll back (a global read would
 * hand a projection events that were never stored; a checkpoint read, a position never
 * committed), or writes into it. Reserved, the connection is the statement's alone. On
 * PostgreSQL a reserved connection is also how a named statement reaches the driver (see
 * pg/objects.ts).
 */
export const onHeldConnection = <A>(
  sql: SqlClient.SqlClient,
  use: (connection: SqlConnection.Connection) => Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.uninterruptible(onTransactionConnection(use, Effect.scoped(Effect.flatMap(sql.reserve, use))))

/** Runs a statement like `runStatement`, its rows as arrays of values in the order of its columns. */
export const runValues = (
  sql: SqlClient.SqlClient,
  query: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError> =>
  onHeldConnection(sql, (connection) => connection.executeValues(query, values))

/**
 * Runs `effect` with the store's `SqlClient`. Providing a service costs some 20 fiber operations
 * (the fiber's context is set, and restored however the effect ends), a fifth of an append's; so
 * when the caller's context already holds this very client, as it does wherever the store's
 * layer provided it, the effect runs as it is.
 */
export const withSqlClient =
  (sql: SqlClient.SqlClient) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, SqlClient.SqlClient>> =>
    Effect.contextWithEffect((context: Context.Context<never>) => {
      const inContext = Context.getOption(context, SqlClient.SqlClient)
      return Option.isSome(inContext) && inContext.value === sql
        ? effect as Effect.Effect<A, E, Exclude<R, SqlClient.SqlClient>>
        : Effect.provideService(effect, SqlClient.SqlClient, sql)
    })

/** Runs a statement built from the `SqlClient` in context. */
export const withClient = <A>(
  statement: (sql: SqlClient.SqlClient) => Effect.Effect<A, SqlError, SqlClient.SqlClient>
): Effect.Effect<A, SqlError, SqlClient.SqlClient> => Effect.flatMap(SqlClient.SqlClient, statement)

/**
 * Runs a statement written with @effect/sql's tagged template (with the `SqlClient` in context
 * that wrote it) on a held connection (`onHeldConnection`), to its end, without name transforms.
 */
export const execute = <A extends object>(
  statement: Statement.Statement<A>
): Effect.Effect<ReadonlyArray<A>, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const [text, values] = statement.compile(true)
    return onHeldConnection(sql, (connection) => connection.execute(text, values, undefined))
  })

/** A failure of the database while the store did `operation`. */
export const storeError = (operation: string) => (cause: unknown): EventStoreError =>
  new EventStoreError({ operation, cause })

/**
 * Turns the `SqlError` @effect/sql reports as a defect (a failed commit or rollback) back into a
 * failure.
 */
export const failWithSqlDefects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchSomeDefect(
    effect,
    (defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()
  )
