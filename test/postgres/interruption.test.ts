/**
 * Interrupting an append on PostgreSQL is an interruption, and nothing else: the interrupted
 * fiber ends interrupted (its statement runs to its end rather than being cancelled, so its
 * outcome is unknown, as for a lost connection), and no other fiber's statement is cancelled in
 * its place. A cancel the store did not ask for (another client's, arriving late on a pooled
 * connection) makes the store try the append again instead of failing it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"

const schema = isolatedSchema("interruption")

const appendTo = (streamId: string, id?: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamId,
      streamType: "thing",
      expectedVersion: ExpectedVersion.any,
      events: [{ type: "Happened", data: {}, ...(id === undefined ? {} : { id }) }]
    }))

describe.skipIf(skipPostgres)("PostgreSQL appends interrupted", () => {
  layer(isolatedLayer(schema, { maxConnections: 4 }))((methods) => {
    const it = live(methods)

    it.effect("stay interrupted, and never cancel another fiber's append", () =>
      Effect.gen(function*() {
        const outcomes = new Map<string, number>()
        const note = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
        const run = crypto.randomUUID()
        yield* Effect.forEach(
          Array.from({ length: 8 }, (_, writer) => writer),
          (writer) =>
            Effect.forEach(Array.from({ length: 100 }, (_, index) => index), (index) =>
              Effect.gen(function*() {
                const append = appendTo(`hot-${run}-${index % 4}`)
                if (writer % 2 === 1) {
                  const result = yield* Effect.either(append)
                  return note(Either.isRight(result) ? "appended" : `failed: ${result.left.message}`)
                }
                const fiber = yield* Effect.fork(append)
                yield* Effect.sleep(`${(index * 37 + writer * 11) % 3000} micros`)
                const exit = yield* Fiber.interrupt(fiber)
                note(
                  Exit.isSuccess(exit)
                    ? "interrupted too late"
                    : Exit.isInterrupted(exit)
                    ? "interrupted"
                    : `interrupted, failed: ${Cause.pretty(exit.cause)}`
                )
              })),
          { concurrency: "unbounded" }
        )
        const failures = [...outcomes].filter(([outcome]) => outcome.includes("failed"))
        expect(failures).toEqual([])
        expect(outcomes.get("appended")).toBe(400)
      }), 120_000)

    /**
     * Holds the stream's row from another connection, so that the append waits on it, and
     * cancels the waiting statement from there, as a late cancel of another client would.
     */
    const cancelledOnce = <A, E, R>(streamId: string, append: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const client = yield* Effect.promise(() => rawConnection())
        yield* Effect.promise(() => client.query("BEGIN"))
        yield* Effect.promise(() =>
          client.query(`UPDATE "${schema}".entities SET version = version WHERE id = $1`, [streamId])
        )
        const fiber = yield* Effect.fork(append)
        const waiting = Effect.promise(() =>
          client.query(
            `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'
            AND pid <> pg_backend_pid()`
          )
        )
        let pids: ReadonlyArray<number> = []
        while (pids.length === 0) {
          yield* Effect.sleep("10 millis")
          pids = (yield* waiting).rows.map((row) => row.pid as number)
        }
        yield* Effect.promise(() => client.query(`SELECT pg_cancel_backend($1)`, [pids[0]]))
        yield* Effect.sleep("50 millis")
        yield* Effect.promise(() => client.query("COMMIT"))
        yield* Effect.promise(() => client.end())
        return yield* Fiber.join(fiber)
      })

    it.effect("tries an append again when a cancel it did not ask for stops its statement", () =>
      Effect.gen(function*() {
        const streamId = `cancelled-${crypto.randomUUID()}`
        yield* appendTo(streamId)
        const appended = yield* cancelledOnce(streamId, appendTo(streamId, `${streamId}-2`))
        expect(appended.version).toBe(2)
      }))

    // The append runs in a savepoint of the application's transaction: the cancel stops only
    // the savepoint, and the transaction goes on with the append sent again, instead of being
    // told to start over.
    it.effect("tries it again inside the application's transaction too, which then commits", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const streamId = `cancelled-${crypto.randomUUID()}`
        yield* appendTo(streamId)
        const marker = `marker-${crypto.randomUUID()}`
        const appended = yield* cancelledOnce(
          streamId,
          sql.withTransaction(Effect.tap(appendTo(streamId, `${streamId}-2`), () => appendTo(marker)))
        )
        expect(appended.version).toBe(2)
        const store = yield* EventStore.EventStore
        expect(yield* store.streamVersion(streamId)).toBe(2)
        expect(yield* store.streamVersion(marker)).toBe(1)
      }))
  })
})
