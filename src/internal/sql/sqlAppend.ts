/**
 * The SQL store's append: validation, one attempt through the dialect, and what a refusal means
 * (the original result of a retry, an explained conflict, a transaction that came too late, or
 * a transient failure tried again).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type { AppendError } from "../../Errors.js"
import { InvalidAppendError, TransactionConflictError } from "../../Errors.js"
import type { RecordedEvent } from "../../Events.js"
import type { AppendRequest, AppendResult } from "../../EventStore.js"
import * as Metadata from "../../Metadata.js"
import * as GroupCommit from "../groupCommit.js"
import type { PreparedAppend } from "../prepareAppend.js"
import { prepareAppends, refusal } from "../prepareAppend.js"
import * as Retries from "../retries.js"
import type * as Subscription from "../subscription.js"
import type { Dialect, EventRowWithAppendSize, Seen, StreamState } from "./dialect.js"
import { AppendConflict, emptyResult } from "./dialect.js"
import { toRecorded } from "./rows.js"
import { failWithSqlDefects, storeError, withSqlClient } from "./shared.js"

/**
 * How often an append whose refusal the store can no longer explain (the stream moved on to a
 * state its expectation allows) is tried again before it is reported as a failure.
 */
const attemptsAfterConflict = 3

/** The original results of an append whose ids are stored, a refusal, or `undefined` if none is stored. */
const asRetry = (dialect: Dialect, appends: ReadonlyArray<PreparedAppend>) =>
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

/** Why an append that stored nothing failed, from the states of its streams. */
const explain = (appends: ReadonlyArray<PreparedAppend>, states: ReadonlyArray<StreamState>) =>
  refusal(appends, (streamId) => states.find((state) => state.id === streamId))

const attempt = (
  dialect: Dialect,
  appends: ReadonlyArray<PreparedAppend>,
  attemptsLeft: number
): Effect.Effect<ReadonlyArray<AppendResult>, AppendError, SqlClient.SqlClient> =>
  afterAttempt(dialect, appends, attemptsLeft, failWithSqlDefects(dialect.append(appends)))

/** The results of an attempt, or what its refusal or failure means. */
const afterAttempt = (
  dialect: Dialect,
  appends: ReadonlyArray<PreparedAppend>,
  attemptsLeft: number,
  attempted: Effect.Effect<ReadonlyArray<AppendResult>, AppendConflict | SqlError, SqlClient.SqlClient>
): Effect.Effect<ReadonlyArray<AppendResult>, AppendError, SqlClient.SqlClient> =>
  Effect.catchAll(attempted, (error) => {
    if (error._tag === "AppendConflict" || dialect.isUniqueViolation(error)) {
      return resolve(dialect, appends, attemptsLeft, error._tag === "AppendConflict" ? error.seen : undefined)
    }
    const transient = dialect.transient(error)
    if (transient !== undefined) return retryTransient(dialect, appends, attemptsLeft, error, transient)
    return Effect.fail(storeError("append events")(error))
  })

/**
 * A failure that may pass if the append is sent again: sent again when the store owns the
 * transaction, or when only the statement was stopped (the append ran in a savepoint of the
 * application's transaction, which goes on); a refused application transaction has to be
 * retried by the application.
 */
const retryTransient = (
  dialect: Dialect,
  appends: ReadonlyArray<PreparedAppend>,
  attemptsLeft: number,
  error: SqlError,
  kind: "transaction" | "statement"
) =>
  Effect.flatMap(
    Effect.serviceOption(SqlClient.TransactionConnection),
    (transaction) =>
      Option.isSome(transaction) && kind === "transaction"
        ? Effect.fail(new TransactionConflictError({ streamId: appends[0]!.streamId }))
        : attemptsLeft > 0
        ? attempt(dialect, appends, attemptsLeft - 1)
        : Effect.fail(storeError("append events")(error))
  )

/**
 * Why an append was refused: a retry of one stored, a refusal its streams explain (as it saw
 * them under their locks, when it says), or its transaction's place in the global order; or,
 * when nothing explains it (the streams moved on while it waited), it is tried again.
 */
const resolve = (
  dialect: Dialect,
  appends: ReadonlyArray<PreparedAppend>,
  attemptsLeft: number,
  seen: Seen | undefined
) =>
  Effect.gen(function*() {
    const retried = yield* asRetry(dialect, appends)
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
    if (attemptsLeft > 0) return yield* attempt(dialect, appends, attemptsLeft - 1)
    // Not a ConcurrencyError: every expectation held each time the store looked.
    return yield* storeError("append events")(
      new Error(`the append was refused ${attemptsAfterConflict + 1} times although its expectations held`)
    )
  }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(storeError("resolve an append conflict")(error))))

/**
 * What became of an append in a batch: its attempt (one alone is the attempt of `Dialect.append`;
 * one among others stored, or refused by its checks), or `"alone"` when the batch failed as a
 * whole and each of its appends has to be sent again by itself.
 */
type BatchOutcome = Exit.Exit<ReadonlyArray<AppendResult>, AppendConflict | SqlError> | "alone"

/** How many appends each group commit took (1: an append that found the database free). */
export const batchSizes = Metric.histogram(
  "effect_eventsourcing_append_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 9 }),
  "appends per group commit of the SQL event store"
)

/** Group commits that failed as a whole, their appends then sent one by one. */
export const batchFallbacks = Metric.counter("effect_eventsourcing_append_batch_fallbacks", {
  description: "group commits of the SQL event store that failed as a whole, their appends sent again one by one",
  incremental: true
})

/** Runs a batch of appends to one stream each: see `groupCommit.ts`. */
const runBatch = (dialect: Dialect, sql: SqlClient.SqlClient) =>
(
  batch: ReadonlyArray<PreparedAppend>
): Effect.Effect<ReadonlyArray<BatchOutcome>> =>
  Effect.zipRight(
    Metric.update(batchSizes, batch.length),
    batch.length === 1
      ? Effect.map(Effect.exit(failWithSqlDefects(dialect.append(batch))), (exit) => [exit])
      : Effect.matchEffect(failWithSqlDefects(dialect.combined.append(batch)), {
        onFailure: () => Effect.as(Metric.increment(batchFallbacks), batch.map((): BatchOutcome => "alone")),
        onSuccess: (results) =>
          Effect.succeed(results.map((result): BatchOutcome =>
            result === undefined ? Exit.fail(new AppendConflict({})) : Exit.succeed([result])
          ))
      })
  ).pipe(withSqlClient(sql))

/** Appends in a batch hold at most this many events in all (past the first append). */
const eventsPerBatch = 5_000

/**
 * Appends validated requests, resolving refusals (a retry by event ids, a conflict to explain, a
 * transient failure to try again), and wakes this process's subscribers when events were stored.
 *
 * An append of events to one stream from outside a transaction goes through group commit: it
 * shares a batch with the appends that came while earlier ones were in flight. Its outcome is its
 * own: a refusal is resolved as it would be alone, and when the batch fails as a whole, the
 * append is sent again by itself. An append to several streams, one that only checks, and every
 * append inside an application's transaction are sent as they are.
 */
export const make = (
  dialect: Dialect,
  wakeups: Subscription.Wakeups
): Effect.Effect<
  (requests: ReadonlyArray<AppendRequest>) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError>,
  never,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const batches = GroupCommit.make({
      inFlight: dialect.combined.inFlight,
      maxItems: 256,
      maxWeight: eventsPerBatch,
      weight: (append: PreparedAppend) => append.events.length,
      key: (append) => append.streamId,
      run: runBatch(dialect, sql)
    })
    const send = (prepared: ReadonlyArray<PreparedAppend>, inTransaction: boolean) => {
      const append = prepared[0]!
      if (inTransaction || prepared.length > 1 || append.events.length === 0) {
        return attempt(dialect, prepared, attemptsAfterConflict)
      }
      return Effect.flatMap(batches.submit(append), (outcome) =>
        outcome === "alone"
          ? attempt(dialect, prepared, attemptsAfterConflict)
          : afterAttempt(dialect, prepared, attemptsAfterConflict, outcome))
    }
    const stored = (results: ReadonlyArray<AppendResult>) =>
      results.some((result) => result.events.length > 0) ? PubSub.publish(wakeups, undefined) : Effect.void
    // Written as a chain rather than a generator: an append's own fiber operations are what a
    // batch of appends costs the client.
    return (requests: ReadonlyArray<AppendRequest>) =>
      Effect.flatMap(Metadata.current, (context) => {
        const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
        if (Either.isLeft(prepared)) return prepared.left
        if (prepared.right.length === 0) return Effect.succeed([])
        return Effect.flatMap(
          Effect.serviceOption(SqlClient.TransactionConnection),
          (transaction) => Effect.tap(send(prepared.right, Option.isSome(transaction)), stored)
        )
      }).pipe(withSqlClient(sql))
  })
