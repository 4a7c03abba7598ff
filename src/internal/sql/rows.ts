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
  readonly schema_version: number | string
}

const millisecondsPerDay = 86_400_000

/** The protocol's timestamp: days since the Unix epoch. */
export const fromDays = (days: number | string | null): Date => new Date(Math.round(Number(days) * millisecondsPerDay))

export const positionOf = (position: number | string | bigint, transaction: string | null): Position.Position =>
  Position.make({ sequence: BigInt(position), transaction: BigInt(transaction ?? 0) })

export const toRecorded = (row: EventRow): Either.Either<RecordedEvent, EventDecodeError> => {
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
    position: positionOf(row.position, row.transaction_id),
    type: row.name,
    data,
    actor: row.actor,
    timestamp: fromDays(row.timestamp),
    metadata: (metadata ?? {}) as EventMetadata,
    schemaVersion: Number(row.schema_version)
  })
}

const undecodable = (row: EventRow, reason: string) =>
  Either.left(new EventDecodeError({ streamId: row.entity_id, version: Number(row.ordinal), eventType: row.name, reason }))

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))
