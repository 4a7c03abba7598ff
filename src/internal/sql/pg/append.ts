/**
 * The PostgreSQL append: the statement that locks a stream and moves its version, the insert of
 * its events, and the orchestration of appends to one stream or several (see pg.ts for why the
 * lock comes before the transaction id).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { AppendResult } from "../../../EventStore.js"
import * as ExpectedVersion from "../../../ExpectedVersion.js"
import type { PreparedAppend } from "../../prepareAppend.js"
import { compareStreamIds } from "../../streamOrder.js"
import type { Dialect } from "../dialect.js"
import { AppendConflict, appendResult, emptyResult } from "../dialect.js"
import { fromDays, positionOf } from "../rows.js"
import type { CombinedRow } from "./combined.js"
import { combinedResults, combinedStatement, combinedValues } from "./combined.js"
import type { PgObjects } from "./objects.js"
import { now, parameters, run, transaction } from "./objects.js"
import { staleStreams, streamStates } from "./reads.js"

/**
 * The statements that lock one stream and move its version, returning the new version only if
 * the checks hold, as two CTEs (`lock`, `stream`).
 *
 * The stream's advisory lock comes first, before the transaction writes anything and so before
 * it is given a transaction id: of two appends to one stream, the one that takes the lock first
 * gets the smaller id as well as the smaller version, so the global order, which follows
 * transaction ids, keeps each stream's versions in order. That order must not depend on the
 * plan: a planner may evaluate `pg_current_xact_id()` in the scan of the stream's row, before
 * a lock taken in a joined subquery. So the lock is a materialized CTE, and every use of the
 * transaction id is an expression of the lock's output, which no plan can evaluate before the
 * lock is held.
 *
 * The stream's row records the id of the last transaction that appended to it, and a
 * transaction that already had a smaller id (an application transaction that wrote before it
 * appended) is refused rather than allowed to put its events before that one's.
 */
const lockAndMoveStream = (
  { lockSpace, tables: { entities, events } }: PgObjects,
  append: PreparedAppend,
  param: (value: unknown) => string
): string => {
  const id = param(append.streamId)
  const type = param(append.streamType)
  const count = param(append.events.length)
  const lock = `lock AS MATERIALIZED (
      SELECT pg_advisory_xact_lock(hashtextextended(${param(lockSpace)} || ${id}, 0))::text AS held
    )`
  const transactionId = "(CASE WHEN lock.held IS NOT NULL THEN pg_current_xact_id() END)"
  // Events stored beyond the stream's version (by a writer that broke the protocol) stop the
  // append, rather than numbering new events among them. Compared with the version the
  // statement moves, the check sees no such events in a store that holds none, whatever
  // appends committed while it waited for the lock.
  const beyond = (version: string) =>
    `EXISTS (SELECT 1 FROM ${events} WHERE entity_id = ${id} AND ordinal > ${version})`
  const expected = append.expectedVersion
  if (expected === "any") {
    return `${lock}, stream AS (INSERT INTO ${entities} AS s (id, type, version, transaction_id)
      SELECT ${id}, ${type}, ${count}, ${transactionId} FROM lock
      WHERE NOT ${beyond(`COALESCE((SELECT version FROM ${entities} WHERE id = ${id}), 0)`)}
      ON CONFLICT (id) DO UPDATE SET version = s.version + ${count}, transaction_id = excluded.transaction_id
      WHERE s.type = ${type} AND s.transaction_id <= excluded.transaction_id
      RETURNING s.version)`
  }
  if (expected === "no-stream" || expected === 0) {
    return `${lock}, stream AS (INSERT INTO ${entities} AS s (id, type, version, transaction_id)
      SELECT ${id}, ${type}, ${count}, ${transactionId} FROM lock WHERE NOT ${beyond("0")}
      ON CONFLICT (id) DO NOTHING RETURNING s.version)`
  }
  const condition = expected === "stream-exists" ? "s.version > 0" : `s.version = ${param(expected)}`
  return `${lock}, stream AS (UPDATE ${entities} AS s SET version = s.version + ${count}, transaction_id = ${transactionId}
    FROM lock
    WHERE s.id = ${id} AND s.type = ${type} AND ${condition} AND s.transaction_id <= ${transactionId}
      AND NOT ${beyond("s.version")}
    RETURNING s.version)`
}

/**
 * Takes the advisory locks of several streams in the order of their keys, so that two appends
 * to overlapping streams take them in the same order and cannot deadlock.
 */
const lockStreams = (objects: PgObjects, streamIds: ReadonlyArray<string>) =>
  run(
    objects,
    `SELECT count(pg_advisory_xact_lock(key)) AS locked
    FROM (SELECT DISTINCT hashtextextended($1 || id, 0) AS key FROM unnest($2::text[]) AS id ORDER BY key) AS keys`,
    [objects.lockSpace, streamIds]
  )

/**
 * One stream's part of an append as one statement; `position` is a placeholder or `undefined`
 * to draw one. Inside an application's transaction it notifies listeners itself (delivered when
 * that transaction commits, which the store cannot see).
 */
const appendStatement = (
  objects: PgObjects,
  append: PreparedAppend,
  position: bigint | undefined,
  notifying: boolean
) => {
  const { sequenceName, tables } = objects
  const { events } = tables
  const { param, values } = parameters()
  const stream = lockAndMoveStream(objects, append, param)
  const positionValue = position === undefined
    ? `nextval(${param(sequenceName)}::regclass)`
    : `${param(String(position))}::bigint`
  const column = <K extends keyof PreparedAppend["events"][number]>(key: K, type = "text") =>
    `${param(append.events.map((event) => event[key]))}::${type}[]`
  // Most appends give all their events one actor, one metadata and one schema version: those
  // go as one value.
  const uniform = <K extends "actor" | "metadata" | "schemaVersion">(key: K, name: string, type: string) => {
    const first = append.events[0]![key]
    return append.events.every((event) => event[key] === first)
      ? { select: `${param(first)}::${type}`, unnest: "", alias: "" }
      : { select: `e.${name}`, unnest: `, ${column(key, type)}`, alias: `, ${name}` }
  }
  const actor = uniform("actor", "actor", "text")
  const metadata = uniform("metadata", "metadata", "text")
  const schemaVersion = uniform("schemaVersion", "schema_version", "integer")
  const query = `WITH ${stream},
    position AS (SELECT ${positionValue} AS value FROM stream),
    inserted AS (
      INSERT INTO ${events}
        (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata, schema_version)
      SELECT ${param(append.streamId)}, e.name, e.details, ${actor.select}, ${now},
        stream.version - ${param(append.events.length)} + e.ordinality, position.value, e.event_id, ${metadata.select},
        ${schemaVersion.select}
      FROM stream, position,
        unnest(${column("type")}, ${column("data")}, ${
    column("id")
  }${actor.unnest}${metadata.unnest}${schemaVersion.unnest})
          WITH ORDINALITY AS e(name, details, event_id${actor.alias}${metadata.alias}${schemaVersion.alias}, ordinality)
      RETURNING ordinal, position, transaction_id, timestamp
    )${
    notifying
      ? `, notified AS (SELECT pg_notify(${param(tables.channel)}, position::text) FROM inserted LIMIT 1)`
      : ""
  }
    SELECT max(ordinal) AS version, min(position)::text AS position,
      min(transaction_id::text) AS transaction_id, min(timestamp)::text AS timestamp${
    notifying ? ", (SELECT count(*) FROM notified) AS notified" : ""
  }
    FROM inserted`
  return { query, values }
}

interface Appended {
  readonly version: number | null
  readonly position: string | null
  readonly transaction_id: string | null
  readonly timestamp: string | null
}

const appendOne = (objects: PgObjects, append: PreparedAppend, position: bigint | undefined, notifying: boolean) => {
  const { query, values } = appendStatement(objects, append, position, notifying)
  return Effect.flatMap(run<Appended>(objects, query, values), (rows) => {
    const row = rows[0]
    // One statement inserts all of its rows or none: no rows means the checks failed.
    return row === undefined || row.version === null
      ? Effect.fail(new AppendConflict({}))
      : Effect.succeed(
        appendResult(append, row.version, positionOf(row.position!, row.transaction_id), fromDays(row.timestamp))
      )
  })
}

/** Checks a stream an append writes nothing to, holding its row until the transaction ends. */
const checkUnchanged = (objects: PgObjects, append: PreparedAppend) =>
  Effect.gen(function*() {
    const rows = yield* run<{ type: string; version: number }>(
      objects,
      `SELECT type, version FROM ${objects.tables.entities} WHERE id = $1 FOR SHARE`,
      [append.streamId]
    )
    const row = rows[0]
    const version = row?.version ?? 0
    if (row !== undefined && row.type !== append.streamType) return yield* new AppendConflict({})
    if (!ExpectedVersion.isSatisfiedBy(append.expectedVersion, version)) return yield* new AppendConflict({})
  })

/**
 * In a transaction, a refused append reads its streams before the transaction (or savepoint)
 * is rolled back, while it still holds their locks: see `Seen`. A stream it already wrote to
 * is reported as it was before that write (which its checks accepted).
 */
const withSeen = <A, R>(
  objects: PgObjects,
  appends: ReadonlyArray<PreparedAppend>,
  effect: Effect.Effect<A, AppendConflict | SqlError, R>,
  written: ReadonlyMap<string, AppendResult> = new Map()
) =>
  Effect.catchTag(effect, "AppendConflict", () => {
    const streamIds = appends.map((append) => append.streamId)
    return Effect.flatMap(
      Effect.all([streamStates(objects)(streamIds), staleStreams(objects)(streamIds)]),
      ([states, stale]) =>
        Effect.fail(
          new AppendConflict({
            seen: {
              states: states.map((state) => {
                const result = written.get(state.id)
                return result === undefined ? state : { ...state, version: result.version - result.events.length }
              }),
              stale
            }
          })
        )
    )
  })

/**
 * An append to several streams (or one that only checks), in a transaction: it takes their locks
 * in order, draws one position, and writes or checks each stream in stream id order.
 */
const appendSeveral = (objects: PgObjects, appends: ReadonlyArray<PreparedAppend>, inTransaction: boolean) => {
  const written = new Map<string, AppendResult>()
  return withSeen(
    objects,
    appends,
    Effect.gen(function*() {
      yield* lockStreams(objects, appends.map((append) => append.streamId))
      const writing = appends.some((append) => append.events.length > 0)
      const position = writing
        ? BigInt(
          (yield* run<{ value: string }>(objects, `SELECT nextval($1::regclass)::text AS value`, [
            objects.sequenceName
          ]))[0]!
            .value
        )
        : undefined
      for (const append of [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))) {
        if (append.events.length === 0) yield* checkUnchanged(objects, append)
        else written.set(append.streamId, yield* appendOne(objects, append, position, inTransaction))
      }
      const states = yield* streamStates(objects)(
        appends.filter((append) => append.events.length === 0).map((a) => a.streamId)
      )
      return appends.map((append) =>
        written.get(append.streamId) ??
          emptyResult(append.streamId, states.find((state) => state.id === append.streamId))
      )
    }),
    written
  )
}

/**
 * Appends: one stream's append alone is one statement (its own transaction, or a savepoint in
 * the application's); several streams' take their locks in order in one transaction and share
 * one position; appends to one stream each can be combined into one statement (group commit, see
 * combined.ts). `readCommitted`: whether the server's default isolation is READ COMMITTED,
 * which an append needs (it waits for its streams' locks, then reads their latest rows: a
 * REPEATABLE READ transaction would keep the snapshot it took before the wait and fail to
 * serialize); when it is not, the store's own appends ask for it.
 */
export const makeAppend = (
  objects: PgObjects,
  readCommitted: boolean,
  notify: Effect.Effect<void>
): Pick<Dialect, "append" | "combined"> => {
  /**
   * Appends to one stream, and batches of them, from this process under way: one alone
   * notifies from its statement.
   */
  let inFlight = 0
  const inOwnTransaction = transaction(readCommitted)
  const counted = <A, E, R>(use: (alone: boolean) => Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => inFlight++ === 0),
      use,
      () => Effect.sync(() => void inFlight--)
    )
  const statements = { notifying: combinedStatement(objects, true), quiet: combinedStatement(objects, false) }
  const combined: Dialect["combined"]["append"] = (appends) =>
    counted((alone) => {
      const query = alone ? statements.notifying : statements.quiet
      const stored = Effect.map(
        run<CombinedRow>(objects, query, combinedValues(objects, appends, alone)),
        (rows) => combinedResults(appends, rows)
      )
      return (readCommitted ? stored : inOwnTransaction(stored)).pipe(
        Effect.tap((results) => (alone || results.every((result) => result === undefined) ? Effect.void : notify))
      )
    })
  const append: Dialect["append"] = (appends) =>
    Effect.gen(function*() {
      const single = appends.length === 1 && appends[0]!.events.length > 0
      const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
      if (single) {
        // Alone, the statement is its own transaction; inside the application's it gets a
        // savepoint, so that a failed append does not abort the application's transaction.
        return yield* counted((alone) => {
          const notifying = inTransaction || alone
          const one = Effect.map(appendOne(objects, appends[0]!, undefined, notifying), (result) => [result])
          return (inTransaction || !readCommitted ? inOwnTransaction(withSeen(objects, appends, one)) : one).pipe(
            Effect.tap(() => (notifying ? Effect.void : notify))
          )
        })
      }
      const results = yield* inOwnTransaction(appendSeveral(objects, appends, inTransaction))
      if (!inTransaction && results.some((result) => result.events.length > 0)) yield* notify
      return results
    })
  // Up to four batches in flight: one slow batch (its streams locked by an application's
  // transaction) leaves the others a way to the database.
  return { append, combined: { inFlight: 4, append: combined } }
}
