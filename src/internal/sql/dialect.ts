/**
 * What differs between the SQL databases: the statements, and how the store's own transactions
 * begin. Everything else (validation, retries, resolving conflicts, decoding, checkpoints'
 * compare-and-set) is shared by the event, projection and snapshot stores, which get their
 * dialect once from `dialects.ts`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { RecordedEvent } from "../../Events.js"
import type { AppendResult } from "../../EventStore.js"
import * as Position from "../../Position.js"
import type { DeadLetter } from "../../ProjectionStore.js"
import type { PreparedAppend, PreparedEvent } from "../prepareAppend.js"
import type { RunnerSupport } from "../projectionRunnerSupport.js"
import { compareStreamIds } from "../streamOrder.js"
import type { LockSession } from "./pgLeads.js"
import type { EventRow } from "./rows.js"
import { sameAppend } from "./rows.js"
import type { Tables } from "./tables.js"
import type { Ordering } from "./verify.js"

/**
 * An append's checks failed (a version, a stream type) or it hit a unique constraint: nothing
 * was stored, and the store must look at what is there to say why. `seen`, when present, is
 * what the append found while it still held its streams' locks.
 */
export class AppendConflict extends Data.TaggedError("AppendConflict")<{ readonly seen?: Seen | undefined }> {}

/**
 * The streams of a refused append as it found them under their locks, before its transaction
 * (or savepoint) was rolled back: what explains the refusal. Read afterwards, the streams may
 * have moved on to states the append's expectations allow, written by transactions that came
 * after this one got its id, and a transaction that only tried to append would be told that it
 * came too late.
 */
export interface Seen {
  readonly states: ReadonlyArray<StreamState>
  /** The streams last written by a transaction newer than this one (see `staleStreams`). */
  readonly stale: ReadonlyArray<string>
}

/** A stream as stored: its type, version and the position of its latest event. */
export interface StreamState {
  readonly id: string
  readonly type: string
  readonly version: number
  readonly position: Position.Position
}

/** A page of one stream's events, and the version in its row of the entities table (if it has one). */
export interface StreamPage {
  readonly rows: ReadonlyArray<EventRow>
  readonly streamVersion: number | undefined
}

/**
 * A page from the rows of a stream read joined to its row in the entities table: a page with
 * no events is one row without an event. The events come in version order for `direction` (a
 * statement that does not sort them itself, so that the database does not sort rows it read in
 * order, gets them sorted here if they are not).
 */
export const streamPage = (rows: ReadonlyArray<EventRow>, direction: "forward" | "backward"): StreamPage => {
  const version = rows[0]?.stream_version
  const events = rows.filter((row) => row.entity_id !== null)
  const step = direction === "forward" ? 1 : -1
  const inOrder = events.every((row, index) =>
    index === 0 || (Number(row.ordinal) - Number(events[index - 1]!.ordinal)) * step > 0
  )
  return {
    rows: inOrder ? events : events.sort((a, b) => (Number(a.ordinal) - Number(b.ordinal)) * step),
    streamVersion: version === null || version === undefined ? undefined : Number(version)
  }
}

/** An event row with the number of events its append stored in its stream (see `Dialect.eventsById`). */
export interface EventRowWithAppendSize extends EventRow {
  readonly append_size: number | string
}

/**
 * The migration that creates the snapshots table, the same in both databases but for how a
 * timestamp is kept. It holds the latest snapshot of each stream for each schema identity:
 * processes that fold with different state schemas (a rolling deploy) keep their own instead of
 * overwriting each other's. The id of the event at the snapshot's version tells whether the
 * stream still holds the events it was folded from.
 */
export const createSnapshots = (table: string, createdAt: string): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
      stream_id TEXT NOT NULL,
      stream_type TEXT NOT NULL,
      version INT NOT NULL,
      event_id TEXT NOT NULL,
      schema_id TEXT NOT NULL,
      state TEXT NOT NULL,
      created_at ${createdAt},
      PRIMARY KEY (stream_id, schema_id, version)
    )`))

/**
 * The table of events projections set aside. `columns.transactionId`: the column that orders
 * them with the position, where the backend has one; `columns.failedAt`: the type and default of
 * the time they were set aside.
 */
export const createDeadLetters = (
  table: string,
  columns: { readonly transactionId?: string; readonly failedAt: string }
): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
      projection TEXT NOT NULL,
      event_id TEXT NOT NULL,
      stream_id TEXT NOT NULL,
      version INT NOT NULL,
      event_type TEXT NOT NULL,
      position BIGINT NOT NULL,${columns.transactionId === undefined ? "" : `\n      ${columns.transactionId},`}
      reason TEXT NOT NULL,
      failed_at ${columns.failedAt},
      PRIMARY KEY (projection, event_id)
    )`))

/** What the projection store needs of a database: checkpoints, dead letters, the right to run. */
export interface ProjectionStatements {
  /** A projection's checkpoint, if it has one. */
  readonly checkpoint: (
    projection: string
  ) => Effect.Effect<Option.Option<Position.Position>, SqlError, SqlClient.SqlClient>
  /** Moves a checkpoint if it is still at `from`; whether it moved. */
  readonly moveCheckpoint: (
    projection: string,
    from: Option.Option<Position.Position>,
    to: Position.Position
  ) => Effect.Effect<boolean, SqlError, SqlClient.SqlClient>
  readonly deadLetter: (
    projection: string,
    event: RecordedEvent,
    reason: string
  ) => Effect.Effect<void, SqlError, SqlClient.SqlClient>
  readonly deadLetters: (projection: string) => Effect.Effect<ReadonlyArray<DeadLetter>, SqlError, SqlClient.SqlClient>
  /**
   * The right to run a projection across processes, where the database can hold it (a
   * PostgreSQL session's advisory locks, on `session` or a connection reserved from the pool).
   * Without it, only runners within one process take turns.
   */
  readonly acrossProcesses?: (
    session: Effect.Effect<LockSession, unknown, Scope.Scope> | undefined
  ) => Effect.Effect<RunnerSupport["lead"], never, SqlClient.SqlClient | Scope.Scope>
}

export interface Dialect {
  readonly tables: Tables
  /**
   * Runs an effect in a transaction of the store's own, as appends need it (PostgreSQL: at READ
   * COMMITTED; SQLite: holding the write lock from the start). Inside a transaction, a savepoint.
   */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient>
  /** The current time as the snapshots and dead-letters tables keep it. */
  readonly currentTimestamp: string
  readonly projections: ProjectionStatements
  /** The schema migrations, by `<id>_<name>`, for `Migrator.fromRecord`. */
  readonly migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>
  /** Runs the migrator so that two processes migrating at once take turns. */
  readonly withMigrationLock: <A, E, R>(
    migrate: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient>
  /** What is wrong with the store's table names on this database (none when they are usable). */
  readonly nameProblems: ReadonlyArray<string>
  /** The store's tables that do not exist (after the migrations ran, there should be none). */
  readonly missingTables: Effect.Effect<ReadonlyArray<string>, SqlError, SqlClient.SqlClient>
  /** Runs between the pages of a long read: a driver that blocks gives the event loop a turn. */
  readonly betweenPages: Effect.Effect<void>
  /** Checks and stores validated appends atomically at one position, or fails with `AppendConflict`. */
  readonly append: (
    appends: ReadonlyArray<PreparedAppend>
  ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendConflict | SqlError, SqlClient.SqlClient>
  /**
   * Group commit: appends of events to one stream each, from outside any transaction, checked
   * one by one and stored together in one transaction of the store's own, each at a position of
   * its own. `inFlight`: how many such batches the database takes at once.
   */
  readonly combined: {
    readonly inFlight: number
    /**
     * Each append's result, or `undefined` when its checks failed (none of its events stored).
     * When it fails as a whole, nothing is stored, unless the failure hid the commit (a lost
     * connection): each append is then sent again alone, as a retry of itself.
     */
    readonly append: (
      appends: ReadonlyArray<PreparedAppend>
    ) => Effect.Effect<ReadonlyArray<AppendResult | undefined>, SqlError, SqlClient.SqlClient>
  }
  /** Up to `limit` events of a stream from version `from` on (or down), and the stream's version. */
  readonly readStream: (
    streamId: string,
    direction: "forward" | "backward",
    from: number,
    limit: number
  ) => Effect.Effect<StreamPage, SqlError, SqlClient.SqlClient>
  /** The events after a position, at least `size` of them unless fewer exist, ending on a whole append. */
  readonly readAll: (
    after: Position.Position,
    size: number
  ) => Effect.Effect<ReadonlyArray<EventRow>, SqlError, SqlClient.SqlClient>
  /** The position of the latest event a reader can read now. */
  readonly head: Effect.Effect<Position.Position, SqlError, SqlClient.SqlClient>
  /** How many events a reader can read now after a position, counting no further than `upTo`. */
  readonly countAfter: (
    position: Position.Position,
    upTo: number
  ) => Effect.Effect<number, SqlError, SqlClient.SqlClient>
  readonly streamStates: (
    streamIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<StreamState>, SqlError, SqlClient.SqlClient>
  /** The versions of the streams among these ids that have a row (any number of ids, in one statement). */
  readonly streamVersions: (
    streamIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<{ readonly id: string; readonly version: number }>, SqlError, SqlClient.SqlClient>
  /**
   * The stored events with these ids, each with the size of its append in its stream counted
   * only among the `window` versions either side of it: a retry of `window` events or fewer
   * only needs to know whether the original append had exactly as many, and the count must not
   * grow with the stream.
   */
  readonly eventsById: (
    eventIds: ReadonlyArray<string>,
    window: number
  ) => Effect.Effect<ReadonlyArray<EventRowWithAppendSize>, SqlError, SqlClient.SqlClient>
  /** The global order as `EventStore.verify` checks it. */
  readonly ordering: Ordering
  readonly isUniqueViolation: (error: SqlError) => boolean
  /**
   * Whether a failure may pass if the append is sent again: `"transaction"` when the database
   * refused the transaction (serialization, deadlock), which only a new transaction can retry;
   * `"statement"` when only the statement was stopped (a cancel the store did not ask for),
   * which can be sent again even inside the application's transaction, since the append runs
   * in a savepoint there.
   */
  readonly transient: (error: SqlError) => "transaction" | "statement" | undefined
  /**
   * The streams that hold events beyond the version in their row of the entities table (or
   * with no row there): rows written by a writer that broke the protocol, which stop appends.
   */
  readonly brokenStreams: (
    streamIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, SqlError, SqlClient.SqlClient>
  /**
   * The streams that a transaction already writing cannot append to without putting its events
   * before newer ones in the global order: those written by a younger transaction.
   */
  readonly staleStreams: (
    streamIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, SqlError, SqlClient.SqlClient>
}

/** The recorded events of one stream's part of an append, from what the database assigned. */
const recordedEvents = (
  append: PreparedAppend,
  versionBefore: number,
  position: Position.Position,
  timestamp: Date
): ReadonlyArray<RecordedEvent> =>
  append.events.map((event: PreparedEvent, index) => ({
    id: event.id,
    streamId: append.streamId,
    streamType: append.streamType,
    version: versionBefore + index + 1,
    position,
    type: event.type,
    data: event.dataValue,
    actor: event.actor,
    timestamp,
    metadata: event.metadataValue,
    schemaVersion: event.schemaVersion
  }))

/** The result of one stream's part of an append. */
export const appendResult = (
  append: PreparedAppend,
  versionAfter: number,
  position: Position.Position,
  timestamp: Date
): AppendResult => ({
  streamId: append.streamId,
  version: versionAfter,
  position,
  events: recordedEvents(append, versionAfter - append.events.length, position, timestamp)
})

/**
 * How an append's expectation travels in a batch statement (group commit): a kind, which says
 * how the statement moves the stream (`new`: an insert, `any`: an upsert, `exists` and `exact`:
 * an update), and the version for `exact`.
 */
export const batchExpectation = (
  append: PreparedAppend
): readonly [kind: "any" | "new" | "exists" | "exact", version: number | null] => {
  const expected = append.expectedVersion
  if (expected === "any") return ["any", null]
  if (expected === "no-stream" || expected === 0) return ["new", null]
  if (expected === "stream-exists") return ["exists", null]
  return ["exact", expected]
}

/** Whether the code of a driver error (its `cause.code`) says a unique constraint was violated. */
export const causeCode = (error: SqlError): string | undefined => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** The result for a stream an append wrote nothing to: its current version and latest position. */
export const emptyResult = (streamId: string, state: StreamState | undefined): AppendResult => ({
  streamId,
  version: state?.version ?? 0,
  position: state?.position ?? Position.start,
  events: []
})

/**
 * Rows in append order (as the statements read them) with the events of each append put in
 * stream id and version order: only appends of more than one event need sorting.
 */
export const inAppendOrder = (rows: ReadonlyArray<EventRow>): ReadonlyArray<EventRow> => {
  let sorted: Array<EventRow> | undefined
  let start = 0
  for (let end = 1; end <= rows.length; end++) {
    if (end < rows.length && sameAppend(rows[start]!, rows[end]!)) continue
    if (end - start > 1) {
      sorted ??= [...rows]
      const append = sorted.slice(start, end).sort(byStreamAndVersion)
      for (let index = 0; index < append.length; index++) sorted[start + index] = append[index]!
    }
    start = end
  }
  return sorted ?? rows
}

const byStreamAndVersion = (a: EventRow, b: EventRow): number =>
  compareStreamIds(a.entity_id, b.entity_id) || Number(a.ordinal) - Number(b.ordinal)

/**
 * A batch read in append order with `LIMIT size` (`ORDER BY` the position alone, so that the
 * database walks its index and stops), made whole: when the limit cut into the last append,
 * `appendOf` reads all of it; then the events of each append are put in stream id and version
 * order.
 */
export const endingOnWholeAppends = <E, R>(
  rows: ReadonlyArray<EventRow>,
  size: number,
  appendOf: (last: EventRow) => Effect.Effect<ReadonlyArray<EventRow>, E, R>
): Effect.Effect<ReadonlyArray<EventRow>, E, R> => {
  const last = rows.at(-1)
  if (last === undefined) return Effect.succeed(rows)
  if (rows.length < size) return Effect.succeed(inAppendOrder(rows))
  return Effect.map(
    appendOf(last),
    (whole) => inAppendOrder([...rows.filter((row) => !sameAppend(row, last)), ...whole])
  )
}
