/**
 * PostgreSQL: the store's statements go as named prepared statements, on the pool's connections
 * and inside an application's transaction, one per statement text however often it runs; turned
 * off, none is prepared. A pool of one connection makes the session's prepared statements
 * (`pg_prepared_statements`, visible only to their own session) the store's.
 *
 * The store passes node-postgres's query config through @effect/sql-pg's `Connection.execute`
 * (pg/objects.ts): these tests fail if a later @effect/sql-pg stops handing it on, or if the
 * client is no longer recognised as @effect/sql-pg's.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, skipPostgres } from "../support/postgres.js"

/** The store's prepared statements in the session of the one pooled connection. */
const prepared = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe<{ name: string; statement: string }>(
    `SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'effect\\_eventsourcing\\_%' ORDER BY name`
  ).withoutTransform)

/** Appends, reads of a stream, its version and the global order: the store's hot statements. */
const work = (tag: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    for (let n = 0; n < 3; n++) {
      const streamId = `${tag}-${n}`
      yield* store.append({
        streamId,
        streamType: "thing",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Happened", data: { n } }]
      })
      const version = yield* store.streamVersion(streamId)
      yield* store.append({
        streamId,
        streamType: "thing",
        expectedVersion: ExpectedVersion.exact(version),
        events: [{ type: "Happened", data: { n } }, { type: "Happened", data: { n: n + 1 } }]
      })
      expect(Chunk.size(yield* Stream.runCollect(store.readStream(streamId)))).toBe(3)
    }
    return yield* Stream.runCollect(store.readAll())
  })

describe.skipIf(skipPostgres)("PostgreSQL prepared statements", () => {
  const schema = isolatedSchema("prepared")
  layer(isolatedLayer(schema, { maxConnections: 1 }))((methods) => {
    const it = live(methods)

    it.effect("prepares each statement once, by a name of its text, however often it runs", () =>
      Effect.gen(function*() {
        const events = yield* work("first")
        expect(Chunk.size(events)).toBe(9)
        const first = yield* prepared
        // The append of a new stream, the exact one of two events, the version, the page of a
        // stream, the batch of the global order: one statement each, on this store's tables.
        expect(first.filter((statement) => statement.statement.includes(schema)).length).toBeGreaterThanOrEqual(5)
        expect(new Set(first.map((statement) => statement.statement)).size).toBe(first.length)
        yield* work("second")
        expect(yield* prepared).toEqual(first)
      }))

    it.effect("prepares the statements of an append inside an application's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const before = (yield* prepared).length
        // Two streams in one append: statements that no append outside a transaction ran.
        yield* sql.withTransaction(store.appendMany(["a", "b"].map((n) => ({
          streamId: `in-transaction-${n}`,
          streamType: "thing",
          expectedVersion: ExpectedVersion.noStream,
          events: [{ type: "Happened", data: {} }]
        }))))
        expect((yield* prepared).length).toBeGreaterThan(before)
        expect(yield* store.streamVersion("in-transaction-b")).toBe(1)
      }))
  })
})

describe.skipIf(skipPostgres)("PostgreSQL with prepared statements turned off", () => {
  layer(isolatedLayer(isolatedSchema("unprepared"), { maxConnections: 1, preparedStatements: false }))((methods) => {
    const it = live(methods)

    it.effect("prepares none and works the same", () =>
      Effect.gen(function*() {
        expect(Chunk.size(yield* work("unprepared"))).toBe(9)
        expect(yield* prepared).toEqual([])
      }))
  })
})
