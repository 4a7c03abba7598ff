/**
 * Rows of the events and dead-letters tables as both SQL dialects return them, and their
 * reading into recorded events and dead letters.
 */
import * as Either from "effect/Either"
import { EventDecodeError } from "../../Errors.js"
import type { RecordedEvent } from "../../Events.js"
import type { EventMetadata } from "../../Metadata.js"
import * as Position from "../../Position.js"
import type { DeadLetter } from "../../ProjectionStore.js"
import { messageOf } from "../unknowns.js"
import type { StreamPage } from "./dialect.js"

/**
 * An event row joined with its stream's row (`type` and `stream_version` are null when the
 * stream has none). Numbers arrive as numbers (SQLite) or text (PostgreSQL).
 */
export interface EventRow {
  readonly entity_id: string
  readonly type: string | null
  readonly ordinal: number | string
  readonly position: number | string | bigint
  readonly transaction_id: string | null
  readonly name: string
  readonly details: string
  readonly actor: string
  readonly timestamp: number | string | null
  readonly event_id: string
  readonly metadata: string
  readonly schema_version: number | string
  readonly stream_version: number | string | null
}

/**
 * An event row from a row of values in the order of the dialects' `columns` (entity id, type,
 * ordinal, position, transaction id, name, details, actor, timestamp, event id, metadata, schema
 * version, stream version). The hot reads take rows as values: a driver builds an array per row
 * for a fraction of what an object with named properties costs it (better-sqlite3: half of a
 * stream's read), and the object is then built here at the cost of a literal.
 */
export const eventRowOf = (values: ReadonlyArray<unknown>): EventRow => ({
  entity_id: values[0] as string,
  type: values[1] as string | null,
  ordinal: values[2] as number | string,
  position: values[3] as number | string,
  transaction_id: values[4] as string | null,
  name: values[5] as string,
  details: values[6] as string,
  actor: values[7] as string,
  timestamp: values[8] as number | string | null,
  event_id: values[9] as string,
  metadata: values[10] as string,
  schema_version: values[11] as number | string,
  stream_version: values[12] as number | string | null
})

const millisecondsPerDay = 86_400_000

/** The protocol's timestamp: days since the Unix epoch. */
export const fromDays = (days: number | string | null): Date => new Date(Math.round(Number(days) * millisecondsPerDay))

export const positionOf = (position: number | string | bigint, transaction: string | null): Position.Position =>
  Position.make({ sequence: BigInt(position), transaction: BigInt(transaction ?? 0) })

/**
 * The recorded event of a row, or why it cannot be one: its JSON is broken, or the row breaks
 * what the protocol promises of it (written by another writer): a stream with no row in the
 * entities table, or an event beyond its stream's version.
 */
export const toRecorded = (
  row: EventRow,
  position: Position.Position = positionOf(row.position, row.transaction_id)
): Either.Either<RecordedEvent, EventDecodeError> => {
  if (row.type === null) return undecodable(row, "its stream has no row in the entities table")
  if (row.stream_version !== null && Number(row.ordinal) > Number(row.stream_version)) {
    return undecodable(row, `it is beyond its stream's version in the entities table (${row.stream_version})`)
  }
  let data: unknown
  let metadata: unknown
  try {
    data = JSON.parse(row.details)
  } catch (error) {
    return undecodable(row, `its details are not valid JSON (${messageOf(error)})`)
  }
  try {
    // Most events carry no metadata: skip the parser for them.
    metadata = row.metadata === "{}" ? {} : JSON.parse(row.metadata)
  } catch (error) {
    return undecodable(row, `its metadata is not valid JSON (${messageOf(error)})`)
  }
  return Either.right({
    id: row.event_id,
    streamId: row.entity_id,
    streamType: row.type,
    version: Number(row.ordinal),
    position,
    type: row.name,
    data,
    actor: row.actor,
    timestamp: fromDays(row.timestamp),
    metadata: (metadata ?? {}) as EventMetadata,
    schemaVersion: Number(row.schema_version)
  })
}

const undecodable = (row: EventRow, reason: string) =>
  Either.left(
    new EventDecodeError({ streamId: row.entity_id, version: Number(row.ordinal), eventType: row.name, reason })
  )

/** Rows read as events: those up to the first row that cannot be read, and why that one cannot. */
export interface ReadRows {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly broken: { readonly row: EventRow | undefined; readonly error: EventDecodeError } | undefined
}

/** The events of rows, up to the first row that cannot be read. */
export const readRows = (rows: ReadonlyArray<EventRow>): ReadRows => {
  const events: Array<RecordedEvent> = []
  const positionOfRow = positions()
  for (const row of rows) {
    const event = toRecorded(row, positionOfRow(row))
    if (Either.isLeft(event)) return { events, broken: { row, error: event.left } }
    events.push(event.right)
  }
  return { events, broken: undefined }
}

/**
 * The positions of rows read one after another: the events of one append share one position,
 * made once for them (a page of a stream is often a single append).
 */
const positions = () => {
  let previous: { readonly row: EventRow; readonly position: Position.Position } | undefined
  return (row: EventRow): Position.Position => {
    if (previous === undefined || !sameAppend(previous.row, row)) {
      previous = { row, position: positionOf(row.position, row.transaction_id) }
    }
    return previous.position
  }
}

/** Whether two rows are of one append: the same position, written by the same transaction. */
export const sameAppend = (a: EventRow, b: EventRow): boolean =>
  (a.position === b.position || String(a.position) === String(b.position)) &&
  (a.transaction_id ?? null) === (b.transaction_id ?? null)

/**
 * A page of a stream read from version `from` (forward or backward, `size` events asked for),
 * checked against what a stream holds: its versions one after another from the first one asked
 * for, and, where the page reaches the stream's end, up to the version its row in the entities
 * table gives. Rows written by another writer may break that (an ordinal gap, an event missing
 * at the end); the read then ends at the missing version instead of returning a stream that
 * is not the one stored.
 */
export const readStreamPage = (
  streamId: string,
  direction: "forward" | "backward",
  from: number,
  size: number,
  page: StreamPage
): ReadRows => {
  const step = direction === "forward" ? 1 : -1
  let expected = direction === "forward" ? Math.max(from, 1) : Math.min(from, page.streamVersion ?? 0)
  const events: Array<RecordedEvent> = []
  const missing = (reason: string, row?: EventRow) => ({
    events,
    broken: {
      row,
      error: new EventDecodeError({ streamId, version: expected, eventType: "", reason })
    }
  })
  const positionOfRow = positions()
  for (const row of page.rows) {
    if (Number(row.ordinal) !== expected) {
      return missing(`the stream has no event at this version (the next one stored is at version ${row.ordinal})`, row)
    }
    const event = toRecorded(row, positionOfRow(row))
    if (Either.isLeft(event)) return { events, broken: { row, error: event.left } }
    events.push(event.right)
    expected += step
  }
  const reachedEnd = page.rows.length < size
  const stored = page.streamVersion ?? 0
  if (reachedEnd && (direction === "forward" ? expected <= stored : expected >= 1)) {
    return missing(`the stream's row in the entities table says version ${stored}, but it has no event at this version`)
  }
  return { events, broken: undefined }
}

/** A row of the dead-letters table, as the dialects select it (positions as text or numbers). */
export interface DeadLetterRow {
  readonly projection: string
  readonly event_id: string
  readonly stream_id: string
  readonly version: number
  readonly event_type: string
  readonly position: string | number
  readonly transaction_id: string | null
  readonly reason: string
  readonly failed_at: Date | string
}

export const toDeadLetter = (row: DeadLetterRow): DeadLetter => ({
  projection: row.projection,
  eventId: row.event_id,
  streamId: row.stream_id,
  version: Number(row.version),
  eventType: row.event_type,
  position: positionOf(row.position, row.transaction_id),
  reason: row.reason,
  failedAt: new Date(row.failed_at)
})
