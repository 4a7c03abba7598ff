/**
 * The readAll contract: the global order, read in batches, by position, as it grows and while
 * writers write; and its head.
 */
import { expect, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Ref, Stream } from "effect"
import type { Events } from "effect-eventsourcing"
import { EventStore, ExpectedVersion, Position } from "effect-eventsourcing"
import type { ContractBackend } from "./backend.js"
import { liveTester } from "./backend.js"
import { append, currentPosition, event, events, newStreamId, readAllAfter } from "./support.js"

export const readAllContract = <R>(backend: ContractBackend<R>) =>
  layer(backend.open("read_all").layer)("ReadAll contract", (methods) => {
    const it = liveTester(methods)
    it.effect("reads the global order in batches, each append whole and once", readsInBatches)
    it.effect(
      "reads the global order as each batch is written, so later appends are read too",
      readsAsBatchesAreWritten
    )
    it.effect(
      "reads the events of one append by stream id in code point order, then version",
      readsByStreamIdInCodePointOrder
    )
    it.effect("reports the head of the global order and how many events follow a position", reportsTheHead)
    it.effect("lets a reader polling during the writes see every append once, whole and in order", pollsDuringWrites)
  })

const readsInBatches = () =>
  Effect.gen(function*() {
    const start = yield* currentPosition
    const a = newStreamId("global-a")
    const b = newStreamId("global-b")
    const appended = [
      yield* append(a, ExpectedVersion.noStream, events(2)),
      yield* append(b, ExpectedVersion.noStream, events(5)),
      yield* append(a, ExpectedVersion.exact(2), events(1)),
      yield* append(b, ExpectedVersion.exact(5), events(3))
    ]
    const expected = appended.flatMap((result) => result.events)
    const positions = appended.map((result) => result.position)
    for (let index = 1; index < positions.length; index++) {
      expect(Position.isAfter(positions[index]!, positions[index - 1]!)).toBe(true)
    }

    for (const batchSize of [1, 2, 3, 100]) {
      const read = yield* readAllAfter(start, batchSize)
      expect(read).toEqual(expected)
    }
    // Reading after an append's position starts with the next append.
    expect(yield* readAllAfter(positions[1]!, 2)).toEqual(expected.slice(7))
    expect(yield* readAllAfter(positions[3]!)).toEqual([])
  })

const readsAsBatchesAreWritten = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const streamId = newStreamId("growing")
    yield* append(streamId, ExpectedVersion.noStream, events(3))
    const read = yield* store.readAll({ after: start, batchSize: 2 }).pipe(
      Stream.tap((recorded) =>
        recorded.version === 1
          ? append(streamId, ExpectedVersion.exact(3), events(2))
          : Effect.void
      ),
      Stream.runCollect
    )
    expect(Chunk.toReadonlyArray(read).map((recorded) => recorded.version)).toEqual([1, 2, 3, 4, 5])
  })

const readsByStreamIdInCodePointOrder = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const tag = crypto.randomUUID()
    // U+FFFF sorts before U+1F600 by code point, after it by UTF-16 code unit.
    const ids = [`${tag}-b`, `${tag}-\u{1F600}`, `${tag}-a`, `${tag}-\uffff`, `${tag}-B`]
    yield* store.appendMany(ids.map((streamId) => ({
      streamId,
      streamType: "thing",
      expectedVersion: ExpectedVersion.noStream,
      events: events(2)
    })))
    const read = (yield* readAllAfter(start)).filter((recorded) => recorded.streamId.startsWith(tag))
    expect(read.map((recorded) => [recorded.streamId.slice(tag.length + 1), recorded.version])).toEqual([
      ["B", 1],
      ["B", 2],
      ["a", 1],
      ["a", 2],
      ["b", 1],
      ["b", 2],
      ["\uffff", 1],
      ["\uffff", 2],
      ["\u{1F600}", 1],
      ["\u{1F600}", 2]
    ])
  })

const reportsTheHead = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    expect(yield* store.head).toEqual(start)
    expect(yield* store.countAfter(start)).toBe(0)
    const streamId = newStreamId("counted")
    const first = yield* append(streamId, ExpectedVersion.noStream, events(3))
    const second = yield* append(streamId, ExpectedVersion.exact(3), events(2))
    expect(yield* store.head).toEqual(second.position)
    expect(yield* store.countAfter(start)).toBe(5)
    expect(yield* store.countAfter(first.position)).toBe(2)
    expect(yield* store.countAfter(second.position)).toBe(0)
    const defect = yield* Effect.flip(Effect.sandbox(Stream.runDrain(store.subscribe({ pollInterval: 0 }))))
    expect(String(defect)).toContain("pollInterval")
  })

const pollsDuringWrites = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const tag = crypto.randomUUID()
    const writers = 6
    const appendsEach = 15
    const done = yield* Deferred.make<void>()
    const seen = yield* Ref.make<ReadonlyArray<Events.RecordedEvent>>([])

    // A reader that keeps its checkpoint, as a projection does, and polls until the writers
    // are done and one more read finds nothing new.
    const poll = (after: Position.Position): Effect.Effect<void, EventStore.ReadError> =>
      Effect.gen(function*() {
        const finished = yield* Deferred.isDone(done)
        const batch = yield* Stream.runCollect(store.readAll({ after, batchSize: 7 }))
        const read = Chunk.toReadonlyArray(batch)
        yield* Ref.update(seen, (all) => [...all, ...read])
        if (finished && read.length === 0) return
        yield* Effect.sleep("1 millis")
        return yield* poll(read.at(-1)?.position ?? after)
      })
    const reader = yield* Effect.fork(poll(start))

    const acknowledged = yield* Effect.all(
      Array.from({ length: writers }, (_, writer) =>
        Effect.forEach(
          Array.from({ length: appendsEach }, (_, n) => n),
          (n) =>
            store.appendMany([
              {
                streamId: `${tag}-w${writer}`,
                streamType: "thing",
                expectedVersion: ExpectedVersion.any,
                events: events(2)
              },
              {
                streamId: `${tag}-shared-${n % 3}`,
                streamType: "thing",
                expectedVersion: ExpectedVersion.any,
                events: [event("Shared", { writer, n })]
              }
            ])
        )),
      { concurrency: "unbounded" }
    )
    yield* Deferred.succeed(done, undefined)
    yield* Effect.fromFiber(reader)

    const ours = (yield* Ref.get(seen)).filter((recorded) => recorded.streamId.startsWith(tag))
    const key = (recorded: { readonly streamId: string; readonly version: number }) =>
      `${recorded.streamId}#${recorded.version}`
    const expected = acknowledged.flat().flatMap((results) => results.flatMap((result) => result.events))
    expect(ours.map(key).sort()).toEqual(expected.map(key).sort())
    // Positions never go back, and the three events of each append arrive together.
    for (let index = 1; index < ours.length; index++) {
      expect(Position.isAfter(ours[index - 1]!.position, ours[index]!.position)).toBe(false)
    }
    const groups = new Map<string, number>()
    for (const recorded of ours) {
      const position = Position.toString(recorded.position)
      groups.set(position, (groups.get(position) ?? 0) + 1)
    }
    expect([...groups.values()].every((size) => size === 3)).toBe(true)
    // Per stream, versions arrive in order.
    for (const streamId of new Set(ours.map((recorded) => recorded.streamId))) {
      const versions = ours.filter((recorded) => recorded.streamId === streamId).map((recorded) => recorded.version)
      expect(versions).toEqual(versions.map((_, index) => index + 1))
    }
  })
