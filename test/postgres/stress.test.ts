/**
 * Concurrency stress on PostgreSQL: many connections appending at once to one hot stream and to
 * many streams, with a reader polling throughout. Afterwards every acknowledged append is stored
 * once, versions are gapless, every conflict was a typed ConcurrencyError, and the global order
 * holds each event exactly once.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Ref, Stream } from "effect"
import type { Events } from "effect-eventsourcing"
import { Errors, EventStore, ExpectedVersion, Position } from "effect-eventsourcing"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, skipPostgres } from "../support/postgres.js"

const connections = 12
const writers = 10
const appendsPerWriter = 300

describe.skipIf(skipPostgres)("PostgreSQL under concurrent writers", () => {
  layer(isolatedLayer(isolatedSchema("stress"), { maxConnections: connections }))((methods) => {
    const it = live(methods)

    it.effect(
      `stores ${writers * appendsPerWriter} appends from ${writers} writers exactly once`,
      () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const hot = `hot-${crypto.randomUUID()}`
          const acknowledged = yield* Ref.make<ReadonlyArray<Events.RecordedEvent>>([])
          const conflicts = yield* Ref.make(0)
          const otherFailures = yield* Ref.make<ReadonlyArray<unknown>>([])

          // A reader polling with a checkpoint throughout.
          const seen = yield* Ref.make<ReadonlyArray<Events.RecordedEvent>>([])
          const stopping = yield* Deferred.make<void>()
          const poll = (after: Position.Position): Effect.Effect<void, EventStore.ReadError> =>
            Effect.gen(function*() {
              const last = yield* Deferred.isDone(stopping)
              const read = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ after, batchSize: 100 })))
              yield* Ref.update(seen, (all) => [...all, ...read])
              if (last) return
              yield* Effect.sleep("5 millis")
              return yield* poll(read.at(-1)?.position ?? after)
            })
          const reader = yield* Effect.fork(poll(Position.start))

          const record = (events: ReadonlyArray<Events.RecordedEvent>) =>
            Ref.update(acknowledged, (all) => [...all, ...events])

          /** Appends to the hot stream at the version it just read, retrying conflicts. */
          const appendHot = (writer: number, n: number): Effect.Effect<void, EventStore.ReadError> =>
            Effect.gen(function*() {
              const version = yield* store.streamVersion(hot)
              const outcome = yield* Effect.either(store.append({
                streamId: hot,
                streamType: "counter",
                expectedVersion: ExpectedVersion.exact(version),
                events: [{ type: "Incremented", data: { writer, n } }]
              }))
              if (Either.isRight(outcome)) return yield* record(outcome.right.events)
              if (outcome.left instanceof Errors.ConcurrencyError) {
                yield* Ref.update(conflicts, (count) => count + 1)
                return yield* appendHot(writer, n)
              }
              yield* Ref.update(otherFailures, (all) => [...all, outcome.left])
            })

          /** Appends to a stream of its own and, in every other append, also to one of a few shared streams. */
          const appendOwn = (writer: number, n: number) =>
            Effect.gen(function*() {
              const own = {
                streamId: `own-${writer}-${n % 20}-${hot}`,
                streamType: "thing",
                expectedVersion: ExpectedVersion.any,
                events: [{ type: "Happened", data: { writer, n } }]
              }
              const shared = {
                streamId: `shared-${n % 4}-${hot}`,
                streamType: "thing",
                expectedVersion: ExpectedVersion.any,
                events: [{ type: "Shared", data: { writer, n } }]
              }
              const outcome = yield* Effect.either(
                n % 2 === 0
                  ? store.appendMany(writer % 2 === 0 ? [own, shared] : [shared, own])
                  : Effect.map(
                    store.append({ ...own, events: [...own.events, { type: "Followed", data: { writer, n } }] }),
                    (result) => [result]
                  )
              )
              if (Either.isRight(outcome)) yield* record(outcome.right.flatMap((result) => result.events))
              else yield* Ref.update(otherFailures, (all) => [...all, outcome.left])
            })

          yield* Effect.all(
            Array.from({ length: writers }, (_, writer) =>
              Effect.forEach(
                Array.from({ length: appendsPerWriter }, (_, n) => n),
                (n) => n % 3 === 0 ? appendHot(writer, n) : appendOwn(writer, n),
                { discard: true }
              )),
            { concurrency: "unbounded", discard: true }
          )
          yield* Deferred.succeed(stopping, undefined)
          yield* Fiber.join(reader)

          expect(yield* Ref.get(otherFailures)).toEqual([])
          const acked = yield* Ref.get(acknowledged)
          const hotAppends = writers * Math.ceil(appendsPerWriter / 3)
          expect(acked).toHaveLength(hotAppends + (writers * appendsPerWriter - hotAppends) * 2)
          expect(yield* Ref.get(conflicts)).toBeGreaterThan(0)

          // Every stream is gapless and holds exactly what was acknowledged for it.
          const byStream = new Map<string, Array<Events.RecordedEvent>>()
          for (const event of acked) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event])
          for (const [streamId, events] of byStream) {
            const stored = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId)))
            expect(stored.map((event) => event.version)).toEqual(stored.map((_, index) => index + 1))
            expect(new Set(stored.map((event) => event.id))).toEqual(new Set(events.map((event) => event.id)))
          }

          // The reader saw every acknowledged event exactly once, in the order of a full read.
          const read = yield* Ref.get(seen)
          const ids = read.map((event) => event.id)
          expect(new Set(ids).size).toBe(ids.length)
          expect(new Set(ids)).toEqual(new Set(acked.map((event) => event.id)))
          const full = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ batchSize: 1_000 })))
          expect(ids).toEqual(full.map((event) => event.id))
          // In the global order, each stream's events come in version order.
          const lastVersion = new Map<string, number>()
          for (const event of read) {
            expect(event.version, `${event.streamId} version ${event.version}`).toBe(
              (lastVersion.get(event.streamId) ?? 0) + 1
            )
            lastVersion.set(event.streamId, event.version)
          }
        }),
      120_000
    )
  })
})
