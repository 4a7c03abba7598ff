/**
 * The SQLite append: under the write lock, each stream's version is checked and moved, the
 * position numbered after the greatest stored, and the events inserted.
 */
import * as Effect from "effect/Effect"
import * as ExpectedVersion from "../../../ExpectedVersion.js"
import type { PreparedAppend, PreparedEvent } from "../../prepareAppend.js"
import { compareStreamIds } from "../../streamOrder.js"
import type { Dialect } from "../dialect.js"
import { AppendConflict, appendResult, emptyResult } from "../dialect.js"
import { fromDays, positionOf } from "../rows.js"
import type { SqliteObjects } from "./objects.js"
import { chunks, rowsPerInsert, run } from "./objects.js"
import { streamStates } from "./reads.js"
import { withImmediateTransaction } from "./transactions.js"

/**
 * Moves one stream's version if the checks hold; no row when they do not. Events stored
 * beyond the stream's version (by a writer that broke the protocol) stop the append, rather
 * than numbering new events among them.
 */
const moveStream = ({ tables: { entities, events } }: SqliteObjects, append: PreparedAppend) => {
  const { streamId, streamType } = append
  const count = append.events.length
  const expected = append.expectedVersion
  const beyond = (version: string) => `EXISTS (SELECT 1 FROM ${events} WHERE entity_id = ? AND ordinal > ${version})`
  if (expected === "any") {
    return run<{ version: number }>(
      `INSERT INTO ${entities} (id, type, version)
      SELECT ?, ?, ? WHERE NOT ${beyond(`COALESCE((SELECT version FROM ${entities} WHERE id = ?), 0)`)}
      ON CONFLICT (id) DO UPDATE SET version = version + excluded.version WHERE type = excluded.type
      RETURNING version`,
      [streamId, streamType, count, streamId, streamId]
    )
  }
  if (expected === "no-stream" || expected === 0) {
    return run<{ version: number }>(
      `INSERT INTO ${entities} (id, type, version) SELECT ?, ?, ? WHERE NOT ${beyond("0")}
      ON CONFLICT (id) DO NOTHING RETURNING version`,
      [streamId, streamType, count, streamId]
    )
  }
  const condition = expected === "stream-exists" ? "version > 0" : "version = ?"
  return run<{ version: number }>(
    `UPDATE ${entities} SET version = version + ?
    WHERE id = ? AND type = ? AND ${condition} AND NOT ${beyond(`${entities}.version`)} RETURNING version`,
    [count, streamId, streamType, ...(expected === "stream-exists" ? [] : [expected]), streamId]
  )
}

/** One event row to insert: an event of an append, with its version and its append's position. */
interface EventRow {
  readonly streamId: string
  readonly event: PreparedEvent
  readonly ordinal: number
  readonly position: number
}

const eventRows = (append: PreparedAppend, versionBefore: number, position: number): ReadonlyArray<EventRow> =>
  append.events.map((event, index) => ({
    streamId: append.streamId,
    event,
    ordinal: versionBefore + index + 1,
    position
  }))

const insertEvents = ({ tables: { events } }: SqliteObjects, rows: ReadonlyArray<EventRow>, timestamp: number) =>
  Effect.forEach(
    chunks(rows, rowsPerInsert),
    (chunk) =>
      run(
        `INSERT INTO ${events} (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata,
          schema_version)
        VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}`,
        chunk.flatMap(({ event, ordinal, position, streamId }) => [
          streamId,
          event.type,
          event.data,
          event.actor,
          timestamp,
          ordinal,
          position,
          event.id,
          event.metadata,
          event.schemaVersion
        ])
      ),
    { discard: true }
  )

/** The position after the greatest stored, and the time, for what a transaction appends. */
const next = (objects: SqliteObjects) =>
  Effect.map(
    run<{ position: number; timestamp: number }>(
      `SELECT COALESCE(MAX(position), 0) + 1 AS position, julianday('now') - 2440587.5 AS timestamp FROM ${objects.tables.events}`,
      []
    ),
    (rows) => rows[0]!
  )

export const append = (objects: SqliteObjects): Dialect["append"] => (appends) =>
  withImmediateTransaction(Effect.gen(function*() {
    const sorted = [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))
    const versions = new Map<string, number>()
    for (const append of sorted.filter((append) => append.events.length > 0)) {
      const moved = (yield* moveStream(objects, append))[0]
      if (moved === undefined) return yield* new AppendConflict({})
      versions.set(append.streamId, moved.version)
    }
    const unchanged = yield* streamStates(objects)(
      sorted.filter((append) => append.events.length === 0).map((append) => append.streamId)
    )
    for (const append of sorted.filter((append) => append.events.length === 0)) {
      const state = unchanged.find((state) => state.id === append.streamId)
      if (state !== undefined && state.type !== append.streamType) return yield* new AppendConflict({})
      if (!ExpectedVersion.isSatisfiedBy(append.expectedVersion, state?.version ?? 0)) {
        return yield* new AppendConflict({})
      }
    }
    if (versions.size === 0) {
      return appends.map((append) =>
        emptyResult(append.streamId, unchanged.find((state) => state.id === append.streamId))
      )
    }
    const { position, timestamp } = yield* next(objects)
    const writing = sorted.filter((append) => append.events.length > 0)
    yield* insertEvents(
      objects,
      writing.flatMap((append) => eventRows(append, versions.get(append.streamId)! - append.events.length, position)),
      timestamp
    )
    const results = new Map(writing.map((append) => [
      append.streamId,
      appendResult(append, versions.get(append.streamId)!, positionOf(position, null), fromDays(timestamp))
    ]))
    return appends.map((append) =>
      results.get(append.streamId) ??
        emptyResult(append.streamId, unchanged.find((state) => state.id === append.streamId))
    )
  }))

/**
 * Group commit: the appends waiting for the connection in one immediate transaction, one
 * commit. Each is checked and moves its stream alone (one whose checks fail moves nothing), each
 * has a position of its own, and the events of all go in the fewest inserts.
 */
export const combined = (objects: SqliteObjects): Dialect["combined"] => ({
  // One connection: one batch at a time.
  inFlight: 1,
  append: (appends) =>
    withImmediateTransaction(Effect.gen(function*() {
      const versions: Array<number | undefined> = []
      for (const append of appends) versions.push((yield* moveStream(objects, append))[0]?.version)
      if (versions.every((version) => version === undefined)) return versions.map(() => undefined)
      const { position: first, timestamp } = yield* next(objects)
      // Positions in the order of the appends the batch stores.
      let position = first
      const stored = appends.flatMap((append, index) => {
        const version = versions[index]
        return version === undefined ? [] : [{ append, version, position: position++ }]
      })
      yield* insertEvents(
        objects,
        stored.flatMap(({ append, position, version }) => eventRows(append, version - append.events.length, position)),
        timestamp
      )
      const results = new Map(stored.map(({ append, position, version }) => [
        append.streamId,
        appendResult(append, version, positionOf(position, null), fromDays(timestamp))
      ]))
      return appends.map((append) => results.get(append.streamId))
    }))
})
