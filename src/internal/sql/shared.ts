/**
 * What every SQL part of the store shares: how it runs a statement, and how it reports a failure
 * of the database.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { EventStoreError } from "../../Errors.js"

/**
 * Runs one of the store's statements as written (no name transforms), to its end: a fiber
 * interrupted meanwhile waits for the statement and is then interrupted, instead of cancelling
 * it. @effect/sql-pg cancels an interrupted query by signalling its connection's server process,
 * but gives the connection back to the pool as soon as the query ends, which can be before the
 * signal lands: it then cancels the next statement on that connection, another fiber's.
 */
export const runStatement = <A extends object>(
  sql: SqlClient.SqlClient,
  query: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<A>, SqlError> =>
  Effect.uninterruptible(sql.unsafe<A>(query, values as ReadonlyArray<never>).withoutTransform)

/** A failure of the database while the store did `operation`. */
export const storeError = (operation: string) => (cause: unknown): EventStoreError =>
  new EventStoreError({ operation, cause })
