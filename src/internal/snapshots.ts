/**
 * Loading through snapshots, for command handlers: from the latest usable snapshot of a stream,
 * reading only the events after it, and snapshotting the state when the policy asks for it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Decider from "../Decider.js"
import type { EventStore } from "../EventStore.js"
import * as Position from "../Position.js"
import type { Snapshots } from "../Snapshot.js"
import type { StoredSnapshot } from "../SnapshotStore.js"
import { SnapshotStore } from "../SnapshotStore.js"
import type { Loaded, LoadError } from "./loading.js"
import { foldStream, initialOf, resumeStream } from "./loading.js"
import { identity } from "./snapshotIdentity.js"
import { eventAt, outsideTransactions } from "./snapshotWrites.js"

export { fingerprint, identity } from "./snapshotIdentity.js"
export { awaitWrites } from "./snapshotWrites.js"

/** A load through snapshots: the stream folded, and the version of the snapshot it started from. */
export interface Load<State> {
  readonly loaded: Loaded<State>
  /** The version of the snapshot the load started from; `0` when it folded the whole stream. */
  readonly snapshotVersion: number
}

/** A snapshot's state and version, and the id of the event at its version. */
interface Usable<State> {
  readonly folded: Loaded<State>
  readonly eventId: string
}

/** The state of a stored snapshot, if it is one the decider can start from. */
const usable =
  <State>(streamType: string, decode: (state: string) => Either.Either<State, unknown>) =>
  (snapshot: StoredSnapshot): Effect.Effect<Option.Option<Usable<State>>> => {
    if (snapshot.streamType !== streamType || snapshot.version < 1) return Effect.succeedNone
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

/**
 * Snapshots a folded state, with the id of the event at its version, read afresh: if the stream
 * no longer holds the event the state was folded to, nothing is written.
 */
const writer = <State>(
  streamType: string,
  schemaId: string,
  encode: (state: State) => Effect.Effect<string, ParseResult.ParseError>
) =>
(store: SnapshotStore, streamId: string, folded: Loaded<State>) =>
  outsideTransactions(
    store,
    streamId,
    `write the snapshot at version ${folded.version}`,
    Effect.gen(function*() {
      const event = yield* eventAt(streamId, folded.version)
      if (Option.isNone(event) || !Position.equals(event.value.position, folded.position)) return
      const state = yield* encode(folded.state)
      yield* store.write({ streamId, streamType, version: folded.version, eventId: event.value.id, schemaId, state })
    })
  )

export const make = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>,
  snapshots: Snapshots<State>
) => {
  const fold = foldStream(decider)
  const resumeFrom = resumeStream(decider)
  const codec = Schema.parseJson(snapshots.state)
  const encode = Schema.encode(codec) as (state: State) => Effect.Effect<string, ParseResult.ParseError>
  const { policy } = snapshots
  const schemaId = identity(decider, snapshots)
  const start = initialOf(decider)
  const usableState = usable(decider.streamType, Schema.decodeEither(codec))
  const write = writer(decider.streamType, schemaId, encode)

  /** The latest snapshot this decider can start from; a failure to read one is only logged. */
  const latest = (store: SnapshotStore, streamId: string) =>
    store.read(streamId, { schemaId }).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: usableState })),
      Effect.catchAll((error) => Effect.as(Effect.logWarning("Could not read a snapshot", error), Option.none())),
      Effect.annotateLogs({ streamId, schemaId })
    )

  /**
   * Folds a stream on from a snapshot, if the stream still holds the event the snapshot was
   * folded to. One it does not (cut short, or deleted and written again) describes other events:
   * it is not trusted, and the stream's snapshots are deleted.
   */
  const resume = (store: SnapshotStore, streamId: string, snapshot: Usable<State>) =>
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
        : { loaded: yield* fold(streamId, { start }), snapshotVersion: 0 }
      if (policy._tag === "WhenLoadReads" && result.loaded.version - result.snapshotVersion >= policy.events) {
        yield* write(store, streamId, result.loaded)
      }
      return result
    })

  /**
   * After a command: snapshots the new state if the policy asks for it (`snapshotVersion`: the
   * version of the latest snapshot known, the one its load started from). The version of the
   * latest snapshot known afterwards.
   */
  const snapshotIfDue = (
    streamId: string,
    folded: Loaded<State>,
    snapshotVersion: number
  ): Effect.Effect<number, never, EventStore | SnapshotStore> =>
    policy._tag === "EveryEvents" && folded.version - snapshotVersion >= policy.events
      ? Effect.as(Effect.flatMap(SnapshotStore, (store) => write(store, streamId, folded)), folded.version)
      : Effect.succeed(snapshotVersion)

  return { load, snapshotIfDue }
}
