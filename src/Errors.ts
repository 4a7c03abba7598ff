/**
 * The typed failures of the event store and of the typed layer above it.
 *
 * Each carries the facts needed to act on it and a readable `message`. Infrastructure failures
 * ({@link EventStoreError}) wrap their cause; the others describe a rule that was broken and
 * never mean that anything was stored.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * Another writer changed the stream after the version this append expected: nothing of the
 * append was stored. Re-read the stream and decide again (the command handler does this). An
 * append to several streams names the first whose expectation failed (in the order given) and
 * lists the others in `others`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyError extends Schema.TaggedError<ConcurrencyError>()("ConcurrencyError", {
  streamId: Schema.String,
  expectedVersion: ExpectedVersion.ExpectedVersion,
  actualVersion: Schema.Number,
  /** The other streams of the append (`appendMany`) whose expectation failed too, if any. */
  others: Schema.optionalWith(
    Schema.Array(Schema.Struct({
      streamId: Schema.String,
      expectedVersion: ExpectedVersion.ExpectedVersion,
      actualVersion: Schema.Number
    })),
    { default: () => [] }
  )
}) {
  override get message(): string {
    return [this, ...this.others].map((conflict, index) =>
      `${index === 0 ? "Concurrency conflict on stream" : "and on stream"} ${
        JSON.stringify(conflict.streamId)
      }: expected ${ExpectedVersion.format(conflict.expectedVersion)}, found version ${conflict.actualVersion}`
    ).join("; ")
  }
}

/**
 * The stream exists with another stream type than the one being appended or loaded.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamTypeMismatchError extends Schema.TaggedError<StreamTypeMismatchError>()(
  "StreamTypeMismatchError",
  {
    streamId: Schema.String,
    expectedType: Schema.String,
    actualType: Schema.String
  }
) {
  override get message(): string {
    return `Stream ${JSON.stringify(this.streamId)} has type ${JSON.stringify(this.actualType)}, not ${
      JSON.stringify(this.expectedType)
    }`
  }
}

/**
 * A stored event could not be decoded with the Schema it is read with: its data is not valid
 * JSON, its type is unknown to the Schema, or its data does not match it. Rows that break what
 * the protocol promises (written by another writer) fail the same way: an event whose stream
 * has no row in the entities table, an event beyond its stream's version, a version missing from
 * a stream (`eventType` is then empty).
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamId: Schema.String,
  version: Schema.Number,
  eventType: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    // No event type: the event at the version is missing (rows another writer left broken).
    const what = this.eventType === ""
      ? `Cannot read version ${this.version}`
      : `Cannot decode event ${JSON.stringify(this.eventType)} at version ${this.version}`
    return `${what} of stream ${JSON.stringify(this.streamId)}: ${this.reason}`
  }
}

/**
 * An event produced by the application cannot be stored: it does not encode with its Schema,
 * or would not decode back from the JSON it would be stored as.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>()("EventEncodeError", {
  streamType: Schema.String,
  eventType: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Cannot encode event ${JSON.stringify(this.eventType)} for stream type ${
      JSON.stringify(this.streamType)
    }: ${this.reason}`
  }
}

/**
 * An append was malformed (an empty stream id or type, an invalid expected version, an event
 * whose data JSON cannot hold, the same stream twice in one call) or reused a stored event id
 * without being a retry of the append that stored it: nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAppendError extends Schema.TaggedError<InvalidAppendError>()("InvalidAppendError", {
  streamId: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid append to stream ${JSON.stringify(this.streamId)}: ${this.reason}`
  }
}

/**
 * The storage failed (connection lost, disk full, a driver error): the operation did not
 * complete. An append that fails this way stored nothing, except when the connection was lost
 * while committing: then its outcome is unknown, and sending it again with the same event ids
 * is safe (a retry returns the original result).
 *
 * @since 0.1.0
 * @category errors
 */
export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  operation: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return `Event store failed to ${this.operation}: ${describeCause(this.cause)}`
  }
}

/**
 * An append inside the application's transaction cannot be made there: another transaction
 * appended to the stream after this one began writing (PostgreSQL gives a transaction its id,
 * which orders its events, when it first writes), or the database refused the transaction for
 * a serialization conflict. Nothing was stored; roll back and retry the whole transaction.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransactionConflictError extends Schema.TaggedError<TransactionConflictError>()(
  "TransactionConflictError",
  { streamId: Schema.String }
) {
  override get message(): string {
    return `Cannot append to stream ${
      JSON.stringify(this.streamId)
    } in the enclosing transaction: another transaction appended to it after this one began writing. Roll back and retry the whole transaction.`
  }
}

/**
 * A projection's checkpoint was not where its runner left it: another runner of the same
 * projection moved it. Nothing of the batch was committed; the runner reloads its checkpoint.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointConflictError extends Schema.TaggedError<CheckpointConflictError>()(
  "CheckpointConflictError",
  { projection: Schema.String }
) {
  override get message(): string {
    return `The checkpoint of projection ${JSON.stringify(this.projection)} was moved by another runner`
  }
}

/**
 * A projection stopped at an event it could not handle: its handler kept failing after the
 * retries, or the event does not decode with the projection's Schema. The checkpoint stays
 * before the event, so the projection resumes from it once the cause is fixed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionError extends Schema.TaggedError<ProjectionError>()("ProjectionError", {
  projection: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  eventType: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return `Projection ${JSON.stringify(this.projection)} stopped at event ${
      JSON.stringify(this.eventType)
    }, version ${this.version} of stream ${JSON.stringify(this.streamId)}: ${describeCause(this.cause)}`
  }
}

/** A cause and the causes it wraps, as one line: a driver's own words come last. */
const describeCause = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  while (current !== undefined && current !== null && messages.length < 4) {
    const message = current instanceof Error ? current.message : String(current)
    if (message.length > 0 && !messages.includes(message)) messages.push(message)
    current = current instanceof Error ? (current as { readonly cause?: unknown }).cause : undefined
  }
  return messages.join(": ")
}

/**
 * What an append can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type AppendError =
  | ConcurrencyError
  | StreamTypeMismatchError
  | InvalidAppendError
  | TransactionConflictError
  | EventStoreError
