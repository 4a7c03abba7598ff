/** The subscribe contract: following the global order live, in chunks of whole appends. */
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import type { ContractBackend } from "./backend.js"
import { liveTester } from "./backend.js"
import { append, currentPosition, events, newStreamId } from "./support.js"

export const subscribeContract = <R>(backend: ContractBackend<R>) =>
  layer(backend.open("subscribe").layer)("Subscribe contract", (methods) => {
    const it = liveTester(methods)
    it.effect("follows the global order live: catches up, then reads appends as they come", followsLive)
    it.effect("emits each batch of a subscription as one chunk of whole appends", emitsBatchesAsChunks)
  })

const followsLive = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const streamId = newStreamId("followed")
    yield* append(streamId, ExpectedVersion.noStream, events(3))
    // A long poll interval: only the wake-up of an append can make this quick.
    const followed = yield* store.subscribe({ after: start, batchSize: 2, pollInterval: "1 minute" }).pipe(
      Stream.filter((recorded) => recorded.streamId === streamId),
      Stream.take(7),
      Stream.runCollect,
      Effect.fork
    )
    yield* Effect.sleep("50 millis")
    yield* append(streamId, ExpectedVersion.exact(3), events(2))
    yield* Effect.sleep("50 millis")
    yield* append(streamId, ExpectedVersion.exact(5), events(2))
    const read = yield* Fiber.join(followed).pipe(Effect.timeout("10 seconds"))
    expect(Chunk.toReadonlyArray(read).map((recorded) => recorded.version)).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

const emitsBatchesAsChunks = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const streamId = newStreamId("chunked")
    yield* append(streamId, ExpectedVersion.noStream, events(7))
    yield* append(streamId, ExpectedVersion.exact(7), events(1))
    const chunks = yield* store.subscribe({ after: start, batchSize: 3 }).pipe(
      Stream.chunks,
      Stream.filter((chunk) => Chunk.size(chunk) > 0),
      Stream.take(2),
      Stream.runCollect,
      Effect.timeout("10 seconds")
    )
    expect(
      Chunk.toReadonlyArray(chunks).map((chunk) => Chunk.toReadonlyArray(chunk).map((recorded) => recorded.version))
    )
      .toEqual([[1, 2, 3, 4, 5, 6, 7], [8]])
  })
