/**
 * Where snapshots are kept: the state of a stream folded up to a version, encoded as JSON text,
 * with what identifies the Schema it was encoded with. Command handlers given `Snapshot`
 * settings read the latest usable one and fold only the events after it, and write new ones in
 * the background (see `Snapshot`).
 *
 * Snapshots are a cache of what the events already say: deleting some or all of them changes no
 * result, only how many events the next loads read. So there is no transaction here, and a
 * stored snapshot is never trusted blindly: the handler ignores one it cannot use.
 *
 * Every store layer provides it, in the same database as the events: `EventStore.layerMemory`,
 * `SqliteEventStore.layer`, `PgEventStore.layer`, `SqlEventStore.layer`. On the SQL backends
 * snapshots live in the `snapshots` table: the latest snapshot of each stream for each schema
 * identity, so that processes running different versions of the state Schema (a rolling
 * deploy) keep their own.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { EventStoreError } from "./Errors.js"
import * as Memory from "./internal/memory/snapshotStore.js"

/**
 * A snapshot to store.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewSnapshot {
  readonly streamId: string
  /** The stream's type, checked by whoever loads the snapshot. */
  readonly streamType: string
  /** The version the state was folded to: it holds the stream's first `version` events. */
  readonly version: number
  /**
   * The id of the event at `version`. A load uses the snapshot only while the stream still holds
   * that event there: a stream cut short, or deleted and written again, has other events.
   */
  readonly eventId: string
  /** What identifies the Schema and the fold that produced the state (see `Snapshot.make`). */
  readonly schemaId: string
  /** The state, encoded with its Schema, as JSON text. */
  readonly state: string
}

/**
 * A snapshot as stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredSnapshot extends NewSnapshot {
  /** When it was stored. */
  readonly createdAt: Date
}

/**
 * Which snapshot of a stream to read.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  /** Only a snapshot with this schema identity. */
  readonly schemaId?: string | undefined
  /** Only a snapshot at or below this version, for a state as of an older version. */
  readonly maxVersion?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStore {
  /** The snapshot of a stream at the highest version among those the options allow, if any. */
  readonly read: (
    streamId: string,
    options?: ReadOptions
  ) => Effect.Effect<Option.Option<StoredSnapshot>, EventStoreError>
  /**
   * Stores a snapshot, replacing the one of the same stream, schema identity and version, and
   * deletes the older snapshots of the same stream and schema identity: only the latest is ever
   * loaded from.
   */
  readonly write: (snapshot: NewSnapshot) => Effect.Effect<void, EventStoreError>
  /** Deletes every snapshot of a stream. */
  readonly delete: (streamId: string) => Effect.Effect<void, EventStoreError>
  /** Deletes every snapshot of every stream. */
  readonly deleteAll: Effect.Effect<void, EventStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const SnapshotStore: Context.Tag<SnapshotStore, SnapshotStore> = Context.GenericTag<SnapshotStore>(
  "effect-eventsourcing/SnapshotStore"
)

/**
 * Snapshots in memory, for tests with the in-memory event store (which provides it already).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SnapshotStore> = Layer.effect(SnapshotStore, Memory.make)
