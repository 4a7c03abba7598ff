/**
 * The SQL store's append: validation, one attempt through the dialect, and what a refusal means
 * (the original result of a retry, an explained conflict, a transaction that came too late, or
 * a transient failure tried again).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type { AppendError } from "../../Errors.js"
import { InvalidAppendError, TransactionConflictError } from "../../Errors.js"
import type { RecordedEvent } from "../../Events.js"
import type { AppendRequest, AppendResult } from "../../EventStore.js"
import * as Metadata from "../../Metadata.js"
import type { PreparedAppend } from "../prepareAppend.js"
import { prepareAppends, refusal } from "../prepareAppend.js"
import * as Retries from "../retries.js"
import type * as Subscription from "../subscription.js"
import type { Dialect, EventRowWithAppendSize, Seen, StreamState } from "./dialect.js"
import { emptyResult } from "./dialect.js"
import { toRecorded } from "./rows.js"
import { failWithSqlDefects, storeError } from "./shared.js"

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
  failWithSqlDefects(dialect.append(appends)).pipe(
    Effect.catchAll((error) => {
      if (error._tag === "AppendConflict" || dialect.isUniqueViolation(error)) {
        return resolve(dialect, appends, attemptsLeft, error._tag === "AppendConflict" ? error.seen : undefined)
      }
      const transient = dialect.transient(error)
      if (transient !== undefined) return retryTransient(dialect, appends, attemptsLeft, error, transient)
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
 * Appends validated requests, resolving refusals (a retry by event ids, a conflict to explain, a
 * transient failure to try again), and wakes this process's subscribers when events were stored.
 */
export const appendMany =
  (dialect: Dialect, wakeups: Subscription.Wakeups) => (requests: ReadonlyArray<AppendRequest>) =>
    Effect.gen(function*() {
      const context = yield* Metadata.current
      const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
      if (Either.isLeft(prepared)) return yield* prepared.left
      if (prepared.right.length === 0) return []
      const results = yield* attempt(dialect, prepared.right, attemptsAfterConflict)
      if (results.some((result) => result.events.length > 0)) yield* PubSub.publish(wakeups, undefined)
      return results
    })
