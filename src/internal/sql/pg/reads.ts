/**
 * The PostgreSQL reads: a stream's page, the global order below the oldest running transaction,
 * its head and counts, and the state of streams an append names.
 */
import * as Effect from "effect/Effect"
import * as Position from "../../../Position.js"
import type { Dialect, EventRowWithAppendSize, StreamState } from "../dialect.js"
import { endingOnWholeAppends, streamPage } from "../dialect.js"
import { positionOf } from "../rows.js"
import type { PgObjects } from "./objects.js"
import { readEventRows, run } from "./objects.js"

/**
 * A page of one stream, with the stream's row (one row of nulls but for the stream's version
 * when the page is empty). Read forward, the page is also bounded above: a stream's ordinals
 * run from 1 to its version without gaps (a read that finds one fails), so the bound takes
 * nothing away, and it keeps a planner without statistics on the table (a new or freshly
 * loaded one) from sorting every remaining event of the stream for each page, which made
 * reading a long stream quadratic.
 */
export const readStream = (objects: PgObjects): Dialect["readStream"] => {
  const { columns, tables: { entities, events } } = objects
  const text = (direction: "forward" | "backward") =>
    `SELECT ${columns} FROM (SELECT 1) AS one
      LEFT JOIN ${entities} s ON s.id = $1
      LEFT JOIN (
        SELECT * FROM ${events}
        WHERE entity_id = $1 AND ${
      direction === "forward" ? "ordinal >= $2 AND ordinal < $2::bigint + $3" : "ordinal <= $2"
    }
        ORDER BY ordinal ${direction === "forward" ? "ASC" : "DESC"} LIMIT $3
      ) e ON true
      ORDER BY e.ordinal ${direction === "forward" ? "ASC" : "DESC"}`
  const texts = { forward: text("forward"), backward: text("backward") }
  return (streamId, direction, from, limit) =>
    Effect.map(
      readEventRows(objects, texts[direction], [streamId, from, limit]),
      (rows) => streamPage(rows, direction)
    )
}

export const readAll = (objects: PgObjects): Dialect["readAll"] => {
  const { columns, tables: { entities, events } } = objects
  const batch = `WITH fence AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
      SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id, fence
      WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint) AND e.transaction_id < fence.xmin
      ORDER BY e.transaction_id, e.position
      LIMIT $3`
  const append = `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
          WHERE e.transaction_id = $1::xid8 AND e.position = $2::bigint`
  return (after, size) =>
    Effect.flatMap(
      readEventRows(objects, batch, [String(after.transaction), String(after.sequence), size]),
      (rows) =>
        endingOnWholeAppends(rows, size, (last) =>
          // The last append's transaction is below the fence, so all of it is committed.
          readEventRows(objects, append, [last.transaction_id, String(last.position)]))
    )
}

export const head = (objects: PgObjects): Dialect["head"] =>
  Effect.map(
    run<{ transaction_id: string; position: string }>(
      objects,
      // Qualified names: a bare name in ORDER BY would sort by the text output column instead.
      `SELECT e.transaction_id::text AS transaction_id, e.position::text AS position FROM ${objects.tables.events} e
    WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1`,
      []
    ),
    (rows) => rows[0] === undefined ? Position.start : positionOf(rows[0].position, rows[0].transaction_id)
  )

// The bounded count walks the global-order index and stops after `upTo` rows.
export const countAfter = (objects: PgObjects): Dialect["countAfter"] => (position, upTo) =>
  Effect.map(
    run<{ count: string }>(
      objects,
      `SELECT count(*)::text AS count FROM (
        SELECT 1 FROM ${objects.tables.events} e
        WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
          AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ${Number.isFinite(upTo) ? "LIMIT $3" : ""}
      ) AS counted`,
      [String(position.transaction), String(position.sequence), ...(Number.isFinite(upTo) ? [upTo] : [])]
    ),
    (rows) => Number(rows[0]!.count)
  )

export const streamStates = (objects: PgObjects): Dialect["streamStates"] => (streamIds) =>
  streamIds.length === 0
    ? Effect.succeed([])
    : Effect.map(
      run<{ id: string; type: string; version: number; position: string | null; transaction_id: string | null }>(
        objects,
        `SELECT s.id, s.type, s.version, last.position::text AS position, last.transaction_id::text AS transaction_id
        FROM ${objects.tables.entities} s LEFT JOIN LATERAL (
          SELECT position, transaction_id FROM ${objects.tables.events} WHERE entity_id = s.id ORDER BY ordinal DESC LIMIT 1
        ) last ON true
        WHERE s.id = ANY($1::text[])`,
        [streamIds]
      ),
      (rows) =>
        rows.map((row): StreamState => ({
          id: row.id,
          type: row.type,
          version: row.version,
          position: row.position === null ? Position.start : positionOf(row.position, row.transaction_id)
        }))
    )

export const streamVersions = (objects: PgObjects): Dialect["streamVersions"] => {
  const text = `SELECT id, version FROM ${objects.tables.entities} WHERE id = ANY($1::text[])`
  return (streamIds) => run<{ id: string; version: number }>(objects, text, [streamIds])
}

export const staleStreams = (objects: PgObjects): Dialect["staleStreams"] => (streamIds) =>
  Effect.map(
    run<{ id: string }>(
      objects,
      `SELECT id FROM ${objects.tables.entities} WHERE id = ANY($1::text[]) AND transaction_id > pg_current_xact_id_if_assigned()`,
      [streamIds]
    ),
    (rows) => rows.map((row) => row.id)
  )

export const eventsById = (objects: PgObjects): Dialect["eventsById"] => (eventIds, window) =>
  eventIds.length === 0
    ? Effect.succeed([])
    : run<EventRowWithAppendSize>(
      objects,
      `SELECT ${objects.columns},
        (SELECT count(*) FROM ${objects.tables.events} o
          WHERE o.entity_id = e.entity_id AND o.ordinal BETWEEN e.ordinal - $2 AND e.ordinal + $2
            AND o.position = e.position AND o.transaction_id = e.transaction_id) AS append_size
      FROM ${objects.tables.events} e LEFT JOIN ${objects.tables.entities} s ON s.id = e.entity_id
      WHERE e.event_id = ANY($1::text[])`,
      [eventIds, window]
    )

/** The streams with events beyond their row's version, or with no row (see `Dialect`). */
export const brokenStreams = (objects: PgObjects): Dialect["brokenStreams"] => (streamIds) =>
  Effect.map(
    run<{ id: string }>(
      objects,
      `SELECT ids.id FROM unnest($1::text[]) AS ids(id)
      WHERE EXISTS (
        SELECT 1 FROM ${objects.tables.events} e
        WHERE e.entity_id = ids.id AND e.ordinal > COALESCE((SELECT version FROM ${objects.tables.entities} WHERE id = ids.id), 0)
      )`,
      [streamIds]
    ),
    (rows) => rows.map((row) => row.id)
  )

/** The store's tables that do not exist. */
export const missingTables = (objects: PgObjects): Dialect["missingTables"] =>
  Effect.map(
    run<{ name: string }>(objects, `SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL`, [
      [
        objects.tables.entities,
        objects.tables.events,
        objects.tables.projections,
        objects.tables.deadLetters,
        objects.tables.snapshots
      ]
    ]),
    (rows) => rows.map((row) => row.name)
  )

/** The reads of the dialect, as the assembler gives them to the stores. */
export const reads = (
  objects: PgObjects
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
