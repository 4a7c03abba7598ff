/**
 * Stored data that no longer decodes gets a typed error naming the stream, version and event
 * type, from the store (details that are not JSON) and from a decider's Schema (details that do
 * not match it); nothing stored is changed by reading it.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { CommandHandler, Errors, EventStore, ExpectedVersion, History, Position } from "effect-eventsourcing"
import { backends, execute } from "../support/backends.js"
import { counterDecider } from "../support/counter.js"
import { live } from "../support/live.js"

// Without the warm state cache: these cases corrupt rows a handler has folded, and a cached state
// stands in for the events it was folded from (as a snapshot does), so only loads from the store
// read them again.
const counter = CommandHandler.make(counterDecider, { cache: false })

for (const backend of backends("bad_data")) {
  describe.skipIf(backend.skip)(`${backend.name} stored data that does not decode`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)
      const p = backend.placeholder

      /** Overwrites the details of one stored event, as a faulty tool or a bad migration would. */
      const corrupt = (streamId: string, version: number, details: string) =>
        execute(
          `UPDATE ${backend.table("events")} SET details = ${p(1)} WHERE entity_id = ${p(2)} AND ordinal = ${p(3)}`,
          [details, streamId, version]
        )

      it.effect("names the stream, version and type of details that are not JSON", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `broken-${crypto.randomUUID()}`
          const appended = yield* counter.handle(streamId, 1)
          yield* counter.handle(streamId, 2)
          yield* corrupt(streamId, 2, "{not json")

          const fromStream = yield* Effect.flip(Stream.runCollect(store.readStream(streamId)))
          expect(fromStream).toBeInstanceOf(Errors.EventDecodeError)
          expect(fromStream).toMatchObject({ streamId, version: 2, eventType: "Counted" })
          expect(fromStream.message).toContain("not valid JSON")

          const fromAll = yield* Effect.flip(Stream.runCollect(store.readAll({ after: appended.position })))
          expect(fromAll).toMatchObject({ _tag: "EventDecodeError", streamId, version: 2 })

          const fromLoad = yield* Effect.flip(counter.load(streamId))
          expect(fromLoad).toMatchObject({ _tag: "EventDecodeError", streamId, version: 2, eventType: "Counted" })
          // The events before it still read.
          const first = yield* Stream.runCollect(store.readStream(streamId, { limit: 1 }))
          expect(Chunk.toReadonlyArray(first)[0]!.data).toEqual({ by: 1 })
        }))

      it.effect("reads every event before a row that is not JSON, then fails on it", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `broken-late-${crypto.randomUUID()}`
          yield* counter.handle(streamId, 1)
          const second = yield* counter.handle(streamId, 2)
          yield* counter.handle(streamId, 3)
          yield* corrupt(streamId, 3, "{not json")

          const read: Array<number> = []
          const failure = yield* Effect.flip(
            Stream.runForEach(store.readStream(streamId), (event) => Effect.sync(() => read.push(event.version)))
          )
          expect(read).toEqual([1, 2])
          expect(failure).toMatchObject({ _tag: "EventDecodeError", streamId, version: 3 })
          // What only needs the events before it still works.
          const trail = yield* Effect.flip(Stream.runCollect(History.audit(streamId)))
          expect(trail).toMatchObject({ _tag: "EventDecodeError", version: 3 })
          const audited: Array<number> = []
          yield* Effect.ignore(
            Stream.runForEach(History.audit(streamId), (entry) => Effect.sync(() => audited.push(entry.version)))
          )
          expect(audited).toEqual([1, 2])
          const asOf = yield* History.stateAt(counter.decider)(streamId, { version: 2 })
          expect(asOf).toMatchObject({ version: 2, position: second.position })
        }))

      it.effect("never ends a global read successfully short of a row that is not JSON, whatever the batch size", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `broken-global-${crypto.randomUUID()}`
          const first = yield* counter.handle(streamId, 1)
          yield* counter.handle(streamId, 2)
          yield* counter.handle(streamId, 3)
          yield* corrupt(streamId, 3, "{not json")
          const after = Position.make({ ...first.position, sequence: first.position.sequence - 1n })
          for (const batchSize of [1, 2, 3, 500]) {
            const read: Array<number> = []
            const keep = (event: { readonly streamId: string; readonly version: number }) =>
              Effect.sync(() => event.streamId === streamId && read.push(event.version))
            const ended = yield* Effect.flip(Stream.runForEach(store.readAll({ after, batchSize }), keep))
            expect(read).toEqual([1, 2])
            expect(ended).toMatchObject({ _tag: "EventDecodeError", streamId, version: 3 })
            // A subscription stops there too, instead of waiting for events after it.
            const followed: Array<number> = []
            const stopped = yield* Effect.flip(
              Stream.runForEach(
                store.subscribe({ after, batchSize, pollInterval: "10 millis" }),
                (event) => Effect.sync(() => event.streamId === streamId && followed.push(event.version))
              )
            ).pipe(Effect.timeout("10 seconds"))
            expect(followed).toEqual([1, 2])
            expect(stopped).toMatchObject({ _tag: "EventDecodeError", streamId, version: 3 })
          }
        }))

      it.effect("names the stream, version and type of details that do not match the Schema", () =>
        Effect.gen(function*() {
          const streamId = `mismatched-${crypto.randomUUID()}`
          yield* counter.handle(streamId, 1)
          yield* corrupt(streamId, 1, JSON.stringify({ by: "one" }))
          const error = yield* Effect.flip(counter.load(streamId))
          expect(error).toBeInstanceOf(Errors.EventDecodeError)
          expect(error).toMatchObject({ streamId, version: 1, eventType: "Counted" })
          expect(error.message).toContain("by")
          // Handling a command on it fails the same way and appends nothing.
          const handled = yield* Effect.flip(counter.handle(streamId, 5))
          expect(handled).toMatchObject({ _tag: "EventDecodeError", version: 1 })
          const store = yield* EventStore.EventStore
          expect(yield* store.streamVersion(streamId)).toBe(1)
        }))

      it.effect("reads a stream of another type as StreamTypeMismatchError", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `other-${crypto.randomUUID()}`
          yield* store.append({
            streamId,
            streamType: "order",
            expectedVersion: ExpectedVersion.noStream,
            events: [{ type: "Counted", data: { by: 1 } }]
          })
          const error = yield* Effect.flip(counter.handle(streamId, 1))
          expect(error).toEqual(
            new Errors.StreamTypeMismatchError({ streamId, expectedType: "counter", actualType: "order" })
          )
        }))
    })
  })
}
