/** The read contract: reading one stream, forward and backward, with limits. */
import { expect, layer } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import type { ContractBackend } from "./backend.js"
import { liveTester } from "./backend.js"
import { append, event, events, newStreamId, readStream } from "./support.js"

export const readContract = <R>(backend: ContractBackend<R>) =>
  layer(backend.open("read").layer)("Read contract", (methods) => {
    const it = liveTester(methods)
    it.effect("reports version 0 and no events for a stream that does not exist", readsAMissingStream)
    it.effect("reads a stream forward from a version and backward, with limits", readsForwardAndBackward)
    it.effect("reads with limits of zero and dies on read options that are not counts", readsWithLimitsOfZero)
    it.effect("returns copies: changing what was read changes nothing stored", returnsCopies)
  })

const readsAMissingStream = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("missing")
    expect(yield* store.streamVersion(streamId)).toBe(0)
    expect(yield* readStream(streamId)).toEqual([])
    expect(yield* readStream(streamId, { direction: "backward" })).toEqual([])
  })

const readsForwardAndBackward = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("read")
    yield* append(streamId, ExpectedVersion.noStream, events(4))
    yield* append(streamId, ExpectedVersion.exact(4), events(3))
    const versions = (options?: EventStore.ReadStreamOptions) =>
      Effect.map(readStream(streamId, options), (stored) => stored.map((recorded) => recorded.version))

    expect(yield* versions()).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(yield* versions({ from: 5 })).toEqual([5, 6, 7])
    expect(yield* versions({ from: 2, limit: 3 })).toEqual([2, 3, 4])
    expect(yield* versions({ from: 8 })).toEqual([])
    expect(yield* versions({ direction: "backward" })).toEqual([7, 6, 5, 4, 3, 2, 1])
    expect(yield* versions({ direction: "backward", limit: 2 })).toEqual([7, 6])
    expect(yield* versions({ direction: "backward", from: 3 })).toEqual([3, 2, 1])
    expect(yield* versions({ direction: "backward", from: 100, limit: 1 })).toEqual([7])
    const data = (yield* readStream(streamId, { from: 5, limit: 1 }))[0]!.data
    expect(data).toEqual({ index: 0 })
  })

const readsWithLimitsOfZero = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("limits")
    yield* append(streamId, ExpectedVersion.noStream, events(3))
    expect(yield* readStream(streamId, { limit: 0 })).toEqual([])
    expect((yield* readStream(streamId, { from: 0 })).map((recorded) => recorded.version)).toEqual([1, 2, 3])
    expect(yield* readStream(streamId, { direction: "backward", from: 0 })).toEqual([])
    expect((yield* readStream(streamId, { direction: "backward", from: 2, limit: 1 }))[0]!.version).toBe(2)

    const invalid: ReadonlyArray<EventStore.ReadStreamOptions> = [
      { limit: -1 },
      { limit: 1.5 },
      { from: -1 },
      { from: 2.5 },
      { from: Number.NaN },
      { direction: "sideways" as "forward" }
    ]
    for (const options of invalid) {
      const defect = yield* Effect.flip(Effect.sandbox(readStream(streamId, options)))
      expect(String(defect)).toContain("IllegalArgumentException")
    }
    for (const batchSize of [0, -3, 2.5, Number.NaN]) {
      const defect = yield* Effect.flip(Effect.sandbox(Stream.runDrain(store.readAll({ batchSize }))))
      expect(String(defect)).toContain("batchSize")
    }
  })

const returnsCopies = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("copies")
    const data = { list: [1, 2] }
    yield* append(streamId, ExpectedVersion.noStream, [event("Listed", data)])
    data.list.push(3)
    const [first] = yield* readStream(streamId)
    ;(first!.data as { list: Array<number> }).list.push(4)
    const [second] = yield* readStream(streamId)
    expect(second!.data).toEqual({ list: [1, 2] })
  })
