/**
 * PostgreSQL orders events by the transaction id they were written in, so an application
 * transaction that got its id before another transaction appended to a stream must not append
 * to that stream after it: it is refused with TransactionConflictError, and the global order
 * keeps the stream's versions in order. And a server whose default isolation is not READ
 * COMMITTED still gets ConcurrencyError, not serialization failures, from racing appends.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Schedule, Stream } from "effect"
import { CommandHandler, Errors, EventStore, ExpectedVersion, Projection } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import { Counted, counter, counterDecider } from "../support/counter.js"
import { live } from "../support/live.js"
import {
  databaseUrl,
  isolatedLayer,
  isolatedSchema,
  rawConnection,
  skipPostgres,
  tablesIn
} from "../support/postgres.js"

const schema = isolatedSchema("pg_transactions")

const append = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.append({ streamId, streamType: "counter", expectedVersion, events: [{ type: "Counted", data: { by: 1 } }] })
  )

/** Runs an effect on its own connection, outside the transaction of the fiber that runs it. */
const outsideTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.mapInputContext(
    effect,
    (context: Context.Context<R>) => Context.omit(SqlClient.TransactionConnection)(context) as Context.Context<R>
  )

const versionsInGlobalOrder = (streamId: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.map(
      Stream.runCollect(store.readAll()),
      (all) => Chunk.toReadonlyArray(all).filter((event) => event.streamId === streamId).map((event) => event.version)
    ))

describe.skipIf(skipPostgres)("PostgreSQL application transactions", () => {
  layer(isolatedLayer(schema))((methods) => {
    const it = live(methods)

    it.effect("refuses an append from a transaction older than the stream's last append", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const streamId = `older-${crypto.randomUUID()}`
        yield* append(streamId, ExpectedVersion.noStream)
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS "${schema}".notes (id TEXT PRIMARY KEY)`)

        const outcome = yield* sql.withTransaction(Effect.gen(function*() {
          // The application writes first: its transaction now has an id...
          yield* sql.unsafe(`INSERT INTO "${schema}".notes (id) VALUES ($1)`, [streamId])
          // ...and another transaction appends to the stream and commits, with a larger id.
          const appendedOutside = yield* outsideTransaction(append(streamId, ExpectedVersion.exact(1)))
          expect(appendedOutside.version).toBe(2)
          // Appending version 3 here would put it before version 2 in the global order.
          const refused = yield* Effect.either(append(streamId, ExpectedVersion.exact(2)))
          const handled = yield* Effect.either(counter.handle(streamId, 1))
          return { refused, handled }
        }))
        expect(Either.isLeft(outcome.refused) && outcome.refused.left).toEqual(
          new Errors.TransactionConflictError({ streamId })
        )
        expect(Either.isLeft(outcome.handled) && outcome.handled.left).toBeInstanceOf(Errors.TransactionConflictError)
        // The application's transaction committed its own write, and the stream is in order.
        const notes = yield* sql.unsafe(`SELECT id FROM "${schema}".notes WHERE id = $1`, [streamId])
        expect(notes).toHaveLength(1)
        expect(yield* versionsInGlobalOrder(streamId)).toEqual([1, 2])
        // Retried as a whole, in a new transaction, the command goes through.
        const retried = yield* sql.withTransaction(counter.handle(streamId, 1))
        expect(retried.version).toBe(3)
        expect(yield* versionsInGlobalOrder(streamId)).toEqual([1, 2, 3])
      }))

    it.effect("applies every one of many racing commands with an inline projection", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `CREATE TABLE IF NOT EXISTS "${schema}".sums (stream_id TEXT PRIMARY KEY, total INT NOT NULL)`
        )
        const inlineCounter = CommandHandler.make(counterDecider, {
          inline: [Projection.make({
            name: "sums",
            events: Counted,
            handle: (event) =>
              Effect.asVoid(sql.unsafe(
                `INSERT INTO "${schema}".sums (stream_id, total) VALUES ($1, $2)
                ON CONFLICT (stream_id) DO UPDATE SET total = sums.total + excluded.total`,
                [event.streamId, event.data.by]
              ))
          })],
          retry: Schedule.recurs(20)
        })
        const streamId = `inline-race-${crypto.randomUUID()}`
        const results = yield* Effect.all(
          Array.from({ length: 8 }, () => Effect.either(inlineCounter.handle(streamId, 1))),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Either.isLeft).map((result) => result.left)).toEqual([])
        const [row] = yield* sql.unsafe<{ total: number }>(`SELECT total FROM "${schema}".sums WHERE stream_id = $1`, [
          streamId
        ])
        expect(row!.total).toBe(8)
        expect(yield* versionsInGlobalOrder(streamId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      }))

    it.effect("lets a transaction that lost a race retry in place while no one else appended", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const streamId = `retry-in-place-${crypto.randomUUID()}`
        yield* append(streamId, ExpectedVersion.noStream)
        const result = yield* sql.withTransaction(Effect.gen(function*() {
          const lost = yield* Effect.flip(append(streamId, ExpectedVersion.exact(0)))
          expect(lost).toBeInstanceOf(Errors.ConcurrencyError)
          return yield* append(streamId, ExpectedVersion.exact(1))
        }))
        expect(result.version).toBe(2)
        expect(yield* versionsInGlobalOrder(streamId)).toEqual([1, 2])
      }))
  })
})

describe.skipIf(skipPostgres)("PostgreSQL defaulting to REPEATABLE READ", () => {
  const repeatableRead = (() => {
    const url = new URL(databaseUrl)
    url.searchParams.set("options", "-c default_transaction_isolation=repeatable\\ read")
    return url.toString()
  })()

  it.live("still answers racing appends with ConcurrencyError or success", () =>
    Effect.gen(function*() {
      const raceSchema = isolatedSchema("repeatable_read")
      const outcome = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [isolation] = yield* sql.unsafe<{ isolation: string }>(
          `SELECT current_setting('transaction_isolation') AS isolation`
        )
        const store = yield* EventStore.EventStore
        const writers = 8
        const anyAppends = yield* Effect.all(
          Array.from({ length: writers }, () => Effect.either(append("hot", ExpectedVersion.any))),
          { concurrency: "unbounded" }
        )
        const exactAppends = yield* Effect.all(
          Array.from({ length: writers }, () => Effect.either(append("exact", ExpectedVersion.exact(0)))),
          { concurrency: "unbounded" }
        )
        return {
          isolation: isolation!.isolation,
          anyAppends,
          exactAppends,
          hot: yield* store.streamVersion("hot")
        }
      }).pipe(
        Effect.provide(PgEventStore.layer({ url: repeatableRead, tables: tablesIn(raceSchema), maxConnections: 10 }))
      )
      const client = yield* Effect.promise(() => rawConnection())
      yield* Effect.promise(() => client.query(`DROP SCHEMA "${raceSchema}" CASCADE`).then(() => client.end()))

      expect(outcome.isolation).toBe("repeatable read")
      expect(outcome.anyAppends.every(Either.isRight)).toBe(true)
      expect(outcome.hot).toBe(8)
      expect(outcome.exactAppends.filter(Either.isRight)).toHaveLength(1)
      for (const loser of outcome.exactAppends.filter(Either.isLeft)) {
        expect(loser.left).toBeInstanceOf(Errors.ConcurrencyError)
      }
    }))
})
