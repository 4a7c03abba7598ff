/**
 * A projection's runner: it takes the projection's lead, follows the global order from the
 * checkpoint and commits each batch; when the store fails or another runner moved the
 * checkpoint, it starts again from the checkpoint after a pause.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { ProjectionError } from "../Errors.js"
import * as Events from "../Events.js"
import { EventStore } from "../EventStore.js"
import * as Position from "../Position.js"
import type { Projection } from "../Projection.js"
import { ProjectionStore } from "../ProjectionStore.js"
import { isStorable } from "./prepareAppend.js"
import type { BatchOptions } from "./projectionBatches.js"
import * as Batches from "./projectionBatches.js"
import * as RunnerSupport from "./projectionRunnerSupport.js"
import * as States from "./projectionStates.js"

export interface Options extends BatchOptions {
  readonly batchSize: number
  readonly pollInterval?: Duration.DurationInput | undefined
}

/** How a runner waits after losing its store (a database that went away) before it starts again. */
const reconnect = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))

/** The stored types a projection consumes; a projection that cannot run is a defect. */
const consumedTypes = (projection: Projection<any, any, any>): Effect.Effect<ReadonlySet<string>> => {
  if (typeof projection.name !== "string" || projection.name.length === 0 || !isStorable(projection.name)) {
    // A lone surrogate would be stored as U+FFFD (two projections would share a checkpoint), and
    // PostgreSQL refuses NUL.
    return Effect.dieMessage(
      `Projection ${
        JSON.stringify(projection.name)
      }: its name must be a non-empty, well-formed Unicode string without NUL`
    )
  }
  const types = Events.storedTypes(projection.events)
  return types === undefined
    ? Effect.dieMessage(
      `Projection ${JSON.stringify(projection.name)}: its event Schema must be a union of tagged schemas`
    )
    : Effect.succeed(types)
}

export const run = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  options: Options
): Effect.Effect<never, ProjectionError, EventStore | ProjectionStore | R> =>
  Effect.scoped(Effect.gen(function*() {
    const projections = yield* ProjectionStore
    const types = yield* consumedTypes(projection)
    const name = projection.name
    if (States.runsInline(projections, name)) return yield* Effect.dieMessage(States.bothWays(name))
    const runner = yield* Effect.acquireRelease(
      Effect.sync(() => States.register(projections, name)),
      (runner) => Effect.sync(runner.remove)
    )
    return yield* whileLeading(projection, runner, Batches.processor(projection, projections, types, options), options)
      .pipe(
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

/**
 * One term of leadership: hold the lead, follow from the checkpoint, process each batch, until
 * the lead is lost or something fails.
 */
const whileLeading = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  runner: ReturnType<typeof States.register>,
  processBatch: ReturnType<typeof Batches.processor<Event, E, R>>,
  options: Options
) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* EventStore
    const projections = yield* ProjectionStore
    const name = projection.name
    runner.set("standby")
    const lost = yield* RunnerSupport.supportOf(projections).lead(name)
    runner.set("catching-up")
    const follow = Effect.gen(function*() {
      let checkpoint = yield* projections.checkpoint(name)
      yield* store.subscribe({
        after: Option.getOrElse(checkpoint, () => Position.start),
        batchSize: options.batchSize,
        ...(options.pollInterval === undefined ? {} : { pollInterval: options.pollInterval })
      }).pipe(
        // The next batch is read while this one is handled and committed (on another connection
        // where the store has several): reading and handling overlap instead of taking turns.
        Stream.bufferChunks({ capacity: 1 }),
        Stream.chunks,
        Stream.runForEach((chunk) => {
          const batch = [...chunk]
          // A batch short of the batch size was read up to the head: once it is handled, the
          // projection has caught up.
          if (batch.length === 0) return Effect.sync(() => runner.set("running"))
          return Effect.map(processBatch(checkpoint, batch), (next) => {
            checkpoint = Option.some(next)
            if (batch.length < options.batchSize) runner.set("running")
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
