/**
 * Scenario 6: live latency on PostgreSQL, from an append in one process to the handler of a
 * projection in another seeing it, on an otherwise idle store: with notifications, and with
 * polling only. Each append waits for its event to be handled before the next.
 */
import { Effect, Fiber, ManagedRuntime, Schema } from "effect"
import { EventStore, ExpectedVersion, Projection } from "effect-eventsourcing"
import pg from "pg"
import { pgAppend } from "../baseline.js"
import type { Seeded } from "../seed.js"
import type { Result } from "../support.js"
import { databaseUrl, percentiles } from "../support.js"

const Pinged = Schema.TaggedStruct("Pinged", { n: Schema.Int })

const pollInterval = 50

export const liveLatency = async (
  store: Seeded,
  options: { readonly appends: number; readonly listen: boolean }
): Promise<Result> => {
  const writer = ManagedRuntime.make(store.layer({ listen: false }))
  const reader = ManagedRuntime.make(store.layer({ listen: options.listen }))
  const waiting = new Map<number, (at: number) => void>()
  const projection = Projection.make({
    name: `latency-${options.listen ? "notify" : "poll"}`,
    events: Pinged,
    handle: (event) => Effect.sync(() => waiting.get(event.data.n)?.(performance.now()))
  })
  const tag = crypto.randomUUID().slice(0, 8)
  const runner = await reader.runPromise(Effect.forkDaemon(Projection.run(projection, { pollInterval })))
  const appendOne = (n: number) =>
    writer.runPromise(Effect.flatMap(EventStore.EventStore, (events) =>
      events.append({
        streamId: `ping-${tag}-${n}`,
        streamType: "bench",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Pinged", data: { n } }]
      })))
  // Between appends the reader is left idle, as it would be on an idle store: a few
  // milliseconds with notifications, a random part of the poll interval when polling.
  const pause = () => new Promise((resolve) => setTimeout(resolve, options.listen ? 5 : Math.random() * pollInterval))
  const measure = async (append: (n: number) => Promise<unknown>, offset: number) => {
    const samples: Array<number> = []
    for (let n = offset; n < offset + options.appends; n++) {
      await pause()
      const handled = new Promise<number>((resolve) => waiting.set(n, resolve))
      const start = performance.now()
      await append(n)
      samples.push((await handled) - start)
      waiting.delete(n)
    }
    return samples
  }
  let library: Array<number>
  try {
    await measure(appendOne, 0) // warm up
    library = await measure(appendOne, 1_000_000)
  } finally {
    await reader.runPromise(Fiber.interrupt(runner))
    await Promise.all([writer.dispose(), reader.dispose()])
  }

  // The baseline: a plain append (and a notification), and a raw reader that listens (or
  // polls), reads what follows its position with the same query, and hands each event on.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 })
  const append = pgAppend(pool, store.where)
  const listener = new pg.Client({ connectionString: databaseUrl })
  await listener.connect()
  let after = { transaction: "0", position: "0" }
  const readNew = async (): Promise<void> => {
    const { rows } = await listener.query(
      `SELECT e.position::text AS position, e.transaction_id::text AS transaction_id, e.name, e.details
      FROM ${store.where}.events e WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
        AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.transaction_id, e.position LIMIT 500`,
      [after.transaction, after.position]
    )
    for (const row of rows) {
      after = { transaction: row.transaction_id, position: row.position }
      if (row.name === "Pinged") waiting.get(JSON.parse(row.details).n)?.(performance.now())
    }
    if (rows.length === 500) return readNew()
  }
  await readNew()
  let reading = Promise.resolve()
  const wake = () => void (reading = reading.then(readNew))
  let timer: NodeJS.Timeout | undefined
  if (options.listen) {
    listener.on("notification", wake)
    await listener.query(`LISTEN bench_latency`)
  } else {
    timer = setInterval(wake, pollInterval)
  }
  const baselineAppend = async (n: number) => {
    await append.create(`base-ping-${tag}-${n}`, [{ type: "Pinged", data: JSON.stringify({ n }) }])
    if (options.listen) await pool.query(`SELECT pg_notify('bench_latency', '1')`)
  }
  await measure(baselineAppend, 2_000_000)
  const baseline = await measure(baselineAppend, 3_000_000)
  if (timer !== undefined) clearInterval(timer)
  await listener.end()
  await pool.end()

  const libraryPercentiles = percentiles(library)
  const baselinePercentiles = percentiles(baseline)
  return {
    scenario: `6. live latency, ${options.listen ? "notifications" : `polling every ${pollInterval} ms`}`,
    backend: "postgres",
    unit: "p99 ms",
    library: libraryPercentiles.p99,
    baseline: baselinePercentiles.p99,
    ratio: baselinePercentiles.p99 / libraryPercentiles.p99,
    latency: { library: libraryPercentiles, baseline: baselinePercentiles },
    note: `p50 ${libraryPercentiles.p50.toFixed(1)} / ${baselinePercentiles.p50.toFixed(1)} ms, p95 ${
      libraryPercentiles.p95.toFixed(1)
    } / ${baselinePercentiles.p95.toFixed(1)} ms over ${options.appends} appends`
  }
}
