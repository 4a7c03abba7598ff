/**
 * The projection contract: runners that catch up and follow live, fail and retry, report their
 * status, take turns, and inline projections, with a read model that lives where a real one
 * would (see readModel.ts). After any run the read model must equal folding every event exactly
 * once.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"
import {
  CommandHandler,
  Decider,
  Errors,
  EventStore,
  ExpectedVersion,
  Position,
  Projection,
  ProjectionStore
} from "effect-eventsourcing"
import type { ContractBackend, Tester } from "./backend.js"
import { liveTester } from "./backend.js"
import type { Counted, Totals } from "./readModel.js"
import { ReadModel } from "./readModel.js"
import { newStreamId } from "./support.js"

export const projectionsContract = <R>(backend: ContractBackend<R>) => {
  const store = backend.open("projections")
  layer(store.readModel.pipe(Layer.provideMerge(store.layer)))("Projection contract", (methods) => {
    const it = liveTester(methods)
    runners(it)
    failures(it, backend.transactional)
    status(it)
    turns(it)
    inline(it)
  })
}

type Services = EventStore.EventStore | ProjectionStore.ProjectionStore | ReadModel

const runners = (it: Tester<Services>) =>
  describe("catching up and following", () => {
    it.effect("catches up, then follows live, applying each event once", catchesUpThenFollows)
    it.effect("runs many projections on one store at once", runsManyProjections)
    it.effect("resumes from its checkpoint after being interrupted, applying nothing twice", resumesFromItsCheckpoint)
    it.effect("counts an append that stored nothing on a new stream as handled already", countsAnEmptyAppend)
  })

const failures = (it: Tester<Services>, transactional: boolean) =>
  describe("failing handlers and events", () => {
    it.effect(
      "retries a failing handler, and applies the batch once when it succeeds",
      retriesAFailingHandler(transactional)
    )
    it.effect(
      "stops at an event its handler keeps failing on, its checkpoint just before it",
      stopsAtAPoisonEvent(transactional)
    )
    it.effect("stops at a consumed event that does not decode with its Schema", stopsAtAnUndecodableEvent)
    it.effect("sets events aside in dead-letter mode and goes on", setsEventsAside(transactional))
  })

const status = (it: Tester<Services>) =>
  describe("status and reset", () => {
    it.effect("reports its checkpoint, the head and its lag", reportsItsLag)
    it.effect("counts its lag up to a bound, and says when there is more", boundsItsLag)
    it.effect(
      "reports a runner waiting for the lead, and one stopped with its error; waitFor fails with it",
      reportsWaitingAndStopped
    )
    it.effect("rebuilds from the first event after a reset", rebuildsAfterAReset)
  })

const turns = (it: Tester<Services>) =>
  describe("runners taking turns, and the subscription beneath", () => {
    it.effect("lets one runner of a projection work at a time, and another take over when it stops", oneRunnerAtATime)
    it.effect("offers the subscription it is built on to consume directly", offersItsSubscription)
  })

const inline = (it: Tester<Services>) =>
  describe("inline projections", () => {
    it.effect("runs inline projections in the append's own transaction", runsInline)
    it.effect(
      "refuses to run one projection both inline and by a runner, which would apply it twice",
      refusesInlineAndRunner
    )
  })

/**
 * The counted events of one test: each test has its own event type, so that what one test
 * stores (a poison event, say) is not consumed by the projections of another.
 */
const countedEvents = (tag: string) => Schema.TaggedStruct(tag, { by: Schema.Int })

/** A projection name, and the event type that only this test's projections consume. */
const fresh = (label: string) => {
  const projection = newStreamId(label)
  return { projection, type: `Counted-${projection}` }
}

const append = (streamId: string, values: ReadonlyArray<number>, type: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamId,
      streamType: "counter",
      expectedVersion: ExpectedVersion.any,
      events: values.map((by) => ({ type, data: { by } }))
    }))

/** Totals as folding `appended` exactly once gives them. */
const fold = (appended: ReadonlyArray<readonly [string, ReadonlyArray<number>]>) => {
  const totals = new Map<string, Totals>()
  for (const [streamId, values] of appended) {
    const current = totals.get(streamId) ?? { total: 0, count: 0 }
    totals.set(streamId, {
      total: current.total + values.reduce((sum, by) => sum + by, 0),
      count: current.count + values.length
    })
  }
  return totals
}

/** A counting projection of one event type, whose handler fails (with `Boom`) on values the test says. */
const counting = (name: string, type: string, failOn: (by: number) => boolean = () => false) =>
  Projection.make({
    name,
    events: countedEvents(type),
    handle: (event) =>
      Effect.flatMap(ReadModel, (model) =>
        failOn(event.data.by) ? Effect.fail(new Boom({ by: event.data.by })) : model.apply(name, event))
  })

class Boom extends Schema.TaggedError<Boom>()("Boom", { by: Schema.Number }) {}

/** Only the rows of the given streams, to ignore what other tests of the suite wrote. */
const totalsOf = (projection: string, streamIds: ReadonlyArray<string>) =>
  Effect.flatMap(
    ReadModel,
    (model) =>
      Effect.map(model.totals(projection), (all) =>
        new Map([...all].filter(([streamId]) => streamIds.includes(streamId))))
  )

/**
 * The position of the latest append. (Not the store's `head`: on PostgreSQL that is the latest
 * event readable now, which other transactions in flight can hold back.)
 */
const latestAppend = (appends: ReadonlyArray<EventStore.AppendResult>) => appends.at(-1)!.position

/** A command handler of counters of one event type that runs a projection inline. */
const inlineCounter = <E, R>(projection: Projection.Projection<Counted, E, R>, type: string) => {
  const events = countedEvents(type)
  return CommandHandler.make(
    Decider.make({
      streamType: "counter",
      events,
      initialState: 0,
      decide: (by: number) => [events.make({ by })],
      evolve: (total: number, event) => total + event.by
    }),
    { inline: [projection] }
  )
}

const quick: Projection.RunOptions = { pollInterval: "20 millis", retry: Projection.defaultRetry }

/** Retries quickly, so that tests of failing handlers are fast. */
const quickRetry = Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(3)))

// Catching up and following.

const catchesUpThenFollows = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("catch-up")
    const [a, b] = [newStreamId("a"), newStreamId("b")]
    const appended: Array<readonly [string, ReadonlyArray<number>]> = [[a, [1, 2, 3]], [b, [10]], [a, [4]]]
    for (const [streamId, values] of appended) yield* append(streamId, values, type)
    // Events the projection does not consume, with data its Schema could not decode.
    yield* append(b, [0], "Unrelated")
    const last = yield* Effect.flatMap(EventStore.EventStore, (store) =>
      store.append({
        streamId: b,
        streamType: "counter",
        expectedVersion: ExpectedVersion.any,
        events: [{ type: "Renamed", data: { to: "whatever" } }]
      }))

    const runner = yield* Effect.fork(Projection.run(counting(projection, type), { ...quick, batchSize: 2 }))
    yield* Projection.waitFor(projection, last.position).pipe(Effect.timeout("20 seconds"))
    expect(yield* totalsOf(projection, [a, b])).toEqual(fold(appended))

    // Live: new appends are applied as they come.
    const more: Array<readonly [string, ReadonlyArray<number>]> = [[b, [5, 6]], [a, [7]]]
    for (const [streamId, values] of more) {
      const result = yield* append(streamId, values, type)
      yield* Projection.waitFor(projection, result.position).pipe(Effect.timeout("20 seconds"))
    }
    expect(yield* totalsOf(projection, [a, b])).toEqual(fold([...appended, ...more]))
    yield* Fiber.interrupt(runner)
  })

const runsManyProjections = () =>
  Effect.gen(function*() {
    const { type } = fresh("many")
    const names = [1, 2, 3, 4].map(() => newStreamId("many"))
    const streamId = newStreamId("shared")
    const runners = yield* Effect.forEach(names, (projection) =>
      Effect.fork(Projection.run(counting(projection, type), quick)))
    const appended: Array<readonly [string, ReadonlyArray<number>]> = []
    const results: Array<EventStore.AppendResult> = []
    for (let round = 0; round < 10; round++) {
      appended.push([streamId, [round, round + 1]])
      results.push(yield* append(streamId, [round, round + 1], type))
    }
    const head = latestAppend(results)
    yield* Effect.forEach(names, (projection) =>
      Projection.waitFor(projection, head), { concurrency: "unbounded" })
      .pipe(Effect.timeout("20 seconds"))
    for (const projection of names) {
      expect(yield* totalsOf(projection, [streamId])).toEqual(fold(appended))
    }
    yield* Effect.forEach(runners, Fiber.interrupt)
  })

const resumesFromItsCheckpoint = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("interrupted")
    const streams = [1, 2, 3].map(() => newStreamId("resume"))
    const appended: Array<readonly [string, ReadonlyArray<number>]> = []
    const results: Array<EventStore.AppendResult> = []
    for (let n = 0; n < 60; n++) {
      const entry = [streams[n % 3]!, [n % 7, 1]] as const
      appended.push(entry)
      results.push(yield* append(...entry, type))
    }
    const head = latestAppend(results)
    // A slow handler, interrupted again and again in the middle of the catch-up.
    const slow = Projection.make({
      name: projection,
      events: countedEvents(type),
      handle: (event) =>
        Effect.flatMap(ReadModel, (model) => Effect.zipRight(Effect.sleep("1 millis"), model.apply(projection, event)))
    })
    for (let round = 0; round < 5; round++) {
      const runner = yield* Effect.fork(Projection.run(slow, { ...quick, batchSize: 4 }))
      yield* Effect.sleep("25 millis")
      yield* Fiber.interrupt(runner)
    }
    const last = yield* Effect.fork(Projection.run(slow, { ...quick, batchSize: 4 }))
    yield* Projection.waitFor(projection, head).pipe(Effect.timeout("30 seconds"))
    yield* Fiber.interrupt(last)
    expect(yield* totalsOf(projection, streams)).toEqual(fold(appended))
  })

const countsAnEmptyAppend = () =>
  Effect.gen(function*() {
    const { projection } = fresh("nothing")
    yield* Projection.waitFor(projection, Position.start).pipe(Effect.timeout("1 second"))
  })

// Failing handlers and events.

const retriesAFailingHandler = (transactional: boolean) => () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("flaky")
    const streamId = newStreamId("flaky-stream")
    const failures = yield* Ref.make(2)
    // Applies the first event, then fails on the second, twice: the batch must not keep the first.
    const flaky = Projection.make({
      name: projection,
      events: countedEvents(type),
      handle: (event) =>
        Effect.gen(function*() {
          const model = yield* ReadModel
          yield* model.apply(projection, event)
          if (event.version === 2 && (yield* Ref.getAndUpdate(failures, (n) => n - 1)) > 0) {
            return yield* new Boom({ by: event.data.by })
          }
        })
    })
    const result = yield* append(streamId, [1, 2, 3], type)
    const runner = yield* Effect.fork(Projection.run(flaky, { ...quick, retry: quickRetry }))
    yield* Projection.waitFor(projection, result.position).pipe(Effect.timeout("20 seconds"))
    yield* Fiber.interrupt(runner)
    expect(yield* Ref.get(failures)).toBe(-1)
    // In memory the failed attempts' writes stay (1 and 2, twice); SQL undoes them.
    expect((yield* totalsOf(projection, [streamId])).get(streamId)).toEqual(
      transactional ? { total: 6, count: 3 } : { total: 12, count: 7 }
    )
  })

const stopsAtAPoisonEvent = (transactional: boolean) => () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("poisoned")
    const streamId = newStreamId("poison")
    yield* append(streamId, [1, 2], type)
    const before = yield* append(streamId, [3], type)
    yield* append(streamId, [4, 13, 5], type)
    yield* append(streamId, [6], type)
    const error = yield* Effect.flip(
      Projection.run(counting(projection, type, (by) => by === 13), { ...quick, retry: quickRetry })
    ).pipe(Effect.timeout("20 seconds"))
    expect(error).toBeInstanceOf(Errors.ProjectionError)
    expect(error).toMatchObject({ projection, streamId, version: 5, eventType: type })
    expect(error.message).toContain("version 5")
    expect(error.cause).toBeInstanceOf(Boom)
    const projections = yield* ProjectionStore.ProjectionStore
    expect(yield* projections.checkpoint(projection)).toEqual(Option.some(before.position))
    // The append with the poison is not applied, not even in part (where writes can be undone).
    const totals = (yield* totalsOf(projection, [streamId])).get(streamId)
    if (transactional) expect(totals).toEqual({ total: 6, count: 3 })
    else expect(totals!.count).toBeGreaterThanOrEqual(3)
  })

const stopsAtAnUndecodableEvent = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("undecodable")
    const streamId = newStreamId("undecodable-stream")
    const good = yield* append(streamId, [1], type)
    yield* Effect.flatMap(EventStore.EventStore, (store) =>
      store.append({
        streamId,
        streamType: "counter",
        expectedVersion: ExpectedVersion.any,
        events: [{ type, data: { by: "one" } }]
      }))
    const error = yield* Effect.flip(Projection.run(counting(projection, type), quick)).pipe(
      Effect.timeout("20 seconds")
    )
    expect(error).toMatchObject({ _tag: "ProjectionError", streamId, version: 2, eventType: type })
    expect(error.cause).toBeInstanceOf(Errors.EventDecodeError)
    const projections = yield* ProjectionStore.ProjectionStore
    expect(yield* projections.checkpoint(projection)).toEqual(Option.some(good.position))
  })

const setsEventsAside = (transactional: boolean) => () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("dead-letters")
    const streamId = newStreamId("dead-letter-stream")
    yield* append(streamId, [1, 13, 2], type)
    yield* Effect.flatMap(EventStore.EventStore, (store) =>
      store.append({
        streamId,
        streamType: "counter",
        expectedVersion: ExpectedVersion.any,
        events: [{ type, data: { by: "one" } }]
      }))
    const last = yield* append(streamId, [3], type)
    const runner = yield* Effect.fork(
      Projection.run(counting(projection, type, (by) => by === 13), {
        ...quick,
        retry: quickRetry,
        onFailure: "dead-letter"
      })
    )
    yield* Projection.waitFor(projection, last.position).pipe(Effect.timeout("20 seconds"))
    yield* Fiber.interrupt(runner)
    const totals = (yield* totalsOf(projection, [streamId])).get(streamId)
    if (transactional) expect(totals).toEqual({ total: 6, count: 3 })
    else expect(totals!.count).toBeGreaterThanOrEqual(3)
    const projections = yield* ProjectionStore.ProjectionStore
    const letters = yield* projections.deadLetters(projection)
    expect(letters.map((letter) => [letter.streamId, letter.version, letter.eventType])).toEqual([
      [streamId, 2, type],
      [streamId, 4, type]
    ])
    expect(letters[0]!.reason).toContain("Boom")
    expect(letters[1]!.reason).toContain("Expected")
  })

// Status and reset.

const reportsItsLag = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("status")
    const streamId = newStreamId("status-stream")
    const appended = yield* append(streamId, [1, 2, 3], type)
    const before = yield* Projection.status(projection)
    expect(before.checkpoint).toEqual(Option.none())
    expect(before.lag).toBeGreaterThanOrEqual(3)
    const runner = yield* Effect.fork(Projection.run(counting(projection, type), quick))
    yield* Projection.waitFor(projection, appended.position).pipe(Effect.timeout("20 seconds"))
    expect((yield* Projection.status(projection)).state).toBe("running")
    yield* Fiber.interrupt(runner)
    const after = yield* Projection.status(projection)
    expect(after.checkpoint).toEqual(Option.some(after.head))
    expect(after).toMatchObject({ lag: 0, lagIsExact: true, state: "not-running", error: Option.none() })
    yield* append(streamId, [4], type)
    expect((yield* Projection.status(projection)).lag).toBe(1)
  })

const boundsItsLag = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("bounded")
    const first = yield* append(newStreamId("bounded-stream"), [1], type)
    yield* append(newStreamId("bounded-stream"), [1, 2, 3, 4], type)
    const projections = yield* ProjectionStore.ProjectionStore
    yield* projections.commit(projection, Option.none(), first.position, Effect.void)
    const store = yield* EventStore.EventStore
    expect(yield* store.countAfter(first.position, { upTo: 2 })).toBe(2)
    expect(yield* store.countAfter(first.position, { upTo: 100 })).toBeGreaterThanOrEqual(4)
    expect(yield* Projection.status(projection, { countUpTo: 3 })).toMatchObject({ lag: 3, lagIsExact: false })
    const exact = yield* Projection.status(projection, { countUpTo: 1_000_000 })
    expect(exact.lagIsExact).toBe(true)
    expect(exact.lag).toBeGreaterThanOrEqual(4)
    const defect = yield* Effect.flip(Effect.sandbox(store.countAfter(first.position, { upTo: 0 })))
    expect(String(defect)).toContain("upTo")
  })

const reportsWaitingAndStopped = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("stopping")
    const streamId = newStreamId("stopping-stream")
    yield* append(streamId, [1], type)
    const poison = yield* append(streamId, [13], type)
    const slowRetry = Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(5)))
    const first = yield* Effect.fork(
      Projection.run(counting(projection, type, (by) => by === 13), { ...quick, retry: slowRetry })
    )
    yield* Effect.sleep("100 millis")
    // While the first holds the lead (retrying the poison), a second waits for it.
    const second = yield* Effect.fork(Projection.run(counting(projection, type), quick))
    yield* Effect.sleep("100 millis")
    expect((yield* Projection.status(projection)).state).toBe("catching-up")
    yield* Fiber.interrupt(second)
    const waiting = yield* Effect.fork(Effect.flip(Projection.waitFor(projection, poison.position)))
    const error = yield* Effect.flip(Fiber.join(first)).pipe(Effect.timeout("20 seconds"))
    expect(error).toBeInstanceOf(Errors.ProjectionError)
    const status = yield* Projection.status(projection)
    expect(status.state).toBe("stopped")
    expect(status.error).toEqual(Option.some(error))
    // waitFor gives up at once with the projection's own error, instead of waiting for ever.
    expect(yield* Fiber.join(waiting).pipe(Effect.timeout("5 seconds"))).toBe(error)
    expect(yield* Effect.flip(Projection.waitFor(projection, poison.position))).toBe(error)
  })

const rebuildsAfterAReset = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("rebuilt")
    const streamId = newStreamId("rebuilt-stream")
    yield* append(streamId, [1, 2], type)
    const head = (yield* append(streamId, [3], type)).position
    const runOnce = Effect.gen(function*() {
      const runner = yield* Effect.fork(Projection.run(counting(projection, type), quick))
      yield* Projection.waitFor(projection, head).pipe(Effect.timeout("20 seconds"))
      yield* Fiber.interrupt(runner)
    })
    yield* runOnce
    yield* Projection.reset(projection, Effect.flatMap(ReadModel, (model) => model.clear(projection)))
    const projections = yield* ProjectionStore.ProjectionStore
    expect(yield* projections.checkpoint(projection)).toEqual(Option.none())
    expect(yield* totalsOf(projection, [streamId])).toEqual(new Map())
    yield* runOnce
    expect((yield* totalsOf(projection, [streamId])).get(streamId)).toEqual({ total: 6, count: 3 })
  })

// Runners taking turns, and the subscription beneath.

const oneRunnerAtATime = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("leader")
    const streamId = newStreamId("leader-stream")
    const handledBy = yield* Ref.make<ReadonlyArray<string>>([])
    const runnerNamed = (runner: string) =>
      Projection.make({
        name: projection,
        events: countedEvents(type),
        handle: (event) =>
          Effect.zipRight(
            Ref.update(handledBy, (all) => [...all, runner]),
            Effect.flatMap(ReadModel, (model) => model.apply(projection, event))
          )
      })
    const first = yield* Effect.fork(Projection.run(runnerNamed("first"), quick))
    yield* Effect.sleep("50 millis")
    const second = yield* Effect.fork(Projection.run(runnerNamed("second"), quick))
    const early = yield* append(streamId, [1, 2], type)
    yield* Projection.waitFor(projection, early.position).pipe(Effect.timeout("20 seconds"))
    expect(new Set(yield* Ref.get(handledBy))).toEqual(new Set(["first"]))

    yield* Fiber.interrupt(first)
    const late = yield* append(streamId, [3], type)
    yield* Projection.waitFor(projection, late.position).pipe(Effect.timeout("20 seconds"))
    yield* Fiber.interrupt(second)
    expect(yield* Ref.get(handledBy)).toEqual(["first", "first", "second"])
    expect((yield* totalsOf(projection, [streamId])).get(streamId)).toEqual({ total: 6, count: 3 })
  })

const offersItsSubscription = () =>
  Effect.gen(function*() {
    const { type } = fresh("direct")
    const store = yield* EventStore.EventStore
    const start = yield* Effect.flatMap(EventStore.EventStore, (store) => store.head)
    const streamId = newStreamId("direct")
    yield* append(streamId, [1, 2], type)
    const published = yield* store.subscribe({ after: start, pollInterval: "20 millis" }).pipe(
      Stream.filter((event) => event.streamId === streamId),
      Stream.take(3),
      Stream.runCollect,
      Effect.fork
    )
    yield* append(streamId, [3], type)
    const events = yield* Fiber.join(published).pipe(Effect.timeout("20 seconds"))
    expect(Chunk.toReadonlyArray(events).map((event) => event.data)).toEqual([{ by: 1 }, { by: 2 }, { by: 3 }])
    expect(Position.isAfter(Chunk.toReadonlyArray(events)[2]!.position, start)).toBe(true)
  })

// Inline projections.

const runsInline = () =>
  Effect.gen(function*() {
    const { projection, type } = fresh("inline")
    const streamId = newStreamId("inline-stream")
    const counter = inlineCounter(counting(projection, type, (by) => by === 13), type)
    yield* counter.handle(streamId, 1)
    yield* counter.handle(streamId, 2)
    // Applied with the append: no runner, no waiting.
    expect((yield* totalsOf(projection, [streamId])).get(streamId)).toEqual({ total: 3, count: 2 })

    const failed = yield* Effect.flip(counter.handle(streamId, 13))
    expect(failed).toBeInstanceOf(Boom)
    const store = yield* EventStore.EventStore
    // The append is undone with the projection's failure, on every backend.
    expect(yield* store.streamVersion(streamId)).toBe(2)
    expect(Chunk.size(yield* Stream.runCollect(store.readStream(streamId)))).toBe(2)
    expect((yield* totalsOf(projection, [streamId])).get(streamId)).toEqual({ total: 3, count: 2 })
  })

const refusesInlineAndRunner = () =>
  Effect.gen(function*() {
    const inlineFirst = fresh("inline-first")
    const projection = counting(inlineFirst.projection, inlineFirst.type)
    yield* inlineCounter(projection, inlineFirst.type).handle(newStreamId("inline-first"), 1)
    const refused = yield* Effect.flip(Effect.sandbox(Projection.run(projection, quick)))
    expect(String(refused)).toContain("runs inline in a command handler and by a runner")

    const runnerFirst = fresh("runner-first")
    const other = counting(runnerFirst.projection, runnerFirst.type)
    const runner = yield* Effect.fork(Projection.run(other, quick))
    yield* Effect.sleep("50 millis")
    const command = yield* Effect.flip(
      Effect.sandbox(inlineCounter(other, runnerFirst.type).handle(newStreamId("runner-first"), 1))
    )
    expect(String(command)).toContain("runs inline in a command handler and by a runner")
    yield* Fiber.interrupt(runner)
  })
