/**
 * The SQLite append: under the write lock, each stream's version is checked and moved, the
 * position numbered after the greatest stored, and the events inserted.
 */
import * as Effect from "effect/Effect"
import * as ExpectedVersion from "../../../ExpectedVersion.js"
import type { PreparedAppend, PreparedEvent } from "../../prepareAppend.js"
import { compareStreamIds } from "../../streamOrder.js"
import type { Dialect } from "../dialect.js"
import { AppendConflict, appendResult, batchExpectation, emptyResult } from "../dialect.js"
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
 * The appends of a batch as rows of `json_each(?)`: the statements that move their streams have
 * one parameter, and so one text (prepared once) whatever the batch's size.
 */
const batchInput = `SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS type,
  json_extract(value, '$[2]') AS kind, json_extract(value, '$[3]') AS expected, json_extract(value, '$[4]') AS count
  FROM json_each(?)`

/**
 * The statements that move the streams of a batch, one per kind of expectation, each moving only
 * the streams whose checks hold (as `moveStream` does for one) and returning their new versions.
 */
const moveStreamsStatements = ({ tables: { entities, events } }: SqliteObjects) => {
  const beyond = (id: string, version: string) =>
    `EXISTS (SELECT 1 FROM ${events} WHERE entity_id = ${id} AND ordinal > ${version})`
  return {
    new: `INSERT INTO ${entities} (id, type, version)
      SELECT i.id, i.type, i.count FROM (${batchInput}) AS i WHERE i.kind = 'new' AND NOT ${beyond("i.id", "0")}
      ON CONFLICT (id) DO NOTHING RETURNING id, version`,
    any: `INSERT INTO ${entities} (id, type, version)
      SELECT i.id, i.type, i.count FROM (${batchInput}) AS i
      WHERE i.kind = 'any' AND NOT ${beyond("i.id", `COALESCE((SELECT version FROM ${entities} WHERE id = i.id), 0)`)}
      ON CONFLICT (id) DO UPDATE SET version = version + excluded.version WHERE type = excluded.type
      RETURNING id, version`,
    existing: `UPDATE ${entities} SET version = ${entities}.version + i.count FROM (${batchInput}) AS i
      WHERE i.kind IN ('exact', 'exists') AND ${entities}.id = i.id AND ${entities}.type = i.type
        AND ((i.kind = 'exists' AND ${entities}.version > 0) OR ${entities}.version = i.expected)
        AND NOT ${beyond(`${entities}.id`, `${entities}.version`)}
      RETURNING ${entities}.id AS id, ${entities}.version AS version`
  }
}

/** Inserts a batch's events through `json_each(?)`, one statement whatever their number. */
const insertEventsStatement = ({ tables: { events } }: SqliteObjects) =>
  `INSERT INTO ${events} (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata,
    schema_version)
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
    json_extract(value, '$[3]'), ?, json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]')
  FROM json_each(?)`

/**
 * Group commit: the appends waiting for the connection in one immediate transaction, one
 * commit. Each is checked and moves its stream as it would alone (one whose checks fail moves
 * nothing), each has a position of its own, and the whole batch takes one statement per kind of
 * expectation in it and one for all the events.
 */
export const combined = (objects: SqliteObjects): Dialect["combined"] => {
  const moves = moveStreamsStatements(objects)
  const insert = insertEventsStatement(objects)
  return {
    // One connection: one batch at a time.
    inFlight: 1,
    append: (appends) =>
      withImmediateTransaction(Effect.gen(function*() {
        const expectations = appends.map(batchExpectation)
        const kinds = expectations.map(([kind]) => kind)
        const input = JSON.stringify(appends.map((append, index) => [
          append.streamId,
          append.streamType,
          ...expectations[index]!,
          append.events.length
        ]))
        const statements = [
          ...(kinds.includes("new") ? [moves.new] : []),
          ...(kinds.includes("any") ? [moves.any] : []),
          ...(kinds.some((kind) => kind === "exact" || kind === "exists") ? [moves.existing] : [])
        ]
        const moved = new Map<string, number>()
        for (const statement of statements) {
          for (const row of yield* run<{ id: string; version: number }>(statement, [input])) {
            moved.set(row.id, row.version)
          }
        }
        if (moved.size === 0) return appends.map(() => undefined)
        const { position: first, timestamp } = yield* next(objects)
        // Positions in the order of the appends the batch stores.
        let position = first
        const stored = appends.flatMap((append) => {
          const version = moved.get(append.streamId)
          return version === undefined ? [] : [{ append, version, position: position++ }]
        })
        const rows = stored.flatMap(({ append, position, version }) =>
          eventRows(append, version - append.events.length, position).map(({ event, ordinal }) => [
            append.streamId,
            event.type,
            event.data,
            event.actor,
            ordinal,
            position,
            event.id,
            event.metadata,
            event.schemaVersion
          ])
        )
        yield* run(insert, [timestamp, JSON.stringify(rows)])
        const results = new Map(stored.map(({ append, position, version }) => [
          append.streamId,
          appendResult(append, version, positionOf(position, null), fromDays(timestamp))
        ]))
        return appends.map((append) => results.get(append.streamId))
      }))
  }
}
