/**
 * The PostgreSQL statements.
 *
 * An append to one stream is one statement: a data-modifying CTE updates the stream's row only
 * if the expected version and type hold, draws the position from a sequence, and inserts the
 * events numbered from the version it returned. When the check fails the CTE returns no row and
 * nothing is written; two writers of one stream queue on its row lock and the second re-checks
 * the version the first committed. Outside a transaction the statement commits by itself (one
 * round trip); inside the application's transaction it runs in a savepoint, so a failure leaves
 * that transaction usable. An append to several streams takes their rows in stream id order,
 * so two such appends cannot deadlock.
 *
 * Every event row records its writing transaction's id. The global order is
 * `(transaction_id, position)`, and a reader only reads rows of transactions older than the
 * oldest one still running (`pg_snapshot_xmin`), so a transaction that drew its position early
 * and commits late is never skipped: readers wait for it instead.
 *
 * Ordering by transaction id keeps each stream's versions in order only if, of two appends to
 * one stream, the one that got the smaller version also got the smaller transaction id. A
 * transaction gets its id when it first writes, which can be before it waits for the stream's
 * row, so an append takes an advisory lock on each of its streams before it writes anything:
 * whoever holds a stream's lock gets its id (and its version) before the next writer of that
 * stream can get either. This holds when the append is the first write of its transaction; an
 * application transaction that wrote before appending already has its id.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
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
import { pgIdentifierBytes, problems, quote, schemaOf } from "./tables.js"

const now = "(EXTRACT(EPOCH FROM statement_timestamp()) / 86400)::numeric(12,7)"

/** Positional parameters: `param(value)` adds a value and returns its placeholder. */
const parameters = () => {
  const values: Array<unknown> = []
  return {
    values,
    param: (value: unknown) => {
      values.push(value)
      return `$${values.length}`
    }
  }
}

/** The isolation level the server gives a transaction that asks for none. */
export const defaultIsolation = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql.unsafe<{ isolation: string }>(`SELECT current_setting('default_transaction_isolation') AS isolation`)
      .withoutTransform,
    (rows) => rows[0]?.isolation ?? "read committed"
  )

export interface Options {
  /** The server's default isolation level (`default_transaction_isolation`). */
  readonly isolation: string
}

/**
 * Tells listeners that events were appended, outside the appends' transactions. A notification
 * sent inside a transaction takes a lock, at commit, that every other notifying transaction
 * waits for, which serializes concurrent appends; so an append that runs while others from this
 * process are in flight asks for a notification once it has committed, and one fiber sends
 * them one at a time: requests that come while one is being sent are answered by the next, so
 * there is at most one in flight however fast appends come. (An append alone notifies from
 * inside its own statement: no lock to wait for, and no round trip of its own.)
 */
const makeNotifier = (channel: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const requests = yield* Queue.sliding<void>(1)
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Queue.take(requests),
          Effect.ignore(sql.unsafe(`SELECT pg_notify($1, '1')`, [channel]))
        )
      )
    )
    return Effect.asVoid(Queue.offer(requests, undefined))
  })

export const make = (tables: Tables, options: Options): Effect.Effect<Dialect, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.map(makeNotifier(tables.channel), (notify) => makeWith(tables, options, notify))

const makeWith = (tables: Tables, options: Options, notify: Effect.Effect<void>): Dialect => {
  /** Appends to one stream from this process under way: one alone notifies from its statement. */
  let inFlight = 0
  /**
   * An append waits for its streams' locks and then reads their latest rows, which only READ
   * COMMITTED allows: a REPEATABLE READ transaction would keep the snapshot it took before the
   * wait and fail to serialize. When the server defaults to another level, the store's own
   * appends say so.
   */
  const readCommitted = options.isolation === "read committed"
  const { entities, events, projections } = tables
  /** Names the advisory locks of this store's streams apart from other stores' in the database. */
  const lockSpace = `effect-eventsourcing ${tables.names.events}`
  /** An object named after the events table, in its schema. */
  const besideEvents = (suffix: string) => {
    const schema = schemaOf(tables.names.events)
    return `${schema === undefined ? "" : `${quote(schema)}.`}${tables.eventsObject(suffix)}`
  }
  const sequenceName = besideEvents("position_seq")
  const advancePositions = besideEvents("advance_positions")
  const columns = `e.entity_id, s.type, e.ordinal, e.position::text AS position, e.transaction_id::text AS transaction_id,
    e.name, e.details, e.actor, e.timestamp::text AS timestamp, e.event_id, e.metadata, e.schema_version,
    s.version AS stream_version`

  const run = <A extends object>(query: string, values: ReadonlyArray<unknown>) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => runStatement<A>(sql, query, values))

  const migrations: Dialect["migrations"] = {
    "1_protocol_tables": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.forEach(
        [
          `CREATE TABLE IF NOT EXISTS ${entities} (
            id TEXT NOT NULL PRIMARY KEY,
            type TEXT NOT NULL,
            version INT NOT NULL
          )`,
          `CREATE TABLE IF NOT EXISTS ${events} (
            entity_id TEXT NOT NULL,
            name TEXT NOT NULL,
            details TEXT NOT NULL,
            actor TEXT NOT NULL,
            timestamp DECIMAL(12,7) DEFAULT ${now},
            ordinal INT NOT NULL,
            position BIGINT NOT NULL
          )`,
          // Extensions, each with a default so that a plain protocol writer still works.
          `ALTER TABLE ${entities} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT '0'`,
          `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS event_id TEXT NOT NULL DEFAULT gen_random_uuid()::text`,
          `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS metadata TEXT NOT NULL DEFAULT '{}'`,
          `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT pg_current_xact_id()`,
          `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("stream_version")} ON ${events} (entity_id, ordinal)`,
          `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("event_id")} ON ${events} (event_id)`,
          `CREATE INDEX IF NOT EXISTS ${tables.eventsObject("global_order")} ON ${events} (transaction_id, position)`,
          `CREATE SEQUENCE IF NOT EXISTS ${sequenceName}`,
          // A database written by another implementation already has positions: go on after them.
          `SELECT setval('${sequenceName.replace(/'/g, "''")}', max(position)) FROM ${events} HAVING max(position) IS NOT NULL`,
          `CREATE TABLE IF NOT EXISTS ${projections} (source TEXT PRIMARY KEY, position BIGINT)`,
          `ALTER TABLE ${projections} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT '0'`,
          // Events stored before this migration were given its transaction id above; checkpoints
          // stored before it (by another implementation) point among them.
          `UPDATE ${projections} SET transaction_id = pg_current_xact_id() WHERE transaction_id = '0'`
        ],
        (statement) => sql.unsafe(statement),
        { discard: true }
      )),
    "2_dead_letters": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`CREATE TABLE IF NOT EXISTS ${tables.deadLetters} (
        projection TEXT NOT NULL,
        event_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        version INT NOT NULL,
        event_type TEXT NOT NULL,
        position BIGINT NOT NULL,
        transaction_id XID8 NOT NULL,
        reason TEXT NOT NULL,
        failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (projection, event_id)
      )`)),
    // Rows written before this migration, or by a writer that does not know the column, were
    // written in the first version of their event type's schema. (A constant default adds the
    // column without rewriting the table.)
    "3_event_schema_versions": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS schema_version INTEGER NOT NULL DEFAULT 1`)),
    "4_snapshots": createSnapshots(tables.snapshots, "TIMESTAMPTZ NOT NULL DEFAULT now()"),
    // A plain protocol writer numbers its positions MAX(position) + 1, not from the sequence:
    // each row it inserts moves the sequence past its position, before it commits, so the
    // store never draws a position such a writer already holds. Only nextval moves the
    // sequence, so it never goes back (setval racing with the store's own nextval could).
    // Rows the store writes are drawn from the sequence and never fire the trigger.
    "5_positions_ahead_of_plain_writers": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.forEach(
        [
          `CREATE OR REPLACE FUNCTION ${advancePositions}(target BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
          BEGIN
            WHILE COALESCE(pg_sequence_last_value('${sequenceName.replace(/'/g, "''")}'::regclass), 0) < target LOOP
              PERFORM nextval('${sequenceName.replace(/'/g, "''")}'::regclass);
            END LOOP;
          END $$`,
          `CREATE OR REPLACE FUNCTION ${besideEvents("position_ahead")}() RETURNS TRIGGER LANGUAGE plpgsql AS $$
          BEGIN
            PERFORM ${advancePositions}(NEW.position);
            RETURN NEW;
          END $$`,
          `DROP TRIGGER IF EXISTS ${tables.eventsObject("position_ahead")} ON ${events}`,
          `CREATE TRIGGER ${tables.eventsObject("position_ahead")} BEFORE INSERT ON ${events} FOR EACH ROW
          WHEN (NEW.position > COALESCE(pg_sequence_last_value('${sequenceName.replace(/'/g, "''")}'::regclass), 0))
          EXECUTE FUNCTION ${besideEvents("position_ahead")}()`,
          // Rows written since the first migration set the sequence.
          `SELECT ${advancePositions}(max(position)) FROM ${events} HAVING max(position) IS NOT NULL`
        ],
        (statement) => sql.unsafe(statement),
        { discard: true }
      ))
  }

  const exclusively: Dialect["exclusively"] = (migrate) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.withTransaction(
        Effect.gen(function*() {
          // Concurrent migrators queue here, before anything (even the schema) is created.
          yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [
            `effect-eventsourcing migrations ${tables.names.migrations}`
          ])
          const schemas = new Set(
            Object.values(tables.names).map(schemaOf).filter((schema) => schema !== undefined)
          )
          for (const schema of schemas) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`)
          // The migrator probes its table with a query that would abort this transaction if
          // the table were missing, so it is created first (with the migrator's own columns).
          yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${quote(tables.names.migrations)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`)
          return yield* migrate
        })
      ))

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
  const lockAndMoveStream = (append: PreparedAppend, param: (value: unknown) => string): string => {
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
    const beyond = (version: string) => `EXISTS (SELECT 1 FROM ${events} WHERE entity_id = ${id} AND ordinal > ${version})`
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
  const lockStreams = (streamIds: ReadonlyArray<string>) =>
    run(
      `SELECT count(pg_advisory_xact_lock(key)) AS locked
      FROM (SELECT DISTINCT hashtextextended($1 || id, 0) AS key FROM unnest($2::text[]) AS id ORDER BY key) AS keys`,
      [lockSpace, streamIds]
    )

  /**
   * One stream's part of an append as one statement; `position` is a placeholder or `undefined`
   * to draw one. Inside an application's transaction it notifies listeners itself (delivered when
   * that transaction commits, which the store cannot see).
   */
  const appendStatement = (append: PreparedAppend, position: bigint | undefined, notifying: boolean) => {
    const { param, values } = parameters()
    const stream = lockAndMoveStream(append, param)
    const positionValue = position === undefined ? `nextval(${param(sequenceName)}::regclass)` : `${param(String(position))}::bigint`
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
          unnest(${column("type")}, ${column("data")}, ${column("id")}${actor.unnest}${metadata.unnest}${schemaVersion.unnest})
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

  const appendOne = (append: PreparedAppend, position: bigint | undefined, notifying: boolean) => {
    const { query, values } = appendStatement(append, position, notifying)
    return Effect.flatMap(run<Appended>(query, values), (rows) => {
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
  const checkUnchanged = (append: PreparedAppend) =>
    Effect.gen(function*() {
      const rows = yield* run<{ type: string; version: number }>(
        `SELECT type, version FROM ${entities} WHERE id = $1 FOR SHARE`,
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
    appends: ReadonlyArray<PreparedAppend>,
    effect: Effect.Effect<A, AppendConflict | SqlError, R>,
    written: ReadonlyMap<string, AppendResult> = new Map()
  ) =>
    Effect.catchTag(effect, "AppendConflict", () => {
      const streamIds = appends.map((append) => append.streamId)
      return Effect.flatMap(Effect.all([streamStates(streamIds), staleStreams(streamIds)]), ([states, stale]) =>
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
        ))
    })

  const append: Dialect["append"] = (appends) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const single = appends.length === 1 && appends[0]!.events.length > 0
      const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
      const setIsolation = inTransaction || readCommitted
        ? Effect.void
        : run(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`, [])
      if (single) {
        // Alone, the statement is its own transaction; inside the application's it gets a
        // savepoint, so that a failed append does not abort the application's transaction.
        return yield* Effect.acquireUseRelease(
          Effect.sync(() => inFlight++ === 0),
          (alone) => {
            const notifying = inTransaction || alone
            const one = Effect.map(appendOne(appends[0]!, undefined, notifying), (result) => [result])
            return (inTransaction || !readCommitted ? sql.withTransaction(withSeen(appends, Effect.zipRight(setIsolation, one))) : one).pipe(
              Effect.tap(() => (notifying ? Effect.void : notify))
            )
          },
          () => Effect.sync(() => void inFlight--)
        )
      }
      const written = new Map<string, AppendResult>()
      const results = yield* sql.withTransaction(withSeen(appends, Effect.gen(function*() {
        yield* setIsolation
        yield* lockStreams(appends.map((append) => append.streamId))
        const writing = appends.some((append) => append.events.length > 0)
        const position = writing
          ? BigInt((yield* run<{ value: string }>(`SELECT nextval($1::regclass)::text AS value`, [sequenceName]))[0]!.value)
          : undefined
        for (const append of [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))) {
          if (append.events.length === 0) yield* checkUnchanged(append)
          else written.set(append.streamId, yield* appendOne(append, position, inTransaction))
        }
        const states = yield* streamStates(appends.filter((append) => append.events.length === 0).map((a) => a.streamId))
        return appends.map((append) =>
          written.get(append.streamId) ?? emptyResult(append.streamId, states.find((state) => state.id === append.streamId))
        )
      }), written))
      if (!inTransaction && results.some((result) => result.events.length > 0)) yield* notify
      return results
    })

  /**
   * A page of one stream, with the stream's row (one row of nulls but for the stream's version
   * when the page is empty). Read forward, the page is also bounded above: a stream's ordinals
   * run from 1 to its version without gaps (a read that finds one fails), so the bound takes
   * nothing away, and it keeps a planner without statistics on the table (a new or freshly
   * loaded one) from sorting every remaining event of the stream for each page, which made
   * reading a long stream quadratic.
   */
  const readStream: Dialect["readStream"] = (streamId, direction, from, limit) =>
    Effect.map(
      run<EventRow>(
        `SELECT ${columns} FROM (SELECT 1) AS one
        LEFT JOIN ${entities} s ON s.id = $1
        LEFT JOIN (
          SELECT * FROM ${events}
          WHERE entity_id = $1 AND ${direction === "forward" ? "ordinal >= $2 AND ordinal < $2::bigint + $3" : "ordinal <= $2"}
          ORDER BY ordinal ${direction === "forward" ? "ASC" : "DESC"} LIMIT $3
        ) e ON true
        ORDER BY e.ordinal ${direction === "forward" ? "ASC" : "DESC"}`,
        [streamId, from, limit]
      ),
      streamPage
    )

  const readAll: Dialect["readAll"] = (after, size) =>
    Effect.flatMap(
      run<EventRow>(
        `WITH fence AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
        SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id, fence
        WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint) AND e.transaction_id < fence.xmin
        ORDER BY e.transaction_id, e.position
        LIMIT $3`,
        [String(after.transaction), String(after.sequence), size]
      ),
      (rows) =>
        wholeAppends(rows, size, (last) =>
          // The last append's transaction is below the fence, so all of it is committed.
          run<EventRow>(
            `SELECT ${columns} FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
            WHERE e.transaction_id = $1::xid8 AND e.position = $2::bigint`,
            [last.transaction_id, String(last.position)]
          ))
    )

  const head: Dialect["head"] = Effect.map(
    run<{ transaction_id: string; position: string }>(
      // Qualified names: a bare name in ORDER BY would sort by the text output column instead.
      `SELECT e.transaction_id::text AS transaction_id, e.position::text AS position FROM ${events} e
      WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1`,
      []
    ),
    (rows) => rows[0] === undefined ? Position.start : positionOf(rows[0].position, rows[0].transaction_id)
  )

  // The bounded count walks the global-order index and stops after `upTo` rows.
  const countAfter: Dialect["countAfter"] = (position, upTo) =>
    Effect.map(
      run<{ count: string }>(
        `SELECT count(*)::text AS count FROM (
          SELECT 1 FROM ${events} e
          WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ${Number.isFinite(upTo) ? "LIMIT $3" : ""}
        ) AS counted`,
        [String(position.transaction), String(position.sequence), ...(Number.isFinite(upTo) ? [upTo] : [])]
      ),
      (rows) => Number(rows[0]!.count)
    )

  const streamStates: Dialect["streamStates"] = (streamIds) =>
    streamIds.length === 0
      ? Effect.succeed([])
      : Effect.map(
        run<{ id: string; type: string; version: number; position: string | null; transaction_id: string | null }>(
          `SELECT s.id, s.type, s.version, last.position::text AS position, last.transaction_id::text AS transaction_id
          FROM ${entities} s LEFT JOIN LATERAL (
            SELECT position, transaction_id FROM ${events} WHERE entity_id = s.id ORDER BY ordinal DESC LIMIT 1
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

  const staleStreams: Dialect["staleStreams"] = (streamIds) =>
    Effect.map(
      run<{ id: string }>(
        `SELECT id FROM ${entities} WHERE id = ANY($1::text[]) AND transaction_id > pg_current_xact_id_if_assigned()`,
        [streamIds]
      ),
      (rows) => rows.map((row) => row.id)
    )

  const eventsById: Dialect["eventsById"] = (eventIds, window) =>
    eventIds.length === 0
      ? Effect.succeed([])
      : run<EventRowWithAppendSize>(
        `SELECT ${columns},
          (SELECT count(*) FROM ${events} o
            WHERE o.entity_id = e.entity_id AND o.ordinal BETWEEN e.ordinal - $2 AND e.ordinal + $2
              AND o.position = e.position AND o.transaction_id = e.transaction_id) AS append_size
        FROM ${events} e LEFT JOIN ${entities} s ON s.id = e.entity_id
        WHERE e.event_id = ANY($1::text[])`,
        [eventIds, window]
      )

  const tableNames = [tables.entities, tables.events, tables.projections, tables.deadLetters, tables.snapshots]

  return {
    nameProblems: [
      ...problems(tables, pgIdentifierBytes),
      // @effect/sql's migrator looks its table up by an unquoted name, which PostgreSQL folds to
      // lower case.
      ...(/[A-Z"]/.test(tables.names.migrations)
        ? [`the migrations table name ${JSON.stringify(tables.names.migrations)} must be lower case`]
        : [])
    ],
    missingTables: Effect.map(
      run<{ name: string }>(`SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL`, [tableNames]),
      (rows) => rows.map((row) => row.name)
    ),
    migrations,
    exclusively,
    // node-postgres waits for the server without holding the event loop.
    betweenPages: Effect.void,
    append,
    readStream,
    readAll,
    head,
    countAfter,
    streamStates,
    eventsById,
    ordering: {
      columns: ["transaction_id", "position"],
      position: ([transaction, sequence]) => positionOf(sequence!, transaction!),
      // One append is one transaction: two transaction ids at one position are two appends.
      sharedPositions: `SELECT array_agg(DISTINCT entity_id) AS stream_ids, min(transaction_id)::text AS c0,
        position::text AS c1
        FROM ${events} GROUP BY position HAVING count(DISTINCT transaction_id) > 1 ORDER BY position`
    },
    isUniqueViolation: (error: SqlError) => causeCode(error) === "23505",
    // serialization_failure (under REPEATABLE READ or SERIALIZABLE) and deadlock_detected
    // refuse the transaction. A cancel the store did not ask for stops only the statement: it
    // is another client's, for a query it interrupted, arriving after that query ended and its
    // connection was handed on (@effect/sql-pg does not wait for the cancel before releasing).
    transient: (error: SqlError) => {
      const code = causeCode(error)
      if (code === "40001" || code === "40P01") return "transaction"
      return code === "57014" && /user request/.test(String((error.cause as { message?: unknown }).message))
        ? "statement"
        : undefined
    },
    brokenStreams: (streamIds) =>
      Effect.map(
        run<{ id: string }>(
          `SELECT ids.id FROM unnest($1::text[]) AS ids(id)
          WHERE EXISTS (
            SELECT 1 FROM ${events} e
            WHERE e.entity_id = ids.id AND e.ordinal > COALESCE((SELECT version FROM ${entities} WHERE id = ids.id), 0)
          )`,
          [streamIds]
        ),
        (rows) => rows.map((row) => row.id)
      ),
    staleStreams
  }
}
