/**
 * The snapshot contract: command handlers with snapshots give the results they give without,
 * read fewer events, write when their policy says, and never trust a snapshot they should not.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Logger, Option, Ref, Schema, Stream } from "effect"
import { CommandHandler, Decider, Errors, EventStore, Snapshot, SnapshotStore } from "effect-eventsourcing"
import { seeded } from "../support/random.js"
import type { ContractBackend, ContractStore, InTransaction, Tester } from "./backend.js"
import { liveTester } from "./backend.js"
import { newStreamId } from "./support.js"

export const snapshotsContract = <R>(backend: ContractBackend<R>) => {
  const store = backend.open("snapshots")
  layer(store.layer)("Snapshot contract", (methods) => {
    const it = liveTester(methods)
    loads(it)
    writes(it, store)
    distrust(it, store)
  })
}

type Services<R> = EventStore.EventStore | SnapshotStore.SnapshotStore | R

const loads = <R>(it: Tester<Services<R>>) =>
  describe("loading from snapshots", () => {
    it.effect(
      "gives the results the handler gives without snapshots, for random command sequences",
      sameResultsAsWithout
    )
    it.effect("loads from the latest snapshot, reading only the events after it", loadsFromTheLatest)
    it.effect("changes no result when every snapshot is deleted", changesNothingWhenDeleted)
  })

const writes = <R>(it: Tester<Services<R>>, store: ContractStore<R>) =>
  describe("writing snapshots", () => {
    it.effect(
      "writes when the policy says: every n events after commands, or after loads that read n",
      writesWhenThePolicySays
    )
    it.effect("neither fails nor waits for a snapshot write, and logs the write's failure", neitherFailsNorWaits)
    if (store.inTransaction !== undefined) {
      it.effect(
        "writes no snapshot from inside a transaction, which may yet roll back",
        writesNoneInATransaction(store.inTransaction)
      )
    }
  })

const distrust = <R>(it: Tester<Services<R>>, store: ContractStore<R>) =>
  describe("snapshots not to trust", () => {
    it.effect(
      "ignores a snapshot whose state no longer decodes, and writes a new one",
      ignoresUndecodable(store.corruptSnapshots)
    )
    it.effect("ignores snapshots of another state Schema or version, which keep their own", ignoresAnotherIdentity)
    it.effect(
      "does not trust a snapshot the stream has not reached, and deletes the stream's snapshots",
      distrustsASnapshotAhead
    )
    it.effect("ignores a snapshot of another stream type", ignoresAnotherStreamType)
    it.effect("ignores a snapshot folded from events the stream no longer holds at its version", ignoresReplacedEvents)
    it.effect("ignores a snapshot whose state Schema throws while decoding it", ignoresAThrowingSchema)
    if (store.deleteStream !== undefined) {
      it.effect(
        "ignores the snapshots of a stream that was deleted and written again",
        ignoresARecreatedStream(store.deleteStream)
      )
    }
  })

const Added = Schema.TaggedStruct("Added", { amount: Schema.Int })
const Labelled = Schema.TaggedStruct("Labelled", { label: Schema.String })
const Cleared = Schema.TaggedStruct("Cleared", {})
const TallyEvent = Schema.Union(Added, Labelled, Cleared)
type TallyEvent = typeof TallyEvent.Type

const TallyState = Schema.Struct({ total: Schema.Int, labels: Schema.Array(Schema.String), changes: Schema.Int })
type TallyState = typeof TallyState.Type

type Command =
  | { readonly _tag: "Add"; readonly amount: number }
  | { readonly _tag: "Label"; readonly label: string }
  | { readonly _tag: "Clear" }

class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { total: Schema.Int }) {}

/** A tally whose state has some structure, with commands that append, refuse, or change nothing. */
const tally = Decider.make({
  streamType: "tally",
  events: TallyEvent,
  initialState: { total: 0, labels: [], changes: 0 } as TallyState,
  decide: (command: Command, state: TallyState) => {
    switch (command._tag) {
      case "Add":
        return state.total + command.amount > 400
          ? Effect.fail(new TooLarge({ total: state.total }))
          : [Added.make({ amount: command.amount })]
      case "Label":
        return state.labels.includes(command.label) ? [] : [Labelled.make({ label: command.label })]
      case "Clear":
        return state.total === 0 && state.labels.length === 0 ? [] : [Cleared.make({})]
    }
  },
  evolve: (state: TallyState, event: TallyEvent): TallyState => {
    switch (event._tag) {
      case "Added":
        return { ...state, total: state.total + event.amount, changes: state.changes + 1 }
      case "Labelled":
        return { ...state, labels: [...state.labels, event.label], changes: state.changes + 1 }
      case "Cleared":
        return { total: 0, labels: [], changes: state.changes + 1 }
    }
  }
})

const snapshotsOf = (policy: Snapshot.Policy, version?: string) => Snapshot.make({ state: TallyState, policy, version })

// The warm state cache is off: these handlers test what loads do with snapshots, which a cached
// state would stand in front of.
const plain = CommandHandler.make(tally, { cache: false })
const every3 = CommandHandler.make(tally, { snapshots: snapshotsOf(Snapshot.everyEvents(3)), cache: false })
const every10 = CommandHandler.make(tally, { snapshots: snapshotsOf(Snapshot.everyEvents(10)), cache: false })
const whenReads4 = CommandHandler.make(tally, { snapshots: snapshotsOf(Snapshot.whenLoadReads(4)), cache: false })
const version2 = CommandHandler.make(tally, { snapshots: snapshotsOf(Snapshot.everyEvents(3), "2"), cache: false })
/** The same state with one more (optional) field: another Schema, so another identity. */
const widened = CommandHandler.make(tally, {
  snapshots: Snapshot.make({
    state: Schema.Struct({ ...TallyState.fields, note: Schema.optional(Schema.String) }),
    policy: Snapshot.everyEvents(3)
  }),
  cache: false
})
const schemaId = Snapshot.identity(tally, snapshotsOf(Snapshot.everyEvents(3)))
const version2Id = Snapshot.identity(tally, snapshotsOf(Snapshot.everyEvents(3), "2"))

const add = (amount: number): Command => ({ _tag: "Add", amount })

/** A command sequence from a seed, so that a failure can be replayed. */
const randomCommands = (seed: number, count: number): ReadonlyArray<Command> => {
  const { next } = seeded(seed)
  return Array.from({ length: count }, (): Command => {
    const roll = next()
    if (roll < 0.6) return add(Math.floor(next() * 60))
    if (roll < 0.9) return { _tag: "Label", label: ["a", "b", "c", "d"][Math.floor(next() * 4)]! }
    return { _tag: "Clear" }
  })
}

/** What a handled command did, without the parts that differ from stream to stream. */
const outcome = (exit: Exit.Exit<CommandHandler.Result<TallyState, TallyEvent>, unknown>) =>
  Exit.match(exit, {
    onFailure: (cause) => {
      const failure = Cause.failureOption(cause)
      return {
        failed: Option.isSome(failure) && failure.value instanceof TooLarge ? failure.value.total : Cause.pretty(cause)
      }
    },
    onSuccess: (result) => ({
      state: result.state,
      version: result.version,
      events: result.events.map((event) => ({ version: event.version, type: event.type, data: event.data }))
    })
  })

/** Runs an effect with the event store counting the events its stream reads return. */
const countingReads = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const read = yield* Ref.make(0)
    const counting: EventStore.EventStore = {
      ...store,
      readStream: (streamId, options) =>
        store.readStream(streamId, options).pipe(Stream.tap(() => Ref.update(read, (count) => count + 1)))
    }
    const result = yield* Effect.provideService(effect, EventStore.EventStore, counting)
    return { result, eventsRead: yield* Ref.get(read) }
  })

/** Handles the commands one by one, waiting for each background snapshot write. */
const handleAll = <LR>(
  handler: CommandHandler.CommandHandler<TallyState, Command, TallyEvent, TooLarge, never, LR>,
  streamId: string,
  commands: ReadonlyArray<Command>
) =>
  Effect.forEach(
    commands,
    (command) => Effect.zipLeft(Effect.exit(handler.handle(streamId, command)), Snapshot.awaitWrites)
  )

/** The id of the event at a version of a stream. */
const eventIdAt = (streamId: string, version: number) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.map(Stream.runCollect(store.readStream(streamId, { from: version, limit: 1 })), (events) =>
        [...events][0]!.id)
  )

const latestSnapshot = (streamId: string, id: string = schemaId) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.read(streamId, { schemaId: id }))

const snapshotVersion = (streamId: string) =>
  Effect.map(latestSnapshot(streamId), Option.map((snapshot) => snapshot.version))

// Loading from snapshots.

const sameResultsAsWithout = () =>
  Effect.gen(function*() {
    for (const [seed, handler] of [[1, every3], [2, whenReads4], [3, every10]] as const) {
      const commands = randomCommands(seed, 45)
      const withoutId = newStreamId("without")
      const withId = newStreamId("with")
      const without = yield* handleAll(plain, withoutId, commands)
      const withSnapshots = yield* handleAll(handler, withId, commands)
      expect(withSnapshots.map(outcome)).toEqual(without.map(outcome))
      expect(yield* handler.load(withId)).toEqual(yield* plain.load(withId))
      // The comparison went through snapshots, not around them.
      expect(Option.isSome(yield* snapshotVersion(withId))).toBe(true)
    }
  })

const loadsFromTheLatest = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("after")
    yield* handleAll(every10, streamId, Array.from({ length: 20 }, () => add(1)))
    expect(yield* snapshotVersion(streamId)).toEqual(Option.some(20))
    // It reads the snapshot's own event, to check the stream still holds it, then those after.
    const atHead = yield* countingReads(every10.load(streamId))
    expect(atHead.eventsRead).toBe(1)
    expect(atHead.result).toEqual(yield* plain.load(streamId))

    yield* handleAll(plain, streamId, Array.from({ length: 5 }, () => add(2)))
    const loaded = yield* countingReads(every10.load(streamId))
    expect(loaded.eventsRead).toBe(6)
    expect(loaded.result).toEqual(yield* plain.load(streamId))
    expect(loaded.result.state.total).toBe(30)
    expect((yield* countingReads(plain.load(streamId))).eventsRead).toBe(25)

    const handled = yield* countingReads(every10.handle(streamId, add(3)))
    expect(handled.eventsRead).toBe(6)
    expect(handled.result).toMatchObject({ version: 26, state: { total: 33 } })
  })

const changesNothingWhenDeleted = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("deleted")
    const commands = randomCommands(4, 30)
    yield* handleAll(every3, streamId, commands)
    const before = yield* every3.load(streamId)
    expect(Option.isSome(yield* snapshotVersion(streamId))).toBe(true)

    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.deleteAll)
    expect(yield* latestSnapshot(streamId)).toEqual(Option.none())
    const after = yield* countingReads(every3.load(streamId))
    expect(after.result).toEqual(before)
    expect(after.eventsRead).toBe(before.version)

    const twin = newStreamId("twin")
    yield* handleAll(plain, twin, commands)
    const next = randomCommands(5, 10)
    expect((yield* handleAll(every3, streamId, next)).map(outcome)).toEqual(
      (yield* handleAll(plain, twin, next)).map(outcome)
    )
  })

// Writing snapshots.

const writesWhenThePolicySays = () =>
  Effect.gen(function*() {
    const every = newStreamId("every")
    const versions: Array<Option.Option<number>> = []
    for (let command = 1; command <= 7; command++) {
      yield* handleAll(every3, every, [add(1)])
      versions.push(yield* snapshotVersion(every))
    }
    expect(versions.map(Option.getOrUndefined)).toEqual([undefined, undefined, 3, 3, 3, 6, 6])
    yield* handleAll(every3, every, [{ _tag: "Label", label: "x" }, add(1)])
    expect(yield* snapshotVersion(every)).toEqual(Option.some(9))
    // A command that appends nothing snapshots what it loaded, if that is 3 past the snapshot.
    yield* handleAll(plain, every, [add(1), add(1), add(1)])
    yield* handleAll(every3, every, [{ _tag: "Label", label: "x" }])
    expect(yield* snapshotVersion(every)).toEqual(Option.some(12))
    // A load alone writes nothing under this policy.
    const loadedOnly = newStreamId("every-load")
    yield* handleAll(plain, loadedOnly, Array.from({ length: 5 }, () => add(1)))
    yield* every3.load(loadedOnly)
    yield* Snapshot.awaitWrites
    expect(yield* latestSnapshot(loadedOnly)).toEqual(Option.none())

    const reads = newStreamId("reads")
    const readVersions: Array<Option.Option<number>> = []
    for (let command = 1; command <= 6; command++) {
      yield* handleAll(whenReads4, reads, [add(1)])
      readVersions.push(yield* snapshotVersion(reads))
    }
    // The fifth command's load read 4 events: the state it loaded is snapshotted.
    expect(readVersions.map(Option.getOrUndefined)).toEqual([undefined, undefined, undefined, undefined, 4, 4])
    yield* handleAll(plain, reads, [add(1), add(1)])
    yield* whenReads4.load(reads)
    yield* Snapshot.awaitWrites
    expect(yield* snapshotVersion(reads)).toEqual(Option.some(8))
    const loadOnly = CommandHandler.load(tally, { snapshots: snapshotsOf(Snapshot.whenLoadReads(4)) })
    const viaLoad = newStreamId("load-function")
    yield* handleAll(plain, viaLoad, Array.from({ length: 4 }, () => add(1)))
    expect(yield* loadOnly(viaLoad)).toEqual(yield* plain.load(viaLoad))
    yield* Snapshot.awaitWrites
    expect(yield* snapshotVersion(viaLoad)).toEqual(Option.some(4))
  })

const neitherFailsNorWaits = () =>
  Effect.gen(function*() {
    const store = yield* SnapshotStore.SnapshotStore
    const started = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const failing: SnapshotStore.SnapshotStore = {
      ...store,
      write: () =>
        Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Deferred.await(release)),
          Effect.zipRight(
            Effect.fail(new Errors.EventStoreError({ operation: "write a snapshot", cause: "disk full" }))
          )
        )
    }
    const logged: Array<string> = []
    const logger = Logger.make(({ message }) => {
      logged.push(String(message))
    })
    const streamId = newStreamId("failing")
    const results = yield* Effect.forEach([1, 2, 3], (amount) => every3.handle(streamId, add(amount))).pipe(
      Effect.provideService(SnapshotStore.SnapshotStore, failing),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    expect(results.map((result) => result.version)).toEqual([1, 2, 3])
    // The third command asked for a snapshot and returned while its write still waits.
    yield* Deferred.await(started)
    expect(yield* Deferred.isDone(release)).toBe(false)
    yield* Deferred.succeed(release, undefined)
    yield* Effect.provideService(Snapshot.awaitWrites, SnapshotStore.SnapshotStore, failing)
    expect(logged.some((line) => line.includes("Could not write the snapshot at version 3"))).toBe(true)
    expect(yield* latestSnapshot(streamId)).toEqual(Option.none())

    const unreadable: SnapshotStore.SnapshotStore = {
      ...store,
      read: () => Effect.fail(new Errors.EventStoreError({ operation: "read a snapshot", cause: "connection lost" }))
    }
    const loaded = yield* every3.handle(streamId, add(4)).pipe(
      Effect.provideService(SnapshotStore.SnapshotStore, unreadable),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    expect(loaded).toMatchObject({ version: 4, state: { total: 10 } })
    expect(logged.some((line) => line.includes("Could not read a snapshot"))).toBe(true)
  })

const writesNoneInATransaction = <R>(inTransaction: InTransaction<R>) => () =>
  Effect.gen(function*() {
    const streamId = newStreamId("transaction")
    yield* inTransaction(handleAll(every3, streamId, Array.from({ length: 4 }, () => add(1))))
    yield* Snapshot.awaitWrites
    expect(yield* latestSnapshot(streamId)).toEqual(Option.none())

    const rolledBack = newStreamId("rolled-back")
    const exit = yield* Effect.exit(inTransaction(Effect.zipRight(
      handleAll(every3, rolledBack, Array.from({ length: 3 }, () => add(1))),
      Effect.fail("roll back")
    )))
    expect(Exit.isFailure(exit)).toBe(true)
    yield* Snapshot.awaitWrites
    expect(yield* latestSnapshot(rolledBack)).toEqual(Option.none())
    expect(yield* every3.load(rolledBack)).toEqual(yield* plain.load(rolledBack))

    yield* handleAll(every3, streamId, [add(1)])
    expect(yield* snapshotVersion(streamId)).toEqual(Option.some(5))

    // A load in a transaction that finds a snapshot it cannot trust leaves it for later
    // (on SQLite, deleting it then would wait for the connection the transaction holds).
    const ahead = newStreamId("ahead-in-transaction")
    yield* handleAll(plain, ahead, [add(1)])
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      store.write({
        streamId: ahead,
        streamType: "tally",
        version: 5,
        eventId: "never-stored",
        schemaId,
        state: JSON.stringify({ total: 50, labels: [], changes: 5 })
      }))
    const inside = yield* inTransaction(Effect.zipLeft(every3.load(ahead), Snapshot.awaitWrites)).pipe(
      Effect.timeout("10 seconds")
    )
    expect(inside).toEqual(yield* plain.load(ahead))
  })

// Snapshots not to trust.

const ignoresUndecodable = (corrupt: ContractStore<unknown>["corruptSnapshots"]) => () =>
  Effect.gen(function*() {
    for (const state of [`{"total":"many","labels":[],"changes":1}`, `not JSON`]) {
      const streamId = newStreamId("undecodable")
      yield* handleAll(every3, streamId, Array.from({ length: 7 }, (_, index) => add(index)))
      expect(yield* snapshotVersion(streamId)).toEqual(Option.some(6))
      yield* corrupt(streamId, state)

      const loaded = yield* countingReads(every3.load(streamId))
      expect(loaded.result).toEqual(yield* plain.load(streamId))
      expect(loaded.eventsRead).toBe(7)

      // The load started from no snapshot, so the next command is 3 or more events past it.
      yield* handleAll(every3, streamId, [add(1)])
      const rebuilt = yield* latestSnapshot(streamId)
      expect(Option.map(rebuilt, (snapshot) => snapshot.version)).toEqual(Option.some(8))
      expect((yield* countingReads(every3.load(streamId))).eventsRead).toBe(1)
    }
  })

const ignoresAnotherIdentity = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("identity")
    yield* handleAll(every3, streamId, Array.from({ length: 6 }, () => add(5)))
    expect(yield* snapshotVersion(streamId)).toEqual(Option.some(6))
    // A snapshot that decodes but that another evolve would not have folded: only a new
    // version keeps it from being used.
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      Effect.flatMap(eventIdAt(streamId, 6), (eventId) =>
        store.write({
          streamId,
          streamType: "tally",
          version: 6,
          eventId,
          schemaId,
          state: JSON.stringify({ total: 999, labels: ["stale"], changes: 6 })
        })))

    for (const handler of [version2, widened]) {
      const loaded = yield* countingReads(handler.load(streamId))
      expect(loaded.result).toEqual(yield* plain.load(streamId))
      expect(loaded.eventsRead).toBe(6)
    }
    yield* handleAll(version2, streamId, [add(1)])
    expect(yield* snapshotVersion(streamId)).toEqual(Option.some(6))
    expect(
      yield* Effect.map(
        latestSnapshot(streamId, version2Id),
        Option.map((snapshot) =>
          snapshot.version
        )
      )
    )
      .toEqual(Option.some(7))
    expect((yield* countingReads(version2.load(streamId))).eventsRead).toBe(1)
  })

const distrustsASnapshotAhead = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("ahead")
    yield* handleAll(plain, streamId, Array.from({ length: 4 }, () => add(1)))
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      store.write({
        streamId,
        streamType: "tally",
        version: 9,
        eventId: "never-stored",
        schemaId,
        state: JSON.stringify({ total: 90, labels: [], changes: 9 })
      }))
    expect(yield* every3.load(streamId)).toEqual(yield* plain.load(streamId))
    yield* Snapshot.awaitWrites
    expect(yield* latestSnapshot(streamId)).toEqual(Option.none())
  })

const ignoresAnotherStreamType = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("type")
    yield* handleAll(plain, streamId, [add(1), add(2)])
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      store.write({
        streamId,
        streamType: "other",
        version: 2,
        eventId: "never-stored",
        schemaId,
        state: JSON.stringify({ total: 50, labels: [], changes: 2 })
      }))
    expect(yield* every3.load(streamId)).toEqual(yield* plain.load(streamId))
  })

const ignoresReplacedEvents = () =>
  Effect.gen(function*() {
    const streamId = newStreamId("replaced")
    yield* handleAll(plain, streamId, Array.from({ length: 8 }, () => add(1)))
    // A snapshot at version 6 whose event there was another one (the stream was deleted and
    // written again): it must not count, even though the stream has grown past it.
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      store.write({
        streamId,
        streamType: "tally",
        version: 6,
        eventId: "a-deleted-event",
        schemaId,
        state: JSON.stringify({ total: 999, labels: [], changes: 6 })
      }))
    const loaded = yield* countingReads(every3.load(streamId))
    expect(loaded.result).toEqual(yield* plain.load(streamId))
    yield* Snapshot.awaitWrites
    expect(yield* latestSnapshot(streamId)).toEqual(Option.none())
    // Once rebuilt, a snapshot names the event at its version, and the next load starts there.
    yield* handleAll(every3, streamId, [add(1)])
    const rebuilt = Option.getOrThrow(yield* latestSnapshot(streamId))
    expect(rebuilt.version).toBe(9)
    expect(rebuilt.eventId).toBe(yield* eventIdAt(streamId, 9))
    expect((yield* countingReads(every3.load(streamId))).eventsRead).toBe(1)
  })

const ignoresAThrowingSchema = () =>
  Effect.gen(function*() {
    // A state Schema whose transformation throws instead of failing on what it cannot read.
    const Strict = Schema.transform(Schema.String, TallyState, {
      strict: true,
      decode: (text) => {
        if (!text.startsWith("{")) throw new Error(`not a tally: ${text}`)
        return JSON.parse(text) as TallyState
      },
      encode: (state) => JSON.stringify(state)
    })
    const strict = CommandHandler.make(tally, {
      snapshots: Snapshot.make({ state: Strict, policy: Snapshot.everyEvents(3) }),
      cache: false
    })
    const streamId = newStreamId("throws")
    yield* handleAll(strict, streamId, Array.from({ length: 4 }, () => add(2)))
    const id = Snapshot.identity(tally, Snapshot.make({ state: Strict, policy: Snapshot.everyEvents(3) }))
    expect(yield* Effect.map(latestSnapshot(streamId, id), Option.map((snapshot) => snapshot.version)))
      .toEqual(Option.some(3))
    yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
      Effect.flatMap(store.read(streamId, { schemaId: id }), (found) =>
        store.write({ ...Option.getOrThrow(found), state: JSON.stringify("garbage") })))
    expect(yield* strict.load(streamId)).toEqual(yield* plain.load(streamId))
    expect((yield* strict.handle(streamId, add(1))).version).toBe(5)
  })

const ignoresARecreatedStream = (deleteStream: (streamId: string) => Effect.Effect<void, unknown>) => () =>
  Effect.gen(function*() {
    const streamId = newStreamId("recreated")
    yield* handleAll(every3, streamId, Array.from({ length: 9 }, () => add(10)))
    expect(yield* snapshotVersion(streamId)).toEqual(Option.some(9))
    yield* deleteStream(streamId)
    yield* handleAll(plain, streamId, Array.from({ length: 10 }, () => add(1)))
    expect(yield* every3.load(streamId)).toEqual(yield* plain.load(streamId))
    expect((yield* every3.load(streamId)).state.total).toBe(10)
  })
