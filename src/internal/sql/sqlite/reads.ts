/**
 * The SQLite reads: a stream's page, the global order, its head and counts, and the state of
 * the streams an append names.
 */
import * as Effect from "effect/Effect"
import * as Position from "../../../Position.js"
import type { Dialect, EventRowWithAppendSize, StreamState } from "../dialect.js"
import { endingOnWholeAppends, streamPage } from "../dialect.js"
import { positionOf } from "../rows.js"
import type { SqliteObjects } from "./objects.js"
import { chunks, idsPerQuery, placeholders, readEventRows, run } from "./objects.js"

/** A page of one stream, with the stream's row (as on PostgreSQL). */
export const readStream =
  ({ columns, tables: { entities, events } }: SqliteObjects): Dialect["readStream"] =>
  (streamId, direction, from, limit) =>
    Effect.map(
      // No ORDER BY outside: the page is read in version order, and SQLite would sort it again.
      readEventRows(
        `SELECT ${columns} FROM (SELECT 1) AS one
      LEFT JOIN ${entities} s ON s.id = ?
      LEFT JOIN (
        SELECT * FROM ${events} WHERE entity_id = ? AND ordinal ${direction === "forward" ? ">=" : "<="} ?
        ORDER BY ordinal ${direction === "forward" ? "ASC" : "DESC"} LIMIT ?
      ) e ON 1`,
        [streamId, streamId, from, limit]
      ),
      (rows) => streamPage(rows, direction)
    )

export const readAll =
  ({ columns, tables: { entities, events } }: SqliteObjects): Dialect["readAll"] => (after, size) =>
    Effect.flatMap(
      readEventRows(
        `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
      WHERE e.position > ? ORDER BY e.position LIMIT ?`,
        [Number(after.sequence), size]
      ),
      (rows) =>
        endingOnWholeAppends(rows, size, (last) =>
          readEventRows(
            `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id WHERE e.position = ?`,
            [last.position]
          ))
    )

export const head = ({ tables: { events } }: SqliteObjects): Dialect["head"] =>
  Effect.map(
    run<{ position: number | null }>(`SELECT MAX(position) AS position FROM ${events}`, []),
    (rows) => rows[0]?.position === null || rows[0] === undefined ? Position.start : positionOf(rows[0].position, null)
  )

export const countAfter = ({ tables: { events } }: SqliteObjects): Dialect["countAfter"] => (position, upTo) =>
  Effect.map(
    run<{ count: number }>(
      `SELECT count(*) AS count FROM (SELECT 1 FROM ${events} WHERE position > ? LIMIT ?)`,
      // SQLite reads a negative limit as none.
      [Number(position.sequence), Number.isFinite(upTo) ? upTo : -1]
    ),
    (rows) => rows[0]!.count
  )

export const streamStates = ({ tables: { entities, events } }: SqliteObjects): Dialect["streamStates"] => (streamIds) =>
  Effect.map(
    Effect.forEach(
      chunks(streamIds, idsPerQuery),
      (ids) =>
        run<{ id: string; type: string; version: number; position: number | null }>(
          `SELECT s.id, s.type, s.version,
          (SELECT position FROM ${events} WHERE entity_id = s.id ORDER BY ordinal DESC LIMIT 1) AS position
        FROM ${entities} s WHERE s.id IN (${placeholders(ids.length)})`,
          ids
        )
    ),
    (batches) =>
      batches.flat().map((row): StreamState => ({
        id: row.id,
        type: row.type,
        version: row.version,
        position: row.position === null ? Position.start : positionOf(row.position, null)
      }))
  )

// The ids as one JSON array: one statement text, prepared once, whatever their number.
export const streamVersions = ({ tables: { entities } }: SqliteObjects): Dialect["streamVersions"] => (streamIds) =>
  run<{ id: string; version: number }>(
    `SELECT id, version FROM ${entities} WHERE id IN (SELECT value FROM json_each(?))`,
    [JSON.stringify(streamIds)]
  )

export const eventsById =
  ({ columns, tables: { entities, events } }: SqliteObjects): Dialect["eventsById"] => (eventIds, window) =>
    Effect.map(
      Effect.forEach(chunks(eventIds, idsPerQuery), (ids) =>
        run<EventRowWithAppendSize>(
          `SELECT ${columns},
          (SELECT count(*) FROM ${events} o
            WHERE o.entity_id = e.entity_id AND o.ordinal BETWEEN e.ordinal - ? AND e.ordinal + ?
              AND o.position = e.position) AS append_size
        FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
        WHERE e.event_id IN (${placeholders(ids.length)})`,
          [window, window, ...ids]
        )),
      (batches) => batches.flat()
    )

/** The reads of the dialect, as the assembler gives them to the stores. */
export const reads = (
  objects: SqliteObjects
): Pick<
  Dialect,
  "readStream" | "readAll" | "head" | "countAfter" | "streamStates" | "streamVersions" | "eventsById"
> => ({
  readStream: readStream(objects),
  readAll: readAll(objects),
  head: head(objects),
  countAfter: countAfter(objects),
  streamStates: streamStates(objects),
  streamVersions: streamVersions(objects),
  eventsById: eventsById(objects)
})
