/**
 * On PostgreSQL an append notifies listeners when it commits, so a subscription in another
 * process wakes at once instead of at its next poll; when the listening connection dies (or the
 * server ends every connection), the store reconnects and the subscription misses nothing.
 *
 * Each store here has a pool and a listening connection of its own, as a separate process would.
 * Subscriptions poll once a minute, so only a notification can make them quick.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres, tablesIn } from "../support/postgres.js"

const storeIn = (schema: string, applicationName: string) =>
  Layer.build(
    PgEventStore.layer({ url: databaseUrl, tables: tablesIn(schema), applicationName, heartbeat: "200 millis" })
  )

const withRaw = <A>(use: (client: Awaited<ReturnType<typeof rawConnection>>) => Promise<A>) =>
  Effect.promise(async () => {
    const client = await rawConnection()
    try {
      return await use(client)
    } finally {
      await client.end()
    }
  })

/** Ends the server sessions whose application name starts with `prefix`; returns how many. */
const terminate = (prefix: string) =>
  withRaw(async (client) =>
    (await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`,
      [`${prefix}%`]
    )).rowCount ?? 0
  )

/** Waits until a session named `name` is connected again. */
const connected = (name: string) =>
  Effect.repeat(
    withRaw(async (client) =>
      (await client.query(`SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = $1`, [name]))
        .rows[0].count as number
    ),
    { until: (count) => count > 0, schedule: Schedule.spaced("20 millis") }
  )

const appendOne = (store: EventStore.EventStore, streamId: string, expectedVersion: number) =>
  store.append({
    streamId,
    streamType: "thing",
    expectedVersion: ExpectedVersion.exact(expectedVersion),
    events: [{ type: "Noted", data: { expectedVersion } }]
  })

describe.skipIf(skipPostgres)("PostgreSQL notifications", () => {
  it.scopedLive("wake a subscription in another process, and keep doing so after its listener is cut off", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("notifications")
      const name = `es-${schema}`
      const reader = EventStore.EventStore.pipe(Effect.provide(yield* storeIn(schema, `${name}-reader`)))
      const writer = EventStore.EventStore.pipe(Effect.provide(yield* storeIn(schema, `${name}-writer`)))
      const readerStore = yield* reader
      const writerStore = yield* writer
      yield* Effect.addFinalizer(() => withRaw((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
      yield* connected(`${name}-reader-listener`)

      const streamId = `woken-${crypto.randomUUID()}`
      const followed = yield* readerStore.subscribe({ pollInterval: "1 minute" }).pipe(
        Stream.filter((event) => event.streamId === streamId),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.sleep("100 millis")

      yield* appendOne(writerStore, streamId, 0)
      // The reader's listening connection is ended by the server; it reconnects...
      expect(yield* terminate(`${name}-reader-listener`)).toBe(1)
      yield* connected(`${name}-reader-listener`)
      yield* appendOne(writerStore, streamId, 1)
      // ...and even when every connection of the reader is ended, as a restart would.
      yield* terminate(`${name}-reader`)
      yield* connected(`${name}-reader-listener`)
      yield* appendOne(writerStore, streamId, 2)

      const read = yield* Fiber.join(followed).pipe(Effect.timeout("10 seconds"))
      expect(Chunk.toReadonlyArray(read).map((event) => event.version)).toEqual([1, 2, 3])
    }))
})
