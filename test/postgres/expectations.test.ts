/**
 * Appends whose expectation holds are never refused on PostgreSQL, however many writers queue
 * on one stream: sixteen fibers append to one existing stream, half of them alone and half as
 * the only statement of an application transaction, with each expected-version variant. A
 * refusal is only allowed when the version the error reports really breaks the expectation,
 * and a transaction whose only write is the append never gets `TransactionConflictError`
 * (it takes the stream's lock before it has a transaction id).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import type pg from "pg"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"

const writers = 16
const appendsPerWriter = 20

type Variant = "any" | "stream-exists" | "exact" | "no-stream"

interface Outcome {
  readonly inTransaction: boolean
  readonly round: number
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly result: Either.Either<
    unknown,
    { readonly _tag: string; readonly actualVersion?: number; readonly message: string }
  >
}

const workload = (variant: Variant) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const streamId = `hot-${variant}-${crypto.randomUUID()}`
    yield* store.append({
      streamId,
      streamType: "thing",
      expectedVersion: ExpectedVersion.noStream,
      events: [{ type: "Opened", data: {} }]
    })
    const outcomes = yield* Effect.forEach(
      Array.from({ length: writers }, (_, writer) => writer),
      (writer) =>
        Effect.forEach(Array.from({ length: appendsPerWriter }, (_, round) => round), (round) =>
          Effect.gen(function*() {
            const inTransaction = writer % 2 === 1
            // With no-stream, the writers race to create a new stream each round.
            const target = variant === "no-stream" ? `${streamId}-${round}` : streamId
            const expected: ExpectedVersion.ExpectedVersion = variant === "exact"
              ? yield* store.streamVersion(streamId)
              : variant
            const append = store.append({
              streamId: target,
              streamType: "thing",
              expectedVersion: expected,
              events: [{ type: "Happened", data: { writer } }]
            })
            const result = yield* Effect.either(inTransaction ? sql.withTransaction(append) : append)
            return { inTransaction, expected, result, round } as Outcome
          })),
      { concurrency: "unbounded" }
    )
    const versions = yield* Effect.forEach(
      Array.from({ length: appendsPerWriter }, (_, round) => round),
      (round) => store.streamVersion(`${streamId}-${round}`)
    )
    return { outcomes: outcomes.flat(), version: yield* store.streamVersion(streamId), versions }
  })

const schema = isolatedSchema("expectations")

/**
 * Waits until a backend other than the caller's waits on a lock with a query like `pattern`.
 * The caller must not be in a transaction: one sees the activity as it was when it first looked.
 */
const waitingOn = (client: pg.Client, pattern: string) =>
  Effect.gen(function*() {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      const rows = yield* Effect.promise(() =>
        client.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1 AND pid <> pg_backend_pid()`,
          [pattern]
        )
      )
      if (rows.rowCount! > 0) return
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.dieMessage(`no query like ${pattern} came to wait on a lock`)
  })

describe.skipIf(skipPostgres)("PostgreSQL appends whose expectation holds", () => {
  layer(isolatedLayer(schema, { maxConnections: writers + 2 }))((methods) => {
    const it = live(methods)
    for (const variant of ["any", "stream-exists", "exact", "no-stream"] as const) {
      it.effect(
        `${variant}: no refusal whose expectation held, alone or in a transaction`,
        () =>
          Effect.gen(function*() {
            const { outcomes, version, versions } = yield* workload(variant)
            const refusals = outcomes.flatMap((outcome) =>
              Either.isLeft(outcome.result) ? [{ expected: outcome.expected, error: outcome.result.left }] : []
            )
            const unjustified = refusals.filter(({ error, expected }) =>
              error._tag !== "ConcurrencyError" || ExpectedVersion.isSatisfiedBy(expected, error.actualVersion!)
            )
            expect(unjustified.map(({ error }) => error.message)).toEqual([])
            const acknowledged = outcomes.filter((outcome) => Either.isRight(outcome.result))
            if (variant === "no-stream") {
              // Each round's new stream was created once, by one of the writers.
              expect(versions).toEqual(versions.map(() => 1))
              expect(acknowledged.length).toBe(appendsPerWriter)
              return
            }
            if (variant !== "exact") expect(refusals).toEqual([])
            // Every acknowledged append is in the stream, and nothing else.
            expect(version).toBe(1 + acknowledged.length)
          }),
        120_000
      )
    }

    // An appendMany that is the first write of an application transaction, refused because one
    // stream was not at the version it expected; a plain writer queued on that stream's lock
    // moves it to that very version the moment the refused attempt lets go. Judged from the
    // streams as they are afterwards, the refusal looked unexplained and the transaction, which
    // had its id from the attempt, was told it came too late (TransactionConflictError); judged
    // from what the attempt saw under its locks, it is the ConcurrencyError it was.
    it.effect(
      "a refusal is explained by what the append saw under its locks, not what came after",
      () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const sql = yield* SqlClient.SqlClient
          const [holder, writer, observer] = yield* Effect.promise(() =>
            Promise.all([rawConnection(), rawConnection(), rawConnection()])
          )
          const outcomes: Array<string> = []
          for (let round = 0; round < 4; round++) {
            const [first, second] = [`first-${crypto.randomUUID()}`, `second-${crypto.randomUUID()}`]
            for (const streamId of [first, second]) {
              yield* store.append({
                streamId,
                streamType: "thing",
                expectedVersion: ExpectedVersion.noStream,
                events: [{ type: "Opened", data: {} }]
              })
            }
            // The first stream's row is held, so that the append waits there holding both locks.
            yield* Effect.promise(() => holder.query("BEGIN"))
            yield* Effect.promise(() =>
              holder.query(`UPDATE "${schema}".entities SET version = version WHERE id = $1`, [first])
            )
            const append = yield* Effect.fork(Effect.either(sql.withTransaction(store.appendMany([
              {
                streamId: first,
                streamType: "thing",
                expectedVersion: ExpectedVersion.any,
                events: [{ type: "Happened", data: {} }]
              },
              {
                streamId: second,
                streamType: "thing",
                expectedVersion: ExpectedVersion.exact(2),
                events: [{ type: "Happened", data: {} }]
              }
            ]))))
            yield* waitingOn(observer, "%pg_advisory_xact_lock(hashtextextended($%")
            // A writer of the protocol that takes the stream's lock and moves it to version 2 in
            // one round trip, as soon as it gets the lock.
            const plain = writer.query(
              `BEGIN;
            SELECT pg_advisory_xact_lock(hashtextextended('effect-eventsourcing ${schema}.events' || '${second}', 0));
            UPDATE "${schema}".entities SET version = 2, transaction_id = pg_current_xact_id() WHERE id = '${second}';
            INSERT INTO "${schema}".events (entity_id, name, details, actor, ordinal, position)
              SELECT '${second}', 'Happened', '{}', 'plain', 2, max(position) + 1 FROM "${schema}".events;
            COMMIT`
            )
            yield* waitingOn(observer, "%pg_advisory_xact_lock(hashtextextended('effect-eventsourcing%")
            yield* Effect.promise(() => holder.query("COMMIT"))
            const result = yield* Fiber.join(append)
            yield* Effect.promise(() => plain)
            outcomes.push(
              Either.isRight(result)
                ? "appended"
                : result.left._tag === "ConcurrencyError"
                ? `${result.left._tag} ${
                  result.left.streamId === second
                } ${result.left.actualVersion} ${result.left.others.length}`
                : result.left._tag
            )
            expect(yield* store.streamVersion(first)).toBe(1)
            expect(yield* store.streamVersion(second)).toBe(2)
          }
          yield* Effect.promise(() => Promise.all([holder.end(), writer.end(), observer.end()]))
          expect(outcomes).toEqual(outcomes.map(() => "ConcurrencyError true 1 0"))
        }),
      60_000
    )
  })
})
