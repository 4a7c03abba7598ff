/**
 * Other writers of the protocol's tables, on both SQL backends. One that follows the protocol
 * with `MAX(position) + 1` never shares a position with the library's appends, and retries by
 * event id still work around its rows. Rows that break the protocol (an event without a stream
 * row, an ordinal gap, a stream version behind or ahead of its events) make reads and appends
 * fail with errors that say so, never with results that contradict the rows, and `verify`
 * lists each of them.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import { CommandHandler, Decider, EventStore, ExpectedVersion, History } from "effect-eventsourcing"
import type { Backend } from "../support/backends.js"
import { backends } from "../support/backends.js"
import { live } from "../support/live.js"

const raw = (backend: Backend, text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.promise(() => backend.query(text, values))

/** A plain protocol writer: one event at the next version and at `MAX(position) + 1`. */
const plainAppend = (backend: Backend, streamId: string, version: number) => {
  const p = backend.placeholder
  return Effect.gen(function*() {
    yield* raw(backend, `UPDATE ${backend.table("entities")} SET version = ${p(1)} WHERE id = ${p(2)}`, [
      version,
      streamId
    ])
    yield* raw(
      backend,
      `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, ordinal, position)
      SELECT ${p(1)}, 'Plain', '{}', 'plain', ${p(2)}, COALESCE(MAX(position), 0) + 1 FROM ${backend.table("events")}`,
      [streamId, version]
    )
    const rows = yield* raw(
      backend,
      `SELECT position FROM ${backend.table("events")} WHERE entity_id = ${p(1)} AND ordinal = ${p(2)}`,
      [streamId, version]
    )
    return BigInt(rows[0]!.position as string | number)
  })
}

/** Writes a stream's row and its events' ordinals exactly as given, at fresh positions. */
const brokenStream = (
  backend: Backend,
  streamId: string,
  version: number | undefined,
  ordinals: ReadonlyArray<number>
) => {
  const p = backend.placeholder
  return Effect.gen(function*() {
    if (version !== undefined) {
      yield* raw(
        backend,
        `INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'thing', ${p(2)})`,
        [
          streamId,
          version
        ]
      )
    }
    for (const ordinal of ordinals) {
      yield* raw(
        backend,
        `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, ordinal, position)
        SELECT ${p(1)}, 'Plain', '{}', 'plain', ${p(2)}, COALESCE(MAX(position), 0) + 1 FROM ${
          backend.table("events")
        }`,
        [streamId, ordinal]
      )
    }
  })
}

const readStream = (streamId: string, options?: EventStore.ReadStreamOptions) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.either(Stream.runCollect(store.readStream(streamId, options)).pipe(Effect.map(Chunk.toReadonlyArray)))
  )

/** What a read gave before it ended, and how it ended. */
const readStreamPartly = (streamId: string, options?: EventStore.ReadStreamOptions) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.gen(function*() {
      const versions: Array<number> = []
      const ended = yield* Effect.either(
        Stream.runForEach(
          store.readStream(streamId, options),
          (event) => Effect.sync(() => versions.push(event.version))
        )
      )
      return { versions, ended }
    }))

const appendOne = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.either(
        store.append({ streamId, streamType: "thing", expectedVersion, events: [{ type: "New", data: {} }] })
      )
  )

/** Streams of "thing", counted: what loading them (a page at a time) gives. */
const counted = Decider.make({
  streamType: "thing",
  events: Schema.TaggedStruct("New", {}),
  initialState: 0,
  decide: () => [],
  evolve: (count: number) => count + 1
})
const things = CommandHandler.make(counted, { cache: false })

const failure = <A>(result: Either.Either<A, { readonly _tag: string; readonly message: string }>) =>
  Either.isLeft(result) ? { tag: result.left._tag, message: result.left.message } : { tag: "success", message: "" }

for (const backend of backends("plainwriters")) {
  describe.skipIf(backend.skip)(`${backend.name} with other writers of the protocol`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)

      it.effect("a writer that numbers positions MAX + 1 never shares one with the store, and retries still work", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `shared-${crypto.randomUUID()}`
          const first = yield* store.append({
            streamId,
            streamType: "thing",
            expectedVersion: ExpectedVersion.noStream,
            events: [{ type: "First", data: {}, id: `${streamId}-1` }]
          })
          const plain = yield* plainAppend(backend, streamId, 2)
          expect(plain).toBeGreaterThan(first.position.sequence)
          const request = {
            streamId,
            streamType: "thing",
            expectedVersion: ExpectedVersion.exact(2),
            events: [{ type: "Third", data: {}, id: `${streamId}-3` }]
          }
          const third = yield* store.append(request)
          expect(third.position.sequence).not.toBe(plain)
          expect(third.position.sequence).toBeGreaterThan(plain)
          // The same append again is a retry: the original result, nothing stored.
          expect(yield* store.append(request)).toEqual(third)
          expect(yield* store.streamVersion(streamId)).toBe(3)
          const report = yield* store.verify()
          expect(report.violations.filter((violation) => "streamId" in violation && violation.streamId === streamId))
            .toEqual([])
        }))

      it.effect("an event whose stream has no row fails every read and the appends to its stream", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `orphan-${crypto.randomUUID()}`
          const before = yield* store.head
          const kept = yield* store.append({
            streamId: `before-${streamId}`,
            streamType: "thing",
            expectedVersion: ExpectedVersion.noStream,
            events: [{ type: "Kept", data: {} }]
          })
          yield* brokenStream(backend, streamId, undefined, [1])

          for (const batchSize of [1, 2, 500]) {
            const seen: Array<string> = []
            const ended = yield* Effect.either(
              Stream.runForEach(
                store.readAll({ after: before, batchSize }),
                (event) => Effect.sync(() => seen.push(event.streamId))
              )
            )
            expect(seen).toContain(kept.streamId)
            expect(failure(ended)).toMatchObject({ tag: "EventDecodeError" })
            expect(failure(ended).message).toContain("no row in the entities table")
          }
          expect(failure(yield* readStream(streamId)).tag).toBe("EventDecodeError")
          const refused = failure(yield* appendOne(streamId, ExpectedVersion.noStream))
          expect(refused.tag).toBe("EventStoreError")
          expect(refused.message).toContain("beyond the version")
          expect(failure(yield* appendOne(streamId, ExpectedVersion.any)).tag).toBe("EventStoreError")

          const report = yield* store.verify()
          expect(report.violations).toContainEqual(
            expect.objectContaining({ _tag: "EventWithoutStream", streamId, version: 1 })
          )
        }))

      it.effect("an ordinal gap ends reads at the missing version, and appends never number among it", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `gap-${crypto.randomUUID()}`
          yield* brokenStream(backend, streamId, 1, [7])
          const forward = yield* readStreamPartly(streamId)
          expect(forward.versions).toEqual([])
          expect(failure(forward.ended).message).toContain("version 1")
          expect(failure(yield* readStream(streamId, { direction: "backward" })).tag).toBe("EventDecodeError")
          expect(failure(yield* appendOne(streamId, ExpectedVersion.any)).tag).toBe("EventStoreError")
          expect(failure(yield* appendOne(streamId, ExpectedVersion.exact(1))).tag).toBe("EventStoreError")
          expect(yield* store.streamVersion(streamId)).toBe(1)

          const gapped = `gap-${crypto.randomUUID()}`
          yield* brokenStream(backend, gapped, 3, [1, 3])
          const partly = yield* readStreamPartly(gapped)
          expect(partly.versions).toEqual([1])
          expect(failure(partly.ended).message).toContain("Cannot read version 2")

          const violations = (yield* store.verify()).violations
          expect(violations).toContainEqual({ _tag: "VersionGap", streamId, events: 1, lastVersion: 7 })
          expect(violations).toContainEqual({ _tag: "StaleVersion", streamId, version: 1, lastVersion: 7 })
          expect(violations).toContainEqual({ _tag: "VersionGap", streamId: gapped, events: 2, lastVersion: 3 })
        }))

      it.effect("a stream version behind its events or ahead of them is reported, not contradicted", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const behind = `behind-${crypto.randomUUID()}`
          yield* brokenStream(backend, behind, 1, [1, 2])
          const read = yield* readStreamPartly(behind)
          expect(read.versions).toEqual([1])
          expect(failure(read.ended).message).toContain("beyond its stream's version")
          const refused = failure(yield* appendOne(behind, ExpectedVersion.exact(1)))
          expect(refused.tag).toBe("EventStoreError")
          expect(refused.message).not.toContain("expected version 1, found version 1")
          expect(yield* store.streamVersion(behind)).toBe(1)

          const ahead = `ahead-${crypto.randomUUID()}`
          yield* brokenStream(backend, ahead, 3, [1])
          const short = yield* readStreamPartly(ahead)
          expect(short.versions).toEqual([1])
          expect(failure(short.ended).message).toContain("says version 3")
          const empty = `empty-${crypto.randomUUID()}`
          yield* brokenStream(backend, empty, 2, [])
          expect(failure(yield* readStream(empty)).tag).toBe("EventDecodeError")
          expect(failure(yield* readStream(empty, { direction: "backward" })).tag).toBe("EventDecodeError")

          const violations = (yield* store.verify()).violations
          expect(violations).toContainEqual({ _tag: "StaleVersion", streamId: behind, version: 1, lastVersion: 2 })
          expect(violations).toContainEqual({ _tag: "StaleVersion", streamId: ahead, version: 3, lastVersion: 1 })
          expect(violations).toContainEqual({ _tag: "StaleVersion", streamId: empty, version: 2, lastVersion: 0 })
        }))

      it.effect("a load that ends on the last event of a page still checks the stream's row", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const p = backend.placeholder
          // As many events as a load's page holds (500): the load learns from its one extra row
          // whether the stream goes on, instead of reading an empty page.
          const fullPage = (streamId: string) =>
            store.append({
              streamId,
              streamType: "thing",
              expectedVersion: ExpectedVersion.noStream,
              events: Array.from({ length: 500 }, () => ({ type: "New", data: {} }))
            })
          const whole = `page-${crypto.randomUUID()}`
          yield* fullPage(whole)
          expect(yield* things.load(whole)).toMatchObject({ state: 500, version: 500 })

          const ahead = `page-ahead-${crypto.randomUUID()}`
          yield* fullPage(ahead)
          yield* raw(backend, `UPDATE ${backend.table("entities")} SET version = 501 WHERE id = ${p(1)}`, [ahead])
          const short = yield* Effect.either(things.load(ahead))
          expect(failure(short).tag).toBe("EventDecodeError")
          expect(failure(short).message).toContain("says version 501")

          const behind = `page-behind-${crypto.randomUUID()}`
          yield* fullPage(behind)
          yield* brokenStream(backend, behind, undefined, [501])
          const beyond = yield* Effect.either(things.load(behind))
          expect(failure(beyond).tag).toBe("EventDecodeError")
          expect(failure(beyond).message).toContain("beyond its stream's version")

          // A load that stops at a version reads no further: what lies past it is not its concern.
          const stored = `page-stored-${crypto.randomUUID()}`
          yield* fullPage(stored)
          yield* raw(backend, `UPDATE ${backend.table("entities")} SET version = 600 WHERE id = ${p(1)}`, [stored])
          expect(yield* History.stateAt(counted)(stored, { version: 500 })).toMatchObject({ state: 500, version: 500 })
          expect(failure(yield* Effect.either(History.stateAt(counted)(stored, { version: 501 }))).message)
            .toContain("says version 600")
        }))
    })
  })
}
