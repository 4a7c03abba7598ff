import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream, TestClock } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import { eventStoreContract } from "./contract/eventStoreContract.js"

eventStoreContract("memory", EventStore.layerMemory)

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
})
