/**
 * Deterministic interleavings on PostgreSQL: a second, raw connection holds a transaction open
 * at a chosen point while the library appends and a global reader polls. In each, the reader
 * sees every committed event exactly once, in one stable order, and never moves past an event
 * that may still commit.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Ref, Stream } from "effect"
import type { Events } from "effect-eventsourcing"
import { Errors, EventStore, ExpectedVersion, Position } from "effect-eventsourcing"
import type pg from "pg"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"

const schema = isolatedSchema("visibility")
const q = (table: string) => `"${schema}"."${table}"`

/** A reader that keeps its checkpoint, as a projection does, starting after `from`. */
const makeReaderFrom = (from: Position.Position, batchSize = 2) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const checkpoint = yield* Ref.make(from)
    const seen = yield* Ref.make<ReadonlyArray<Events.RecordedEvent>>([])
    const poll = Effect.gen(function*() {
      const after = yield* Ref.get(checkpoint)
      const read = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ after, batchSize })))
      const last = read.at(-1)
      if (last !== undefined) yield* Ref.set(checkpoint, last.position)
      yield* Ref.update(seen, (all) => [...all, ...read])
      return read
    })
    return { poll, seen: Ref.get(seen), checkpoint: Ref.get(checkpoint) }
  })

/** A reader starting after everything stored so far. */
const makeReader = Effect.flatMap(
  makeReaderFrom(Position.start, 1_000),
  (reader) => Effect.flatMap(reader.poll, () => Effect.flatMap(reader.checkpoint, (from) => makeReaderFrom(from)))
)

type Reader = Effect.Effect.Success<typeof makeReader>

/**
 * A reader polling in the background throughout a scenario. `stop` lets it finish the poll in
 * flight and make one last one, so that what it saw can be compared at the end.
 */
const pollThroughout = (reader: Reader) =>
  Effect.gen(function*() {
    const stopping = yield* Deferred.make<void>()
    const loop: Effect.Effect<void, unknown> = Effect.gen(function*() {
      const last = yield* Deferred.isDone(stopping)
      yield* reader.poll
      if (last) return
      yield* Effect.sleep("2 millis")
      return yield* loop
    })
    const fiber = yield* Effect.fork(loop)
    return { stop: Effect.zipRight(Deferred.succeed(stopping, undefined), Fiber.join(fiber)) }
  })

/** Stream ids and versions of events, for comparing what readers saw. */
const keys = (events: ReadonlyArray<Events.RecordedEvent>) =>
  events.map((event) => `${event.streamId}#${event.version}`)

const withRaw = <A, E, R>(use: (client: pg.Client) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => rawConnection()),
    use,
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

const query = (client: pg.Client, text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(() => client.query(text, values as Array<unknown>))

/** A plain protocol writer: starts a transaction that appends one event with a fresh position. */
const beginRawAppend = (client: pg.Client, streamId: string) =>
  Effect.gen(function*() {
    yield* query(client, "BEGIN")
    yield* query(client, `INSERT INTO ${q("entities")} (id, type, version) VALUES ($1, 'thing', 1)`, [streamId])
    const inserted = yield* query(
      client,
      `INSERT INTO ${q("events")} (entity_id, name, details, actor, ordinal, position)
      VALUES ($1, 'Slow', '{"by":"raw"}', 'raw', 1, nextval('${q("events_position_seq")}')) RETURNING position`,
      [streamId]
    )
    return BigInt(inserted.rows[0].position)
  })

const append = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion = ExpectedVersion.any) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => store.append({ streamId, streamType: "thing", expectedVersion, events: [{ type: "Fast", data: {} }] })
  )

describe.skipIf(skipPostgres)("PostgreSQL global order under interleavings", () => {
  layer(isolatedLayer(schema))((methods) => {
    const it = live(methods)
    it.effect("waits for a transaction that drew its position first and commits last", () =>
      Effect.gen(function*() {
        const reader = yield* makeReader
        const background = yield* makeReader
        const poller = yield* pollThroughout(background)
        const slow = `slow-${crypto.randomUUID()}`
        const fast = `fast-${crypto.randomUUID()}`

        yield* withRaw((client) =>
          Effect.gen(function*() {
            const slowPosition = yield* beginRawAppend(client, slow)
            const appended = yield* append(fast)
            // The fast append drew a later position, committed, and is not visible yet...
            expect(appended.position.sequence).toBeGreaterThan(slowPosition)
            expect(yield* reader.poll).toEqual([])
            yield* Effect.sleep("20 millis")
            expect(yield* reader.poll).toEqual([])
            // ...until the slow one commits: then both, the slow one first (its transaction is older).
            yield* query(client, "COMMIT")
            const read = yield* reader.poll
            expect(keys(read)).toEqual([`${slow}#1`, `${fast}#1`])
            expect(read[0]).toMatchObject({ type: "Slow", data: { by: "raw" }, actor: "raw" })
          })
        )
        yield* poller.stop
        expect(keys(yield* background.seen)).toEqual(keys(yield* reader.seen))
      }))

    it.effect("never shows a rolled-back append, and reads past it once it is gone", () =>
      Effect.gen(function*() {
        const reader = yield* makeReader
        const background = yield* makeReader
        const poller = yield* pollThroughout(background)
        const doomed = `doomed-${crypto.randomUUID()}`
        const kept = `kept-${crypto.randomUUID()}`

        yield* withRaw((client) =>
          Effect.gen(function*() {
            yield* beginRawAppend(client, doomed)
            yield* append(kept)
            expect(yield* reader.poll).toEqual([])
            yield* query(client, "ROLLBACK")
            expect(keys(yield* reader.poll)).toEqual([`${kept}#1`])
          })
        )
        yield* poller.stop
        expect(keys(yield* background.seen)).toEqual([`${kept}#1`])
      }))

    it.effect("stores nothing of the losers of a race, and reads only what the winner wrote", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const reader = yield* makeReader
        const streamId = `contended-${crypto.randomUUID()}`
        yield* append(streamId, ExpectedVersion.noStream)
        expect(keys(yield* reader.poll)).toEqual([`${streamId}#1`])

        yield* withRaw((client) =>
          Effect.gen(function*() {
            // The raw writer takes the stream's row and moves it to version 2 in an open transaction.
            yield* query(client, "BEGIN")
            yield* query(client, `UPDATE ${q("entities")} SET version = 2 WHERE id = $1`, [streamId])
            yield* query(
              client,
              `INSERT INTO ${q("events")} (entity_id, name, details, actor, ordinal, position)
              VALUES ($1, 'Won', '{}', 'raw', 2, nextval('${q("events_position_seq")}'))`,
              [streamId]
            )
            // Library writers expecting version 1 queue on the row lock...
            const losers = yield* Effect.fork(
              Effect.all(
                Array.from({ length: 4 }, () => Effect.either(append(streamId, ExpectedVersion.exact(1)))),
                { concurrency: "unbounded" }
              )
            )
            yield* Effect.sleep("50 millis")
            expect(yield* reader.poll).toEqual([])
            // ...and when the raw writer commits, every one of them finds version 2.
            yield* query(client, "COMMIT")
            const outcomes = yield* Fiber.join(losers)
            for (const outcome of outcomes) {
              expect(Either.isLeft(outcome) && outcome.left).toEqual(
                new Errors.ConcurrencyError({ streamId, expectedVersion: 1, actualVersion: 2 })
              )
            }
          })
        )
        expect(keys(yield* reader.poll)).toEqual([`${streamId}#2`])
        expect(yield* store.streamVersion(streamId)).toBe(2)
      }))

    it.effect("stalls behind a session left idle in a transaction, and goes on once the server ends it", () =>
      Effect.gen(function*() {
        const reader = yield* makeReader
        const later = `later-${crypto.randomUUID()}`
        yield* withRaw((client) =>
          Effect.gen(function*() {
            // A session that wrote nothing yet but holds a transaction id, then goes idle.
            yield* query(client, "SET idle_in_transaction_session_timeout = '300ms'")
            yield* query(client, "BEGIN")
            yield* query(client, "SELECT pg_current_xact_id()")
            yield* append(later)
            expect(yield* reader.poll).toEqual([])
            // The server ends the idle session; its transaction aborts and the reader goes on.
            yield* Effect.sleep("600 millis")
            expect(keys(yield* reader.poll)).toEqual([`${later}#1`])
            const dead = yield* Effect.either(Effect.tryPromise(() => client.query("SELECT 1")))
            expect(Either.isLeft(dead)).toBe(true)
          })
        )
      }))

    it.effect("keeps one order for every reader, whatever their batch size, while writers race", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const readers = yield* Effect.all(
          [1, 2, 7].map((batchSize) =>
            Effect.flatMap(
              makeReader,
              (reader) => Effect.flatMap(reader.checkpoint, (from) => makeReaderFrom(from, batchSize))
            )
          )
        )
        const start = yield* readers[0]!.checkpoint
        const pollers = yield* Effect.all(readers.map(pollThroughout))
        yield* withRaw((client) =>
          Effect.gen(function*() {
            const held = `held-${crypto.randomUUID()}`
            yield* beginRawAppend(client, held)
            yield* Effect.all(
              Array.from({ length: 40 }, (_, index) => append(`race-${index % 5}-${crypto.randomUUID().slice(0, 4)}`)),
              { concurrency: 8 }
            )
            yield* query(client, "COMMIT")
          })
        )
        yield* Effect.forEach(pollers, (poller) => poller.stop)
        const everything = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ after: start })))
        for (const reader of readers) {
          expect(keys(yield* reader.seen)).toEqual(keys(everything))
        }
        expect(everything).toHaveLength(41)
      }))
  })
})
