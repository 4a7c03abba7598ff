/**
 * The SQLite append: under the write lock, each stream's version is checked and moved, the
 * position numbered after the greatest stored, and the events inserted.
 */
import * as Effect from "effect/Effect"
import type { AppendResult } from "../../../EventStore.js"
import * as ExpectedVersion from "../../../ExpectedVersion.js"
import type { PreparedAppend } from "../../prepareAppend.js"
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

const insertEvents = (
  { tables: { events } }: SqliteObjects,
  append: PreparedAppend,
  versionBefore: number,
  position: number,
  timestamp: number
) =>
  Effect.forEach(
    chunks(append.events.map((event, index) => ({ event, ordinal: versionBefore + index + 1 })), rowsPerInsert),
    (rows) =>
      run(
        `INSERT INTO ${events} (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata,
          schema_version)
        VALUES ${rows.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}`,
        rows.flatMap(({ event, ordinal }) => [
          append.streamId,
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
    const [next] = yield* run<{ position: number; timestamp: number }>(
      `SELECT COALESCE(MAX(position), 0) + 1 AS position, julianday('now') - 2440587.5 AS timestamp FROM ${objects.tables.events}`,
      []
    )
    const results = new Map<string, AppendResult>()
    for (const append of sorted.filter((append) => append.events.length > 0)) {
      const version = versions.get(append.streamId)!
      yield* insertEvents(objects, append, version - append.events.length, next!.position, next!.timestamp)
      results.set(
        append.streamId,
        appendResult(append, version, positionOf(next!.position, null), fromDays(next!.timestamp))
      )
    }
    return appends.map((append) =>
      results.get(append.streamId) ??
        emptyResult(append.streamId, unchanged.find((state) => state.id === append.streamId))
    )
  }))
