/**
 * Loading through snapshots, and writing them in the background, for command handlers.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as Stream from "effect/Stream"
import type * as Decider from "../Decider.js"
import * as Events from "../Events.js"
import { EventStore } from "../EventStore.js"
import * as Position from "../Position.js"
import type { Snapshots } from "../Snapshot.js"
import type { StoredSnapshot } from "../SnapshotStore.js"
import { SnapshotStore } from "../SnapshotStore.js"
import type { Loaded, LoadError } from "./loading.js"
import { foldStream, initialOf, resumeStream } from "./loading.js"
import * as TransactionProbe from "./transactionProbe.js"

/**
 * A 64-bit FNV-1a hash of an AST's JSON form, in hex. The JSON form holds the AST's structure
 * and annotations, not the code of its transformations; bigint values in annotations (bounds,
 * examples) are written as text rather than refused.
 */
export const fingerprint = (ast: SchemaAST.AST): string => hashText(jsonOf(ast))

/** JSON text of a value, with bigints as text rather than refused. */
const jsonOf = (value: unknown): string => JSON.stringify(value, (_, item) => (typeof item === "bigint" ? `${item}n` : item))

const hashText = (text: string): string => {
  let hash = 0xcbf29ce484222325n
  for (let index = 0; index < text.length; index++) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(text.charCodeAt(index))) * 0x100000001b3n)
  }
  return hash.toString(16).padStart(16, "0")
}

/**
 * A fingerprint of what folding a decider's events depends on besides the state Schema: its
 * event types and their Schemas, how they evolved (each type's versions, former names, and each
 * upcast's old shape, code and stated identity), its initial state and the code of its `evolve`.
 * A snapshot folded when any of these differed may describe another state than folding the same
 * events now would, so it is not used: snapshots stay a cache that no result depends on.
 */
export const foldFingerprint = (decider: Decider.Decider<any, any, any, any, any>): string => {
  const evolution = Events.evolutionOf(decider.events)
  let initialState: string
  try {
    initialState = jsonOf(decider.initialState)
  } catch {
    initialState = String(decider.initialState)
  }
  return hashText(jsonOf({
    events: decider.events.ast,
    renamed: [...evolution.renamed].sort(),
    upcasts: [...evolution.upcasts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([type, steps]) => [
      type,
      steps.map((step) => ({ shape: step.ast, ...Events.upcastIdentity(step) }))
    ]),
    initialState,
    evolve: String(decider.evolve)
  }))
}

/** The identity a decider's snapshots are stored under: the settings' and the fold's. */
export const identity = (decider: Decider.Decider<any, any, any, any, any>, snapshots: Snapshots<any>): string =>
  `${snapshots.schemaId}+${foldFingerprint(decider)}`

/**
 * The background work under way on each store, by stream: at most one piece per stream at a time
 * (a write asked for while one is under way is dropped; a later command or load asks again), and
 * what `awaitWrites` waits for. Keyed by the store, so that each build of a layer has its own.
 */
const underWay = new WeakMap<SnapshotStore, Map<string, Deferred.Deferred<void>>>()

export const awaitWrites: Effect.Effect<void, never, SnapshotStore> = Effect.flatMap(
  SnapshotStore,
  (store) => Effect.forEach(Array.from(underWay.get(store)?.values() ?? []), Deferred.await, { discard: true })
)

/**
 * Runs work on a stream's snapshots in a fiber of its own, outside the caller's transaction
 * (whose connection may be gone by the time it runs), logging its failure instead of reporting
 * it: snapshots are a cache, and the caller has its result already.
 */
const inBackground = (store: SnapshotStore, streamId: string, what: string, work: Effect.Effect<void, unknown>) =>
  // Claiming the stream and forking are one step: an interruption between them would leave the
  // claim behind, and no snapshot of the stream would be written again.
  Effect.uninterruptible(Effect.gen(function*() {
    const done = yield* Deferred.make<void>()
    const claimed = yield* Effect.sync(() => {
      let streams = underWay.get(store)
      if (streams === undefined) {
        streams = new Map()
        underWay.set(store, streams)
      }
      if (streams.has(streamId)) return false
      streams.set(streamId, done)
      return true
    })
    if (!claimed) return
    yield* work.pipe(
      // A write that hangs (a connection that never answers) must not hold the claim for ever.
      Effect.timeoutFail({ duration: backgroundTimeout, onTimeout: () => new Error(`timed out after ${backgroundTimeout}`) }),
      Effect.catchAllCause((cause) => Effect.logWarning(`Could not ${what}`, cause)),
      Effect.annotateLogs({ streamId }),
      Effect.ensuring(Effect.suspend(() => {
        underWay.get(store)?.delete(streamId)
        return Deferred.succeed(done, undefined)
      })),
      Effect.forkDaemon
    )
  }))

const backgroundTimeout = "1 minute"

/** A load through snapshots: the stream folded, and the version of the snapshot it started from. */
export interface Load<State> {
  readonly loaded: Loaded<State>
  /** The version of the snapshot the load started from; `0` when it folded the whole stream. */
  readonly snapshotVersion: number
}

export const make = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>,
  snapshots: Snapshots<State>
) => {
  const fold = foldStream(decider)
  const resumeFrom = resumeStream(decider)
  const codec = Schema.parseJson(snapshots.state)
  const decode = Schema.decodeEither(codec)
  const encode = Schema.encode(codec)
  const { policy } = snapshots
  const schemaId = identity(decider, snapshots)
  const initial = initialOf(decider)

  /** A snapshot's state and version, and the id of the event at its version. */
  interface Usable {
    readonly folded: Loaded<State>
    readonly eventId: string
  }

  /** The state of a stored snapshot, if it is one this decider can start from. */
  const usable = (snapshot: StoredSnapshot): Effect.Effect<Option.Option<Usable>> => {
    if (snapshot.streamType !== decider.streamType || snapshot.version < 1) return Effect.succeedNone
    const ignored = (error: unknown) =>
      Effect.as(
        Effect.logWarning(`Ignored the snapshot at version ${snapshot.version}: its state does not decode`, error),
        Option.none()
      )
    let decoded: Either.Either<State, unknown>
    try {
      decoded = decode(snapshot.state)
    } catch (error) {
      // A transformation of the state Schema that throws instead of failing.
      return ignored(error)
    }
    return Either.match(decoded, {
      onLeft: ignored,
      // Its position is the one of the event at its version, which the load reads.
      onRight: (state) =>
        Effect.succeedSome({
          folded: { state, version: snapshot.version, position: Position.start },
          eventId: snapshot.eventId
        })
    })
  }

  /** The latest snapshot this decider can start from; a failure to read one is only logged. */
  const latest = (store: SnapshotStore, streamId: string) =>
    store.read(streamId, { schemaId }).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: usable })),
      Effect.catchAll((error) => Effect.as(Effect.logWarning("Could not read a snapshot", error), Option.none())),
      Effect.annotateLogs({ streamId, schemaId })
    )

  /**
   * Runs work on a stream's snapshots in the background, unless the caller is in a transaction:
   * what it read or appended there may still roll back (a snapshot must only ever hold events
   * that are stored for good), and on SQLite the work would wait for the connection the
   * transaction holds.
   */
  const outsideTransactions = (
    store: SnapshotStore,
    streamId: string,
    what: string,
    work: Effect.Effect<void, unknown, EventStore>
  ): Effect.Effect<void, never, EventStore> =>
    Effect.flatMap(EventStore, (events) =>
      Effect.flatMap(TransactionProbe.inTransaction(events), (inTransaction) =>
        inTransaction
          ? Effect.void
          : inBackground(store, streamId, what, Effect.provideService(work, EventStore, events))))

  /**
   * Snapshots a folded state, with the id of the event at its version, read afresh: if the
   * stream no longer holds the event the state was folded to, nothing is written.
   */
  const write = (store: SnapshotStore, streamId: string, folded: Loaded<State>) =>
    outsideTransactions(
      store,
      streamId,
      `write the snapshot at version ${folded.version}`,
      Effect.gen(function*() {
        const event = yield* eventAt(streamId, folded.version)
        if (Option.isNone(event) || !Position.equals(event.value.position, folded.position)) return
        const state = yield* encode(folded.state)
        yield* store.write({
          streamId,
          streamType: decider.streamType,
          version: folded.version,
          eventId: event.value.id,
          schemaId,
          state
        })
      })
    )

  /**
   * Folds a stream on from a snapshot, if the stream still holds the event the snapshot was
   * folded to. One it does not (cut short, or deleted and written again) describes other events:
   * it is not trusted, and the stream's snapshots are deleted.
   */
  const resume = (store: SnapshotStore, streamId: string, snapshot: Usable) =>
    Effect.gen(function*() {
      const resumed = yield* resumeFrom(streamId, snapshot.folded, snapshot.eventId)
      if (Option.isSome(resumed)) return resumed
      yield* Effect.logWarning(
        `Ignored the snapshot at version ${snapshot.folded.version}: the stream no longer holds the events it was folded from`
      ).pipe(Effect.annotateLogs({ streamId, schemaId }))
      yield* outsideTransactions(store, streamId, "delete the snapshots", store.delete(streamId))
      return Option.none()
    })

  /** Folds a stream from its latest usable snapshot, or from its start. */
  const load = (streamId: string): Effect.Effect<Load<State>, LoadError, EventStore | SnapshotStore> =>
    Effect.gen(function*() {
      const store = yield* SnapshotStore
      const snapshot = yield* latest(store, streamId)
      const resumed = Option.isSome(snapshot) ? yield* resume(store, streamId, snapshot.value) : Option.none()
      const result: Load<State> = Option.isSome(resumed) && Option.isSome(snapshot)
        ? { loaded: resumed.value, snapshotVersion: snapshot.value.folded.version }
        : { loaded: yield* fold(streamId, { start: initial }), snapshotVersion: 0 }
      if (policy._tag === "WhenLoadReads" && result.loaded.version - result.snapshotVersion >= policy.events) {
        yield* write(store, streamId, result.loaded)
      }
      return result
    })

  /**
   * After a command: snapshots the new state if the policy asks for it (`snapshotVersion`: the
   * version of the snapshot its load started from).
   */
  const snapshotIfDue = (
    streamId: string,
    folded: Loaded<State>,
    snapshotVersion: number
  ): Effect.Effect<void, never, EventStore | SnapshotStore> =>
    policy._tag === "EveryEvents" && folded.version - snapshotVersion >= policy.events
      ? Effect.flatMap(SnapshotStore, (store) => write(store, streamId, folded))
      : Effect.void

  return { load, snapshotIfDue }
}

/** The event at a version of a stream, if the stream has reached it. */
const eventAt = (streamId: string, version: number) =>
  Effect.flatMap(EventStore, (store) =>
    Effect.map(
      Stream.runHead(store.readStream(streamId, { from: version, limit: 1 })),
      Option.filter((event) => event.version === version)
    ))
