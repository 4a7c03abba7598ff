/**
 * Projection checkpoints in the protocol's `projections` table.
 *
 * A commit moves the checkpoint with a compare-and-set (it must still be where the runner left
 * it) and runs the handler's work in the same transaction, so the handler's writes through the
 * same `SqlClient` and the checkpoint land together. Where the dialect can hold the right to run
 * a projection across processes (PostgreSQL's advisory locks), a second runner waits for it and
 * takes over when the first one's session ends.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { CheckpointConflictError, type EventStoreError } from "../../Errors.js"
import type { ProjectionStore } from "../../ProjectionStore.js"
import { leadInProcess } from "../leadInProcess.js"
import * as RunnerSupport from "../projectionRunnerSupport.js"
import type { Dialect } from "./dialect.js"
import type * as PgLeads from "./pgLeads.js"
import { execute, failWithSqlDefects, storeError, withSqlClient } from "./shared.js"

export interface Options {
  /**
   * Opens the PostgreSQL session that holds the projection locks of this process. By default a
   * connection reserved from the store's pool, for as long as the store lives.
   */
  readonly lockSession?: Effect.Effect<PgLeads.LockSession, unknown, Scope.Scope> | undefined
}

/**
 * The right to run a projection: within the process first (a session's locks are its own: two
 * runners in one process would both get the same lock), then across processes.
 */
const makeLead = (
  statements: Dialect["projections"],
  options: Options | undefined
): Effect.Effect<RunnerSupport.RunnerSupport["lead"], never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const inProcess = leadInProcess()
    const acrossProcesses = statements.acrossProcesses === undefined
      ? undefined
      : yield* statements.acrossProcesses(options?.lockSession)
    return (projection) =>
      Effect.zipRight(
        inProcess(projection),
        acrossProcesses === undefined ? Effect.succeed(Effect.never) : acrossProcesses(projection)
      )
  })

export const make = (
  dialect: Dialect,
  options?: Options
): Effect.Effect<ProjectionStore, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const statements = dialect.projections
    const committed = yield* PubSub.sliding<void>(1)
    const withSql = withSqlClient(sql)
    const projections = sql.literal(dialect.tables.projections)
    const deadLetters = sql.literal(dialect.tables.deadLetters)

    /** A transaction of the store's own (a savepoint inside one); a failed commit is a typed error, not a defect. */
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | EventStoreError, R> =>
      withSql(dialect.transaction(effect)).pipe(
        failWithSqlDefects,
        Effect.catchIf(
          (error): error is SqlError => error instanceof SqlError,
          (error) => Effect.fail(storeError("run a projection transaction")(error))
        )
      ) as Effect.Effect<A, E | EventStoreError, R>

    const lead = yield* makeLead(statements, options)

    const store: ProjectionStore = {
      checkpoint: (projection) =>
        statements.checkpoint(projection).pipe(Effect.mapError(storeError("read a projection checkpoint")), withSql),

      // The handler first, then the checkpoint (the handler runs a round trip sooner; a runner
      // that lost the checkpoint to another rolls its handler's work back with the transaction).
      commit: (projection, from, to, effect) =>
        Effect.tap(
          transaction(
            Effect.gen(function*() {
              const result = yield* effect
              const moved = yield* statements.moveCheckpoint(projection, from, to).pipe(
                Effect.mapError(storeError("move a checkpoint")),
                withSql
              )
              if (!moved) return yield* new CheckpointConflictError({ projection })
              return result
            })
          ),
          () => PubSub.publish(committed, undefined)
        ),

      transaction,

      deadLetter: (projection, event, reason) =>
        statements.deadLetter(projection, event, reason).pipe(
          Effect.mapError(storeError("record a dead letter")),
          withSql
        ),

      deadLetters: (projection) =>
        statements.deadLetters(projection).pipe(Effect.mapError(storeError("read dead letters")), withSql),

      reset: (projection, effect) =>
        transaction(
          Effect.tap(effect, () =>
            Effect.mapError(
              Effect.zipRight(
                execute(sql`DELETE FROM ${projections} WHERE source = ${projection}`),
                execute(sql`DELETE FROM ${deadLetters} WHERE projection = ${projection}`)
              ),
              storeError("reset a projection")
            ).pipe(withSql))
        )
    }
    return RunnerSupport.attach(store, {
      lead,
      commits: Effect.map(PubSub.subscribe(committed), (dequeue) => Effect.asVoid(Queue.take(dequeue)))
    })
  })
