/**
 * SQLite transactions that queue on the write lock without blocking the event loop, and the
 * pause between the pages of a long read.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { causeCode } from "../dialect.js"

/**
 * How a transaction waits for SQLite's write lock while another process holds it: it tries to
 * take it again at once, then after 1 ms, doubling up to 50 ms, for 30 seconds, and then fails with
 * `SQLITE_BUSY`. Between tries the fiber sleeps and gives the connection back, so the event loop
 * and the process's other fibers go on (a busy timeout would block them: better-sqlite3 waits
 * synchronously).
 */
const lockWait = Schedule.exponential("1 millis").pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered,
  Schedule.upTo("30 seconds")
)

const isBusy = (error: SqlError) => causeCode(error)?.startsWith("SQLITE_BUSY") === true

/**
 * Runs an effect in a transaction that holds SQLite's write lock from its first statement
 * (`BEGIN IMMEDIATE`). A deferred transaction that reads before it writes fails with
 * `SQLITE_BUSY` when another process wrote in between, and waiting cannot help it; an immediate
 * one waits for the lock (see `lockWait`) before anything runs. Inside an existing transaction it
 * is a savepoint of it.
 */
export const withImmediateTransaction = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.flatMap(
    Effect.serviceOption(SqlClient.TransactionConnection),
    (outer) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Option.isSome(outer) ? sql.withTransaction(effect) : Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            // The retries are set up only when the lock is taken: most transactions find it free.
            restore(Effect.catchIf(begin(sql), isBusy, () =>
              Effect.retry(begin(sql), { schedule: lockWait, while: isBusy }))),
            ({ connection, scope }) =>
              Effect.exit(restore(Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0])))
                .pipe(
                  Effect.flatMap((exit) =>
                    end(connection, exit)
                  ),
                  Effect.ensuring(Scope.close(scope, Exit.void))
                )
          )
        ))
  )

/**
 * Reserves the connection in a scope of its own and takes the write lock; when the lock is taken
 * by another process, gives the connection back and fails. Interrupted once the lock is taken
 * (before the transaction's effect could start), it rolls back before it gives the connection
 * back: a connection given back with its transaction open would run other fibers' statements in it.
 */
const begin = (sql: SqlClient.SqlClient) =>
  Effect.flatMap(Scope.make(), (scope) => {
    let begun: SqlConnection.Connection | undefined
    return Effect.onError(
      Effect.flatMap(Scope.extend(sql.reserve, scope), (connection) =>
        Effect.uninterruptible(Effect.map(connection.executeUnprepared("BEGIN IMMEDIATE", [], undefined), () => {
          begun = connection
          return { connection, scope }
        }))),
      () =>
        Effect.zipRight(
          begun === undefined ? Effect.void : Effect.ignore(begun.executeUnprepared("ROLLBACK", [], undefined)),
          Scope.close(scope, Exit.void)
        )
    )
  })

/** Commits after the effect succeeded, rolls back after it failed; its exit either way. */
const end = <A, E>(connection: SqlConnection.Connection, exit: Exit.Exit<A, E>): Effect.Effect<A, E | SqlError> => {
  const rollback = Effect.ignore(connection.executeUnprepared("ROLLBACK", [], undefined))
  if (Exit.isFailure(exit)) return Effect.zipRight(rollback, exit)
  // A commit that fails leaves the transaction open: end it before reporting the failure.
  return Effect.zipRight(
    Effect.tapError(connection.executeUnprepared("COMMIT", [], undefined), () => rollback),
    exit
  )
}

/**
 * Gives the event loop a turn (timers, I/O) between the pages of a long read: better-sqlite3
 * runs every statement synchronously, so a read of many pages would otherwise hold the loop for
 * its whole duration.
 */
export const betweenPages: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})
