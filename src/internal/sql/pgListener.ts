/**
 * Listening for PostgreSQL notifications of appends, on a connection of its own.
 *
 * `@effect/sql-pg`'s `listen` goes silently deaf when its connection dies, so the store keeps its
 * own listening connection: it reconnects whenever the connection ends or errs, checks it with a
 * heartbeat (a dead network path raises no error by itself), and after every (re)connection
 * wakes the subscriptions, since notifications sent while it was away are lost.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as PubSub from "effect/PubSub"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import pg from "pg"
import type { Listener } from "./sqlEventStore.js"

export interface Options {
  readonly url: string
  readonly applicationName: string
  /** How often the listening connection is checked. */
  readonly heartbeat: Duration.DurationInput
}

const query = (client: pg.Client, text: string) => Effect.tryPromise(() => client.query(text))

export const make = (options: Options): Listener => (tables, wakeups) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const wake = () => Runtime.runFork(runtime)(PubSub.publish(wakeups, undefined))
    const heartbeat = Duration.decode(options.heartbeat)

    /** One connection's life: listen until it ends, errs or stops answering. */
    const session = Effect.scoped(Effect.gen(function*() {
      const ended = yield* Deferred.make<void>()
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const client = new pg.Client({ connectionString: options.url, application_name: options.applicationName })
          client.on("error", () => Deferred.unsafeDone(ended, Exit.void))
          client.on("end", () => Deferred.unsafeDone(ended, Exit.void))
          client.on("notification", wake)
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.end().catch(() => undefined))
      )
      yield* query(client, `LISTEN ${client.escapeIdentifier(tables.channel)}`)
      wake()
      const checked = Effect.forever(
        Effect.zipRight(
          Effect.sleep(heartbeat),
          Effect.timeoutFail(query(client, "SELECT 1"), { duration: heartbeat, onTimeout: () => "no answer" })
        )
      )
      yield* Effect.raceFirst(Deferred.await(ended), checked)
    }))

    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.ignore(session),
        Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))
      )
    )
  })
