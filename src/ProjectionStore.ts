/**
 * Where projections keep their checkpoints, and the transactions that tie a projection's writes
 * to its checkpoint: the service the projection runner needs from a backend, besides the
 * `EventStore`.
 *
 * On the SQL backends checkpoints live in the protocol's `projections` table, and a batch's
 * handler writes (through the same `SqlClient`) commit in one transaction with the checkpoint,
 * so a read model in the same database sees every event exactly once. In memory, checkpoints
 * live as long as the layer.
 *
 * Every store layer provides it: `EventStore.layerMemory`, `SqliteEventStore.layer`,
 * `PgEventStore.layer`, `SqlEventStore.layer`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type { CheckpointConflictError, EventStoreError } from "./Errors.js"
import type { RecordedEvent } from "./Events.js"
import * as Memory from "./internal/memory/projectionStore.js"
import type { Position } from "./Position.js"

/**
 * An event a projection could not handle and set aside (when it runs with dead-lettering).
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly projection: string
  readonly eventId: string
  readonly streamId: string
  readonly version: number
  readonly eventType: string
  readonly position: Position
  /** Why it could not be handled. */
  readonly reason: string
  readonly failedAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionStore {
  /** A projection's checkpoint: the position of the last event it has handled. */
  readonly checkpoint: (projection: string) => Effect.Effect<Option.Option<Position>, EventStoreError>
  /**
   * Moves a projection's checkpoint from `from` to `to` and runs `effect` (the handler's work)
   * in one transaction where the backend has transactions: both happen or neither does. Fails
   * with `CheckpointConflictError`, doing nothing, when the checkpoint is not at `from` (another
   * runner moved it).
   */
  readonly commit: <A, E, R>(
    projection: string,
    from: Option.Option<Position>,
    to: Position,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | CheckpointConflictError | EventStoreError, R>
  /**
   * Runs an effect in a transaction (a savepoint inside one), so that what it writes is undone
   * if it fails. In memory (with `EventStore.layerMemory`) the event store's appends are undone.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | EventStoreError, R>
  /** Records an event a projection sets aside; meant to run inside `commit`. */
  readonly deadLetter: (
    projection: string,
    event: RecordedEvent,
    reason: string
  ) => Effect.Effect<void, EventStoreError>
  /** The events a projection set aside, oldest first. */
  readonly deadLetters: (projection: string) => Effect.Effect<ReadonlyArray<DeadLetter>, EventStoreError>
  /**
   * Deletes a projection's checkpoint (and its dead letters) and runs `effect` (clearing its
   * read model) in one transaction, so that it starts again from the first event.
   */
  readonly reset: <A, E, R>(
    projection: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EventStoreError, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const ProjectionStore: Context.Tag<ProjectionStore, ProjectionStore> = Context.GenericTag<ProjectionStore>(
  "effect-eventsourcing/ProjectionStore"
)

/**
 * Checkpoints in memory, for tests with the in-memory event store (which provides it already).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ProjectionStore> = Layer.effect(ProjectionStore, Memory.make())
