import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Stream, TestClock } from "effect"
import { EventStore, ExpectedVersion, ProjectionStore } from "effect-eventsourcing"

// The contracts run on this store in contracts/memory.test.ts; these cases are its own.
describe("EventStore.layerMemory", () => {
  it.effect("stamps events with the Clock, so TestClock controls timestamps", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2024, 1, 29, 12, 30))
      const store = yield* EventStore.EventStore
      const result = yield* store.append({
        streamId: "clocked",
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Ticked", data: {} }]
      })
      expect(result.events[0]!.timestamp.toISOString()).toBe("2024-02-29T12:30:00.000Z")
    }).pipe(Effect.provideServiceEffect(EventStore.EventStore, EventStore.makeMemory)))

  it.effect("starts empty each time the layer is built", () =>
    Effect.gen(function*() {
      const appendOne = Effect.flatMap(EventStore.EventStore, (store) =>
        store.append({
          streamId: "same",
          streamType: "thing",
          expectedVersion: ExpectedVersion.noStream,
          events: [{ type: "Happened", data: {} }]
        }))
      yield* Effect.provide(appendOne, EventStore.layerMemory)
      const second = yield* Effect.provide(appendOne, EventStore.layerMemory)
      expect(second.version).toBe(1)
      const all = yield* Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
        Effect.provide(EventStore.layerMemory)
      )
      expect(Chunk.size(all)).toBe(0)
    }))

  it.live("undoes a failed transaction's appends, and shows none of them before it commits", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const projections = yield* ProjectionStore.ProjectionStore
      const append = (streamId: string) =>
        store.append({
          streamId,
          streamType: "thing",
          expectedVersion: ExpectedVersion.any,
          events: [{ type: "A", data: {} }]
        })
      const version = (streamId: string) => store.streamVersion(streamId)
      yield* append("kept")
      const appended = yield* Deferred.make<void>()
      const finish = yield* Deferred.make<void>()
      const failing = yield* Effect.fork(projections.transaction(Effect.gen(function*() {
        yield* append("kept")
        yield* append("new")
        // A savepoint that fails is undone alone.
        yield* Effect.ignore(projections.transaction(Effect.zipRight(append("nested"), Effect.fail("no"))))
        expect(yield* version("nested")).toBe(0)
        expect(yield* version("new")).toBe(1)
        yield* Deferred.succeed(appended, undefined)
        yield* Deferred.await(finish)
        return yield* Effect.fail("boom")
      })))
      yield* Deferred.await(appended)
      // Other fibers see nothing of the open transaction, and their appends wait for it.
      expect(yield* version("kept")).toBe(1)
      expect(yield* version("new")).toBe(0)
      expect(Chunk.size(yield* Stream.runCollect(store.readStream("kept")))).toBe(1)
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll())).map((event) => event.streamId)).toEqual([
        "kept"
      ])
      expect(yield* store.countAfter(yield* store.head)).toBe(0)
      const waiting = yield* Effect.fork(append("other"))
      yield* Effect.sleep("20 millis")
      expect(waiting.unsafePoll()).toBeNull()
      yield* Deferred.succeed(finish, undefined)
      expect(yield* Effect.flip(Fiber.join(failing))).toBe("boom")
      yield* Fiber.join(waiting)
      expect(yield* version("kept")).toBe(1)
      expect(yield* version("new")).toBe(0)
      expect(yield* version("other")).toBe(1)
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll())).map((event) => event.streamId)).toEqual([
        "kept",
        "other"
      ])
      // A transaction that succeeds is seen whole once it commits.
      yield* projections.transaction(Effect.zipRight(append("new"), append("new")))
      expect(yield* version("new")).toBe(2)
      expect((yield* store.verify()).violations).toEqual([])
    }).pipe(Effect.provide(EventStore.layerMemory)))
})
