/**
 * Following the global order live, shared by every backend: read a batch after the checkpoint;
 * when there is nothing new, wait for a wake-up (an append in this process, a notification
 * from the database) or for the poll interval, whichever comes first, and read again.
 *
 * Wake-ups are hints: a reader never relies on one, since the poll finds everything anyway.
 * A wake-up that comes while a batch is being read is kept, so the reader reads again at once.
 */
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { EventDecodeError } from "../Errors.js"
import type { RecordedEvent } from "../Events.js"
import type { ReadAllOptions, ReadError, SubscribeOptions } from "../EventStore.js"
import * as Position from "../Position.js"
import { defaultBatchSize, validated } from "./readOptions.js"

/** How long a subscription waits without a wake-up before it reads again. */
export const defaultPollInterval: Duration.Duration = Duration.seconds(1)

/**
 * How a subscription rides out a store that fails for a while (a lost connection, a restarting
 * server): it reads again after 100 ms, doubling up to 5 seconds, for about a minute, and then
 * fails with the store's error.
 */
const readRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.upTo("1 minute")
)

const isStoreError = (error: ReadError) => error._tag === "EventStoreError"

/** The wake-ups of one store: every append it makes, and whatever else tells it of new events. */
export type Wakeups = PubSub.PubSub<void>

export const makeWakeups: Effect.Effect<Wakeups> = PubSub.sliding<void>(1)

/**
 * A batch of the global order: its events, and, when the batch ends at a row the store cannot
 * read, why. The events before that row are read first; then the read fails, whatever the batch
 * size, so that no reader takes a batch cut short for the end of the order.
 */
export interface Batch {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly broken?: EventDecodeError | undefined
}

export type ReadBatch = (after: Position.Position, size: number) => Effect.Effect<Batch, ReadError>

/** Where a paged read is: after a position, or at a row it cannot read. */
type Cursor = Position.Position | { readonly broken: EventDecodeError }

/** The chunk of a batch and where to go on from, or failure at a row that cannot be read. */
const next = (
  batch: Batch,
  more: (last: Position.Position) => boolean
): Effect.Effect<readonly [Chunk.Chunk<RecordedEvent>, Option.Option<Cursor>], EventDecodeError> => {
  const last = batch.events.at(-1)?.position
  if (batch.broken !== undefined) {
    return last === undefined
      ? Effect.fail(batch.broken)
      : Effect.succeed([Chunk.unsafeFromArray(batch.events), Option.some<Cursor>({ broken: batch.broken })] as const)
  }
  return Effect.succeed(
    [
      Chunk.unsafeFromArray(batch.events),
      last !== undefined && more(last) ? Option.some<Cursor>(last) : Option.none()
    ] as const
  )
}

/** Reads on from a position, or fails at the row a read stopped before. */
const read = <A, E>(cursor: Cursor, readAfter: (after: Position.Position) => Effect.Effect<A, E>) =>
  "broken" in cursor ? Effect.fail(cursor.broken) : readAfter(cursor)

export const follow = (
  options: SubscribeOptions | undefined,
  wakeups: Wakeups,
  readBatch: ReadBatch
): Stream.Stream<RecordedEvent, ReadError> =>
  validated("subscribe", options, () => {
    const size = options?.batchSize ?? defaultBatchSize
    const pollInterval = Duration.decode(options?.pollInterval ?? defaultPollInterval)
    return Stream.unwrapScoped(Effect.map(PubSub.subscribe(wakeups), (woken) => {
      const nextChange = Effect.zipRight(
        Effect.raceFirst(Queue.take(woken), Effect.sleep(pollInterval)),
        Queue.takeAll(woken)
      )
      return Stream.paginateChunkEffect<Cursor, RecordedEvent, ReadError, never>(
        options?.after ?? Position.start,
        (cursor) =>
          read(cursor, (after) =>
            Effect.flatMap(
              Effect.retry(readBatch(after, size), { schedule: readRetry, while: isStoreError }),
              (batch) =>
                batch.events.length === 0 && batch.broken === undefined
                  ? Effect.as(nextChange, [Chunk.empty<RecordedEvent>(), Option.some<Cursor>(after)] as const)
                  : next(batch, () => true)
            ))
      )
    }))
  })

/**
 * Reads the global order after a position in batches, up to the latest event when each batch
 * is read, then ends: what `follow` does before it starts waiting.
 */
export const readAll = (
  options: ReadAllOptions | undefined,
  readBatch: ReadBatch
): Stream.Stream<RecordedEvent, ReadError> =>
  validated("readAll", options, () => {
    const size = options?.batchSize ?? defaultBatchSize
    return Stream.paginateChunkEffect<Cursor, RecordedEvent, ReadError, never>(
      options?.after ?? Position.start,
      (cursor) =>
        read(cursor, (after) =>
          Effect.flatMap(readBatch(after, size), (batch) => next(batch, () => batch.events.length >= size)))
    )
  })
