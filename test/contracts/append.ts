/**
 * The append contract: what an append records, the expected versions it enforces, appends to
 * several streams at once, what it refuses, and concurrent writers.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Ref } from "effect"
import { Errors, Events, EventStore, ExpectedVersion, Metadata, Position } from "effect-eventsourcing"
import type { ContractBackend, Tester } from "./backend.js"
import { liveTester } from "./backend.js"
import {
  append,
  currentPosition,
  event,
  events,
  makeBarrier,
  newStreamId,
  readAllAfter,
  readStream
} from "./support.js"

export const appendContract = <R>(backend: ContractBackend<R>) =>
  layer(backend.open("append").layer)("Append contract", (methods) => {
    const it = liveTester(methods)
    recording(it)
    expectedVersions(it)
    severalStreams(it)
    refusals(it)
    concurrentWriters(it)
  })

const recording = (it: Tester<EventStore.EventStore>) =>
  describe("what an append records", () => {
    it.effect("appends to a new stream and records every fact of each event", appendsToANewStream)
    it.effect("checks an empty append without storing anything", checksAnEmptyAppend)
    it.effect("records the actor and metadata of the context, under each event's own", recordsTheContext)
    it.effect("records the schema version of each event's data, 1 unless given", recordsSchemaVersions)
    it.effect("keeps stream ids and data verbatim, whatever characters they hold", keepsCharactersVerbatim)
    it.effect("stores an append of many events, and many streams in one append", storesLargeAppends)
  })

const expectedVersions = (it: Tester<EventStore.EventStore>) =>
  describe("expected versions and stream types", () => {
    it.effect("enforces every expected-version variant and stores nothing when one fails", enforcesExpectedVersions)
    it.effect("refuses expected versions beyond the largest a stream can have", refusesHugeExpectedVersions)
    it.effect("refuses to append to a stream of another type, in one or several streams", refusesAnotherStreamType)
  })

const severalStreams = (it: Tester<EventStore.EventStore>) =>
  describe("several streams in one append", () => {
    it.effect("appends to several streams atomically, at one position", appendsAtomically)
    it.effect("names every stream whose expectation failed in a conflict of several streams", namesEveryConflict)
    it.effect("leaves no trace of a stream that a failed append would have created", leavesNoTraceOfAFailedCreation)
  })

const refusals = (it: Tester<EventStore.EventStore>) =>
  describe("what an append refuses", () => {
    it.effect("stores nothing of an append with one malformed event", refusesAMalformedEvent)
    it.effect(
      "refuses what untyped callers may pass instead of an append, with InvalidAppendError",
      refusesUntypedRequests
    )
    it.effect(
      "refuses strings that are not well-formed Unicode, so that no two ids name one stream",
      refusesIllFormedUnicode
    )
    it.effect("refuses NUL in names on every backend alike, and keeps it in data", refusesNulInNames)
    it.effect(
      "stores data nested up to the depth limit, and refuses deeper with InvalidAppendError",
      limitsNestingDepth
    )
    it.effect("refuses data and metadata that JSON would change, storing nothing", refusesWhatJsonWouldChange)
  })

const concurrentWriters = (it: Tester<EventStore.EventStore>) =>
  describe("concurrent writers", () => {
    it.effect("lets exactly one of many concurrent writers win each version", oneWriterWinsEachVersion)
    it.effect(
      "loses and duplicates nothing when writers loop on one hot stream and many others",
      losesNothingOnAHotStream
    )
    it.effect(
      "lets concurrent writers all append with any or stream-exists, and one create a stream",
      concurrentAnyAndCreate
    )
    it.effect("appends many streams from concurrent writers in opposite orders without failing", oppositeOrders)
  })

// What an append records.

const appendsToANewStream = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("new")
    const before = Date.now()
    const result = yield* append(streamId, ExpectedVersion.noStream, [
      event("Opened", { owner: "ada", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } }),
      { type: "Renamed", data: { to: "b" }, id: "custom-id", metadata: { correlationId: "c-1", source: "test" } }
    ])
    const after = Date.now()
    expect(result.streamId).toBe(streamId)
    expect(result.version).toBe(2)
    expect(result.events.map((recorded) => recorded.version)).toEqual([1, 2])
    expect(result.events.every((recorded) => Position.equals(recorded.position, result.position))).toBe(true)

    const stored = yield* readStream(streamId)
    expect(stored).toEqual(result.events)
    const [opened, renamed] = stored
    expect(opened).toMatchObject({
      streamId,
      streamType: "thing",
      version: 1,
      type: "Opened",
      data: { owner: "ada", tags: ["a", "b"], nested: { n: 1.5, ok: true, none: null } },
      actor: Metadata.defaultActor
    })
    expect(opened!.metadata).toEqual({})
    expect(renamed).toMatchObject({
      id: "custom-id",
      version: 2,
      type: "Renamed",
      data: { to: "b" },
      metadata: { correlationId: "c-1", source: "test" }
    })
    expect(opened!.id).not.toBe(renamed!.id)
    expect(opened!.id.length).toBeGreaterThan(0)
    // The protocol keeps timestamps as days since the epoch to 7 decimals (about 9 ms).
    expect(opened!.timestamp.getTime()).toBeGreaterThanOrEqual(before - 20)
    expect(opened!.timestamp.getTime()).toBeLessThanOrEqual(after + 20)
    expect(yield* Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion(streamId))).toBe(2)
  })

const checksAnEmptyAppend = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("empty")
    const nothing = yield* append(streamId, ExpectedVersion.noStream, [])
    expect(nothing).toEqual({ streamId, version: 0, position: Position.start, events: [] })
    expect(yield* store.streamVersion(streamId)).toBe(0)

    const written = yield* append(streamId, ExpectedVersion.noStream, events(2))
    const checked = yield* append(streamId, ExpectedVersion.exact(2), [])
    expect(checked).toEqual({ streamId, version: 2, position: written.position, events: [] })
    const stale = yield* Effect.flip(append(streamId, ExpectedVersion.exact(1), []))
    expect(stale).toMatchObject({ _tag: "ConcurrencyError", actualVersion: 2 })
    const mismatch = yield* Effect.flip(append(streamId, ExpectedVersion.any, [], "other"))
    expect(mismatch).toBeInstanceOf(Errors.StreamTypeMismatchError)
    expect(yield* store.streamVersion(streamId)).toBe(2)
  })

const recordsTheContext = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("audited")
    yield* append(streamId, ExpectedVersion.noStream, [
      event("Plain"),
      { type: "Own", data: {}, actor: "importer", metadata: { causationId: "event-7", batch: 3 } }
    ]).pipe(
      Metadata.withActor("user:42"),
      Metadata.withCorrelationId("request-1"),
      Metadata.withCausationId("command-9"),
      Metadata.withEntries({ tenant: "acme" })
    )
    const [plain, own] = yield* readStream(streamId)
    expect(plain).toMatchObject({
      actor: "user:42",
      metadata: { correlationId: "request-1", causationId: "command-9", tenant: "acme" }
    })
    expect(own).toMatchObject({
      actor: "importer",
      metadata: { correlationId: "request-1", causationId: "event-7", tenant: "acme", batch: 3 }
    })
  })

const recordsSchemaVersions = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("versions")
    const result = yield* append(streamId, ExpectedVersion.noStream, [
      event("Plain"),
      { type: "Evolved", data: {}, schemaVersion: 3 },
      { type: "Evolved", data: {}, schemaVersion: 2 }
    ])
    expect(result.events.map((recorded) => recorded.schemaVersion)).toEqual([1, 3, 2])
    expect((yield* readStream(streamId)).map((recorded) => recorded.schemaVersion)).toEqual([1, 3, 2])
    const all = yield* readAllAfter(Position.start)
    expect(all.filter((recorded) => recorded.streamId === streamId).map((recorded) => recorded.schemaVersion))
      .toEqual([1, 3, 2])
    for (const schemaVersion of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      const refused = yield* Effect.flip(
        append(newStreamId("bad-version"), ExpectedVersion.noStream, [{ type: "Evolved", data: {}, schemaVersion }])
      )
      expect(refused).toBeInstanceOf(Errors.InvalidAppendError)
      expect(refused.message).toContain("schema version")
    }
  })

const keepsCharactersVerbatim = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const ids = [
      `quote's "double" ${crypto.randomUUID()}`,
      `unicode ünïcødé 🛒 ${crypto.randomUUID()}`,
      `sql'); DROP TABLE events; -- ${crypto.randomUUID()}`
    ]
    for (const streamId of ids) {
      yield* append(streamId, ExpectedVersion.noStream, [
        event("Odd", { text: streamId, "key with 'quote'": "\u0000?" })
      ])
      const [stored] = yield* readStream(streamId)
      expect(stored).toMatchObject({ streamId, data: { text: streamId, "key with 'quote'": "\u0000?" } })
      expect(yield* store.streamVersion(streamId)).toBe(1)
    }
  })

const storesLargeAppends = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const big = newStreamId("big")
    const count = 10_000
    const result = yield* append(big, ExpectedVersion.noStream, events(count, "Bulk"))
    expect(result.version).toBe(count)
    const stored = yield* readStream(big)
    expect(stored).toHaveLength(count)
    expect(stored.at(-1)).toMatchObject({ version: count, data: { index: count - 1 } })

    const tag = newStreamId("wide")
    const wide = yield* store.appendMany(Array.from({ length: 300 }, (_, index) => ({
      streamId: `${tag}-${index}`,
      streamType: "thing",
      expectedVersion: ExpectedVersion.noStream,
      events: events(2)
    })))
    expect(wide.every((stream) => stream.version === 2)).toBe(true)
    const all = yield* readAllAfter(start, 1_000)
    expect(all).toHaveLength(count + 600)
  })

// Expected versions and stream types.

const enforcesExpectedVersions = () =>
  Effect.gen(function*() {
    const fresh = newStreamId("fresh")
    const existing = newStreamId("existing")
    yield* append(existing, ExpectedVersion.noStream, events(3))

    const conflict = (
      streamId: string,
      expectedVersion: ExpectedVersion.ExpectedVersion,
      actualVersion: number
    ) =>
      Effect.gen(function*() {
        const before = yield* readStream(streamId)
        const error = yield* Effect.flip(append(streamId, expectedVersion, events(2)))
        expect(error).toBeInstanceOf(Errors.ConcurrencyError)
        expect(error).toMatchObject({ _tag: "ConcurrencyError", streamId, expectedVersion, actualVersion })
        expect(error.message).toContain(streamId)
        expect(yield* readStream(streamId)).toEqual(before)
      })

    // Failing variants, on a stream that does not exist and on one at version 3.
    yield* conflict(fresh, ExpectedVersion.streamExists, 0)
    yield* conflict(fresh, ExpectedVersion.exact(1), 0)
    yield* conflict(existing, ExpectedVersion.noStream, 3)
    yield* conflict(existing, ExpectedVersion.exact(0), 3)
    yield* conflict(existing, ExpectedVersion.exact(2), 3)
    yield* conflict(existing, ExpectedVersion.exact(4), 3)
    expect(yield* readStream(fresh)).toEqual([])

    // Succeeding variants.
    expect((yield* append(existing, ExpectedVersion.exact(3), events(1))).version).toBe(4)
    expect((yield* append(existing, ExpectedVersion.streamExists, events(1))).version).toBe(5)
    expect((yield* append(existing, ExpectedVersion.any, events(2))).version).toBe(7)
    expect((yield* append(fresh, ExpectedVersion.exact(0), events(1))).version).toBe(1)
    const anyOnNew = newStreamId("any")
    expect((yield* append(anyOnNew, ExpectedVersion.any, events(2))).version).toBe(2)
    const noStreamOnNew = newStreamId("no-stream")
    expect((yield* append(noStreamOnNew, ExpectedVersion.noStream, events(1))).version).toBe(1)

    const versions = (yield* readStream(existing)).map((recorded) => recorded.version)
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

const refusesHugeExpectedVersions = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("huge")
    yield* append(streamId, ExpectedVersion.noStream, [event("A")])
    for (const expectedVersion of [2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const error = yield* Effect.flip(append(streamId, ExpectedVersion.exact(expectedVersion), [event("B")]))
      expect(error).toBeInstanceOf(Errors.InvalidAppendError)
    }
    const largest = yield* Effect.flip(
      append(streamId, ExpectedVersion.exact(ExpectedVersion.maxVersion), [event("B")])
    )
    expect(largest).toBeInstanceOf(Errors.ConcurrencyError)
    expect(yield* store.streamVersion(streamId)).toBe(1)
  })

const refusesAnotherStreamType = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("typed")
    const other = newStreamId("other")
    yield* append(streamId, ExpectedVersion.noStream, events(1), "cart")

    const error = yield* Effect.flip(append(streamId, ExpectedVersion.any, events(1), "order"))
    expect(error).toBeInstanceOf(Errors.StreamTypeMismatchError)
    expect(error).toMatchObject({ streamId, expectedType: "order", actualType: "cart" })

    const many = yield* Effect.flip(
      store.appendMany([
        { streamId: other, streamType: "order", expectedVersion: ExpectedVersion.noStream, events: events(1) },
        { streamId, streamType: "order", expectedVersion: ExpectedVersion.any, events: events(1) }
      ])
    )
    expect(many).toBeInstanceOf(Errors.StreamTypeMismatchError)
    expect(yield* store.streamVersion(streamId)).toBe(1)
    expect(yield* store.streamVersion(other)).toBe(0)
  })

// Several streams in one append.

const appendsAtomically = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const start = yield* currentPosition
    const order = newStreamId("order")
    const stock = newStreamId("stock")
    yield* append(stock, ExpectedVersion.noStream, events(1), "stock")

    const results = yield* store.appendMany([
      { streamId: order, streamType: "order", expectedVersion: ExpectedVersion.noStream, events: events(2) },
      { streamId: stock, streamType: "stock", expectedVersion: ExpectedVersion.exact(1), events: events(1) }
    ])
    expect(results.map((result) => [result.streamId, result.version])).toEqual([[order, 2], [stock, 2]])
    expect(Position.equals(results[0]!.position, results[1]!.position)).toBe(true)

    // One stale expectation fails the whole append.
    const failed = yield* Effect.flip(
      store.appendMany([
        { streamId: order, streamType: "order", expectedVersion: ExpectedVersion.exact(2), events: events(1) },
        { streamId: stock, streamType: "stock", expectedVersion: ExpectedVersion.exact(1), events: events(1) }
      ])
    )
    expect(failed).toMatchObject({ _tag: "ConcurrencyError", streamId: stock, actualVersion: 2 })
    expect(yield* store.streamVersion(order)).toBe(2)
    expect(yield* store.streamVersion(stock)).toBe(2)

    const published = (yield* readAllAfter(start)).filter((recorded) =>
      recorded.streamId === order || recorded.streamId === stock
    )
    expect(published.map((recorded) => [recorded.streamId, recorded.version])).toEqual([
      [stock, 1],
      [order, 1],
      [order, 2],
      [stock, 2]
    ])
  })

const namesEveryConflict = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const [a, b, c] = [newStreamId("conflict-a"), newStreamId("conflict-b"), newStreamId("conflict-c")]
    yield* append(a, ExpectedVersion.noStream, [event("A")])
    yield* append(c, ExpectedVersion.noStream, [event("C"), event("C")])
    const request = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion) => ({
      streamId,
      streamType: "thing",
      expectedVersion,
      events: [event("More")]
    })
    const error = yield* Effect.flip(
      store.appendMany([request(a, ExpectedVersion.noStream), request(b, ExpectedVersion.any), request(c, 1)])
    )
    expect(error).toBeInstanceOf(Errors.ConcurrencyError)
    expect(error).toMatchObject({
      streamId: a,
      expectedVersion: "no-stream",
      actualVersion: 1,
      others: [{ streamId: c, expectedVersion: 1, actualVersion: 2 }]
    })
    expect(error.message).toContain(c)
    expect(yield* store.streamVersion(b)).toBe(0)
  })

const leavesNoTraceOfAFailedCreation = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const [created, existing] = [newStreamId("would-create"), newStreamId("existing")]
    yield* append(existing, ExpectedVersion.noStream, events(1))
    const error = yield* Effect.flip(
      store.appendMany([
        { streamId: created, streamType: "first", expectedVersion: ExpectedVersion.noStream, events: events(1) },
        { streamId: existing, streamType: "thing", expectedVersion: ExpectedVersion.noStream, events: events(1) }
      ])
    )
    expect(error).toBeInstanceOf(Errors.ConcurrencyError)
    expect(yield* store.streamVersion(created)).toBe(0)
    // Nothing remembers the type the failed append gave the stream.
    const later = yield* append(created, ExpectedVersion.noStream, events(1), "second")
    expect(later.events[0]!.streamType).toBe("second")
  })

// What an append refuses.

const refusesAMalformedEvent = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("malformed")
    const other = newStreamId("malformed-other")
    const invalid = (requests: ReadonlyArray<EventStore.AppendRequest>) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(store.appendMany(requests))
        expect(error).toBeInstanceOf(Errors.InvalidAppendError)
        expect(yield* store.streamVersion(streamId)).toBe(0)
        expect(yield* store.streamVersion(other)).toBe(0)
        return error
      })
    const request = (newEvents: ReadonlyArray<Events.NewEvent>, id = streamId): EventStore.AppendRequest => ({
      streamId: id,
      streamType: "thing",
      expectedVersion: ExpectedVersion.any,
      events: newEvents
    })

    const bigint = yield* invalid([request([event("Ok"), event("Ok"), event("Bad", { amount: 1n })])])
    expect(bigint.message).toContain("event 3")
    yield* invalid([request([{ type: "Ok", data: undefined }])])
    yield* invalid([request([event("")])])
    yield* invalid([request([{ type: "Ok", data: {}, id: "same" }, { type: "Ok", data: {}, id: "same" }])])
    yield* invalid([request([{ type: "Ok", data: {}, metadata: { at: 1n } }])])
    yield* invalid([request(events(1), other), request([event("Bad", { amount: 1n })])])
    yield* invalid([request(events(1)), request(events(1))])
    yield* invalid([request(events(1), "")])
    yield* invalid([{ ...request(events(1)), streamType: "" }])
    yield* invalid([{ ...request(events(1)), expectedVersion: -1 }])
    yield* invalid([{ ...request(events(1)), expectedVersion: 1.5 }])
  })

const refusesUntypedRequests = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("untyped")
    const refused = (requests: unknown) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(store.appendMany(requests as ReadonlyArray<EventStore.AppendRequest>))
        expect(exit).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "InvalidAppendError" } } })
      })
    const request = { streamId, streamType: "thing", expectedVersion: ExpectedVersion.any }
    yield* refused([{ ...request, events: { type: "NotAnArray" } }])
    yield* refused([{ ...request, events: "events" }])
    yield* refused([{ ...request, events: undefined }])
    yield* refused([{ ...request, events: [null] }])
    yield* refused([{ ...request, events: ["Happened"] }])
    yield* refused([{ ...request, events: [{ type: 7, data: {} }] }])
    yield* refused([{ ...request, events: [{ type: "Ok", data: {}, metadata: "m" }] }])
    yield* refused([{ ...request, events: [{ type: "Ok", data: {}, schemaVersion: "2" }] }])
    yield* refused([{ ...request, streamId: 42, events: [] }])
    yield* refused([null])
    yield* refused("not an array")
    const single = yield* Effect.exit(store.append({ ...request, events: 5 } as unknown as EventStore.AppendRequest))
    expect(single).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "InvalidAppendError" } } })
    expect(yield* store.streamVersion(streamId)).toBe(0)
  })

const refusesIllFormedUnicode = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const lone = "\uD800"
    const replaced = newStreamId("\uFFFD")
    yield* append(replaced, ExpectedVersion.noStream, [event("Replacement")])
    const base = newStreamId("lone")
    const cases: ReadonlyArray<EventStore.AppendRequest> = [
      {
        streamId: `${replaced.replace("\uFFFD", lone)}`,
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [event("A")]
      },
      { streamId: base, streamType: `thing${lone}`, expectedVersion: ExpectedVersion.noStream, events: [event("A")] },
      { streamId: base, streamType: "thing", expectedVersion: ExpectedVersion.noStream, events: [event(`A${lone}`)] },
      {
        streamId: base,
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ ...event("A"), actor: `ada${lone}` }]
      },
      {
        streamId: base,
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ ...event("A"), id: `id${lone}` }]
      }
    ]
    for (const request of cases) {
      const error = yield* Effect.flip(store.append(request))
      expect(error).toBeInstanceOf(Errors.InvalidAppendError)
      expect(error.message).toContain("well-formed Unicode")
    }
    const actor = yield* Effect.flip(
      store.append({ streamId: base, streamType: "thing", expectedVersion: ExpectedVersion.any, events: [event("A")] })
        .pipe(
          Metadata.withActor(`ada${lone}`)
        )
    )
    expect(actor).toBeInstanceOf(Errors.InvalidAppendError)
    // A read of an id no stream can have finds nothing, not the stream the database would confuse it with.
    expect(yield* readStream(replaced.replace("\uFFFD", lone))).toEqual([])
    expect(yield* store.streamVersion(replaced.replace("\uFFFD", lone))).toBe(0)
    expect(yield* store.streamVersion(base)).toBe(0)
    // A pair of surrogates is one character, and lone surrogates in data are escaped by JSON.
    const pair = newStreamId("pair \uD83D\uDED2")
    yield* append(pair, ExpectedVersion.noStream, [event("Odd", { text: lone })])
    expect((yield* readStream(pair))[0]).toMatchObject({ streamId: pair, data: { text: lone } })
  })

/**
 * NUL in a name: PostgreSQL's text cannot hold it and SQLite's can, so every backend refuses it
 * alike, and a read of such an id finds nothing. In data and metadata JSON escapes it.
 */
const refusesNulInNames = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const base = newStreamId("nul")
    const request = { streamId: base, streamType: "thing", expectedVersion: ExpectedVersion.noStream }
    const cases: ReadonlyArray<EventStore.AppendRequest> = [
      { ...request, streamId: `${base}\u0000`, events: [event("A")] },
      { ...request, streamType: "thing\u0000", events: [event("A")] },
      { ...request, events: [event("A\u0000")] },
      { ...request, events: [{ ...event("A"), actor: "ada\u0000" }] },
      { ...request, events: [{ ...event("A"), id: "id\u0000" }] }
    ]
    for (const append of cases) {
      const error = yield* Effect.flip(store.append(append))
      expect(error).toBeInstanceOf(Errors.InvalidAppendError)
      expect(error.message).toContain("NUL")
    }
    expect(yield* readStream(`${base}\u0000`)).toEqual([])
    expect(yield* store.streamVersion(`${base}\u0000`)).toBe(0)
    yield* append(base, ExpectedVersion.noStream, [{
      ...event("Noted", { text: "a\u0000b" }),
      metadata: { note: "\u0000" }
    }])
    expect((yield* readStream(base))[0]).toMatchObject({ data: { text: "a\u0000b" }, metadata: { note: "\u0000" } })
  })

const limitsNestingDepth = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    /** A value `depth` objects deep; its JSON text is the check of what was read back. */
    const nested = (depth: number) => {
      let value: unknown = { leaf: true }
      for (let level = 1; level < depth; level++) value = { level: value }
      return value
    }
    const streamId = newStreamId("deep")
    const deepest = nested(Events.maxDepth)
    yield* append(streamId, ExpectedVersion.noStream, [event("Deep", deepest)])
    expect(JSON.stringify((yield* readStream(streamId))[0]!.data)).toBe(JSON.stringify(deepest))
    for (const depth of [Events.maxDepth + 1, 3_000, 200_000]) {
      const data = yield* Effect.flip(append(streamId, ExpectedVersion.any, [event("Deeper", nested(depth))]))
      expect(data).toBeInstanceOf(Errors.InvalidAppendError)
      const metadata = yield* Effect.flip(
        append(streamId, ExpectedVersion.any, [{ type: "Deeper", data: {}, metadata: { deep: nested(depth) } }])
      )
      expect(metadata).toBeInstanceOf(Errors.InvalidAppendError)
    }
    // eslint-disable-next-line no-sparse-arrays -- the hole is what the store must refuse
    const array = yield* Effect.flip(append(streamId, ExpectedVersion.any, [event("Holes", { list: [1, , 3] })]))
    expect(array).toBeInstanceOf(Errors.InvalidAppendError)
    expect(yield* store.streamVersion(streamId)).toBe(1)
  })

const refusesWhatJsonWouldChange = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("unjson")
    class Money {
      constructor(readonly amount: number) {}
    }
    for (
      const data of [
        { n: Number.NaN },
        { n: Infinity },
        { at: new Date(0) },
        { map: new Map() },
        { money: new Money(1) },
        { list: [1, undefined] },
        { f: () => 1 },
        undefined
      ]
    ) {
      const error = yield* Effect.flip(append(streamId, ExpectedVersion.any, [{ type: "Odd", data }]))
      expect(error).toBeInstanceOf(Errors.InvalidAppendError)
    }
    expect(yield* store.streamVersion(streamId)).toBe(0)
    // A property whose value is undefined is left out, as JSON leaves it out.
    yield* append(streamId, ExpectedVersion.any, [{ type: "Sparse", data: { kept: 1, dropped: undefined } }])
    expect((yield* readStream(streamId))[0]!.data).toEqual({ kept: 1 })
  })

// Concurrent writers.

const oneWriterWinsEachVersion = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("race")
    const writers = 12
    const rounds = 8
    for (let round = 0; round < rounds; round++) {
      const barrier = yield* makeBarrier(writers)
      const outcomes = yield* Effect.all(
        Array.from({ length: writers }, (_, writer) =>
          Effect.gen(function*() {
            const version = yield* store.streamVersion(streamId)
            // Every writer has read the same version before any of them appends.
            yield* barrier
            return yield* Effect.either(
              store.append({
                streamId,
                streamType: "thing",
                expectedVersion: ExpectedVersion.exact(version),
                events: [event("Won", { round, writer }), event("Celebrated", { round, writer })]
              })
            )
          })),
        { concurrency: "unbounded" }
      )
      const winners = outcomes.filter(Either.isRight)
      const losers = outcomes.filter(Either.isLeft).map((outcome) => outcome.left)
      expect(winners).toHaveLength(1)
      expect(winners[0]!.right.version).toBe((round + 1) * 2)
      expect(losers).toHaveLength(writers - 1)
      for (const loser of losers) {
        expect(loser).toBeInstanceOf(Errors.ConcurrencyError)
        expect(loser).toMatchObject({ expectedVersion: round * 2, actualVersion: (round + 1) * 2 })
      }
    }
    const stored = yield* readStream(streamId)
    expect(stored.map((recorded) => recorded.version)).toEqual(
      Array.from({ length: rounds * 2 }, (_, index) => index + 1)
    )
    // Both events of each round come from the same (winning) writer.
    for (let round = 0; round < rounds; round++) {
      const [won, celebrated] = [stored[round * 2]!, stored[round * 2 + 1]!]
      expect(won.type).toBe("Won")
      expect(celebrated.type).toBe("Celebrated")
      expect(celebrated.data).toEqual(won.data)
      expect(won.data).toMatchObject({ round })
    }
  })

const losesNothingOnAHotStream = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const hot = newStreamId("hot")
    const start = yield* currentPosition
    const writers = 8
    const appendsEach = 25
    const conflicts = yield* Ref.make(0)
    const acknowledged = yield* Ref.make<ReadonlyArray<{ streamId: string; version: number }>>([])

    const writeHot = (writer: number, sequence: number): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        const version = yield* store.streamVersion(hot)
        yield* Effect.yieldNow()
        const outcome = yield* Effect.either(
          store.append({
            streamId: hot,
            streamType: "thing",
            expectedVersion: ExpectedVersion.exact(version),
            events: [event("Wrote", { writer, sequence })]
          })
        )
        if (Either.isLeft(outcome)) {
          expect(outcome.left).toBeInstanceOf(Errors.ConcurrencyError)
          yield* Ref.update(conflicts, (count) => count + 1)
          return yield* writeHot(writer, sequence)
        }
        yield* Ref.update(acknowledged, (all) => [...all, { streamId: hot, version: outcome.right.version }])
      })

    const writeOwn = (writer: number, sequence: number) =>
      Effect.gen(function*() {
        const streamId = `own-${writer}-${sequence}-${hot}`
        const result = yield* store.append({
          streamId,
          streamType: "thing",
          expectedVersion: ExpectedVersion.noStream,
          events: events(2, "Owned")
        })
        yield* Ref.update(acknowledged, (all) => [...all, { streamId, version: 1 }, { streamId, version: 2 }])
        return result
      })

    yield* Effect.all(
      Array.from({ length: writers }, (_, writer) =>
        Effect.forEach(
          Array.from({ length: appendsEach }, (_, sequence) => sequence),
          (sequence) => Effect.zipRight(writeHot(writer, sequence), writeOwn(writer, sequence)),
          { discard: true }
        )),
      { concurrency: "unbounded", discard: true }
    )

    expect(yield* Ref.get(conflicts)).toBeGreaterThan(0)
    const stored = yield* readStream(hot)
    expect(stored.map((recorded) => recorded.version)).toEqual(
      Array.from({ length: writers * appendsEach }, (_, index) => index + 1)
    )
    for (let writer = 0; writer < writers; writer++) {
      const sequences = stored
        .map((recorded) => recorded.data as { writer: number; sequence: number })
        .filter((data) => data.writer === writer)
        .map((data) => data.sequence)
      expect(sequences).toEqual(Array.from({ length: appendsEach }, (_, index) => index))
    }

    // The global order holds every acknowledged event exactly once.
    const all = (yield* readAllAfter(start, 37)).filter((recorded) => recorded.streamId.endsWith(hot))
    const seen = all.map((recorded) => `${recorded.streamId}#${recorded.version}`)
    expect(new Set(seen).size).toBe(seen.length)
    expect(new Set(seen)).toEqual(
      new Set((yield* Ref.get(acknowledged)).map(({ streamId, version }) => `${streamId}#${version}`))
    )
  })

const concurrentAnyAndCreate = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const writers = 10
    const race = <A, E, R>(write: (writer: number) => Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const barrier = yield* makeBarrier(writers)
        return yield* Effect.all(
          Array.from({ length: writers }, (_, writer) => Effect.zipRight(barrier, Effect.either(write(writer)))),
          { concurrency: "unbounded" }
        )
      })

    const created = newStreamId("created")
    const creations = yield* race((writer) => append(created, ExpectedVersion.noStream, [event("Created", { writer })]))
    expect(creations.filter(Either.isRight)).toHaveLength(1)
    for (const loser of creations.filter(Either.isLeft)) {
      expect(loser.left).toMatchObject({ _tag: "ConcurrencyError", expectedVersion: "no-stream", actualVersion: 1 })
    }

    const anyStream = newStreamId("any")
    const anyAppends = yield* race((writer) => append(anyStream, ExpectedVersion.any, events(2, `By${writer}`)))
    expect(anyAppends.every(Either.isRight)).toBe(true)
    const existing = yield* race((writer) => append(created, ExpectedVersion.streamExists, [event("More", { writer })]))
    expect(existing.every(Either.isRight)).toBe(true)

    for (const [streamId, count] of [[anyStream, writers * 2], [created, writers + 1]] as const) {
      const stored = yield* readStream(streamId)
      expect(stored.map((recorded) => recorded.version)).toEqual(Array.from({ length: count }, (_, i) => i + 1))
      expect(yield* store.streamVersion(streamId)).toBe(count)
    }
    // Each "any" append's two events are adjacent: appends never interleave.
    const anyTypes = (yield* readStream(anyStream)).map((recorded) => recorded.type)
    for (let index = 0; index < anyTypes.length; index += 2) expect(anyTypes[index]).toBe(anyTypes[index + 1])
  })

const oppositeOrders = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const [left, right] = [newStreamId("left"), newStreamId("right")]
    const request = (streamId: string, writer: number): EventStore.AppendRequest => ({
      streamId,
      streamType: "thing",
      expectedVersion: ExpectedVersion.any,
      events: [event("Linked", { writer })]
    })
    const writers = 8
    const rounds = 10
    yield* Effect.all(
      Array.from({ length: writers }, (_, writer) =>
        Effect.repeatN(
          store.appendMany(
            writer % 2 === 0
              ? [request(left, writer), request(right, writer)]
              : [request(right, writer), request(left, writer)]
          ),
          rounds - 1
        )),
      { concurrency: "unbounded", discard: true }
    )
    expect(yield* store.streamVersion(left)).toBe(writers * rounds)
    expect(yield* store.streamVersion(right)).toBe(writers * rounds)
  })
