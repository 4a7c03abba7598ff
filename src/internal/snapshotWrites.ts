/**
 * Snapshot work in the background: written or deleted in a fiber of its own, outside the
 * caller's transaction, at most one piece per stream at a time.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { EventStore } from "../EventStore.js"
import { SnapshotStore } from "../SnapshotStore.js"
import * as TransactionProbe from "./transactionProbe.js"

/**
 * The background work under way on each store, by stream: at most one piece per stream at a time
 * (a write asked for while one is under way is dropped; a later command or load asks again), and
 * what `awaitWrites` waits for. Keyed by the store, so that each build of a layer has its own.
 */
const backgroundWork = new WeakMap<SnapshotStore, Map<string, Deferred.Deferred<void>>>()

export const awaitWrites: Effect.Effect<void, never, SnapshotStore> = Effect.flatMap(
  SnapshotStore,
  (store) => Effect.forEach(Array.from(backgroundWork.get(store)?.values() ?? []), Deferred.await, { discard: true })
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
      let streams = backgroundWork.get(store)
      if (streams === undefined) {
        streams = new Map()
        backgroundWork.set(store, streams)
      }
      if (streams.has(streamId)) return false
      streams.set(streamId, done)
      return true
    })
    if (!claimed) return
    yield* work.pipe(
      // A write that hangs (a connection that never answers) must not hold the claim for ever.
      Effect.timeoutFail({
        duration: backgroundTimeout,
        onTimeout: () => new Error(`timed out after ${backgroundTimeout}`)
      }),
      Effect.catchAllCause((cause) => Effect.logWarning(`Could not ${what}`, cause)),
      Effect.annotateLogs({ streamId }),
      Effect.ensuring(Effect.suspend(() => {
        backgroundWork.get(store)?.delete(streamId)
        return Deferred.succeed(done, undefined)
      })),
      Effect.forkDaemon
    )
  }))

const backgroundTimeout = "1 minute"

/**
 * Runs work on a stream's snapshots in the background, unless the caller is in a transaction:
 * what it read or appended there may still roll back (a snapshot must only ever hold events
 * that are stored for good), and on SQLite the work would wait for the connection the
 * transaction holds.
 */
export const outsideTransactions = (
  store: SnapshotStore,
  streamId: string,
  what: string,
  work: Effect.Effect<void, unknown, EventStore>
): Effect.Effect<void, never, EventStore> =>
  Effect.flatMap(
    EventStore,
    (events) =>
      Effect.flatMap(TransactionProbe.inTransaction(events), (inTransaction) =>
        inTransaction
          ? Effect.void
          : inBackground(store, streamId, what, Effect.provideService(work, EventStore, events)))
  )

/** The event at a version of a stream, if the stream has reached it. */
export const eventAt = (streamId: string, version: number) =>
  Effect.flatMap(EventStore, (store) =>
    Effect.map(
      Stream.runHead(store.readStream(streamId, { from: version, limit: 1 })),
      Option.filter((event) => event.version === version)
    ))
