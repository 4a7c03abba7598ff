/**
 * The right to run a projection across processes on PostgreSQL: a session advisory lock per
 * projection, all of a process's locks held on one session of their own.
 *
 * Runners ask for their lock with `pg_try_advisory_lock`, again and again until they get it, so
 * that waiting holds no connection and can be interrupted at once. The session is checked by a
 * heartbeat: when it stops answering, the server is asked to end it (so that its locks are freed
 * for another process at once) and every runner holding a lock on it is told it lost it. The
 * next runner to ask opens a new session.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { EventStoreError } from "../../Errors.js"
import { heartbeat as heartbeatOf } from "./pgSession.js"
import { storeError } from "./shared.js"

/** A database session to hold locks on. */
export interface LockSession {
  readonly query: (text: string, values: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<any>, unknown>
  /** The session's server process, to end it from elsewhere when it stops answering. */
  readonly pid: number
  /** Completes when the session ends by itself (the connection dropped). */
  readonly ended: Effect.Effect<void>
}

export interface Options {
  /** Opens a session; it is closed with its scope. */
  readonly open: Effect.Effect<LockSession, unknown, Scope.Scope>
  /** Ends a session's server process from another connection. */
  readonly terminate: (pid: number) => Effect.Effect<void, unknown>
  /** Names the locks apart from other stores' in the database. */
  readonly lockSpace: string
  /** How often a waiting runner asks for its lock again. */
  readonly retry: Duration.DurationInput
  /** How often the session is checked, and how long it has to answer. */
  readonly heartbeat: Duration.DurationInput
}

interface Current {
  readonly session: LockSession
  /** Completes when the session is lost: everything held on it is gone. */
  readonly lost: Deferred.Deferred<void>
}

export const make = (options: Options) =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const heartbeat = Duration.decode(options.heartbeat)
    const opening = yield* Effect.makeSemaphore(1)
    let current: Current | undefined

    /** The open session, or a new one when there is none or it was lost. */
    const session = opening.withPermits(1)(Effect.gen(function*() {
      if (current !== undefined && !(yield* Deferred.isDone(current.lost))) return current
      const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
      const opened = yield* Effect.mapError(
        Scope.extend(options.open, scope),
        storeError("open a session for projection locks")
      )
      const lost = yield* Deferred.make<void>()
      const end = Effect.zipRight(
        Effect.ignore(Effect.timeout(options.terminate(opened.pid), heartbeat)),
        Effect.zipRight(Deferred.succeed(lost, undefined), Scope.close(scope, Exit.void))
      )
      const unanswered = heartbeatOf((text) => opened.query(text, []), heartbeat)
      yield* Effect.forkIn(Effect.zipRight(Effect.raceFirst(opened.ended, Effect.ignore(unanswered)), end), outer)
      current = { session: opened, lost }
      return current
    }))

    /** Holds the lock of `projection` for the scope; the effect returned fails when it is lost. */
    return (projection: string): Effect.Effect<Effect.Effect<never, EventStoreError>, EventStoreError, Scope.Scope> =>
      Effect.gen(function*() {
        const key = `${options.lockSpace} ${projection}`
        for (;;) {
          const held = yield* session
          // Taking the lock and registering its release cannot be torn apart by an interruption.
          const locked = yield* Effect.acquireRelease(
            held.session.query(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`, [key]).pipe(
              Effect.map((rows) => rows[0]?.locked === true),
              Effect.orElseSucceed(() => false)
            ),
            (locked) =>
              locked
                ? Effect.ignore(Effect.timeout(
                  held.session.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [key]),
                  heartbeat
                ))
                : Effect.void
          )
          if (locked) {
            return Effect.zipRight(
              Deferred.await(held.lost),
              Effect.fail(
                storeError(`keep the lock of projection ${JSON.stringify(projection)}`)(
                  new Error("the session holding it was lost")
                )
              )
            )
          }
          yield* Effect.sleep(options.retry)
        }
      })
  })
