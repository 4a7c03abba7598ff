/**
 * Scenario 10: what each operation costs as the store grows. One store per backend is loaded
 * with plain SQL to a small size, measured, loaded on to a large size and measured again, and
 * each row reports the median time of one operation at both sizes and their ratio (large /
 * small). An operation that does not depend on the size of the store stays near 1; the one that
 * does by design, `countAfter` without a bound, grows with the events it counts, and its row
 * says so. In this scenario the table's "library" column is the small store and "baseline" the
 * large one: there is no raw-driver side, the library is compared with itself.
 *
 * The load has the shapes of a real store rather than of a benchmark: two long streams that
 * take a tenth of the events each (100,000 events each in a store of 1,000,000), and many short
 * ones of varied length (1, 5, 10, 50 and 200 events, interleaved in the global order), each
 * event its own append at its own position, with event ids, and on PostgreSQL a transaction id
 * per load below every later transaction. Every stream is a pure function of the event's index,
 * so the second load goes on with the streams the first one began.
 */
import Database from "better-sqlite3"
import { Chunk, Effect, ManagedRuntime, Stream } from "effect"
import type { ProjectionStore } from "effect-eventsourcing"
import { EventStore, ExpectedVersion, Position, Projection } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { pgTables } from "../seed.js"
import type { Backend, Result } from "../support.js"
import { databaseUrl } from "../support.js"

export interface Options {
  /** The two sizes, in events loaded. */
  readonly sizes: readonly [number, number]
  /** Timed repetitions of each operation per size (in 5 rounds), after `warmUp` untimed ones. */
  readonly repetitions: number
  readonly warmUp: number
  /** Timed repetitions of the unbounded count, whose cost grows with the store. */
  readonly countRepetitions: number
}

// --- The shape of the load ---------------------------------------------------------------------

/** Two long streams take every tenth event each; the rest go to short streams. */
const longStreams = 2
/** The short streams of an epoch of 1,000 of their events: 1,000 / k streams of k events. */
const streamsPerEpoch = [1000, 200, 100, 20, 5] as const
const epoch = 1000

/** The stream and version of the event at `index` in the load. */
const shape = (index: number): { readonly stream: string; readonly ordinal: number } => {
  const lane = index % 10
  if (lane < longStreams) return { stream: `long-${lane}`, ordinal: Math.floor(index / 10) + 1 }
  const short = Math.floor(index / 10) * (10 - longStreams) + lane - longStreams
  const e = Math.floor(short / epoch)
  const offset = short % epoch
  const k = streamsPerEpoch[e % streamsPerEpoch.length]!
  return { stream: `s-${e}-${offset % k}`, ordinal: Math.floor(offset / k) + 1 }
}

/** The same, as SQL over `generate_series(from, to - 1) AS i`, for PostgreSQL. */
const shapedRows = `short AS (
    SELECT i, (i / 10) * ${
  10 - longStreams
} + i % 10 - ${longStreams} AS n FROM generate_series($1::bigint, $2::bigint - 1) AS i
  ),
  epochs AS (
    SELECT i, n / ${epoch} AS e, n % ${epoch} AS offset_,
      (ARRAY[${streamsPerEpoch.join(", ")}])[(n / ${epoch}) % ${streamsPerEpoch.length} + 1] AS k
    FROM short
  ),
  shaped AS (
    SELECT i,
      CASE WHEN i % 10 < ${longStreams} THEN 'long-' || (i % 10) ELSE 's-' || e || '-' || (offset_ % k) END AS stream,
      CASE WHEN i % 10 < ${longStreams} THEN i / 10 + 1 ELSE offset_ / k + 1 END AS ordinal
    FROM epochs
  )`

const eventId = (index: number) => `growth-${String(index).padStart(9, "0")}`
const details = (index: number) =>
  JSON.stringify({ item: { sku: `SKU-${index % 1000}`, name: "Item", quantity: index % 3 + 1, unitPrice: 25 } })
const detailsSql =
  `'{"item":{"sku":"SKU-' || (i % 1000) || '","name":"Item","quantity":' || (i % 3 + 1) || ',"unitPrice":25}}'`

/** A stream of 10 events that no later load adds to (the third epoch's streams have 10 events). */
const shortStream = "s-2-0"
/** The long stream whose early append is retried. */
const longStream = "long-0"
/** The retried append: the 10th event of the long stream, its own append. */
const retriedIndex = 90
/** The projection's checkpoint: just after the 10th event of the store. */
const behindIndex = 9

// --- Loading -----------------------------------------------------------------------------------

export interface Store {
  /** Where it is: a PostgreSQL schema or a SQLite file. */
  readonly where: string
  readonly layer: () => ReturnType<typeof PgEventStore.layer> | ReturnType<typeof SqliteEventStore.layer>
  /** Loads the events `from` to `to` (indices in the load) with plain SQL. */
  readonly load: (from: number, to: number) => Promise<void>
  /** The position of the event at `index` in the load. */
  readonly positionOf: (index: number) => Promise<Position.Position>
  /** Sets a projection's checkpoint. */
  readonly checkpoint: (projection: string, position: Position.Position) => Promise<void>
  readonly drop: () => Promise<void>
}

/**
 * The scenario's store on PostgreSQL, in a schema of its own (exported, as `sqliteStore`, for
 * looking into its queries by hand).
 */
export const pgStore = async (): Promise<Store> => {
  const schema = `bench_growth_${crypto.randomUUID().slice(0, 8)}`
  const layer = () => PgEventStore.layer({ url: databaseUrl, tables: pgTables(schema), maxConnections: 2 })
  // The store's migrations make the tables, indexes, sequence and trigger first, as in production.
  await Effect.runPromise(Effect.provide(Effect.void, layer()))
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const sequence = `'${schema}.events_position_seq'`
  return {
    where: schema,
    layer,
    load: async (from, to) => {
      await client.query("BEGIN")
      try {
        // Positions go on after every position drawn so far (the sequence may be ahead of the
        // rows). Moving the sequence past the load first keeps the trigger that advances it for
        // plain writers from firing on each of a million rows.
        const base = (await client.query(
          `SELECT GREATEST(COALESCE(pg_sequence_last_value(${sequence}::regclass), 0),
            COALESCE((SELECT max(position) FROM ${schema}.events), 0))::text AS base`
        )).rows[0].base as string
        await client.query(`SELECT setval(${sequence}, $1::bigint + $2::bigint)`, [base, to - from])
        // Every row of the load gets the loading transaction's id (the column's default), below
        // that of any later append; within it the global order is the position's.
        await client.query(
          `WITH ${shapedRows}
          INSERT INTO ${schema}.events (entity_id, name, details, actor, ordinal, position, event_id, metadata, schema_version)
          SELECT stream, 'Seeded', ${detailsSql}, 'bench', ordinal, $3::bigint + i - $1::bigint + 1,
            'growth-' || lpad(i::text, 9, '0'), '{}', 1
          FROM shaped`,
          [from, to, base]
        )
        // Each stream's row carries its last version (reads check it) and the loading transaction.
        await client.query(
          `WITH ${shapedRows}
          INSERT INTO ${schema}.entities AS s (id, type, version, transaction_id)
          SELECT stream, 'bench', max(ordinal), pg_current_xact_id() FROM shaped GROUP BY stream
          ON CONFLICT (id) DO UPDATE SET version = excluded.version, transaction_id = excluded.transaction_id`,
          [from, to]
        )
        await client.query("COMMIT")
      } catch (error) {
        // Leave the connection usable, so that the schema can still be dropped.
        await client.query("ROLLBACK")
        throw error
      }
      // Statistics for the planner, and what a store that autovacuum has been through has (this
      // server may run without it): a visibility map, without which the index-only scans of
      // counts and `head` visit the table, and hint bits, which the first reads would set.
      await client.query(`VACUUM (ANALYZE) ${schema}.events, ${schema}.entities`)
      // A load of a million events writes about 500 MB of WAL, and the checkpoint it starts
      // would write in the background through the measurements (appends at 1M measured 2.4
      // times slower than at 10k with it, as fast without it): finish it now.
      await client.query(`CHECKPOINT`)
    },
    positionOf: async (index) => {
      const row = (await client.query(
        `SELECT transaction_id::text AS transaction_id, position::text AS position FROM ${schema}.events WHERE event_id = $1`,
        [eventId(index)]
      )).rows[0]
      return Position.make({ sequence: BigInt(row.position), transaction: BigInt(row.transaction_id) })
    },
    checkpoint: async (projection, position) => {
      await client.query(
        `INSERT INTO ${schema}.projections (source, position, transaction_id) VALUES ($1, $2, $3::xid8)
        ON CONFLICT (source) DO UPDATE SET position = excluded.position, transaction_id = excluded.transaction_id`,
        [projection, String(position.sequence), String(position.transaction)]
      )
    },
    drop: async () => {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await client.end()
    }
  }
}

/** The scenario's store on SQLite, in a temporary file. */
export const sqliteStore = async (): Promise<Store> => {
  const directory = mkdtempSync(join(tmpdir(), "effect-eventsourcing-growth-"))
  const filename = join(directory, "growth.sqlite")
  const layer = () => SqliteEventStore.layer({ filename })
  await Effect.runPromise(Effect.provide(Effect.void, layer()))
  const database = new Database(filename)
  // Room for the indexes being built in memory (the default cache is 2 MB), so that the load
  // does not write and read back index pages while it inserts.
  database.pragma("cache_size = -262144")
  const insertEvent = database.prepare(
    `INSERT INTO events (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata, schema_version)
    VALUES (?, 'Seeded', ?, 'bench', julianday('now') - 2440587.5, ?, ?, ?, '{}', 1)`
  )
  const upsertStream = database.prepare(
    `INSERT INTO entities (id, type, version) VALUES (?, 'bench', ?)
    ON CONFLICT (id) DO UPDATE SET version = excluded.version`
  )
  const maxPosition = database.prepare(`SELECT COALESCE(MAX(position), 0) FROM events`).pluck()
  // One transaction of prepared inserts: SQLite's cost is then the rows and indexes, not commits.
  const load = database.transaction((from: number, to: number) => {
    const base = maxPosition.get() as number
    const versions = new Map<string, number>()
    for (let index = from; index < to; index++) {
      const { ordinal, stream } = shape(index)
      insertEvent.run(stream, details(index), ordinal, base + index - from + 1, eventId(index))
      versions.set(stream, ordinal)
    }
    for (const [stream, version] of versions) upsertStream.run(stream, version)
  })
  const position = database.prepare(`SELECT position FROM events WHERE event_id = ?`).pluck()
  const checkpoint = database.prepare(
    `INSERT INTO projections (source, position) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET position = excluded.position`
  )
  return {
    where: filename,
    layer,
    load: async (from, to) => void load(from, to),
    positionOf: async (index) => Position.make({ sequence: BigInt(position.get(eventId(index)) as number) }),
    checkpoint: async (projection, at) => void checkpoint.run(projection, Number(at.sequence)),
    drop: async () => {
      database.close()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}

// --- Measuring ---------------------------------------------------------------------------------

type Services = EventStore.EventStore | ProjectionStore.ProjectionStore

interface Operation {
  readonly name: string
  readonly repetitions: number
  /** One operation; `n` counts the calls, so that appends can name new streams. */
  readonly run: (n: number) => Effect.Effect<unknown, unknown, Services>
}

const median = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const rounds = 5

/**
 * The median time of each operation, in microseconds. The repetitions run in rounds that take
 * every operation in turn, so that a burst of other work on the machine lands on several
 * operations' samples rather than on all of one operation's.
 */
const measure = (operations: ReadonlyArray<Operation>, warmUp: number) =>
  Effect.gen(function*() {
    const samples = operations.map(() => [] as Array<number>)
    const calls = operations.map(() => 0)
    for (const [index, operation] of operations.entries()) {
      for (let n = 0; n < Math.min(warmUp, operation.repetitions); n++) yield* operation.run(calls[index]!++)
    }
    for (let round = 0; round < rounds; round++) {
      for (const [index, operation] of operations.entries()) {
        for (let n = 0; n < Math.ceil(operation.repetitions / rounds); n++) {
          const start = performance.now()
          yield* operation.run(calls[index]!++)
          samples[index]!.push((performance.now() - start) * 1000)
        }
      }
    }
    return samples.map(median)
  })

const item = (n: number) => ({
  type: "ItemAdded",
  data: { item: { sku: `SKU-${n % 1000}`, name: "Item", quantity: 1, unitPrice: 25 } }
})

/** Fails the run when a read does not give what the load stored. */
const check = (condition: boolean, what: string) => (condition ? Effect.void : Effect.dieMessage(`growth: ${what}`))

const measureAt = (store: Store, size: number, options: Options) =>
  Effect.gen(function*() {
    const events = yield* EventStore.EventStore
    const tag = `${size}-${crypto.randomUUID().slice(0, 8)}`
    const behind = yield* Effect.promise(() => store.positionOf(behindIndex))
    const middle = yield* Effect.promise(() => store.positionOf(Math.floor(size / 2)))
    const retried = yield* Effect.promise(() => store.positionOf(retriedIndex))
    yield* Effect.promise(() => store.checkpoint("growth-behind", behind))

    // The rows as the store reads them: nothing its own check finds wrong with them (a few
    // seconds at a million events), and the shapes and versions the load meant.
    const report = yield* events.verify()
    yield* check(report.violations.length === 0, `verify found ${JSON.stringify(report.violations.slice(0, 3))}`)
    const longVersion = Math.ceil(size / 10)
    yield* check((yield* events.streamVersion(longStream)) === longVersion, `${longStream} is not at ${longVersion}`)
    const last = Chunk.toReadonlyArray(
      yield* Stream.runCollect(events.readStream(longStream, { direction: "backward", limit: 1 }))
    )
    yield* check(last[0]?.version === longVersion, `${longStream} does not end at ${longVersion}`)
    const short = Chunk.toReadonlyArray(yield* Stream.runCollect(events.readStream(shortStream)))
    yield* check(short.length === 10 && short[9]!.version === 10, `${shortStream} does not hold 10 events`)

    // The append retried: the long stream's 10th event, its own append, sent again with its id
    // and the expectation it was made with, long after the stream moved on.
    const retry = {
      streamId: longStream,
      streamType: "bench",
      expectedVersion: ExpectedVersion.exact(9),
      events: [{ id: eventId(retriedIndex), type: "Seeded", data: JSON.parse(details(retriedIndex)) }]
    }
    const original = yield* events.append(retry)
    yield* check(
      original.version === 10 && Position.equals(original.position, retried) &&
        original.events[0]?.id === eventId(retriedIndex),
      "the retry did not return the original append"
    )

    const existing = `growth-existing-${tag}`
    let existingVersion = (yield* events.append({
      streamId: existing,
      streamType: "bench",
      expectedVersion: ExpectedVersion.noStream,
      events: [item(0)]
    })).version

    const { countRepetitions, repetitions } = options
    const operations: ReadonlyArray<Operation> = [
      {
        name: "append 1 event, new stream",
        repetitions,
        run: (n) =>
          events.append({
            streamId: `growth-new-${tag}-${n}`,
            streamType: "bench",
            expectedVersion: ExpectedVersion.noStream,
            events: [item(n)]
          })
      },
      {
        name: "append 1 event, existing stream, exact version",
        repetitions,
        run: (n) =>
          Effect.map(
            events.append({
              streamId: existing,
              streamType: "bench",
              expectedVersion: ExpectedVersion.exact(existingVersion),
              events: [item(n)]
            }),
            (result) => (existingVersion = result.version)
          )
      },
      { name: "streamVersion", repetitions, run: () => events.streamVersion(shortStream) },
      {
        name: "readStream, a stream of 10 events",
        repetitions,
        run: () => Stream.runDrain(events.readStream(shortStream))
      },
      { name: "head", repetitions, run: () => events.head },
      {
        name: "countAfter, unbounded (linear by design)",
        repetitions: countRepetitions,
        run: () => events.countAfter(behind)
      },
      { name: "Projection.status, checkpoint far behind", repetitions, run: () => Projection.status("growth-behind") },
      {
        name: "readAll, one batch of 500 from the middle",
        repetitions,
        run: () => Stream.runDrain(Stream.take(events.readAll({ after: middle, batchSize: 500 }), 500))
      },
      {
        name: `retry of an append to a ${longVersion.toLocaleString("en-US")}-event stream`,
        repetitions,
        run: () => events.append(retry)
      }
    ]
    const medians = yield* measure(operations, options.warmUp)
    return operations.map((operation, index) => ({ name: operation.name, micros: medians[index]! }))
  })

const count = (events: number) => events >= 1_000_000 ? `${events / 1_000_000}M` : `${events / 1000}k`

export const costsAsTheStoreGrows = async (backend: Backend, options: Options): Promise<ReadonlyArray<Result>> => {
  const [small, large] = options.sizes
  const store = backend === "postgres" ? await pgStore() : await sqliteStore()
  try {
    const measured: Array<ReadonlyArray<{ readonly name: string; readonly micros: number }>> = []
    const loadSeconds: Array<number> = []
    for (const [from, to] of [[0, small], [small, large]] as const) {
      const start = performance.now()
      await store.load(from, to)
      loadSeconds.push((performance.now() - start) / 1000)
      // A fresh store at each size, as a process started on it: nothing cached from the smaller one.
      const runtime = ManagedRuntime.make(store.layer())
      try {
        // The first figures of the process would include V8 compiling the library's code and
        // the runtime warming up (the small store measured up to twice as slow in quick runs):
        // a whole untimed pass first.
        if (from === 0) await runtime.runPromise(measureAt(store, to, options))
        measured.push(await runtime.runPromise(measureAt(store, to, options)))
      } finally {
        await runtime.dispose()
      }
    }
    const [atSmall, atLarge] = measured as [typeof measured[number], typeof measured[number]]
    return atSmall.map((operation, index) => {
      const largeMicros = atLarge[index]!.micros
      const ratio = largeMicros / operation.micros
      const linear = operation.name.startsWith("countAfter")
      // The two sizes are measured a minute apart on a shared machine: figures move by a quarter
      // from run to run, so only half again as slow is called out.
      return {
        scenario: `10. ${atLarge[index]!.name}`,
        backend,
        unit: "µs/op",
        library: operation.micros,
        baseline: largeMicros,
        ratio,
        stores: {
          small: { events: small, loadSeconds: loadSeconds[0]!, microseconds: operation.micros },
          large: { events: large, loadSeconds: loadSeconds[1]!, microseconds: largeMicros }
        },
        note: linear
          ? `${count(large)} / ${count(small)}: grows with the events counted (${
            (large / small).toFixed(0)
          }x more here)`
          : `${count(large)} / ${count(small)}${ratio > 1.5 ? ": NOT FLAT" : ""}`
      }
    })
  } finally {
    await store.drop()
  }
}
