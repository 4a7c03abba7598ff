/**
 * The SQL store's paged reads: one stream a page at a time, and a batch of the global order,
 * each failing at a row it cannot read after the events before it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { EventDecodeError, EventStoreError } from "../../Errors.js"
import type { RecordedEvent } from "../../Events.js"
import type { ReadStreamOptions } from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import * as Position from "../../Position.js"
import * as GroupCommit from "../groupCommit.js"
import { isStorable } from "../prepareAppend.js"
import { validated } from "../readOptions.js"
import * as StreamPages from "../streamPages.js"
import type * as Subscription from "../subscription.js"
import type { Dialect } from "./dialect.js"
import { positionOf, readRows, readStreamPage } from "./rows.js"
import { failWithSqlDefects, storeError, withSqlClient } from "./shared.js"

/** Events read from a stream per round trip. */
const streamPageSize = StreamPages.pageSize

/**
 * A page of a stream forward, for loading (see streamPages.ts): the events up to a row the store
 * cannot read, which is then reported with them. Unless it is the reader's last, one row more
 * than the page is asked for, so that a page that ends the stream says so: a stream whose length
 * is a multiple of the page size is not read again for an empty page.
 */
export const readPage =
  (dialect: Dialect, sql: SqlClient.SqlClient): StreamPages.ReadPage => (streamId, from, size, last) =>
    Effect.suspend((): Effect.Effect<StreamPages.Page, SqlError, SqlClient.SqlClient> =>
      isStorable(streamId)
        ? Effect.map(dialect.readStream(streamId, "forward", from, last ? size : size + 1), (read) => {
          const more = !last && read.rows.length > size
          // A page read to the stream's end is checked against the stream's version (`readStreamPage`).
          const { broken, events } = more
            ? readStreamPage(streamId, "forward", from, size, { ...read, rows: read.rows.slice(0, size) })
            : readStreamPage(streamId, "forward", from, last ? size : size + 1, read)
          return { events, broken: broken?.error, more: broken === undefined && more }
        })
        : Effect.succeed({ events: [], more: false })
    ).pipe(Effect.mapError(storeError("read a stream")), withSqlClient(sql))

/**
 * A batch of the global order. A row the store cannot read (its stored JSON is broken, or it
 * breaks the protocol) ends the batch before its append, so that the events before it are
 * still read, and the read fails there.
 */
export const readBatch = (dialect: Dialect) => (after: Position.Position, size: number) =>
  Effect.map(
    Effect.zipRight(dialect.betweenPages, dialect.readAll(after, size)).pipe(
      Effect.mapError(storeError("read all events"))
    ),
    (rows): Subscription.Batch => {
      const { broken, events } = readRows(rows)
      if (broken === undefined) return { events }
      const at = positionOf(broken.row!.position, broken.row!.transaction_id)
      return { events: events.filter((event) => !Position.equals(event.position, at)), broken: broken.error }
    }
  )

/**
 * A stream a page at a time. A row the store cannot read (its stored JSON is broken) fails
 * the stream after the events before it, so that a reader gets every event up to it.
 */
export const readStream = (dialect: Dialect) =>
(
  streamId: string,
  options: ReadStreamOptions | undefined
): Stream.Stream<RecordedEvent, EventStoreError | EventDecodeError, SqlClient.SqlClient> =>
  validated("readStream", options, () => {
    // No stream has such an id (appends refuse it), but the database would read it as another.
    if (!isStorable(streamId)) return Stream.empty
    const direction = options?.direction ?? "forward"
    const limit = options?.limit ?? Infinity
    const first = Math.min(
      options?.from ?? (direction === "forward" ? 1 : ExpectedVersion.maxVersion),
      ExpectedVersion.maxVersion
    )
    type Page = { readonly from: number; readonly remaining: number } | { readonly broken: EventDecodeError }
    return Stream.paginateChunkEffect<Page, RecordedEvent, EventStoreError | EventDecodeError, SqlClient.SqlClient>(
      { from: first, remaining: limit },
      (page) =>
        Effect.gen(function*() {
          if ("broken" in page) return yield* Effect.fail(page.broken)
          const { from, remaining } = page
          if (remaining === 0) return [Chunk.empty(), Option.none()] as const
          const size = Math.min(remaining, streamPageSize)
          if (from !== first) yield* dialect.betweenPages
          const rows = yield* dialect.readStream(streamId, direction, from, size).pipe(
            Effect.mapError(storeError("read a stream"))
          )
          const { broken, events } = readStreamPage(streamId, direction, from, size, rows)
          if (broken !== undefined) {
            if (events.length === 0) return yield* Effect.fail(broken.error)
            return [Chunk.unsafeFromArray(events), Option.some<Page>({ broken: broken.error })] as const
          }
          const last = events.at(-1)
          const next = direction === "forward" ? (last?.version ?? 0) + 1 : (last?.version ?? 0) - 1
          const more = last !== undefined && events.length === size && remaining > size && next >= 1
          return [
            Chunk.unsafeFromArray(events),
            more ? Option.some<Page>({ from: next, remaining: remaining - size }) : Option.none()
          ] as const
        })
    )
  })

/** How many version reads each statement of them took. */
export const versionReadBatchSizes = Metric.histogram(
  "effect_eventsourcing_version_read_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 9 }),
  "streamVersion reads per statement of the SQL event store"
)

/** Version reads of one batch at most. */
const versionsPerRead = 500

/**
 * Reads a stream's version. Reads from outside a transaction that come while others are in
 * flight share one statement, formed as appends' batches are (see `groupCommit.ts`): writers that
 * each read a version before they append send one statement between them instead of one each. A
 * shared read is as fresh as a read alone: it starts after every read in it was asked for. Inside
 * a transaction, the read is the transaction's own.
 */
export const streamVersion = (dialect: Dialect, sql: SqlClient.SqlClient) => {
  const versionsOf = (streamIds: ReadonlyArray<string>) =>
    Effect.map(
      failWithSqlDefects(dialect.streamVersions(streamIds)),
      (rows) => new Map(rows.map((row) => [row.id, Number(row.version)]))
    )
  const batches = GroupCommit.make<string, Exit.Exit<number, SqlError>>({
    inFlight: dialect.combined.inFlight,
    maxItems: versionsPerRead,
    maxWeight: Infinity,
    weight: () => 1,
    // Reads need no order among themselves.
    key: () => undefined,
    run: (batch) =>
      Effect.zipRight(
        Metric.update(versionReadBatchSizes, batch.length),
        Effect.map(
          Effect.exit(versionsOf([...new Set(batch)])),
          (exit) => batch.map((streamId) => Exit.map(exit, (versions) => versions.get(streamId) ?? 0))
        )
      ).pipe(withSqlClient(sql))
  })
  return (streamId: string): Effect.Effect<number, EventStoreError> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) => {
      if (!isStorable(streamId)) return Effect.succeed(0)
      const read = Option.isSome(transaction)
        ? Effect.map(versionsOf([streamId]), (versions) => versions.get(streamId) ?? 0)
        : Effect.flatten(batches.submit(streamId))
      return read.pipe(Effect.mapError(storeError("read a stream's version")))
    }).pipe(withSqlClient(sql))
}
