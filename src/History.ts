/**
 * Temporal queries and the audit trail: what a stream looked like as of a version or a point in
 * time, and who did what to it and when.
 *
 * ```ts
 * import { History } from "effect-eventsourcing"
 *
 * const cartAt = History.stateAt(Cart.decider)
 *
 * const program = Effect.gen(function*() {
 *   // The cart as it was at the end of February, and after its third event.
 *   const february = yield* cartAt(cartId, { time: new Date("2024-03-01T00:00:00Z") })
 *   const third = yield* cartAt(cartId, { version: 3 })
 *   // Its latest twenty events, newest first, with actor, timestamp and correlation ids.
 *   const latest = yield* Stream.runCollect(History.audit(cartId, { direction: "backward", limit: 20 }))
 * })
 * ```
 *
 * Both read the event store's stream as it is stored; nothing here writes.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Decider from "./Decider.js"
import type { EventDecodeError } from "./Errors.js"
import { StreamTypeMismatchError } from "./Errors.js"
import type { RecordedEvent } from "./Events.js"
import * as Events from "./Events.js"
import type { ReadError, ReadStreamOptions } from "./EventStore.js"
import { EventStore } from "./EventStore.js"
import type { Loaded, LoadError } from "./internal/loading.js"
import { foldStream, initialOf } from "./internal/loading.js"
import type * as Position from "./Position.js"

/**
 * The point of a stream's history to fold to: after the event at a version, or after the last
 * event recorded at or before a time.
 *
 * @since 0.1.0
 * @category models
 */
export type At =
  | { readonly version: number; readonly time?: never }
  | { readonly time: Date; readonly version?: never }

/**
 * Builds the temporal query of one decider's streams: `(streamId, at)` loads the stream as it
 * was at `at`. It reads, checks the stream type, decodes and folds exactly as
 * `CommandHandler.load` does, only stopping early, and returns the state with the version and
 * position of the last event folded.
 *
 * - `{ version: n }` folds the first `n` events. A version beyond the stream's end gives the
 *   latest state with the stream's real version, so compare `version` to tell. Version `0` is
 *   the initial state.
 * - `{ time }` folds the events recorded at or before `time` (inclusive, to the millisecond of
 *   the recorded `timestamp`, which each backend keeps to its own precision: see docs/09-history.md). It
 *   stops at the first event recorded after `time`: should a clock have gone back between two
 *   appends, an event is never folded without the events before it.
 * - A time before the first event, or a stream that does not exist, gives the initial state at
 *   version `0` and `Position.start`.
 * - A version that is not a non-negative integer, a `Date` that is not valid, or both at once,
 *   fail with `IllegalArgumentException`: in the error channel, because these values usually
 *   come from a person asking about the past, so they are worth reporting back rather than a
 *   defect.
 *
 * An event that does not decode fails with `EventDecodeError` only if the query reads it (a query
 * as of a time reads the first event after the time, to see its timestamp).
 *
 * @since 0.1.0
 * @category temporal queries
 */
export const stateAt = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>
): (
  streamId: string,
  at: At
) => Effect.Effect<Loaded<State>, LoadError | Cause.IllegalArgumentException, EventStore> => {
  const fold = foldStream(decider)
  const start = initialOf(decider)
  return (streamId, at) => {
    const problem = problemOf(at)
    if (problem !== undefined) return Effect.fail(new Cause.IllegalArgumentException(`History.stateAt: ${problem}`))
    // Version 0 still reads the first event, so that a stream of another type fails as it would
    // at any other version.
    if (at.version === 0) return fold(streamId, { start, toVersion: 1, stopBefore: () => true })
    if (at.version !== undefined) return fold(streamId, { start, toVersion: at.version })
    const time = at.time.getTime()
    return fold(streamId, { start, stopBefore: (recorded) => recorded.timestamp.getTime() > time })
  }
}

const problemOf = (at: At): string | undefined => {
  const { time, version } = at
  if (version !== undefined && time !== undefined) return "give a version or a time, not both"
  if (version !== undefined) {
    return Number.isSafeInteger(version) && version >= 0
      ? undefined
      : `version must be a non-negative integer, got ${String(version)}`
  }
  return time instanceof Date && !Number.isNaN(time.getTime())
    ? undefined
    : `time must be a valid Date, got ${String(time)}`
}

/**
 * One event of a stream's audit trail: who did what, when, and as part of what.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuditEntry<A = unknown> {
  readonly streamId: string
  /** The event's 1-based place in its stream. */
  readonly version: number
  /** The event's unique id: what a causation id of a later event refers to. */
  readonly eventId: string
  /** The event type. */
  readonly type: string
  /** Who caused the event. */
  readonly actor: string
  /** When the event was stored. */
  readonly timestamp: Date
  /** The event's place in the global order, shared by the events stored in the same append. */
  readonly position: Position.Position
  /** The id shared by everything done for one request or workflow, if one was recorded. */
  readonly correlationId: string | undefined
  /** The id of the message that caused the event, if one was recorded. */
  readonly causationId: string | undefined
  /** The other metadata entries (`Metadata.withEntries`, an event's own metadata). */
  readonly entries: Readonly<Record<string, unknown>>
  /** The version of the event type's schema the event was stored in (see `Evolution.declare`). */
  readonly schemaVersion: number
  /** The event's data: stored JSON, or the typed event from {@link auditOf}. */
  readonly data: A
}

/**
 * The audit entry of one recorded event, for audit trails across streams (`readAll` filtered by
 * a correlation id, say).
 *
 * @since 0.1.0
 * @category constructors
 */
export const auditEntry = <A>(recorded: RecordedEvent<A>): AuditEntry<A> => {
  const { causationId, correlationId, ...entries } = recorded.metadata
  return {
    streamId: recorded.streamId,
    version: recorded.version,
    eventId: recorded.id,
    type: recorded.type,
    actor: recorded.actor,
    timestamp: recorded.timestamp,
    position: recorded.position,
    correlationId,
    causationId,
    entries,
    schemaVersion: recorded.schemaVersion,
    data: recorded.data
  }
}

/**
 * A stream's audit trail: one entry per event, oldest first, with the data as stored. It reads
 * any stream, whatever its type, and shows data that no decider could decode. The options are
 * `readStream`'s and are checked as it checks them: `{ direction: "backward", limit: 20 }` reads
 * the latest twenty, newest first; `{ from: 10, limit: 10 }` versions 10 to 19. It reads the
 * stream a page at a time, so a long stream is never held in memory.
 *
 * @since 0.1.0
 * @category audit
 */
export const audit = (
  streamId: string,
  options?: ReadStreamOptions
): Stream.Stream<AuditEntry, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => Stream.map(store.readStream(streamId, options), auditEntry)))

/**
 * Builds the typed audit trail of one decider's streams: as {@link audit}, with each event's
 * data decoded by the decider's Schema. A stream of another type fails with
 * `StreamTypeMismatchError`, and an event that does not decode with `EventDecodeError` (naming
 * its stream, version and type) after the entries before it.
 *
 * @since 0.1.0
 * @category audit
 */
export const auditOf = <Event extends { readonly _tag: string }>(
  decider: Decider.Decider<any, any, Event, any, any>
): (
  streamId: string,
  options?: ReadStreamOptions
) => Stream.Stream<AuditEntry<Event>, ReadError | StreamTypeMismatchError | EventDecodeError, EventStore> => {
  const decode = Events.decoder(decider.events)
  const entryOf = (
    recorded: RecordedEvent
  ): Effect.Effect<AuditEntry<Event>, StreamTypeMismatchError | EventDecodeError> =>
    recorded.streamType === decider.streamType
      ? Effect.map(decode(recorded), auditEntry)
      : Effect.fail(
        new StreamTypeMismatchError({
          streamId: recorded.streamId,
          expectedType: decider.streamType,
          actualType: recorded.streamType
        })
      )
  return (streamId, options) =>
    Stream.unwrap(Effect.map(EventStore, (store) => Stream.mapEffect(store.readStream(streamId, options), entryOf)))
}
