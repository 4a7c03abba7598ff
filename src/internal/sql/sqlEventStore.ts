/**
 * The event store on any `SqlClient`: validation, retries, conflict resolution, paging and
 * decoding are here; the statements come from the client's dialect.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { AppendError, EventDecodeError } from "../../Errors.js"
import {
  ConcurrencyError,
  EventStoreError,
  InvalidAppendError,
  StreamTypeMismatchError,
  TransactionConflictError
} from "../../Errors.js"
import type { AppendRequest, AppendResult, EventStore } from "../../EventStore.js"
import type { RecordedEvent } from "../../Events.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import * as Metadata from "../../Metadata.js"
import * as Position from "../../Position.js"
import type { PreparedAppend } from "../prepareAppend.js"
import { concurrencyError, isWellFormed, prepareAppends } from "../prepareAppend.js"
import { countLimit, validated, verifyLimit } from "../readOptions.js"
import * as Retries from "../retries.js"
import * as Subscription from "../subscription.js"
import type { Dialect, EventRowWithAppendSize, Seen, StreamState } from "./dialect.js"
import { emptyResult } from "./dialect.js"
import * as Pg from "./pg.js"
import { positionOf, readRows, readStreamPage, toRecorded } from "./rows.js"
import * as Sqlite from "./sqlite.js"
import { storeError } from "./shared.js"
import * as Tables from "./tables.js"
import * as Verify from "./verify.js"

export interface Options {
  readonly tables?: Partial<Tables.TableNames> | undefined
}

/**
 * Something that tells the store of events appended elsewhere (by another process): it runs for
 * as long as the store, publishing to the store's wake-ups.
 */
export type Listener = (tables: Tables.Tables, wakeups: Subscription.Wakeups) => Effect.Effect<void, never, Scope.Scope>

/** Events read from a stream per round trip. */
const streamPageSize = 500
/**
 * How often an append whose refusal the store can no longer explain (the stream moved on to a
 * state its expectation allows) is tried again before it is reported as a failure.
 */
const attemptsAfterConflict = 3

/** A `SqlError` thrown as a defect (as a failed commit is, by `@effect/sql`) back in the error channel. */
const recoverSqlDefects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchSomeDefect(effect, (defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none())

export const migrate = (dialect: Dialect, tables: Tables.Tables) =>
  dialect.exclusively(
    Migrator.make({})({ loader: Migrator.fromRecord(dialect.migrations), table: tables.names.migrations })
  ).pipe(
    // The migrator reports a failed migration, and @effect/sql a failed commit, as defects.
    Effect.catchAllDefect(Effect.fail),
    Effect.mapError(storeError("migrate the event store schema"))
  )

/**
 * Fails when a table the store needs is missing after its migrations ran: they are recorded per
 * events table, so they ran before with other names for its other tables (one renamed through
 * `tables` on a database already migrated).
 */
const checkTables = (dialect: Dialect, tables: Tables.Tables) =>
  Effect.flatMap(
    Effect.mapError(dialect.missingTables, storeError("check the store's tables")),
    (missing) =>
      missing.length === 0 ? Effect.void : Effect.fail(
        new EventStoreError({
          operation: "check the store's tables",
          cause: new Error(
            `the tables ${missing.map((name) => JSON.stringify(name)).join(", ")} do not exist, although the migrations recorded in ${
              JSON.stringify(tables.names.migrations)
            } have run: they ran with other names for the store's tables. A store's tables cannot be renamed one at a time through \`tables\`: rename them in the database too, or use the names they were created with`
          )
        })
      )
  )

export const dialectOf = (
  sql: SqlClient.SqlClient,
  tables: Tables.Tables
): Effect.Effect<Dialect | undefined, SqlError, Scope.Scope> =>
  sql.onDialectOrElse({
    pg: () =>
      Effect.flatMap(Pg.defaultIsolation(sql), (isolation) =>
        Effect.provideService(Pg.make(tables, { isolation }), SqlClient.SqlClient, sql)),
    sqlite: () => Effect.succeed(Sqlite.make(tables)),
    orElse: () => Effect.succeed(undefined)
  })

export const make = (
  options?: Options,
  listener?: Listener
): Effect.Effect<EventStore, EventStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = Tables.forClient(sql, options?.tables)
    const dialect = yield* Effect.mapError(dialectOf(sql, tables), storeError("connect to the database"))
    if (dialect === undefined) {
      return yield* Effect.dieMessage("The SQL event store supports PostgreSQL and SQLite clients only")
    }
    const problems = dialect.nameProblems
    if (problems.length > 0) {
      return yield* new EventStoreError({ operation: "check the table names", cause: new Error(problems.join("; ")) })
    }
    yield* migrate(dialect, tables)
    yield* checkTables(dialect, tables)
    const wakeups = yield* Subscription.makeWakeups
    if (listener !== undefined) yield* listener(tables, wakeups)

    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      Effect.provideService(effect, SqlClient.SqlClient, sql)

    /** The original results of an append whose ids are stored, a refusal, or `undefined` if none is stored. */
    const asRetry = (appends: ReadonlyArray<PreparedAppend>) =>
      Effect.gen(function*() {
        const rows = yield* dialect.eventsById(
          appends.flatMap((append) => append.events.map((event) => event.id)),
          Math.max(...appends.map((append) => append.events.length))
        )
        if (rows.length === 0) return undefined
        const stored = new Map<string, { readonly event: RecordedEvent; readonly row: EventRowWithAppendSize }>()
        for (const row of rows) {
          const event = yield* Effect.mapError(toRecorded(row), storeError("read the events of a retried append"))
          stored.set(event.id, { event, row })
        }
        const states = yield* dialect.streamStates(appends.map((append) => append.streamId))
        return Retries.combine(
          appends,
          appends.map((append) => {
            if (append.events.length === 0) return undefined
            const events = append.events.map((event) => stored.get(event.id)?.event)
            const first = stored.get(append.events[0]!.id)
            return Retries.classify(append, { events, originalSize: Number(first?.row.append_size ?? 0) })
          }),
          (streamId) => emptyResult(streamId, states.find((state) => state.id === streamId))
        )
      })

    /** Why an append that stored nothing failed, read from what the store holds now. */
    const explain = (
      appends: ReadonlyArray<PreparedAppend>,
      states: ReadonlyArray<StreamState>
    ): ConcurrencyError | StreamTypeMismatchError | undefined => {
      const stateOf = (append: PreparedAppend) => states.find((state) => state.id === append.streamId)
      for (const append of appends) {
        const state = stateOf(append)
        if (state !== undefined && state.type !== append.streamType) {
          return new StreamTypeMismatchError({
            streamId: append.streamId,
            expectedType: append.streamType,
            actualType: state.type
          })
        }
      }
      return concurrencyError(appends, (append) => stateOf(append)?.version ?? 0)
    }

    const attempt = (
      appends: ReadonlyArray<PreparedAppend>,
      attemptsLeft: number
    ): Effect.Effect<ReadonlyArray<AppendResult>, AppendError, SqlClient.SqlClient> =>
      recoverSqlDefects(dialect.append(appends)).pipe(
        Effect.catchAll((error) => {
          if (error._tag === "AppendConflict" || dialect.isUniqueViolation(error)) {
            return resolve(appends, attemptsLeft, error._tag === "AppendConflict" ? error.seen : undefined)
          }
          const transient = dialect.transient(error)
          if (transient !== undefined) return retryTransient(appends, attemptsLeft, error, transient)
          return Effect.fail(storeError("append events")(error))
        })
      )

    /**
     * A failure that may pass if the append is sent again: sent again when the store owns the
     * transaction, or when only the statement was stopped (the append ran in a savepoint of the
     * application's transaction, which goes on); a refused application transaction has to be
     * retried by the application.
     */
    const retryTransient = (
      appends: ReadonlyArray<PreparedAppend>,
      attemptsLeft: number,
      error: SqlError,
      kind: "transaction" | "statement"
    ) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        Option.isSome(transaction) && kind === "transaction"
          ? Effect.fail(new TransactionConflictError({ streamId: appends[0]!.streamId }))
          : attemptsLeft > 0
          ? attempt(appends, attemptsLeft - 1)
          : Effect.fail(storeError("append events")(error)))

    /**
     * Why an append was refused: a retry of one stored, a refusal its streams explain (as it saw
     * them under their locks, when it says), or its transaction's place in the global order; or,
     * when nothing explains it (the streams moved on while it waited), it is tried again.
     */
    const resolve = (appends: ReadonlyArray<PreparedAppend>, attemptsLeft: number, seen: Seen | undefined) =>
      Effect.gen(function*() {
        const retried = yield* asRetry(appends)
        if (retried instanceof InvalidAppendError) return yield* retried
        if (retried !== undefined) return retried
        const streamIds = appends.map((append) => append.streamId)
        const states = seen?.states ?? (yield* dialect.streamStates(streamIds))
        const explained = explain(appends, states)
        if (explained !== undefined) return yield* explained
        // The expectation holds now: the append was refused for its transaction's place in the
        // global order, or the stream moved on to a state it allows while it waited.
        const broken = yield* dialect.brokenStreams(streamIds)
        if (broken.length > 0) {
          return yield* storeError("append events")(
            new Error(
              `stream ${
                JSON.stringify(broken[0])
              } holds events beyond the version in its row of the entities table: another writer broke the protocol (EventStore.verify lists such rows)`
            )
          )
        }
        const stale = seen?.stale ?? (yield* dialect.staleStreams(streamIds))
        if (stale.length > 0) return yield* new TransactionConflictError({ streamId: stale[0]! })
        if (attemptsLeft > 0) return yield* attempt(appends, attemptsLeft - 1)
        // Not a ConcurrencyError: every expectation held each time the store looked.
        return yield* storeError("append events")(
          new Error(`the append was refused ${attemptsAfterConflict + 1} times although its expectations held`)
        )
      }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storeError("resolve an append conflict")(error))))

    const appendMany = (requests: ReadonlyArray<AppendRequest>) =>
      Effect.gen(function*() {
        const context = yield* Metadata.current
        const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
        if (Either.isLeft(prepared)) return yield* prepared.left
        if (prepared.right.length === 0) return []
        const results = yield* attempt(prepared.right, attemptsAfterConflict)
        if (results.some((result) => result.events.length > 0)) yield* PubSub.publish(wakeups, undefined)
        return results
      }).pipe(withSql)

    /**
     * A batch of the global order. A row the store cannot read (its stored JSON is broken, or it
     * breaks the protocol) ends the batch before its append, so that the events before it are
     * still read, and the read fails there.
     */
    const readBatch = (after: Position.Position, size: number) =>
      Effect.map(
        Effect.zipRight(dialect.betweenPages, dialect.readAll(after, size)).pipe(Effect.mapError(storeError("read all events"))),
        (rows): Subscription.Batch => {
          const { broken, events } = readRows(rows)
          if (broken === undefined) return { events }
          const at = positionOf(broken.row!.position, broken.row!.transaction_id)
          return { events: events.filter((event) => !Position.equals(event.position, at)), broken: broken.error }
        }
      ).pipe(withSql)

    /**
     * A stream a page at a time. A row the store cannot read (its stored JSON is broken) fails
     * the stream after the events before it, so that a reader gets every event up to it.
     */
    const readStream: EventStore["readStream"] = (streamId, options) =>
      validated("readStream", options, () => {
        // No stream has such an id (appends refuse it), but the database would read it as another.
        if (!isWellFormed(streamId)) return Stream.empty
        const direction = options?.direction ?? "forward"
        const limit = options?.limit ?? Infinity
        const first = Math.min(options?.from ?? (direction === "forward" ? 1 : ExpectedVersion.maxVersion), ExpectedVersion.maxVersion)
        type Page = { readonly from: number; readonly remaining: number } | { readonly broken: EventDecodeError }
        return Stream.paginateChunkEffect<Page, RecordedEvent, EventStoreError | EventDecodeError, never>(
          { from: first, remaining: limit },
          (page) =>
            Effect.gen(function*() {
              if ("broken" in page) return yield* Effect.fail(page.broken)
              const { from, remaining } = page
              if (remaining === 0) return [Chunk.empty(), Option.none()] as const
              const size = Math.min(remaining, streamPageSize)
              if (from !== first) yield* dialect.betweenPages
              const rows = yield* dialect.readStream(streamId, direction, from, size).pipe(
                Effect.mapError(storeError("read a stream"))
              )
              const { broken, events } = readStreamPage(streamId, direction, from, size, rows)
              if (broken !== undefined) {
                if (events.length === 0) return yield* Effect.fail(broken.error)
                return [Chunk.unsafeFromArray(events), Option.some<Page>({ broken: broken.error })] as const
              }
              const last = events.at(-1)
              const next = direction === "forward" ? (last?.version ?? 0) + 1 : (last?.version ?? 0) - 1
              const more = last !== undefined && events.length === size && remaining > size && next >= 1
              return [
                Chunk.unsafeFromArray(events),
                more ? Option.some<Page>({ from: next, remaining: remaining - size }) : Option.none()
              ] as const
            }).pipe(withSql)
        )
      })

    return {
      append: (request) => Effect.map(appendMany([request]), (results) => results[0]!),
      appendMany,
      readStream,
      readAll: (options) => Subscription.readAll(options, readBatch),
      subscribe: (options) => Subscription.follow(options, wakeups, readBatch),
      head: dialect.head.pipe(Effect.mapError(storeError("read the head of the global order")), withSql),
      countAfter: (position, options) =>
        Effect.suspend(() => dialect.countAfter(position, countLimit(options))).pipe(
          Effect.mapError(storeError("count the events after a position")),
          withSql
        ),
      verify: (options) =>
        Effect.suspend(() => Verify.verify(tables, dialect.ordering, verifyLimit(options))).pipe(
          Effect.mapError(storeError("verify the store")),
          withSql
        ),
      streamVersion: (streamId) =>
        (isWellFormed(streamId) ? dialect.streamStates([streamId]) : Effect.succeed([])).pipe(
          Effect.map((states) => states[0]?.version ?? 0),
          Effect.mapError(storeError("read a stream's version")),
          withSql
        )
    }
  })
