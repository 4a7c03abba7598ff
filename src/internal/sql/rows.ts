/**
 * Rows of the events table as both SQL dialects return them, and their reading into recorded
 * events.
 */
import * as Either from "effect/Either"
import { EventDecodeError } from "../../Errors.js"
import type { RecordedEvent } from "../../Events.js"
import type { EventMetadata } from "../../Metadata.js"
import * as Position from "../../Position.js"

/** An event row joined with its stream's type. Numbers arrive as numbers (SQLite) or text (PostgreSQL). */
export interface EventRow {
  readonly entity_id: string
  readonly type: string
  readonly ordinal: number | string
  readonly position: number | string | bigint
  readonly transaction_id: string | null
  readonly name: string
  readonly details: string
  readonly actor: string
  readonly timestamp: number | string | null
  readonly event_id: string
  readonly metadata: string
}

const millisecondsPerDay = 86_400_000

/** The protocol's timestamp: days since the Unix epoch. */
export const fromDays = (days: number | string | null): Date => new Date(Math.round(Number(days) * millisecondsPerDay))

export const positionOf = (position: number | string | bigint, transaction: string | null): Position.Position =>
  Position.make({ sequence: BigInt(position), transaction: BigInt(transaction ?? 0) })

const parse = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(error instanceof Error ? error.message : String(error))
  }
}

export const toRecorded = (row: EventRow): Either.Either<RecordedEvent, EventDecodeError> => {
  const version = Number(row.ordinal)
  const fail = (reason: string) =>
    Either.left(new EventDecodeError({ streamId: row.entity_id, version, eventType: row.name, reason }))
  const data = parse(row.details)
  if (Either.isLeft(data)) return fail(`its details are not valid JSON (${data.left})`)
  const metadata = parse(row.metadata)
  if (Either.isLeft(metadata)) return fail(`its metadata is not valid JSON (${metadata.left})`)
  return Either.right({
    id: row.event_id,
    streamId: row.entity_id,
    streamType: row.type,
    version,
    position: positionOf(row.position, row.transaction_id),
    type: row.name,
    data: data.right,
    actor: row.actor,
    timestamp: fromDays(row.timestamp),
    metadata: (metadata.right ?? {}) as EventMetadata
  })
}
