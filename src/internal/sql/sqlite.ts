/**
 * The SQLite statements.
 *
 * SQLite has one writer at a time, so its commit order is its write order: an append takes the
 * write lock first (`BEGIN IMMEDIATE`, so that two processes sharing a file queue on the lock
 * instead of failing), checks and moves each stream's version, numbers its position after the
 * greatest one stored, and inserts its events. Readers see whole transactions, so the global
 * order needs no fence.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { AppendResult } from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import * as Position from "../../Position.js"
import type { PreparedAppend } from "../prepareAppend.js"
import { compareStreamIds } from "../streamOrder.js"
import type { Dialect, EventRowWithAppendSize, StreamState } from "./dialect.js"
import { AppendConflict, appendResult, causeCode, createSnapshots, emptyResult, streamPage, wholeAppends } from "./dialect.js"
import type { EventRow } from "./rows.js"
import { fromDays, positionOf } from "./rows.js"
import { runStatement } from "./shared.js"
import type { Tables } from "./tables.js"
import { baseName, problems, schemaOf } from "./tables.js"

/** Rows per INSERT: at ten values a row, well under SQLite's limit of 32,766 bound values. */
const rowsPerInsert = 1_000
/** Values per `IN (...)` list. */
const idsPerQuery = 500

const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size))

const placeholders = (count: number) => Array.from({ length: count }, () => "?").join(", ")

/**
 * How a transaction waits for SQLite's write lock while another process holds it: it tries to
 * take it again after 1 ms, doubling up to 50 ms, for 30 seconds, and then fails with
 * `SQLITE_BUSY`. Between tries the fiber sleeps and gives the connection back, so the event loop
 * and the process's other fibers go on (a busy timeout would block them: better-sqlite3 waits
 * synchronously).
 */
const lockWait = Schedule.exponential("1 millis").pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered,
  Schedule.upTo("30 seconds")
)

const isBusy = (error: SqlError) => causeCode(error)?.startsWith("SQLITE_BUSY") === true

/**
 * Runs an effect in a transaction that holds SQLite's write lock from its first statement
 * (`BEGIN IMMEDIATE`). A deferred transaction that reads before it writes fails with
 * `SQLITE_BUSY` when another process wrote in between, and waiting cannot help it; an immediate
 * one waits for the lock (see `lockWait`) before anything runs. Inside an existing transaction it
 * is a savepoint of it.
 */
export const withImmediateTransaction = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))) {
      return yield* sql.withTransaction(effect)
    }
    return yield* Effect.scoped(Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const connection = yield* restore(Effect.retry(begin(sql, yield* Effect.scope), { schedule: lockWait, while: isBusy }))
        const exit = yield* Effect.exit(
          restore(Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]))
        )
        const rollback = Effect.ignore(connection.executeUnprepared("ROLLBACK", [], undefined))
        if (Exit.isFailure(exit)) {
          yield* rollback
          return yield* exit
        }
        // A commit that fails leaves the transaction open: end it before reporting the failure.
        yield* Effect.tapError(connection.executeUnprepared("COMMIT", [], undefined), () => rollback)
        return yield* exit
      })
    ))
  })

/**
 * Reserves the connection (for the life of `outer`) and takes the write lock; when the lock is
 * taken by another process, gives the connection back and fails.
 */
const begin = (sql: SqlClient.SqlClient, outer: Scope.Scope) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const connection = yield* Scope.extend(sql.reserve, scope)
    return yield* Effect.as(
      Effect.tapError(connection.executeUnprepared("BEGIN IMMEDIATE", [], undefined), () => Scope.close(scope, Exit.void)),
      connection
    )
  })

/**
 * Gives the event loop a turn (timers, I/O) between the pages of a long read: better-sqlite3
 * runs every statement synchronously, so a read of many pages would otherwise hold the loop for
 * its whole duration.
 */
const betweenPages: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})

export const make = (tables: Tables): Dialect => {
  const { entities, events, projections } = tables
  const columns =
    `e.entity_id, s.type, e.ordinal, e.position, NULL AS transaction_id, e.name, e.details, e.actor, e.timestamp, e.event_id, e.metadata,
    e.schema_version, s.version AS stream_version`

  const run = <A extends object>(query: string, values: ReadonlyArray<unknown>) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => runStatement<A>(sql, query, values))

  const migrations: Dialect["migrations"] = {
    "1_protocol_tables": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${entities} (
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        version INT NOT NULL,
        PRIMARY KEY (id)
      )`)
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${events} (
        entity_id TEXT NOT NULL,
        name TEXT NOT NULL,
        details TEXT NOT NULL,
        actor TEXT NOT NULL,
        timestamp DECIMAL(12,7) DEFAULT (JulianDay(CURRENT_TIMESTAMP) - 2440587.5),
        ordinal INT NOT NULL,
        position BIGINT NOT NULL
      )`)
      // Extensions, added to a table another implementation may have created. SQLite cannot add
      // a column whose default is computed, so a trigger gives event ids to rows that come
      // without one (from a plain protocol writer).
      const present = new Set(
        (yield* sql.unsafe<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, [tables.names.events]))
          .map((column) => column.name)
      )
      if (!present.has("event_id")) yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN event_id TEXT`)
      if (!present.has("metadata")) {
        yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'`)
      }
      yield* sql.unsafe(`UPDATE ${events} SET event_id = lower(hex(randomblob(16))) WHERE event_id IS NULL`)
      yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${tables.eventsObject("event_id_default")}
        AFTER INSERT ON ${events} WHEN NEW.event_id IS NULL
        BEGIN UPDATE ${events} SET event_id = lower(hex(randomblob(16))) WHERE rowid = NEW.rowid; END`)
      yield* sql.unsafe(
        `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("stream_version")} ON ${events} (entity_id, ordinal)`
      )
      yield* sql.unsafe(`CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("event_id")} ON ${events} (event_id)`)
      yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS ${tables.eventsObject("position")} ON ${events} (position)`)
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${projections} (source TEXT PRIMARY KEY, position BIGINT)`)
    }),
    "2_dead_letters": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`CREATE TABLE IF NOT EXISTS ${tables.deadLetters} (
        projection TEXT NOT NULL,
        event_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        version INT NOT NULL,
        event_type TEXT NOT NULL,
        position BIGINT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (projection, event_id)
      )`)),
    // Rows written before this migration, or by a writer that does not know the column, were
    // written in the first version of their event type's schema. A table another implementation
    // created may have the column already.
    "3_event_schema_versions": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const present = yield* sql.unsafe<{ name: string }>(
        `SELECT name FROM pragma_table_info(?) WHERE name = 'schema_version'`,
        [tables.names.events]
      )
      if (present.length === 0) {
        yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1`)
      }
    }),
    "4_snapshots": createSnapshots(tables.snapshots, "TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))")
  }

  /**
   * Moves one stream's version if the checks hold; no row when they do not. Events stored
   * beyond the stream's version (by a writer that broke the protocol) stop the append, rather
   * than numbering new events among them.
   */
  const moveStream = (append: PreparedAppend) => {
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

  const insertEvents = (append: PreparedAppend, versionBefore: number, position: number, timestamp: number) =>
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

  const append: Dialect["append"] = (appends) =>
    withImmediateTransaction(Effect.gen(function*() {
      const sorted = [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))
      const versions = new Map<string, number>()
      for (const append of sorted.filter((append) => append.events.length > 0)) {
        const moved = (yield* moveStream(append))[0]
        if (moved === undefined) return yield* new AppendConflict({})
        versions.set(append.streamId, moved.version)
      }
      const unchanged = yield* streamStates(
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
        return appends.map((append) => emptyResult(append.streamId, unchanged.find((state) => state.id === append.streamId)))
      }
      const [next] = yield* run<{ position: number; timestamp: number }>(
        `SELECT COALESCE(MAX(position), 0) + 1 AS position, julianday('now') - 2440587.5 AS timestamp FROM ${events}`,
        []
      )
      const results = new Map<string, AppendResult>()
      for (const append of sorted.filter((append) => append.events.length > 0)) {
        const version = versions.get(append.streamId)!
        yield* insertEvents(append, version - append.events.length, next!.position, next!.timestamp)
        results.set(
          append.streamId,
          appendResult(append, version, positionOf(next!.position, null), fromDays(next!.timestamp))
        )
      }
      return appends.map((append) =>
        results.get(append.streamId) ?? emptyResult(append.streamId, unchanged.find((state) => state.id === append.streamId))
      )
    }))

  /** A page of one stream, with the stream's row (as on PostgreSQL). */
  const readStream: Dialect["readStream"] = (streamId, direction, from, limit) =>
    Effect.map(
      run<EventRow>(
        `SELECT ${columns} FROM (SELECT 1) AS one
        LEFT JOIN ${entities} s ON s.id = ?
        LEFT JOIN (
          SELECT * FROM ${events} WHERE entity_id = ? AND ordinal ${direction === "forward" ? ">=" : "<="} ?
          ORDER BY ordinal ${direction === "forward" ? "ASC" : "DESC"} LIMIT ?
        ) e ON 1
        ORDER BY e.ordinal ${direction === "forward" ? "ASC" : "DESC"}`,
        [streamId, streamId, from, limit]
      ),
      streamPage
    )

  const readAll: Dialect["readAll"] = (after, size) =>
    Effect.flatMap(
      run<EventRow>(
        `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
        WHERE e.position > ? ORDER BY e.position LIMIT ?`,
        [Number(after.sequence), size]
      ),
      (rows) =>
        wholeAppends(rows, size, (last) =>
          run<EventRow>(
            `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id WHERE e.position = ?`,
            [last.position]
          ))
    )

  const head: Dialect["head"] = Effect.map(
    run<{ position: number | null }>(`SELECT MAX(position) AS position FROM ${events}`, []),
    (rows) => rows[0]?.position === null || rows[0] === undefined ? Position.start : positionOf(rows[0].position, null)
  )

  const countAfter: Dialect["countAfter"] = (position, upTo) =>
    Effect.map(
      run<{ count: number }>(
        `SELECT count(*) AS count FROM (SELECT 1 FROM ${events} WHERE position > ? LIMIT ?)`,
        // SQLite reads a negative limit as none.
        [Number(position.sequence), Number.isFinite(upTo) ? upTo : -1]
      ),
      (rows) => rows[0]!.count
    )

  const streamStates: Dialect["streamStates"] = (streamIds) =>
    Effect.map(
      Effect.forEach(chunks(streamIds, idsPerQuery), (ids) =>
        run<{ id: string; type: string; version: number; position: number | null }>(
          `SELECT s.id, s.type, s.version,
            (SELECT position FROM ${events} WHERE entity_id = s.id ORDER BY ordinal DESC LIMIT 1) AS position
          FROM ${entities} s WHERE s.id IN (${placeholders(ids.length)})`,
          ids
        )),
      (batches) =>
        batches.flat().map((row): StreamState => ({
          id: row.id,
          type: row.type,
          version: row.version,
          position: row.position === null ? Position.start : positionOf(row.position, null)
        }))
    )

  const eventsById: Dialect["eventsById"] = (eventIds, window) =>
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

  const tableNames = [
    tables.names.entities,
    tables.names.events,
    tables.names.projections,
    tables.deadLettersName,
    tables.names.snapshots
  ].map((name) => ({ name, schema: schemaOf(name) ?? "main", base: baseName(name) }))

  return {
    nameProblems: problems(tables, Infinity),
    missingTables: Effect.map(
      run<{ name: string }>(
        `SELECT json_extract(value, '$.name') AS name FROM json_each(?) AS wanted
        WHERE NOT EXISTS (
          SELECT 1 FROM pragma_table_list AS t
          WHERE t.schema = json_extract(wanted.value, '$.schema') COLLATE NOCASE
            AND t.name = json_extract(wanted.value, '$.base') COLLATE NOCASE
        )`,
        [JSON.stringify(tableNames)]
      ),
      (rows) => rows.map((row) => row.name)
    ),
    migrations,
    exclusively: withImmediateTransaction,
    betweenPages,
    append,
    readStream,
    readAll,
    head,
    countAfter,
    streamStates,
    eventsById,
    // Appends that share a position look like one append over several streams here.
    ordering: { columns: ["position"], position: ([sequence]) => positionOf(sequence!, null) },
    isUniqueViolation: (error: SqlError) => {
      const code = causeCode(error)
      return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY"
    },
    // One writer at a time, in commit order: no serialization conflicts, no stale transactions.
    transient: () => undefined,
    brokenStreams: (streamIds) =>
      Effect.map(
        Effect.forEach(chunks(streamIds, idsPerQuery), (ids) =>
          run<{ id: string }>(
            `SELECT DISTINCT e.entity_id AS id FROM ${events} e
            WHERE e.entity_id IN (${placeholders(ids.length)})
              AND e.ordinal > COALESCE((SELECT version FROM ${entities} WHERE id = e.entity_id), 0)`,
            ids
          )),
        (batches) => batches.flat().map((row) => row.id)
      ),
    staleStreams: () => Effect.succeed([])
  }
}
