/**
 * How a projection runner handles a batch: all of it in one transaction with its checkpoint;
 * when the handler keeps failing, one append at a time, so that the appends before a failing
 * one are committed and the failing one is found; then it stops there, or sets the culprits
 * aside as dead letters.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type { CheckpointConflictError, EventDecodeError, EventStoreError } from "../Errors.js"
import { ProjectionError } from "../Errors.js"
import type { RecordedEvent } from "../Events.js"
import * as Events from "../Events.js"
import * as Position from "../Position.js"
import type { Projection } from "../Projection.js"
import type { ProjectionStore } from "../ProjectionStore.js"

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

type Failure = HandlerFailed | Undecodable

const isFailure = (failure: unknown): failure is Failure =>
  failure instanceof HandlerFailed || failure instanceof Undecodable

export interface BatchOptions {
  /** How to retry a failing handler before giving up on an event. */
  readonly retry: Schedule.Schedule<unknown, unknown>
  /** Whether to set events the handler gives up on aside (or stop at them). */
  readonly deadLetters: boolean
}

type BatchError = ProjectionError | CheckpointConflictError | EventStoreError

/**
 * The batch processor of a projection whose consumed event types are `types`: it commits a
 * batch and returns the position the checkpoint moved to.
 */
export const processor = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  projections: ProjectionStore,
  types: ReadonlySet<string>,
  options: BatchOptions
) => {
  const name = projection.name
  const handle = handler(projection, types)

  /** Commits `events` with the checkpoint moved to their end, retrying a failing handler. */
  const commit = (
    checkpoint: Option.Option<Position.Position>,
    events: ReadonlyArray<RecordedEvent>,
    oneByOne: boolean
  ) =>
    projections.commit(name, checkpoint, events.at(-1)!.position, handle(events, oneByOne)).pipe(
      Effect.retry({ schedule: options.retry, while: isFailure })
    )

  /** One append's events, when the handler keeps failing on them: stop, or set the culprits aside. */
  const giveUp = (
    checkpoint: Option.Option<Position.Position>,
    append: ReadonlyArray<RecordedEvent>,
    failure: Failure
  ): Effect.Effect<unknown, BatchError, R> => {
    if (!options.deadLetters) {
      const event = failure.event ?? append.find((event) => types.has(event.type))!
      const cause = failure instanceof Undecodable ? failure.error : failure.cause
      return Effect.fail(
        new ProjectionError({
          projection: name,
          streamId: event.streamId,
          version: event.version,
          eventType: event.type,
          cause
        })
      )
    }
    // Each event in a savepoint of its own: a failing one is undone and set aside, the others kept.
    const handleOrSetAside = (event: RecordedEvent) =>
      projections.transaction(handle([event], true)).pipe(
        Effect.catchAll((failure) =>
          isFailure(failure) ? projections.deadLetter(name, event, reason(failure)) : Effect.fail(failure)
        )
      )
    return projections.commit(name, checkpoint, append.at(-1)!.position, Effect.forEach(append, handleOrSetAside))
  }

  /** The appends of a batch one at a time, after the batch as a whole kept failing. */
  const oneAppendAtATime = (checkpoint: Option.Option<Position.Position>, batch: ReadonlyArray<RecordedEvent>) =>
    Effect.reduce(appendsOf(batch), checkpoint, (at, append) =>
      commit(at, append, true).pipe(
        Effect.catchIf(isFailure, (failure) => giveUp(at, append, failure)),
        Effect.as(Option.some(append.at(-1)!.position))
      )).pipe(Effect.map(Option.getOrThrow))

  return (
    checkpoint: Option.Option<Position.Position>,
    batch: ReadonlyArray<RecordedEvent>
  ): Effect.Effect<Position.Position, BatchError, R> =>
    commit(checkpoint, batch, false).pipe(
      Effect.as(batch.at(-1)!.position),
      Effect.catchIf(isFailure, () => oneAppendAtATime(checkpoint, batch))
    ) as Effect.Effect<Position.Position, BatchError, R>
}

/** The handler over the consumed events of some recorded events, each failure attributed. */
const handler = <Event extends { readonly _tag: string }, E, R>(
  projection: Projection<Event, E, R>,
  types: ReadonlySet<string>
) => {
  const decode = Events.decoder(projection.events)
  return (events: ReadonlyArray<RecordedEvent>, oneByOne: boolean) =>
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
}

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
