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
import { Effect, Either } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, skipPostgres } from "../support/postgres.js"

const writers = 16
const appendsPerWriter = 20

type Variant = "any" | "stream-exists" | "exact" | "no-stream"

interface Outcome {
  readonly inTransaction: boolean
  readonly round: number
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly result: Either.Either<unknown, { readonly _tag: string; readonly actualVersion?: number; readonly message: string }>
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

describe.skipIf(skipPostgres)("PostgreSQL appends whose expectation holds", () => {
  layer(isolatedLayer(isolatedSchema("expectations"), { maxConnections: writers + 2 }))((methods) => {
    const it = live(methods)
    for (const variant of ["any", "stream-exists", "exact", "no-stream"] as const) {
      it.effect(`${variant}: no refusal whose expectation held, alone or in a transaction`, () =>
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
        }), 120_000)
    }
  })
})
