/**
 * Listening for PostgreSQL notifications of appends, on a connection of its own.
 *
 * `@effect/sql-pg`'s `listen` goes silently deaf when its connection dies, so the store keeps its
 * own listening connection: it reconnects whenever the connection ends or errs, checks it with a
 * heartbeat (a dead network path raises no error by itself), and after every (re)connection
 * wakes the subscriptions, since notifications sent while it was away are lost.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Runtime from "effect/Runtime"
import type pg from "pg"
import * as PgSession from "./pgSession.js"
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
      const { client, ended } = yield* PgSession.connect(options.url, options.applicationName, wake)
      yield* query(client, `LISTEN ${client.escapeIdentifier(tables.channel)}`)
      wake()
      yield* Effect.raceFirst(ended, PgSession.heartbeat((text) => query(client, text), heartbeat))
    }))

    /**
     * Reconnects after a pause that doubles from 100 ms up to 5 seconds while connections keep
     * failing at once, and starts over from 100 ms after one that lived a while.
     */
    const listen = (pause: Duration.Duration): Effect.Effect<never> =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        yield* Effect.ignore(session)
        const lived = (yield* Clock.currentTimeMillis) - started
        const next = lived > 10_000 ? Duration.millis(100) : Duration.min(Duration.times(pause, 2), Duration.seconds(5))
        yield* Effect.sleep(pause)
        return yield* listen(next)
      })

    yield* Effect.forkScoped(listen(Duration.millis(100)))
  })
