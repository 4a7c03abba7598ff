/**
 * The history contract: temporal queries (a stream's state as of a version or a time) and the
 * audit trail.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Chunk, Effect, Either, Stream } from "effect"
import { Errors, EventStore, ExpectedVersion, History, Metadata, Position } from "effect-eventsourcing"
import { counter, counterDecider } from "../support/counter.js"
import type { ContractBackend, Tester, WriteDated } from "./backend.js"
import { liveTester } from "./backend.js"
import { newStreamId } from "./support.js"

export const historyContract = <R>(backend: ContractBackend<R>) => {
  const store = backend.open("history")
  layer(store.layer)("History contract", (methods) => {
    const it = liveTester(methods)
    // On the test clock, which the memory backend's writer sets; the SQL writers choose the
    // timestamps in their rows.
    const testClock = { effect: methods.effect }
    temporalQueries(it, testClock, store.writeDated)
    auditTrail(it)
    failures(it)
  })
}

const temporalQueries = (
  it: Tester<EventStore.EventStore>,
  testClock: Tester<EventStore.EventStore>,
  writeDated: WriteDated
) =>
  describe("temporal queries", () => {
    it.effect("folds a stream as of each version as a load would, and stops at its end", foldsAsOfEachVersion)
    it.effect("folds a stream as of a time on the real clock", foldsAsOfARealTime)
    testClock.effect(
      "folds a stream as of a time to the millisecond of the recorded timestamps",
      foldsToTheMillisecond(writeDated)
    )
    testClock.effect(
      "never folds an event without those before it, even when a clock went back",
      neverFoldsOutOfOrder(writeDated)
    )
    it.effect(
      "gives the initial state for a stream that does not exist, version 0 or a time before it",
      givesTheInitialState
    )
    it.effect(
      "refuses a version that is not a count or a time that is not a date, as a typed failure",
      refusesBadQueries
    )
  })

const auditTrail = (it: Tester<EventStore.EventStore>) =>
  describe("audit trail", () => {
    it.effect("records who did what, when and why, in order", recordsWhoDidWhat)
    it.effect("folds and audits a stream longer than a page", foldsALongStream)
  })

const failures = (it: Tester<EventStore.EventStore>) =>
  describe("streams that do not fold", () => {
    it.effect("fails on a stream of another type with StreamTypeMismatchError", failsOnAnotherStreamType)
    it.effect("fails at a stored event that does not decode with EventDecodeError naming it", failsAtAnUndecodableEvent)
  })

const stateAt = History.stateAt(counterDecider)
const auditOf = History.auditOf(counterDecider)

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const initial = { state: 0, version: 0, position: Position.start }

/** Counts on a counter stream, one command (and event) per amount; the results in order. */
const count = (streamId: string, amounts: ReadonlyArray<number>) =>
  Effect.forEach(amounts, (by) => counter.handle(streamId, by))

const minutes = (n: number) => n * 60_000

/** What a counter command returns. */
type Handled = Effect.Effect.Success<ReturnType<typeof counter.handle>>

// Temporal queries.

const foldsAsOfEachVersion = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("versions")
    const handled = yield* count(streamId, [1, 2, 3, 4, 5])
    const totals = [0, 1, 3, 6, 10, 15]
    for (let version = 0; version <= 5; version++) {
      expect(yield* stateAt(streamId, { version })).toEqual({
        state: totals[version],
        version,
        position: version === 0 ? Position.start : handled[version - 1]!.position
      })
    }
    const loaded = yield* counter.load(streamId)
    expect(yield* stateAt(streamId, { version: 5 })).toEqual(loaded)
    // Beyond the end: the latest state, with the version the stream really has.
    expect(yield* stateAt(streamId, { version: 9 })).toEqual(loaded)
  })

const foldsAsOfARealTime = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("clock")
    // Well apart, for the coarsest backend: PostgreSQL keeps a timestamp to 1e-7 day (8.64 ms).
    const pause = Effect.sleep("30 millis")
    const before = new Date()
    const times: Array<Date> = []
    for (const by of [1, 2, 3]) {
      yield* pause
      yield* counter.handle(streamId, by)
      yield* pause
      times.push(new Date())
    }
    expect(yield* stateAt(streamId, { time: before })).toEqual(initial)
    expect((yield* Effect.forEach(times, (time) => stateAt(streamId, { time }))).map(({ state, version }) => [
      version,
      state
    ])).toEqual([[1, 1], [2, 3], [3, 6]])

    // An event's own timestamp includes it; a millisecond before excludes it.
    const entries = yield* collect(History.audit(streamId))
    for (const entry of entries) {
      expect((yield* stateAt(streamId, { time: entry.timestamp })).version).toBe(entry.version)
      const justBefore = new Date(entry.timestamp.getTime() - 1)
      expect((yield* stateAt(streamId, { time: justBefore })).version).toBe(entry.version - 1)
    }
  })

const foldsToTheMillisecond = (writeDated: WriteDated) => () =>
  Effect.gen(function*() {
    const streamId = newStreamId("dated")
    const start = Date.UTC(2024, 2, 1, 9)
    const times = [0, 36, 72].map((offset) => new Date(start + minutes(offset)))
    // Off the grid of 1e-7 day (8.64 ms) that PostgreSQL keeps timestamps on.
    const offGrid = new Date(start + minutes(100) + 1)
    yield* writeDated(streamId, [
      { by: 1, actor: "user:ada", timestamp: times[0]! },
      { by: 2, actor: "user:bob", timestamp: times[1]! },
      { by: 3, actor: "user:cy", timestamp: times[2]! },
      { by: 4, actor: "user:dee", timestamp: offGrid }
    ])
    const entries = yield* collect(History.audit(streamId))
    expect(entries.slice(0, 3).map((entry) => [entry.version, entry.actor, entry.timestamp, entry.data])).toEqual([
      [1, "user:ada", times[0], { by: 1 }],
      [2, "user:bob", times[1], { by: 2 }],
      [3, "user:cy", times[2], { by: 3 }]
    ])
    const versionAt = (time: number) =>
      Effect.map(stateAt(streamId, { time: new Date(time) }), (at) => [at.version, at.state])
    expect(yield* stateAt(streamId, { time: new Date(start - 1) })).toEqual(initial)
    expect(yield* versionAt(start)).toEqual([1, 1])
    expect(yield* versionAt(start + minutes(36) - 1)).toEqual([1, 1])
    expect(yield* versionAt(start + minutes(36))).toEqual([2, 3])
    expect(yield* versionAt(start + minutes(50))).toEqual([2, 3])
    expect(yield* versionAt(start + minutes(72))).toEqual([3, 6])
    expect(yield* versionAt(start + minutes(99))).toEqual([3, 6])
    expect(yield* versionAt(Date.UTC(2030, 0, 1))).toEqual([4, 10])
    expect((yield* stateAt(streamId, { time: times[1]! })).position).toEqual(entries[1]!.position)
    // A query compares with the timestamp as recorded, which is what the audit trail shows.
    const recorded = entries[3]!.timestamp.getTime()
    expect(Math.abs(recorded - offGrid.getTime())).toBeLessThanOrEqual(5)
    expect(yield* versionAt(recorded)).toEqual([4, 10])
    expect(yield* versionAt(recorded - 1)).toEqual([3, 6])
  })

const neverFoldsOutOfOrder = (writeDated: WriteDated) => () =>
  Effect.gen(function*() {
    const streamId = newStreamId("skewed")
    const start = Date.UTC(2024, 2, 1, 9)
    yield* writeDated(streamId, [
      { by: 1, actor: "node-a", timestamp: new Date(start) },
      { by: 2, actor: "node-b", timestamp: new Date(start + minutes(72)) },
      { by: 3, actor: "node-a", timestamp: new Date(start + minutes(36)) }
    ])
    // Event 3 was recorded before minute 54, but it cannot be folded without event 2.
    const before = yield* stateAt(streamId, { time: new Date(start + minutes(54)) })
    expect([before.version, before.state]).toEqual([1, 1])
    const after = yield* stateAt(streamId, { time: new Date(start + minutes(72)) })
    expect([after.version, after.state]).toEqual([3, 6])
  })

const givesTheInitialState = () =>
  Effect.gen(function*() {
    const missing = newStreamId("missing")
    expect(yield* stateAt(missing, { version: 3 })).toEqual(initial)
    expect(yield* stateAt(missing, { time: new Date() })).toEqual(initial)
    expect(yield* collect(History.audit(missing))).toEqual([])
    expect(yield* collect(auditOf(missing))).toEqual([])

    const streamId = newStreamId("existing")
    yield* count(streamId, [4])
    expect(yield* stateAt(streamId, { version: 0 })).toEqual(initial)
    expect(yield* stateAt(streamId, { time: new Date(Date.UTC(2000, 0, 1)) })).toEqual(initial)
  })

const refusesBadQueries = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("refused")
    yield* count(streamId, [1])
    const refusal = (at: History.At) =>
      stateAt(streamId, at).pipe(
        Effect.flip,
        Effect.map((error) => {
          expect(error).toBeInstanceOf(Cause.IllegalArgumentException)
          return error.message
        })
      )
    for (const version of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(yield* refusal({ version })).toContain(`version must be a non-negative integer, got ${version}`)
    }
    expect(yield* refusal({ time: new Date("not a date") })).toContain("time must be a valid Date")
    expect(yield* refusal({ version: 1, time: new Date() } as unknown as History.At)).toContain("not both")
  })

// The audit trail.

/** The audit trail `recordsWhoDidWhat` expects of its three commands, in order. */
const expectedTrail = (streamId: string, requestId: string, results: readonly [Handled, Handled, Handled]) => {
  const [first, second, third] = results
  const recorded = results.map((result) => result.events[0]!)
  return [
    {
      streamId,
      version: 1,
      eventId: recorded[0]!.id,
      type: "Counted",
      actor: "user:ada",
      timestamp: recorded[0]!.timestamp,
      position: first.position,
      correlationId: requestId,
      causationId: "command-1",
      entries: { tenant: "acme" },
      schemaVersion: 1,
      data: { by: 1 }
    },
    {
      streamId,
      version: 2,
      eventId: recorded[1]!.id,
      type: "Counted",
      actor: "process:billing",
      timestamp: recorded[1]!.timestamp,
      position: second.position,
      correlationId: requestId,
      causationId: recorded[0]!.id,
      entries: {},
      schemaVersion: 1,
      data: { by: 2 }
    },
    {
      streamId,
      version: 3,
      eventId: recorded[2]!.id,
      type: "Counted",
      actor: Metadata.defaultActor,
      timestamp: recorded[2]!.timestamp,
      position: third.position,
      correlationId: undefined,
      causationId: undefined,
      entries: {},
      schemaVersion: 1,
      data: { by: 3 }
    }
  ]
}

const recordsWhoDidWhat = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("audited")
    const requestId = newStreamId("request")
    const before = Date.now()
    const first = yield* counter.handle(streamId, 1).pipe(
      Metadata.withActor("user:ada"),
      Metadata.withCorrelationId(requestId),
      Metadata.withCausationId("command-1"),
      Metadata.withEntries({ tenant: "acme" })
    )
    const second = yield* counter.handle(streamId, 2).pipe(
      Metadata.withActor("process:billing"),
      Metadata.withCorrelationId(requestId),
      Metadata.withCausationId(first.events[0]!.id)
    )
    const third = yield* counter.handle(streamId, 3)
    const after = Date.now()

    const entries = yield* collect(History.audit(streamId))
    expect(entries).toEqual(expectedTrail(streamId, requestId, [first, second, third]))
    const stamps = entries.map((entry) => entry.timestamp.getTime())
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps)
    // The backends keep timestamps to between 1 and 8.64 ms.
    expect(stamps[0]).toBeGreaterThanOrEqual(before - 10)
    expect(stamps[2]).toBeLessThanOrEqual(after + 10)

    const typed = yield* collect(auditOf(streamId))
    expect(typed.map((entry) => entry.data)).toEqual([1, 2, 3].map((by) => ({ _tag: "Counted", by })))
    expect(typed.map(({ data: _, ...facts }) => facts)).toEqual(entries.map(({ data: _, ...facts }) => facts))

    const latest = yield* collect(History.audit(streamId, { direction: "backward", limit: 2 }))
    expect(latest.map((entry) => entry.version)).toEqual([3, 2])
    const middle = yield* collect(auditOf(streamId, { from: 2, limit: 1 }))
    expect(middle.map((entry) => [entry.version, entry.actor])).toEqual([[2, "process:billing"]])

    // Across streams: what one request did, from the global order.
    const other = newStreamId("audited-other")
    yield* counter.handle(other, 7).pipe(Metadata.withCorrelationId(requestId))
    const store = yield* EventStore.EventStore
    const request = yield* collect(
      store.readAll({ after: first.events[0]!.position }).pipe(
        Stream.map(History.auditEntry),
        Stream.filter((entry) => entry.correlationId === requestId)
      )
    )
    expect(request.map((entry) => [entry.streamId, entry.version])).toEqual([[streamId, 2], [other, 1]])
  })

const foldsALongStream = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("long")
    yield* store.append({
      streamId,
      streamType: "counter",
      expectedVersion: ExpectedVersion.noStream,
      events: Array.from({ length: 1_201 }, () => ({ type: "Counted", data: { by: 1 } }))
    })
    expect((yield* stateAt(streamId, { version: 1_001 })).state).toBe(1_001)
    expect((yield* stateAt(streamId, { time: new Date(Date.now() + minutes(1)) })).state).toBe(1_201)
    const entries = yield* collect(History.audit(streamId))
    expect(entries.length).toBe(1_201)
    // One append has one timestamp, so a query as of a time never splits it.
    expect(new Set(entries.map((entry) => entry.timestamp.getTime())).size).toBe(1)
    const latest = yield* collect(History.audit(streamId, { direction: "backward" }).pipe(Stream.take(3)))
    expect(latest.map((entry) => entry.version)).toEqual([1_201, 1_200, 1_199])
  })

// Streams that do not fold.

const failsOnAnotherStreamType = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("order")
    yield* store.append({
      streamId,
      streamType: "order",
      expectedVersion: ExpectedVersion.noStream,
      events: [{ type: "Counted", data: { by: 1 } }]
    })
    const mismatch = new Errors.StreamTypeMismatchError({ streamId, expectedType: "counter", actualType: "order" })
    expect(yield* Effect.flip(stateAt(streamId, { version: 0 }))).toEqual(mismatch)
    expect(yield* Effect.flip(stateAt(streamId, { version: 1 }))).toEqual(mismatch)
    expect(yield* Effect.flip(stateAt(streamId, { time: new Date() }))).toEqual(mismatch)
    expect(yield* Effect.flip(stateAt(streamId, { time: new Date(0) }))).toEqual(mismatch)
    expect(yield* Effect.flip(collect(auditOf(streamId)))).toEqual(mismatch)
    // The untyped trail reads any stream.
    expect((yield* collect(History.audit(streamId))).map((entry) => entry.data)).toEqual([{ by: 1 }])
  })

const failsAtAnUndecodableEvent = () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const streamId = newStreamId("undecodable")
    const [first] = yield* count(streamId, [1])
    yield* Effect.sleep("30 millis")
    yield* store.append({
      streamId,
      streamType: "counter",
      expectedVersion: ExpectedVersion.exact(1),
      events: [{ type: "Counted", data: { by: "one" } }]
    })
    const expected = { _tag: "EventDecodeError", streamId, version: 2, eventType: "Counted" }
    expect(yield* Effect.flip(stateAt(streamId, { version: 2 }))).toMatchObject(expected)
    expect(yield* Effect.flip(stateAt(streamId, { time: new Date(Date.now() + minutes(1)) }))).toMatchObject(
      expected
    )
    // A query that stops before it does not reach it.
    expect((yield* stateAt(streamId, { version: 1 })).state).toBe(1)
    expect((yield* stateAt(streamId, { time: first!.events[0]!.timestamp })).state).toBe(1)

    const typed = yield* collect(Stream.either(auditOf(streamId)))
    expect(typed.map(Either.isRight)).toEqual([true, false])
    expect(typed[1]).toMatchObject({ left: expected })
    expect((yield* collect(History.audit(streamId))).map((entry) => entry.data)).toEqual([{ by: 1 }, { by: "one" }])
  })
