/**
 * The in-memory event store.
 *
 * Every operation on the shared state runs inside one synchronous step, and JavaScript runs one
 * step at a time, so each append checks and writes atomically with respect to every other fiber
 * without a lock. Stored events are never changed, so a read that spans several steps sees a
 * consistent prefix of each stream and of the global log.
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { ConcurrencyError, StreamTypeMismatchError } from "../Errors.js"
import type { AppendError } from "../Errors.js"
import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions } from "../EventStore.js"
import type { RecordedEvent } from "../Events.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as Metadata from "../Metadata.js"
import * as Position from "../Position.js"
import { prepareAppends } from "./prepareAppend.js"

const defaultBatchSize = 500

/** An event as kept in memory: data and metadata as JSON text, parsed afresh on every read. */
interface StoredEvent {
  readonly id: string
  readonly streamId: string
  readonly streamType: string
  readonly version: number
  readonly position: Position.Position
  readonly type: string
  readonly data: string
  readonly actor: string
  readonly timestamp: number
  readonly metadata: string
}

interface StoredStream {
  readonly type: string
  readonly events: Array<StoredEvent>
}

const toRecorded = (event: StoredEvent): RecordedEvent => ({
  id: event.id,
  streamId: event.streamId,
  streamType: event.streamType,
  version: event.version,
  position: event.position,
  type: event.type,
  data: JSON.parse(event.data),
  actor: event.actor,
  timestamp: new Date(event.timestamp),
  metadata: JSON.parse(event.metadata)
})

export const make: Effect.Effect<EventStore> = Effect.sync(() => {
  const streams = new Map<string, StoredStream>()
  const log: Array<StoredEvent> = []
  let sequence = 0n

  const appendMany = (
    requests: ReadonlyArray<AppendRequest>
  ): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> =>
    Effect.flatMap(
      Effect.all([Metadata.current, Clock.currentTimeMillis]),
      ([context, now]) =>
        Effect.suspend((): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> => {
          const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
          if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
          // Check every stream before writing any, so a failed append stores nothing.
          for (const append of prepared.right) {
            const stream = streams.get(append.streamId)
            if (stream !== undefined && stream.type !== append.streamType) {
              return Effect.fail(
                new StreamTypeMismatchError({
                  streamId: append.streamId,
                  expectedType: append.streamType,
                  actualType: stream.type
                })
              )
            }
            const actualVersion = stream?.events.length ?? 0
            if (!ExpectedVersion.isSatisfiedBy(append.expectedVersion, actualVersion)) {
              return Effect.fail(
                new ConcurrencyError({
                  streamId: append.streamId,
                  expectedVersion: append.expectedVersion,
                  actualVersion
                })
              )
            }
          }
          const writes = prepared.right.some((append) => append.events.length > 0)
          const position = writes ? Position.make(++sequence) : Position.start
          return Effect.succeed(prepared.right.map((append): AppendResult => {
            let stream = streams.get(append.streamId)
            if (stream === undefined && append.events.length > 0) {
              stream = { type: append.streamType, events: [] }
              streams.set(append.streamId, stream)
            }
            const recorded: Array<RecordedEvent> = []
            for (const event of append.events) {
              const stored: StoredEvent = {
                ...event,
                streamId: append.streamId,
                streamType: append.streamType,
                version: stream!.events.length + 1,
                position,
                timestamp: now
              }
              stream!.events.push(stored)
              log.push(stored)
              recorded.push(toRecorded(stored))
            }
            const last = stream?.events.at(-1)
            return {
              streamId: append.streamId,
              version: stream?.events.length ?? 0,
              position: last?.position ?? Position.start,
              events: recorded
            }
          }))
        })
    )

  const readStream = (streamId: string, options?: ReadStreamOptions) =>
    Stream.suspend(() => {
      const events = streams.get(streamId)?.events ?? []
      const limit = options?.limit ?? Infinity
      if (options?.direction === "backward") {
        const last = Math.min(options.from ?? events.length, events.length)
        const first = Math.max(0, last - limit)
        return Stream.fromIterable(events.slice(first, Math.max(first, last)).reverse().map(toRecorded))
      }
      const first = Math.max(1, options?.from ?? 1) - 1
      return Stream.fromIterable(events.slice(first, first + limit).map(toRecorded))
    })

  /** The index in the log of the first event after `position`. */
  const indexAfter = (position: Position.Position): number => {
    let low = 0
    let high = log.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (Position.isAfter(log[middle]!.position, position)) high = middle
      else low = middle + 1
    }
    return low
  }

  /** A batch of at least `size` events after `position`, extended to end on a whole append. */
  const batchAfter = (position: Position.Position, size: number): ReadonlyArray<StoredEvent> => {
    const first = indexAfter(position)
    let end = Math.min(first + size, log.length)
    const lastPosition = log[end - 1]?.position
    while (end < log.length && lastPosition !== undefined && Position.equals(log[end]!.position, lastPosition)) end++
    return log.slice(first, end)
  }

  const readAll = (options?: ReadAllOptions) => {
    const size = Math.max(1, options?.batchSize ?? defaultBatchSize)
    return Stream.paginateChunkEffect(options?.after ?? Position.start, (after) =>
      Effect.sync(() => {
        const batch = batchAfter(after, size)
        const last = batch.at(-1)
        return [
          Chunk.fromIterable(batch.map(toRecorded)),
          last === undefined || batch.length < size ? Option.none() : Option.some(last.position)
        ] as const
      }))
  }

  return {
    append: (request) => Effect.map(appendMany([request]), (results) => results[0]!),
    appendMany,
    readStream,
    readAll,
    streamVersion: (streamId) => Effect.sync(() => streams.get(streamId)?.events.length ?? 0)
  }
})
