/**
 * Projections: read models kept up to date from the global order of events.
 *
 * A projection has a name, the Schema of the events it consumes, and a handler. Running it
 * follows the store's global order from the projection's checkpoint, in batches: it decodes the
 * events it consumes (others are passed over without decoding), runs the handler, and moves the
 * checkpoint past the batch. On the SQL backends the handler's writes through the same
 * `SqlClient` and the checkpoint commit in one transaction, so a read model in the same database
 * sees each event exactly once, whatever crashes or restarts. Side effects elsewhere (a broker,
 * an email) are at least once: see docs/06-projections.md for making such a handler idempotent.
 *
 * ```ts
 * import { Projection } from "effect-eventsourcing"
 *
 * const carts = Projection.make({
 *   name: "carts",
 *   events: CartEvent,
 *   handle: (event) => Effect.flatMap(SqlClient.SqlClient, (sql) => ...)
 * })
 *
 * // Runs for as long as the application: a layer forks it.
 * const CartsLive = Projection.layer(carts)
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { EventStoreError, ProjectionError } from "./Errors.js"
import type { EventSchema, RecordedEvent } from "./Events.js"
import { defaultBatchSize, EventStore } from "./EventStore.js"
import * as Runner from "./internal/projectionRunner.js"
import * as RunnerSupport from "./internal/projectionRunnerSupport.js"
import * as States from "./internal/projectionStates.js"
import * as Position from "./Position.js"
import { ProjectionStore } from "./ProjectionStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Projection<Event extends { readonly _tag: string }, E = never, R = never> {
  /** Names the projection's checkpoint: a new name starts from the first event (a rebuild). */
  readonly name: string
  /** The events it consumes: a union of tagged schemas. Events of other types are passed over. */
  readonly events: EventSchema<Event>
  /** Handles the consumed events of a batch, in order. */
  readonly handleBatch: (events: ReadonlyArray<RecordedEvent<Event>>) => Effect.Effect<void, E, R>
}

/**
 * Any projection, for functions that accept every projection.
 *
 * @since 0.1.0
 * @category models
 */
export type Any = Projection<any, any, any>

/**
 * Defines a projection, with a handler of one event at a time (`handle`) or of a whole batch at
 * once (`handleBatch`, to write it in one statement).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Event extends { readonly _tag: string }, E = never, R = never>(
  options:
    & {
      readonly name: string
      readonly events: EventSchema<Event>
    }
    & (
      | { readonly handle: (event: RecordedEvent<Event>) => Effect.Effect<void, E, R> }
      | { readonly handleBatch: (events: ReadonlyArray<RecordedEvent<Event>>) => Effect.Effect<void, E, R> }
    )
): Projection<Event, E, R> => ({
  name: options.name,
  events: options.events,
  handleBatch: "handleBatch" in options
    ? options.handleBatch
    : (events) => Effect.forEach(events, options.handle, { discard: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Events read per batch, and so at most handled per transaction (default 500). */
  readonly batchSize?: number
  /** How long to wait for new events when nothing announces them (default 1 second). */
  readonly pollInterval?: Duration.DurationInput
  /** How to retry a failing handler before giving up on an event (default {@link defaultRetry}). */
  readonly retry?: Schedule.Schedule<unknown, unknown>
  /**
   * What to do with an event whose handler keeps failing, or that does not decode: `"stop"` the
   * projection with a `ProjectionError`, its checkpoint before the event (the default), or
   * `"dead-letter"` it (record it in the dead letters, skip it, and go on).
   */
  readonly onFailure?: "stop" | "dead-letter"
}

/**
 * The default retry of a failing handler: 5 more attempts, 100 milliseconds apart and doubling
 * (about 3 seconds in all).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.intersect(Schedule.recurs(5))
)

/**
 * Runs a projection until interrupted: follows the global order from its checkpoint, catching up
 * and then following live. Interrupting it is graceful: the batch in flight commits with its
 * checkpoint, or not at all.
 *
 * It takes the projection's lead first (see `ProjectionStore.lead`), so that only one runner
 * of a projection works at a time; a second one waits and takes over when the first stops. When
 * the store fails (a database that went away), the runner starts again from its checkpoint
 * after a pause. It fails only with `ProjectionError`, when it stops at an event.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  options?: RunOptions
): Effect.Effect<never, ProjectionError, EventStore | ProjectionStore | R> =>
  Runner.run(projection, {
    batchSize: options?.batchSize ?? defaultBatchSize,
    pollInterval: options?.pollInterval,
    retry: options?.retry ?? defaultRetry,
    deadLetters: options?.onFailure === "dead-letter"
  })

/**
 * Runs a projection for the life of a layer: an application starts its projections by
 * providing their layers. If the projection stops at an event, the failure is logged and the
 * rest of the application goes on; use {@link run} to handle it yourself.
 *
 * @since 0.1.0
 * @category running
 */
export const layer = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  options?: RunOptions
): Layer.Layer<never, never, EventStore | ProjectionStore | R> =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      run(projection, options).pipe(
        Effect.tapErrorCause((cause) => Effect.logError(`Projection ${JSON.stringify(projection.name)} stopped`, cause))
      )
    )
  )

/**
 * Where a projection is: its checkpoint, the head of the global order, how many events it has
 * still to read, and what its runners in this process are doing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly projection: string
  readonly checkpoint: Option.Option<Position.Position>
  readonly head: Position.Position
  /**
   * Events after the checkpoint that a reader can read now, counted up to `countUpTo` (see
   * {@link status}): when there are more, `lag` is that many and `lagIsExact` is `false`.
   */
  readonly lag: number
  readonly lagIsExact: boolean
  /**
   * What the runners of the projection in this process are doing (see {@link RunnerState}):
   * `"not-running"` when none runs here (one may run in another process).
   */
  readonly state: RunnerState | "not-running"
  /** Why the projection stopped, when `state` is `"stopped"`. */
  readonly error: Option.Option<ProjectionError>
}

/**
 * What a runner of a projection in this process is doing: `"standby"` (waiting for the lead,
 * which another runner holds), `"catching-up"` (reading the events after its checkpoint, not yet
 * up to the head), `"running"` (caught up, handling events as they come) or `"stopped"` (at an
 * event, with a `ProjectionError`; it stays so until a runner starts again).
 *
 * @since 0.1.0
 * @category models
 */
export type RunnerState = States.RunnerState

/**
 * How many events after its checkpoint {@link status} counts by default: enough to tell a
 * projection that keeps up from one that does not, without a count that grows with the lag.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCountUpTo = 10_000

/**
 * Where a projection is (see {@link Status}). It costs a few index lookups and a count of at most
 * `countUpTo` events (default {@link defaultCountUpTo}), whatever the size of the store and the
 * lag, so it can be polled.
 *
 * @since 0.1.0
 * @category operations
 */
export const status = (
  projection: string,
  options?: { readonly countUpTo?: number }
): Effect.Effect<Status, EventStoreError, EventStore | ProjectionStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const projections = yield* ProjectionStore
    const countUpTo = options?.countUpTo ?? defaultCountUpTo
    const checkpoint = yield* projections.checkpoint(projection)
    const head = yield* store.head
    const counted = yield* store.countAfter(Option.getOrElse(checkpoint, () => Position.start), { upTo: countUpTo + 1 })
    const runners = States.stateOf(projections, projection)
    return {
      projection,
      checkpoint,
      head,
      lag: Math.min(counted, countUpTo),
      lagIsExact: counted <= countUpTo,
      state: runners?.state ?? "not-running",
      error: Option.fromNullable(runners?.error)
    }
  })

/**
 * Waits until a projection has handled everything up to a position (read-your-writes): pass the
 * `position` of an append's result, then read the read model. Wakes as soon as a runner in this
 * process commits, and checks the checkpoint at least every `interval` (default 100 ms) for
 * runners elsewhere. Fails with the projection's `ProjectionError` when it stopped in this
 * process (and no runner of it here still works) before reaching the position. Combine it with
 * `Effect.timeout` to bound the wait.
 *
 * @since 0.1.0
 * @category operations
 */
export const waitFor = (
  projection: string,
  position: Position.Position,
  options?: { readonly interval?: Duration.DurationInput }
): Effect.Effect<void, EventStoreError | ProjectionError, ProjectionStore> =>
  Effect.scoped(Effect.gen(function*() {
    const projections = yield* ProjectionStore
    const nextCommit = yield* RunnerSupport.supportOf(projections).commits
    const interval = Duration.decode(options?.interval ?? "100 millis")
    // Position.start (an append that stored nothing on a new stream) is reached before anything.
    const reached = Position.equals(position, Position.start)
      ? Effect.succeed(true)
      : Effect.map(
        projections.checkpoint(projection),
        Option.exists((checkpoint) => !Position.isAfter(position, checkpoint))
      )
    while (!(yield* reached)) {
      const runners = States.stateOf(projections, projection)
      if (runners?.state === "stopped" && runners.error !== undefined) return yield* runners.error
      yield* Effect.raceFirst(nextCommit, Effect.sleep(interval))
    }
  }))

/**
 * Starts a projection again from the first event: deletes its checkpoint and dead letters and
 * runs `clear` (which should empty its read model) in one transaction. Stop its runners first.
 *
 * To rebuild without taking the read model away, give the new version of the projection a new
 * name (and a new table): run it beside the old one, and switch readers over when its lag is 0.
 *
 * @since 0.1.0
 * @category operations
 */
export const reset = <A, E, R>(
  projection: string,
  clear: Effect.Effect<A, E, R>
): Effect.Effect<A, E | EventStoreError, R | ProjectionStore> =>
  Effect.flatMap(ProjectionStore, (projections) => projections.reset(projection, clear))
