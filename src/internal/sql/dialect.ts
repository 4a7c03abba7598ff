/**
 * What differs between the SQL databases: the statements. Everything else (validation, retries,
 * resolving conflicts, decoding) is shared in `sqlEventStore.ts`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type { AppendResult } from "../../EventStore.js"
import type { RecordedEvent } from "../../Events.js"
import * as Position from "../../Position.js"
import type { PreparedAppend, PreparedEvent } from "../prepareAppend.js"
import type { EventRow } from "./rows.js"

/**
 * An append's checks failed (a version, a stream type) or it hit a unique constraint: nothing
 * was stored, and the store must look at what is there to say why.
 */
export class AppendConflict extends Data.TaggedError("AppendConflict")<{}> {}

/** A stream as stored: its type, version and the position of its latest event. */
export interface StreamState {
  readonly id: string
  readonly type: string
  readonly version: number
  readonly position: Position.Position
}

/** An event row with the number of events its append stored in its stream. */
export interface EventRowWithAppendSize extends EventRow {
  readonly append_size: number | string
}

export interface Dialect {
  /** The schema migrations, by `<id>_<name>`, for `Migrator.fromRecord`. */
  readonly migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>
  /** Runs the migrator so that two processes migrating at once take turns. */
  readonly exclusively: <A, E, R>(migrate: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient>
  /** Checks and stores validated appends atomically at one position, or fails with `AppendConflict`. */
  readonly append: (
    appends: ReadonlyArray<PreparedAppend>
  ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendConflict | SqlError, SqlClient.SqlClient>
  readonly readStream: (
    streamId: string,
    direction: "forward" | "backward",
    from: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<EventRow>, SqlError, SqlClient.SqlClient>
  /** The events after a position, at least `size` of them unless fewer exist, ending on a whole append. */
  readonly readAll: (
    after: Position.Position,
    size: number
  ) => Effect.Effect<ReadonlyArray<EventRow>, SqlError, SqlClient.SqlClient>
  readonly streamStates: (
    streamIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<StreamState>, SqlError, SqlClient.SqlClient>
  readonly eventsById: (
    eventIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<EventRowWithAppendSize>, SqlError, SqlClient.SqlClient>
  readonly isUniqueViolation: (error: SqlError) => boolean
}

/** The recorded events of one stream's part of an append, from what the database assigned. */
export const recordedEvents = (
  append: PreparedAppend,
  versionBefore: number,
  position: Position.Position,
  timestamp: Date
): ReadonlyArray<RecordedEvent> =>
  append.events.map((event: PreparedEvent, index) => ({
    id: event.id,
    streamId: append.streamId,
    streamType: append.streamType,
    version: versionBefore + index + 1,
    position,
    type: event.type,
    data: JSON.parse(event.data),
    actor: event.actor,
    timestamp,
    metadata: JSON.parse(event.metadata)
  }))

/** The result of one stream's part of an append. */
export const appendResult = (
  append: PreparedAppend,
  versionAfter: number,
  position: Position.Position,
  timestamp: Date
): AppendResult => ({
  streamId: append.streamId,
  version: versionAfter,
  position,
  events: recordedEvents(append, versionAfter - append.events.length, position, timestamp)
})

/** Whether the code of a driver error (its `cause.code`) says a unique constraint was violated. */
export const causeCode = (error: SqlError): string | undefined => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** The result for a stream an append wrote nothing to: its current version and latest position. */
export const emptyResult = (streamId: string, state: StreamState | undefined): AppendResult => ({
  streamId,
  version: state?.version ?? 0,
  position: state?.position ?? Position.start,
  events: []
})
