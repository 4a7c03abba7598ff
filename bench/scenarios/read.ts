/**
 * Scenarios 5 and 7: reading.
 *
 * 5. catch-up: a projection with a handler that does nothing reads a store of 200,000 events
 *    from the first, committing its checkpoint after each batch;
 * 7. aggregate load: a stream of 10,000 events read and folded into a state.
 */
import type Database from "better-sqlite3"
import { Effect, Fiber, ManagedRuntime, Schema } from "effect"
import type { ProjectionStore } from "effect-eventsourcing"
import { CommandHandler, Decider, EventStore, ExpectedVersion, Projection } from "effect-eventsourcing"
import pg from "pg"
import { pgReadBatch, sqliteReadBatch } from "../baseline.js"
import type { Seeded } from "../seed.js"
import type { Backend, Result } from "../support.js"
import { databaseUrl, rate } from "../support.js"

const Seeded = Schema.TaggedStruct("Seeded", {
  item: Schema.Struct({ sku: Schema.String, name: Schema.String, quantity: Schema.Int, unitPrice: Schema.Number })
})

const batchSize = 500

export const catchUp = async (store: Seeded): Promise<Result> => {
  const runtime = ManagedRuntime.make(store.layer())
  const librarySeconds = await runtime.runPromise(Effect.gen(function*() {
    const events = yield* EventStore.EventStore
    const head = yield* events.head
    const start = performance.now()
    const runner = yield* Effect.fork(
      Projection.run(Projection.make({ name: "catch-up", events: Seeded, handle: () => Effect.void }), { batchSize })
    )
    yield* Projection.waitFor("catch-up", head, { interval: "5 millis" })
    const seconds = (performance.now() - start) / 1000
    yield* Fiber.interrupt(runner)
    return seconds
  }))
  await runtime.dispose()

  // The baseline reads the same batches with the same query, parses each event's JSON, and
  // commits the checkpoint after each batch.
  const baselineSeconds = store.backend === "postgres"
    ? await pgCatchUp(store.where, store.count)
    : await sqliteCatchUp(store.where, store.count)
  return rate(
    "5. catch-up from position 0, no-op handler",
    store.backend,
    "events/s",
    store.count / librarySeconds,
    store.count / baselineSeconds,
    {
      note: `${store.count} events, batches of ${batchSize}`
    }
  )
}

const pgCatchUp = async (schema: string, count: number) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const start = performance.now()
  let after = { transaction: "0", position: "0" }
  let read = 0
  await client.query(`INSERT INTO ${schema}.projections (source, position, transaction_id) VALUES ('baseline', 0, '0')`)
  while (read < count) {
    const rows = await pgReadBatch(client, schema, after, batchSize)
    for (const row of rows) JSON.parse(row.details)
    const last = rows.at(-1)!
    after = { transaction: last.transaction_id, position: last.position }
    await client.query(
      `UPDATE ${schema}.projections SET position = $1, transaction_id = $2::xid8 WHERE source = 'baseline'`,
      [
        after.position,
        after.transaction
      ]
    )
    read += rows.length
  }
  const seconds = (performance.now() - start) / 1000
  await client.end()
  return seconds
}

const sqliteCatchUp = async (filename: string, count: number) => {
  const { default: Sqlite } = await import("better-sqlite3")
  const database: Database.Database = new Sqlite(filename)
  const select = sqliteReadBatch(database)
  const save = database.prepare(`INSERT INTO projections (source, position) VALUES ('baseline', ?)
    ON CONFLICT (source) DO UPDATE SET position = excluded.position`)
  const start = performance.now()
  let after = 0
  let read = 0
  while (read < count) {
    const rows = select.all(after, batchSize) as Array<{ position: number; details: string }>
    for (const row of rows) JSON.parse(row.details)
    after = rows.at(-1)!.position
    save.run(after)
    read += rows.length
  }
  const seconds = (performance.now() - start) / 1000
  database.close()
  return seconds
}

const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })
const counter = Decider.make({
  streamType: "bench-load",
  events: Counted,
  initialState: 0,
  decide: (by: number) => [Counted.make({ by })],
  evolve: (total: number, event) => total + event.by
})

export const load = async (
  backend: Backend,
  runtime: ManagedRuntime.ManagedRuntime<EventStore.EventStore | ProjectionStore.ProjectionStore, unknown>,
  raw: { readonly pool?: pg.Pool; readonly sqlite?: Database.Database; readonly schema?: string },
  length: number
): Promise<Result> => {
  const streamId = `load-${crypto.randomUUID().slice(0, 8)}`
  const handler = CommandHandler.make(counter)
  const librarySeconds = await runtime.runPromise(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    for (let version = 0; version < length; version += 1000) {
      yield* store.append({
        streamId,
        streamType: "bench-load",
        expectedVersion: ExpectedVersion.exact(version),
        events: Array.from({ length: 1000 }, (_, index) => ({ type: "Counted", data: { by: (version + index) % 7 } }))
      })
    }
    let best = Infinity
    for (let round = 0; round < 3; round++) {
      const start = performance.now()
      const loaded = yield* handler.load(streamId)
      if (loaded.version !== length) return yield* Effect.dieMessage("short load")
      best = Math.min(best, (performance.now() - start) / 1000)
    }
    return best
  }))
  // The baseline: one query for the stream's events in order (the envelope's columns, as the
  // library reads them), each event parsed and folded.
  let baselineSeconds = Infinity
  for (let round = 0; round < 3; round++) {
    const start = performance.now()
    const rows: Array<{ details: string; name: string }> = backend === "postgres"
      ? (await raw.pool!.query(
        `SELECT e.entity_id, s.type, e.ordinal, e.position::text AS position, e.transaction_id::text AS transaction_id,
          e.name, e.details, e.actor, e.timestamp::text AS timestamp, e.event_id, e.metadata
        FROM ${raw.schema}.events e JOIN ${raw.schema}.entities s ON s.id = e.entity_id
        WHERE e.entity_id = $1 ORDER BY e.ordinal`,
        [streamId]
      )).rows
      : raw.sqlite!.prepare(
        `SELECT e.entity_id, s.type, e.ordinal, e.position, e.name, e.details, e.actor, e.timestamp, e.event_id, e.metadata
        FROM events e JOIN entities s ON s.id = e.entity_id WHERE e.entity_id = ? ORDER BY e.ordinal`
      ).all(streamId) as Array<{ details: string; name: string }>
    let total = 0
    for (const row of rows) total += JSON.parse(row.details).by
    if (rows.length !== length || total < 0) throw new Error("short load")
    baselineSeconds = Math.min(baselineSeconds, (performance.now() - start) / 1000)
  }
  return rate(
    "7. load a stream of 10,000 events into state",
    backend,
    "loads/s",
    1 / librarySeconds,
    1 / baselineSeconds,
    {
      note: `library ${(librarySeconds * 1000).toFixed(1)} ms, baseline ${(baselineSeconds * 1000).toFixed(1)} ms`
    }
  )
}
