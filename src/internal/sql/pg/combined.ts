/**
 * Group commit on PostgreSQL: appends to different streams, each with its own expectation, as
 * one statement and so one transaction, one round trip and one commit.
 *
 * The statement does for every append what the statement of one append does (see
 * `lockAndMoveStream`), over arrays: it takes the advisory locks of all the streams in the order
 * of their keys (as an append to several streams does, so batches and such appends cannot
 * deadlock), and only then is given its transaction id; it moves each stream whose checks hold
 * (an `UPDATE` for an exact version or an existing stream, an insert for a new one, an upsert
 * for any version), draws a position for each append it moved, and inserts their events. An
 * append whose checks fail moves nothing and inserts nothing, and the others go on: the
 * statement returns one row per append it stored. A batch holds each stream once, so no row is
 * written twice in one statement.
 *
 * The text is fixed once per store: every value travels in a parameter, those of the appends
 * and of their events in arrays.
 */
import type { AppendResult } from "../../../EventStore.js"
import type { PreparedAppend } from "../../prepareAppend.js"
import { appendResult, batchExpectation } from "../dialect.js"
import { fromDays, positionOf } from "../rows.js"
import type { PgObjects } from "./objects.js"
import { now } from "./objects.js"

/** The text of the combined statement, with or without a notification to listeners. */
export const combinedStatement = (objects: PgObjects, notifying: boolean): string => {
  const { entities, events } = objects.tables
  const beyond = (id: string, version: string) =>
    `EXISTS (SELECT 1 FROM ${events} WHERE entity_id = ${id} AND ordinal > ${version})`
  return `WITH input AS MATERIALIZED (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[])
        WITH ORDINALITY AS a(id, type, kind, expected, count, n)
    ),
    lock AS MATERIALIZED (
      SELECT count(pg_advisory_xact_lock(key))::text AS held
      FROM (SELECT DISTINCT hashtextextended($14 || id, 0) AS key FROM input ORDER BY key) AS keys
    ),
    xact AS MATERIALIZED (SELECT CASE WHEN held IS NOT NULL THEN pg_current_xact_id() END AS id FROM lock),
    updated AS (
      UPDATE ${entities} AS s SET version = s.version + i.count, transaction_id = x.id
      FROM input i, xact x
      WHERE i.kind IN ('exact', 'exists') AND s.id = i.id AND s.type = i.type
        AND ((i.kind = 'exists' AND s.version > 0) OR s.version = i.expected)
        AND s.transaction_id <= x.id AND NOT ${beyond("s.id", "s.version")}
      RETURNING s.id, s.version
    ),
    created AS (
      INSERT INTO ${entities} AS s (id, type, version, transaction_id)
      SELECT i.id, i.type, i.count, x.id FROM input i, xact x WHERE i.kind = 'new' AND NOT ${beyond("i.id", "0")}
      ON CONFLICT (id) DO NOTHING
      RETURNING s.id, s.version
    ),
    upserted AS (
      INSERT INTO ${entities} AS s (id, type, version, transaction_id)
      SELECT i.id, i.type, i.count, x.id FROM input i, xact x
      WHERE i.kind = 'any' AND NOT ${beyond("i.id", `COALESCE((SELECT version FROM ${entities} WHERE id = i.id), 0)`)}
      ON CONFLICT (id) DO UPDATE SET version = s.version + excluded.version, transaction_id = excluded.transaction_id
      WHERE s.type = excluded.type AND s.transaction_id <= excluded.transaction_id
      RETURNING s.id, s.version
    ),
    positioned AS MATERIALIZED (
      SELECT i.n, moved.version - i.count AS before, nextval($15::regclass) AS position
      FROM (SELECT * FROM updated UNION ALL SELECT * FROM created UNION ALL SELECT * FROM upserted) AS moved
        JOIN input i ON i.id = moved.id
    ),
    inserted AS (
      INSERT INTO ${events}
        (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata, schema_version)
      SELECT i.id, e.name, e.details, e.actor, ${now}, p.before + e.k, p.position, e.event_id, e.metadata,
        e.schema_version
      FROM unnest($6::int[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[])
          AS e(n, k, name, details, event_id, actor, metadata, schema_version)
        JOIN positioned p ON p.n = e.n JOIN input i ON i.n = e.n
      RETURNING entity_id, ordinal, position, transaction_id, timestamp
    )${
    notifying
      ? `, notified AS (SELECT pg_notify($16, position::text) FROM inserted LIMIT 1)`
      : ""
  }
    SELECT entity_id, max(ordinal) AS version, min(position)::text AS position,
      min(transaction_id::text) AS transaction_id, min(timestamp)::text AS timestamp${
    notifying ? ", (SELECT count(*) FROM notified) AS notified" : ""
  }
    FROM inserted GROUP BY entity_id`
}

/** The values of the combined statement for a batch: per append, per event, then the store's names. */
export const combinedValues = (
  { lockSpace, sequenceName, tables }: PgObjects,
  appends: ReadonlyArray<PreparedAppend>,
  notifying: boolean
): ReadonlyArray<unknown> => {
  const expectations = appends.map(batchExpectation)
  const events = appends.flatMap((append, index) =>
    append.events.map((event, k) => ({ n: index + 1, k: k + 1, event }))
  )
  return [
    appends.map((append) => append.streamId),
    appends.map((append) => append.streamType),
    expectations.map(([kind]) => kind),
    expectations.map(([, version]) => version),
    appends.map((append) => append.events.length),
    events.map(({ n }) => n),
    events.map(({ k }) => k),
    events.map(({ event }) => event.type),
    events.map(({ event }) => event.data),
    events.map(({ event }) => event.id),
    events.map(({ event }) => event.actor),
    events.map(({ event }) => event.metadata),
    events.map(({ event }) => event.schemaVersion),
    lockSpace,
    sequenceName,
    ...(notifying ? [tables.channel] : [])
  ]
}

export interface CombinedRow {
  readonly entity_id: string
  readonly version: number
  readonly position: string
  readonly transaction_id: string
  readonly timestamp: string
}

/** Each append's result from the rows of the appends the statement stored; `undefined` for the others. */
export const combinedResults = (
  appends: ReadonlyArray<PreparedAppend>,
  rows: ReadonlyArray<CombinedRow>
): ReadonlyArray<AppendResult | undefined> => {
  const stored = new Map(rows.map((row) => [row.entity_id, row]))
  return appends.map((append) => {
    const row = stored.get(append.streamId)
    return row === undefined
      ? undefined
      : appendResult(append, row.version, positionOf(row.position, row.transaction_id), fromDays(row.timestamp))
  })
}
