/**
 * Sessions of the store's own on PostgreSQL, outside the pool: node-postgres clients with TCP
 * keepalive, whose end (an error, the server closing it) is an Effect to wait on.
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import pg from "pg"
import type { LockSession } from "./pgLeads.js"

export interface Session {
  readonly client: pg.Client
  /** Completes when the connection errs or ends. */
  readonly ended: Effect.Effect<void>
}

/**
 * Fails when a session stops answering: it is asked `SELECT 1` every `interval`, and given as
 * long to answer. A dead network path raises no error by itself.
 */
export const heartbeat = (
  ask: (query: string) => Effect.Effect<unknown, unknown>,
  interval: Duration.Duration
): Effect.Effect<never, unknown> =>
  Effect.forever(
    Effect.zipRight(
      Effect.sleep(interval),
      Effect.timeoutFail(ask("SELECT 1"), { duration: interval, onTimeout: () => "no answer" })
    )
  )

/** A connected client, closed with the scope; `onNotification` hears its notifications. */
export const connect = (
  url: string,
  applicationName: string,
  onNotification?: () => void
): Effect.Effect<Session, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const ended = yield* Deferred.make<void>()
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const client = new pg.Client({ connectionString: url, application_name: applicationName, keepAlive: true })
        client.on("error", () => Deferred.unsafeDone(ended, Exit.void))
        client.on("end", () => Deferred.unsafeDone(ended, Exit.void))
        if (onNotification !== undefined) client.on("notification", onNotification)
        await client.connect()
        return client
      }),
      // A connection whose network path froze would keep `end` waiting: give up after a while.
      (client) => Effect.ignore(Effect.timeout(Effect.promise(() => client.end().catch(() => undefined)), "2 seconds"))
    )
    return { client, ended: Deferred.await(ended) }
  })

/** A session to hold projection locks on. */
export const lockSession = (url: string, applicationName: string): Effect.Effect<LockSession, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, ended } = yield* connect(url, applicationName)
    const pid = yield* Effect.tryPromise(() => client.query(`SELECT pg_backend_pid() AS pid`))
    return {
      query: (text, values) =>
        Effect.map(Effect.tryPromise(() => client.query(text, [...values])), (result) => result.rows),
      pid: Number(pid.rows[0].pid),
      ended
    }
  })
