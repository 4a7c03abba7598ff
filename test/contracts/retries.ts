/**
 * The retries contract: an append retried after a lost acknowledgement is recognised by its event
 * ids and answered with the original result, and ids that do not make a retry are refused.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Errors, EventStore, ExpectedVersion } from "effect-eventsourcing"
import type { ContractBackend } from "./backend.js"
import { liveTester } from "./backend.js"
import { append, events, newStreamId } from "./support.js"

export const retriesContract = <R>(backend: ContractBackend<R>) =>
  layer(backend.open("retries").layer)("Retries contract", (methods) => {
    const it = liveTester(methods)
    it.effect("answers a retried append with the original result, by its event ids", answersARetry)
  })

const answersARetry = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("retried")
    const ids = [crypto.randomUUID(), crypto.randomUUID()]
    const withIds = (expectedVersion: ExpectedVersion.ExpectedVersion, eventIds = ids) =>
      append(streamId, expectedVersion, eventIds.map((id, index) => ({ type: "Paid", data: { index }, id })))

    yield* append(streamId, ExpectedVersion.noStream, events(1))
    const original = yield* withIds(ExpectedVersion.exact(1))
    yield* append(streamId, ExpectedVersion.exact(3), events(1))

    // The retry comes after a lost acknowledgement, even after the stream moved on.
    for (const expectedVersion of [ExpectedVersion.exact(1), ExpectedVersion.any, ExpectedVersion.streamExists]) {
      expect(yield* withIds(expectedVersion)).toEqual({ ...original, version: 3 })
    }
    expect(yield* store.streamVersion(streamId)).toBe(4)

    // Not a retry: the ids were stored under another expectation, or only some of them.
    const refusals = [
      withIds(ExpectedVersion.exact(2)),
      withIds(ExpectedVersion.noStream),
      withIds(ExpectedVersion.exact(1), [ids[0]!]),
      withIds(ExpectedVersion.exact(1), [ids[1]!, ids[0]!]),
      withIds(ExpectedVersion.exact(4), [ids[0]!, crypto.randomUUID()]),
      append(newStreamId("elsewhere"), ExpectedVersion.noStream, [{ type: "Paid", data: {}, id: ids[0]! }])
    ]
    for (const refusal of refusals) {
      const error = yield* Effect.flip(refusal)
      expect(error).toBeInstanceOf(Errors.InvalidAppendError)
    }
    expect(yield* store.streamVersion(streamId)).toBe(4)

    // A retried appendMany returns every stream's original result.
    const other = newStreamId("retried-other")
    const many = [
      {
        streamId,
        streamType: "thing",
        expectedVersion: ExpectedVersion.exact(4),
        events: [{ type: "A", data: {}, id: crypto.randomUUID() }]
      },
      {
        streamId: other,
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "B", data: {}, id: crypto.randomUUID() }]
      }
    ]
    const first = yield* store.appendMany(many)
    expect(yield* store.appendMany(many)).toEqual(first)
    expect(yield* store.streamVersion(other)).toBe(1)
  })
