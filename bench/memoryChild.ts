/**
 * A process of its own for scenario 8, so that its peak resident memory is its own: it reads
 * `count` events from a seeded store, through a library subscription or with the raw driver,
 * and prints its peak RSS and time as JSON.
 *
 *   memoryChild.ts <postgres|sqlite> <schema|file> <count> <library|baseline>
 */
import Database from "better-sqlite3"
import { Effect, Stream } from "effect"
import { EventStore } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import pg from "pg"
import { pgReadBatch, sqliteReadBatch } from "./baseline.js"
import { pgTables } from "./seed.js"
import { databaseUrl } from "./support.js"

const [backend, where, countText, mode] = process.argv.slice(2) as [string, string, string, string]
const count = Number(countText)

let peak = process.memoryUsage().rss
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10)

const library = async () => {
  const layer = backend === "postgres"
    ? PgEventStore.layer({ url: databaseUrl, tables: pgTables(where), maxConnections: 2, listen: false })
    : SqliteEventStore.layer({ filename: where })
  await Effect.runPromise(
    Effect.flatMap(
      EventStore.EventStore,
      (store) => store.subscribe({ batchSize: 500 }).pipe(Stream.take(count), Stream.runDrain)
    ).pipe(Effect.provide(layer))
  )
}

const baseline = async () => {
  let read = 0
  if (backend === "postgres") {
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    let after = { transaction: "0", position: "0" }
    while (read < count) {
      const rows = await pgReadBatch(client, where, after, 500)
      for (const row of rows) JSON.parse(row.details)
      after = { transaction: rows.at(-1)!.transaction_id, position: rows.at(-1)!.position }
      read += rows.length
    }
    await client.end()
    return
  }
  const database = new Database(where, { readonly: true })
  const select = sqliteReadBatch(database)
  let after = 0
  while (read < count) {
    const rows = select.all(after, 500) as Array<{ position: number; details: string }>
    for (const row of rows) JSON.parse(row.details)
    after = rows.at(-1)!.position
    read += rows.length
  }
  database.close()
}

const start = performance.now()
;(mode === "library" ? library() : baseline()).then(() => {
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  console.log(JSON.stringify({ peakRssMiB: peak / 1024 / 1024, seconds: (performance.now() - start) / 1000 }))
}, (error) => {
  console.error(error)
  process.exit(1)
})
