/**
 * Projections: read models kept up to date from the global order of events.
 *
 * A projection has a name, the Schema of the events it consumes, and a handler. Running it
 * follows the store's global order from the projection's checkpoint, in batches: it decodes the
 * events it consumes (others are passed over without decoding), runs the handler, and moves the
 * checkpoint past the batch. On the SQL backends the handler's writes through the same
 * `SqlClient` and the checkpoint commit in one transaction, so a read model in the same database
 * sees each event exactly once, whatever crashes or restarts. Side effects elsewhere (a broker,
 * an email) are at least once: see README for making such a handler idempotent.
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
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { CheckpointConflictError, EventDecodeError, EventStoreError } from "./Errors.js"
import { ProjectionError } from "./Errors.js"
import type { EventSchema, RecordedEvent } from "./Events.js"
import * as Events from "./Events.js"
import { defaultBatchSize, EventStore } from "./EventStore.js"
import * as States from "./internal/projectionStates.js"
import * as Position from "./Position.js"
import { isWellFormed } from "./internal/prepareAppend.js"
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
 * A projection whose handler takes one event at a time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Event extends { readonly _tag: string }, E = never, R = never>(options: {
  readonly name: string
  readonly events: EventSchema<Event>
  readonly handle: (event: RecordedEvent<Event>) => Effect.Effect<void, E, R>
}): Projection<Event, E, R> => ({
  name: options.name,
  events: options.events,
  handleBatch: (events) => Effect.forEach(events, options.handle, { discard: true })
})

/**
 * A projection whose handler takes a whole batch at once (to write it in one statement).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBatched = <Event extends { readonly _tag: string }, E = never, R = never>(
  projection: Projection<Event, E, R>
): Projection<Event, E, R> => projection

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
 * How a runner waits after losing its store (a database that went away) before it starts again.
 */
const reconnect = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))

/** A handler failure, with the event it failed on when it is known. */
class HandlerFailed {
  readonly _tag = "HandlerFailed"
  constructor(readonly cause: unknown, readonly event?: RecordedEvent) {}
}

/** An event the projection consumes that does not decode with its Schema. */
class Undecodable {
  readonly _tag = "Undecodable"
  constructor(readonly error: EventDecodeError, readonly event: RecordedEvent) {}
}

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
  Effect.scoped(Effect.gen(function*() {
    const store = yield* EventStore
    const projections = yield* ProjectionStore
    if (typeof projection.name !== "string" || projection.name.length === 0 || !isWellFormed(projection.name)) {
      // A lone surrogate would be stored as U+FFFD: two projections would share a checkpoint.
      return yield* Effect.dieMessage(
        `Projection ${JSON.stringify(projection.name)}: its name must be a non-empty, well-formed Unicode string`
      )
    }
    const types = Events.storedTypes(projection.events)
    if (types === undefined) {
      return yield* Effect.dieMessage(
        `Projection ${JSON.stringify(projection.name)}: its event Schema must be a union of tagged schemas`
      )
    }
    const decode = Events.decoder(projection.events)
    const retry = options?.retry ?? defaultRetry
    const deadLetters = options?.onFailure === "dead-letter"
    const name = projection.name

    /** The handler over the consumed events of some recorded events, each failure attributed. */
    const handle = (events: ReadonlyArray<RecordedEvent>, oneByOne: boolean) =>
      Effect.gen(function*() {
        const decoded: Array<RecordedEvent<Event>> = []
        for (const event of events) {
          if (!types.has(event.type)) continue
          const result = decode(event)
          if (Either.isLeft(result)) return yield* Effect.fail(new Undecodable(result.left, event))
          decoded.push(result.right)
        }
        if (decoded.length === 0) return
        if (!oneByOne) {
          return yield* Effect.mapError(projection.handleBatch(decoded), (cause) => new HandlerFailed(cause))
        }
        for (const event of decoded) {
          yield* Effect.mapError(projection.handleBatch([event]), (cause) => new HandlerFailed(cause, event))
        }
      })

    /** Commits `events` with the checkpoint moved to their end, retrying a failing handler. */
    const commit = (checkpoint: Option.Option<Position.Position>, events: ReadonlyArray<RecordedEvent>, oneByOne: boolean) =>
      projections.commit(name, checkpoint, events.at(-1)!.position, handle(events, oneByOne)).pipe(
        Effect.retry({ schedule: retry, while: (failure) => failure instanceof HandlerFailed })
      )

    /** One append's events, when the handler keeps failing on them: stop, or set the culprits aside. */
    const giveUp = (
      checkpoint: Option.Option<Position.Position>,
      append: ReadonlyArray<RecordedEvent>,
      failure: HandlerFailed | Undecodable
    ): Effect.Effect<unknown, ProjectionError | CheckpointConflictError | EventStoreError, R> => {
      const event = failure.event ?? append.find((event) => types.has(event.type))!
      const cause = failure instanceof Undecodable ? failure.error : failure.cause
      if (!deadLetters) {
        return Effect.fail(
          new ProjectionError({ projection: name, streamId: event.streamId, version: event.version, eventType: event.type, cause })
        )
      }
      // Each event in a savepoint of its own: a failing one is undone and set aside, the others kept.
      const handleOrSetAside = (event: RecordedEvent) =>
        projections.transaction(handle([event], true)).pipe(
          Effect.catchAll((failure) =>
            failure instanceof HandlerFailed || failure instanceof Undecodable
              ? projections.deadLetter(name, event, reason(failure))
              : Effect.fail(failure)
          )
        )
      return projections.commit(name, checkpoint, append.at(-1)!.position, Effect.forEach(append, handleOrSetAside))
    }

    /**
     * A batch: all of it in one transaction; if that keeps failing, one append at a time, so
     * that the appends before a failing one are committed and the failing one is found.
     */
    const processBatch = (
      checkpoint: Option.Option<Position.Position>,
      batch: ReadonlyArray<RecordedEvent>
    ): Effect.Effect<Position.Position, ProjectionError | CheckpointConflictError | EventStoreError, R> =>
      commit(checkpoint, batch, false).pipe(
        Effect.as(batch.at(-1)!.position),
        Effect.catchIf(
          (failure): failure is HandlerFailed | Undecodable =>
            failure instanceof HandlerFailed || failure instanceof Undecodable,
          () =>
            Effect.reduce(appendsOf(batch), checkpoint, (at, append) =>
              commit(at, append, true).pipe(
                Effect.catchIf(
                  (failure): failure is HandlerFailed | Undecodable =>
                    failure instanceof HandlerFailed || failure instanceof Undecodable,
                  (failure) => giveUp(at, append, failure)
                ),
                Effect.as(Option.some(append.at(-1)!.position))
              )).pipe(Effect.map(Option.getOrThrow))
        )
      ) as Effect.Effect<Position.Position, ProjectionError | CheckpointConflictError | EventStoreError, R>

    if (States.runsInline(projections, name)) return yield* Effect.dieMessage(States.bothWays(name))
    const runner = yield* Effect.acquireRelease(
      Effect.sync(() => States.register(projections, name)),
      (runner) => Effect.sync(runner.remove)
    )
    const batchSize = options?.batchSize ?? defaultBatchSize

    /** One term of leadership: hold the lead, follow from the checkpoint, process each batch. */
    const term = Effect.scoped(Effect.gen(function*() {
      runner.set("standby")
      const lost = yield* projections.lead(name)
      runner.set("catching-up")
      const follow = Effect.gen(function*() {
        let checkpoint = yield* projections.checkpoint(name)
        yield* store.subscribe({
          after: Option.getOrElse(checkpoint, () => Position.start),
          ...(options?.batchSize === undefined ? {} : { batchSize: options.batchSize }),
          ...(options?.pollInterval === undefined ? {} : { pollInterval: options.pollInterval })
        }).pipe(
          Stream.chunks,
          Stream.runForEach((chunk) => {
            const batch = [...chunk]
            // A batch short of the batch size was read up to the head: once it is handled, the
            // projection has caught up.
            if (batch.length === 0) return Effect.sync(() => runner.set("running"))
            return Effect.map(processBatch(checkpoint, batch), (next) => {
              checkpoint = Option.some(next)
              if (batch.length < batchSize) runner.set("running")
            })
          })
        )
      })
      return yield* Effect.raceFirst(
        // An event the store itself cannot read (its stored JSON is broken) stops the projection:
        // it cannot be handled, and going past it would skip it.
        Effect.catchTag(follow, "EventDecodeError", (error) =>
          Effect.fail(
            new ProjectionError({
              projection: name,
              streamId: error.streamId,
              version: error.version,
              eventType: error.eventType,
              cause: error
            })
          )),
        lost
      )
    }))

    return yield* term.pipe(
      Effect.tapError((error) =>
        error._tag === "ProjectionError"
          ? Effect.sync(() => runner.stop(error))
          : Effect.logWarning(`Projection ${JSON.stringify(name)} starts again from its checkpoint`, error)
      ),
      // The store failed, or another runner moved the checkpoint: begin again from the checkpoint.
      Effect.retry({ schedule: reconnect, while: (error) => error._tag !== "ProjectionError" }),
      Effect.flatMap(() => Effect.never),
      Effect.catchIf(
        (error): error is Exclude<typeof error, ProjectionError> => error._tag !== "ProjectionError",
        (error) => Effect.die(error)
      )
    ) as Effect.Effect<never, ProjectionError, R>
  }))

/** The events of a batch split into its appends (runs of one position), in order. */
const appendsOf = (batch: ReadonlyArray<RecordedEvent>): ReadonlyArray<ReadonlyArray<RecordedEvent>> => {
  const appends: Array<Array<RecordedEvent>> = []
  for (const event of batch) {
    const current = appends.at(-1)
    if (current !== undefined && Position.equals(current[0]!.position, event.position)) current.push(event)
    else appends.push([event])
  }
  return appends
}

/** Why an event was set aside, in words: the error's tag (or name) and message. */
const reason = (failure: HandlerFailed | Undecodable): string => {
  const cause = failure instanceof Undecodable ? failure.error : failure.cause
  if (cause instanceof Error) {
    const tag = (cause as { readonly _tag?: unknown })._tag
    return `${typeof tag === "string" ? tag : cause.name}: ${cause.message}`
  }
  return typeof cause === "string" ? cause : JSON.stringify(cause) ?? String(cause)
}

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
    const nextCommit = yield* projections.commits
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
