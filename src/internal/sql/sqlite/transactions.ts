/**
 * SQLite transactions that queue on the write lock without blocking the event loop, and the
 * pause between the pages of a long read.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
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
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))) {
      return yield* sql.withTransaction(effect)
    }
    return yield* Effect.scoped(Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        // The retries are set up only when the lock is taken: most transactions find it free.
        const connection = yield* restore(
          Effect.catchIf(
            begin(sql, scope),
            isBusy,
            () => Effect.retry(begin(sql, scope), { schedule: lockWait, while: isBusy })
          )
        )
        const exit = yield* Effect.exit(
          restore(Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]))
        )
        const rollback = Effect.ignore(connection.executeUnprepared("ROLLBACK", [], undefined))
        if (Exit.isFailure(exit)) {
          yield* rollback
          return yield* exit
        }
        // A commit that fails leaves the transaction open: end it before reporting the failure.
        yield* Effect.tapError(connection.executeUnprepared("COMMIT", [], undefined), () => rollback)
        return yield* exit
      })
    ))
  })

/**
 * Reserves the connection (for the life of `outer`) and takes the write lock; when the lock is
 * taken by another process, gives the connection back and fails.
 */
const begin = (sql: SqlClient.SqlClient, outer: Scope.Scope) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const connection = yield* Scope.extend(sql.reserve, scope)
    return yield* Effect.as(
      Effect.tapError(connection.executeUnprepared("BEGIN IMMEDIATE", [], undefined), () =>
        Scope.close(scope, Exit.void)),
      connection
    )
  })

/**
 * Gives the event loop a turn (timers, I/O) between the pages of a long read: better-sqlite3
 * runs every statement synchronously, so a read of many pages would otherwise hold the loop for
 * its whole duration.
 */
export const betweenPages: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})
