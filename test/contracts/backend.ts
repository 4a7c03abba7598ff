/**
 * The one shape a backend gives the contracts, whatever the backend and whatever the contract.
 *
 * Each contract opens a store of its own (a new in-memory store, a fresh SQLite file, a PostgreSQL
 * schema of its own) and runs its cases on it one after another; within a contract, each case
 * works on streams of its own (random ids), so the cases never see each other's events.
 */
import type { Effect, Layer } from "effect"
import type { EventStore, ProjectionStore, SnapshotStore } from "effect-eventsourcing"
import { live } from "../support/live.js"
import type { ReadModel } from "./readModel.js"

/** What the store layer of every backend provides. */
export type StoreServices = EventStore.EventStore | ProjectionStore.ProjectionStore | SnapshotStore.SnapshotStore

/** A counter event with the actor and timestamp it is to be recorded with. */
export interface DatedEvent {
  readonly by: number
  readonly actor: string
  readonly timestamp: Date
}

/**
 * Stores a new counter stream whose events carry the given timestamps, as a writer whose clock
 * said so would have stored them (the backend decides how: a test clock, plain SQL).
 */
export type WriteDated = (
  streamId: string,
  events: ReadonlyArray<DatedEvent>
) => Effect.Effect<void, unknown, EventStore.EventStore>

/** Runs an effect in a database transaction. */
export type InTransaction<R> = <A, E>(
  effect: Effect.Effect<A, E, EventStore.EventStore | SnapshotStore.SnapshotStore>
) => Effect.Effect<A, unknown, EventStore.EventStore | SnapshotStore.SnapshotStore | R>

/** The store one contract runs on, and what the contracts do to it behind the library's back. */
export interface ContractStore<R> {
  /** The store, with `R` besides (the `SqlClient`, on the SQL backends). */
  readonly layer: Layer.Layer<StoreServices | R, unknown>
  /**
   * The projection contract's read model, where a real one would live: a table in the store's
   * database on the SQL backends, memory otherwise.
   */
  readonly readModel: Layer.Layer<ReadModel, unknown, R>
  /** For the history contract: events with timestamps of the test's choosing. */
  readonly writeDated: WriteDated
  /** Replaces the state of every snapshot of a stream with this text, as plain SQL would. */
  readonly corruptSnapshots: (
    streamId: string,
    state: string
  ) => Effect.Effect<void, unknown, SnapshotStore.SnapshotStore>
  /** Deletes a stream's events and its row with plain SQL, as an operator would, on the SQL backends. */
  readonly deleteStream?: (streamId: string) => Effect.Effect<void, unknown>
  /** Runs an effect in a database transaction, on backends that have them. */
  readonly inTransaction?: InTransaction<R>
}

export interface ContractBackend<R = never> {
  /** The name of the backend's suite: "memory", "SQLite", "PostgreSQL". */
  readonly name: string
  /** Whether to skip every contract (PostgreSQL with `EVENTSOURCING_SKIP_POSTGRES=1`). */
  readonly skip: boolean
  /**
   * Whether a failed projection handler's writes are undone (SQL: they share the batch's
   * transaction). In memory they stay, so a retried batch applies its first events again.
   */
  readonly transactional: boolean
  /** A store of its own for one contract; the label names its PostgreSQL schema. */
  readonly open: (label: string) => ContractStore<R>
}

/** Registers cases that run on the real clock (see `live`). */
export type Tester<R> = ReturnType<typeof live<R>>

/**
 * The live tester of a `layer(...)` block, bound to that block now: a contract's groups register
 * their cases in `describe` blocks that vitest collects after the block's own callback returns.
 */
export const liveTester = <R>(methods: Parameters<typeof live<R>>[0]): Tester<R> => live({ effect: methods.effect })
