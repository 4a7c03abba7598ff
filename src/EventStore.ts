/**
 * The event store service: append events to streams under optimistic concurrency, read a
 * stream, read the global order.
 *
 * It works on events in their stored form ({@link NewEvent}, {@link RecordedEvent} with JSON
 * data), so one service serves every aggregate; typed access for one decider comes from its
 * Schema (see `CommandHandler` and `Events.decoder`). Backends are layers: `layerMemory` here,
 * the SQL backends in their own modules.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import type { AppendError, EventDecodeError, EventStoreError } from "./Errors.js"
import type { NewEvent, RecordedEvent } from "./Events.js"
import type { ExpectedVersion } from "./ExpectedVersion.js"
import * as MemoryEventStore from "./internal/memory/eventStore.js"
import * as MemoryProjectionStore from "./internal/memory/projectionStore.js"
import * as ReadOptions from "./internal/readOptions.js"
import * as Subscription from "./internal/subscription.js"
import type { Position } from "./Position.js"
import * as ProjectionStore from "./ProjectionStore.js"
import * as SnapshotStore from "./SnapshotStore.js"

/**
 * Events to append to one stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendRequest {
  readonly streamId: string
  /** The stream's type: recorded when the stream is created, checked on every later append. */
  readonly streamType: string
  /** The optimistic-concurrency check; see `ExpectedVersion`. */
  readonly expectedVersion: ExpectedVersion
  /**
   * The events, in order. An empty list stores nothing but still checks the expected version
   * and the stream type, so it can assert a stream's version.
   */
  readonly events: ReadonlyArray<NewEvent>
}

/**
 * What one stream looks like after an append.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  readonly streamId: string
  /** The stream's version after the append: the version to expect next time. */
  readonly version: number
  /**
   * The global position of the stream's last event after the append: the append's own position
   * when it stored events, otherwise that of the stream's latest event (`Position.start` for a
   * stream that does not exist). Waiting for a reader to reach it is read-your-writes.
   */
  readonly position: Position
  /** The events as stored, with their versions, ids, actor, timestamp and metadata. */
  readonly events: ReadonlyArray<RecordedEvent>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadStreamOptions {
  /** `"forward"` (the default) from the first version up, or `"backward"` from the latest down. */
  readonly direction?: "forward" | "backward"
  /**
   * The first version to read (inclusive). Forward it defaults to `1`; backward to the stream's
   * latest version.
   */
  readonly from?: number
  /** The most events to read. */
  readonly limit?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  /** Read the events after this position; defaults to `Position.start` (everything). */
  readonly after?: Position
  /**
   * How many events to fetch per round trip (default {@link defaultBatchSize}). A batch always
   * ends on a whole append, so it may hold more events when one append stored more than this.
   */
  readonly batchSize?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /** Follow the events after this position; defaults to `Position.start` (everything). */
  readonly after?: Position
  /** How many events to fetch per round trip (default {@link defaultBatchSize}). */
  readonly batchSize?: number
  /**
   * How long to wait for new events before reading again when nothing tells the subscription
   * of them (default {@link defaultPollInterval}). Appends made through the same store, and on
   * PostgreSQL appends from anywhere, wake subscriptions at once; the poll is the fallback.
   */
  readonly pollInterval?: Duration.DurationInput
}

/**
 * How long a subscription waits for new events before reading again: one second.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPollInterval: Duration.Duration = Subscription.defaultPollInterval

/**
 * Events fetched per round trip when a read names no batch size.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBatchSize: number = ReadOptions.defaultBatchSize

/**
 * What a read can fail with: the storage failed, or a stored event is not readable JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export type ReadError = EventStoreError | EventDecodeError

/**
 * @since 0.1.0
 * @category models
 */
export interface CountOptions {
  /** Count at most this many events (a positive integer; default: all of them). */
  readonly upTo?: number
}

/**
 * A way the stored rows break what the store promises of them. The library never writes such
 * rows; another writer of the protocol's tables can. Reads that meet one fail with
 * `EventDecodeError` and appends to the stream fail with `EventStoreError`, rather than giving
 * results that contradict the rows.
 *
 * - `EventWithoutStream`: an event whose stream has no row in the entities table (no reader can
 *   read it).
 * - `VersionGap`: a stream whose versions are not 1 to its last one without a gap: it holds
 *   `events` events, the last at `lastVersion`.
 * - `StaleVersion`: a stream whose version in the entities table is not the version of its last
 *   event (`lastVersion`, `0` when it has none).
 * - `OutOfOrder`: an event that comes before the previous version of its stream in the global
 *   order.
 * - `SharedPosition`: a position that two appends share (PostgreSQL: two transactions wrote
 *   events at it).
 *
 * @since 0.1.0
 * @category models
 */
export type Violation =
  | {
    readonly _tag: "EventWithoutStream"
    readonly streamId: string
    readonly version: number
    readonly position: Position
  }
  | { readonly _tag: "VersionGap"; readonly streamId: string; readonly events: number; readonly lastVersion: number }
  | { readonly _tag: "StaleVersion"; readonly streamId: string; readonly version: number; readonly lastVersion: number }
  | { readonly _tag: "OutOfOrder"; readonly streamId: string; readonly version: number }
  | { readonly _tag: "SharedPosition"; readonly position: Position; readonly streamIds: ReadonlyArray<string> }

/**
 * What `verify` found.
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifyReport {
  readonly violations: ReadonlyArray<Violation>
  /** `false` when some check found more than the limit and listed only that many. */
  readonly complete: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  /** The most violations each check lists (default 100). */
  readonly limit?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EventStore {
  /**
   * Appends events to one stream if its version satisfies the expected version, atomically:
   * all of them or none. An append whose event ids are exactly those of an earlier append to
   * the stream is a retry: it stores nothing and returns the original result.
   */
  readonly append: (request: AppendRequest) => Effect.Effect<AppendResult, AppendError>
  /**
   * Appends to several streams at once, atomically and at one global position ("published
   * together"): every stream's expected version must hold, or nothing is stored. A stream may
   * appear only once.
   */
  readonly appendMany: (
    requests: ReadonlyArray<AppendRequest>
  ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError>
  /** Reads one stream's events in version order, or in reverse. A missing stream is empty. */
  readonly readStream: (
    streamId: string,
    options?: ReadStreamOptions
  ) => Stream.Stream<RecordedEvent, ReadError>
  /**
   * Reads the global order after a position, in batches, up to the latest event visible when
   * each batch is read, then ends. Every event appears once, in the same order for every reader.
   */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<RecordedEvent, ReadError>
  /**
   * Follows the global order: reads the events after a position, as `readAll` does, and then
   * waits for new ones and reads them as they are appended, without end. Each chunk of the
   * stream is one batch of whole appends, so a consumer that processes chunks can checkpoint at
   * the end of each. Every event appears once, in the same order for every subscriber. When the
   * store fails for a while (a lost connection, a restarting server), it reads again, backing
   * off from 100 ms to 5 seconds, for about a minute before it fails with the store's error.
   */
  readonly subscribe: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, ReadError>
  /** A stream's current version: the number of its events, `0` if it does not exist. */
  readonly streamVersion: (streamId: string) => Effect.Effect<number, EventStoreError>
  /** The position of the latest event a reader can read now (`Position.start` if none). */
  readonly head: Effect.Effect<Position, EventStoreError>
  /**
   * How many events a reader can read now after a position: a reader's lag. Counting takes as
   * long as the events counted: with `upTo`, it counts no further than that many (a bound on
   * the cost whatever the lag).
   */
  readonly countAfter: (position: Position, options?: CountOptions) => Effect.Effect<number, EventStoreError>
  /**
   * Checks the whole store for rows that break what the store promises of them (see
   * {@link Violation}): for operators, after another writer of the protocol's tables ran, or
   * when a read fails on a row. It reads every event, so it takes as long as a full read.
   */
  readonly verify: (options?: VerifyOptions) => Effect.Effect<VerifyReport, EventStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const EventStore: Context.Tag<EventStore, EventStore> = Context.GenericTag<EventStore>(
  "effect-eventsourcing/EventStore"
)

/**
 * An event store in memory: the full contract, safe under concurrent fibers, for tests and
 * demos. Event data and metadata are kept as JSON text, as a database would keep them, so what
 * a test reads back is what a SQL backend would return. Timestamps come from the `Clock`, so
 * `TestClock` controls them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<EventStore> = MemoryEventStore.make

/**
 * The in-memory event store as a layer, with checkpoints for projections and snapshots in memory
 * too; every build of the layer starts empty. Its projection store's transactions are the event
 * store's: appends made in a projection batch or with an inline projection are undone when the
 * batch or the projection fails, and seen by no other fiber until they commit, as on the SQL
 * backends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<EventStore | ProjectionStore.ProjectionStore | SnapshotStore.SnapshotStore> =
  Layer.mergeAll(
    Layer.effectContext(Effect.gen(function*() {
      // The projection store shares the event store's transactions, so that a failed inline
      // projection or projection batch undoes its appends, as on the SQL backends.
      const { store, transaction } = yield* MemoryEventStore.makeWithTransactions
      const projections = yield* MemoryProjectionStore.make({ transaction })
      return Context.make(EventStore, store).pipe(Context.add(ProjectionStore.ProjectionStore, projections))
    })),
    SnapshotStore.layerMemory
  )
