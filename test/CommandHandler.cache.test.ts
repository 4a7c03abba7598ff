/**
 * The warm state cache of a command handler: a command on a stream the handler appended to last
 * reads only the event at the cached version and those after it, and the cache never changes an
 * outcome: other writers' events, a lost race, a stream written again from scratch and a
 * transaction that rolls back all give the results a handler without a cache gives.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { CommandHandler, Decider, EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { Counted, counterDecider } from "./support/counter.js"
import { temporaryDatabase } from "./support/sqlite.js"

/** The store of `layer`, counting the events its stream reads hand out. */
const counting = <E, R>(layer: Layer.Layer<EventStore.EventStore, E, R>) => {
  const read = { events: 0 }
  const counted = Layer.effect(
    EventStore.EventStore,
    Effect.map(EventStore.EventStore, (store): EventStore.EventStore => ({
      ...store,
      readStream: (streamId, options) =>
        Stream.tap(store.readStream(streamId, options), () => Effect.sync(() => read.events++))
    }))
  ).pipe(Layer.provide(layer))
  return { read, layer: counted }
}

const add =
  (handler: ReturnType<typeof CommandHandler.make<number, number, typeof Counted.Type, never, never>>) =>
  (streamId: string, times: number) =>
    Effect.forEach(Array.from({ length: times }, () => 1), (by) => handler.handle(streamId, by))

const other = (streamId: string, expectedVersion: number, by: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamId,
      streamType: "counter",
      expectedVersion: ExpectedVersion.exact(expectedVersion),
      events: [{ type: "Counted", data: { by } }]
    }))

describe("CommandHandler's warm state cache", () => {
  it.effect("reads only the event at the cached version and those after it", () => {
    const { layer, read } = counting(EventStore.layerMemory)
    const cached = CommandHandler.make(counterDecider)
    const uncached = CommandHandler.make(counterDecider, { cache: false })
    return Effect.gen(function*() {
      yield* add(cached)("warm", 100)
      yield* add(uncached)("cold", 100)
      read.events = 0
      const warm = yield* cached.handle("warm", 1)
      const warmReads = read.events
      read.events = 0
      const cold = yield* uncached.handle("cold", 1)
      expect([warm.state, warm.version, warmReads]).toEqual([101, 101, 1])
      expect([cold.state, cold.version, read.events]).toEqual([101, 101, 100])
    }).pipe(Effect.provide(layer))
  })

  it.effect("reads what other writers appended after the cached version", () =>
    Effect.gen(function*() {
      const handler = CommandHandler.make(counterDecider)
      yield* handler.handle("shared", 1)
      yield* other("shared", 1, 10)
      yield* other("shared", 2, 100)
      const result = yield* handler.handle("shared", 1)
      expect([result.state, result.version]).toEqual([112, 4])
      expect(yield* handler.load("shared")).toMatchObject({ state: 112, version: 4 })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("decides a command that lost a race again, on the stream as it is", () => {
    let interfered = false
    // Another writer appends while the first attempt decides: its append then conflicts.
    const racy = Decider.make({
      ...counterDecider,
      decide: (by: number) =>
        Effect.gen(function*() {
          if (!interfered) {
            interfered = true
            const store = yield* EventStore.EventStore
            yield* store.append({
              streamId: "raced",
              streamType: "counter",
              expectedVersion: ExpectedVersion.exact(2),
              events: [{ type: "Counted", data: { by: 10 } }]
            })
          }
          return [Counted.make({ by })]
        })
    })
    const handler = CommandHandler.make(racy)
    return Effect.gen(function*() {
      yield* other("raced", 0, 1)
      interfered = true
      yield* handler.handle("raced", 1)
      interfered = false
      const result = yield* handler.handle("raced", 1)
      expect([result.state, result.version]).toEqual([13, 4])
    }).pipe(Effect.provide(EventStore.layerMemory))
  })

  it.effect("loads afresh a stream that no longer holds the cached event: deleted and written again", () =>
    Effect.gen(function*() {
      const handler = CommandHandler.make(counterDecider)
      yield* add(handler)("rewritten", 5)
      const sql = yield* SqlClient.SqlClient
      yield* sql`DELETE FROM events WHERE entity_id = ${"rewritten"}`
      yield* sql`DELETE FROM entities WHERE id = ${"rewritten"}`
      yield* other("rewritten", 0, 100)
      const result = yield* handler.handle("rewritten", 1)
      expect([result.state, result.version]).toEqual([101, 2])
    }).pipe(Effect.provide(SqliteEventStore.layer({ filename: temporaryDatabase() }))))

  it.effect("keeps nothing from inside a transaction that rolls back", () =>
    Effect.gen(function*() {
      const handler = CommandHandler.make(counterDecider)
      yield* handler.handle("rolled-back", 1)
      const rolledBack = yield* Effect.flip(
        SqliteEventStore.withTransaction(
          Effect.zipRight(handler.handle("rolled-back", 10), Effect.fail("undo" as const))
        )
      )
      expect(rolledBack).toBe("undo")
      const result = yield* handler.handle("rolled-back", 1)
      expect([result.state, result.version]).toEqual([2, 2])
    }).pipe(Effect.provide(SqliteEventStore.layer({ filename: temporaryDatabase() }))))

  it.effect("keeps at most maxStreams streams, the least recently used going first", () => {
    const { layer, read } = counting(EventStore.layerMemory)
    const handler = CommandHandler.make(counterDecider, { cache: { maxStreams: 2 } })
    return Effect.gen(function*() {
      for (const streamId of ["a", "b", "c"]) yield* add(handler)(streamId, 10)
      read.events = 0
      yield* handler.handle("c", 1)
      const recent = read.events
      read.events = 0
      yield* handler.handle("a", 1)
      expect([recent, read.events]).toEqual([1, 10])
    }).pipe(Effect.provide(layer))
  })

  it("refuses a cache size that is not a positive integer", () => {
    expect(() => CommandHandler.make(counterDecider, { cache: { maxStreams: 0 } })).toThrow(RangeError)
    expect(() => CommandHandler.make(counterDecider, { cache: { maxStreams: 1.5 } })).toThrow(RangeError)
  })
})
