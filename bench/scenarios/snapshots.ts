/**
 * Scenario 9: loading a stream of N events, with and without snapshots, for several N.
 *
 * Each stream gets a snapshot the way `Snapshot.everyEvents(100)` writes them (a command's load
 * reads the whole stream and the snapshot is written after it), then 50 more events, half the
 * policy's spacing: the events a load reads past the snapshot on average. Two rows per length:
 *
 * - without snapshots, against the raw driver reading and folding the whole stream in one query
 *   (scenario 7's baseline);
 * - with snapshots, against the raw driver doing the same work by hand: the latest snapshot's row,
 *   then the events after it, its state parsed and the events folded onto it.
 *
 * Load time without snapshots grows with the stream; with them it should stay flat.
 */
import type Database from "better-sqlite3"
import { Effect, ManagedRuntime, Schema } from "effect"
import { CommandHandler, Decider, EventStore, ExpectedVersion, Snapshot } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import type pg from "pg"
import { pgTables } from "../seed.js"
import type { Backend, Environment, Result } from "../support.js"
import { databaseUrl, rate } from "../support.js"

const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })
const counter = Decider.make({
  streamType: "bench-snapshots",
  events: Counted,
  initialState: 0,
  decide: (by: number) => [Counted.make({ by })],
  evolve: (total: number, event) => total + event.by
})

const spacing = 100
const behind = spacing / 2
const snapshots = Snapshot.make({ state: Schema.Int, policy: Snapshot.everyEvents(spacing) })
const withSnapshots = CommandHandler.make(counter, { snapshots })
/** The schema id the handler's snapshots are stored under: the settings' and the fold's. */
const schemaId = Snapshot.identity(counter, snapshots)
const withoutSnapshots = CommandHandler.make(counter)

const counted = (from: number, count: number) =>
  Array.from({ length: count }, (_, index) => ({ type: "Counted", data: { by: (from + index) % 7 } }))

/** The fastest of `rounds` runs, in seconds. */
const best = <E, R>(rounds: number, run: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    let fastest = Infinity
    for (let round = 0; round < rounds; round++) {
      const start = performance.now()
      yield* run
      fastest = Math.min(fastest, (performance.now() - start) / 1000)
    }
    return fastest
  })

const bestOf = async (rounds: number, run: () => Promise<void> | void) => {
  let fastest = Infinity
  for (let round = 0; round < rounds; round++) {
    const start = performance.now()
    await run()
    fastest = Math.min(fastest, (performance.now() - start) / 1000)
  }
  return fastest
}

/** The raw driver's reads: the stream's events after a version, and the latest snapshot's row. */
const rawReads = (backend: Backend, env: Environment) => {
  const columns = backend === "postgres"
    ? `e.entity_id, s.type, e.ordinal, e.position::text AS position, e.transaction_id::text AS transaction_id,
      e.name, e.details, e.actor, e.timestamp::text AS timestamp, e.event_id, e.metadata`
    : `e.entity_id, s.type, e.ordinal, e.position, e.name, e.details, e.actor, e.timestamp, e.event_id, e.metadata`
  if (backend === "postgres") {
    const pool: pg.Pool = env.pool
    return {
      eventsAfter: async (streamId: string, version: number) =>
        (await pool.query(
          `SELECT ${columns} FROM ${env.schema}.events e JOIN ${env.schema}.entities s ON s.id = e.entity_id
          WHERE e.entity_id = $1 AND e.ordinal > $2 ORDER BY e.ordinal`,
          [streamId, version]
        )).rows as Array<{ details: string }>,
      snapshot: async (streamId: string) =>
        (await pool.query(
          `SELECT version, state FROM ${env.schema}.snapshots WHERE stream_id = $1 AND schema_id = $2
          ORDER BY version DESC LIMIT 1`,
          [streamId, schemaId]
        )).rows[0] as { version: number; state: string }
    }
  }
  const database: Database.Database = env.sqlite
  const events = database.prepare(
    `SELECT ${columns} FROM events e JOIN entities s ON s.id = e.entity_id
    WHERE e.entity_id = ? AND e.ordinal > ? ORDER BY e.ordinal`
  )
  const snapshot = database.prepare(
    `SELECT version, state FROM snapshots WHERE stream_id = ? AND schema_id = ? ORDER BY version DESC LIMIT 1`
  )
  return {
    eventsAfter: async (streamId: string, version: number) =>
      events.all(streamId, version) as Array<{ details: string }>,
    snapshot: async (streamId: string) => snapshot.get(streamId, schemaId) as { version: number; state: string }
  }
}

export const loadWithSnapshots = async (
  backend: Backend,
  env: Environment,
  options: { readonly lengths: ReadonlyArray<number>; readonly rounds: number }
): Promise<ReadonlyArray<Result>> => {
  const runtime = ManagedRuntime.make(
    backend === "postgres"
      ? PgEventStore.layer({ url: databaseUrl, tables: pgTables(env.schema), maxConnections: 2 })
      : SqliteEventStore.layer({ filename: env.sqliteFile })
  )
  const raw = rawReads(backend, env)
  const results: Array<Result> = []
  try {
    for (const length of options.lengths) {
      const streamId = `snapshots-${length}-${crypto.randomUUID().slice(0, 8)}`
      const version = length + 1 + behind
      const library = await runtime.runPromise(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        for (let appended = 0; appended < length; appended += 1000) {
          yield* store.append({
            streamId,
            streamType: counter.streamType,
            expectedVersion: ExpectedVersion.exact(appended),
            events: counted(appended, Math.min(1000, length - appended))
          })
        }
        // The command's load reads the whole stream, so the policy writes a snapshot after it.
        yield* withSnapshots.handle(streamId, 0)
        yield* Snapshot.awaitWrites
        yield* store.append({
          streamId,
          streamType: counter.streamType,
          expectedVersion: ExpectedVersion.exact(length + 1),
          events: counted(length + 1, behind)
        })
        const [from, whole] = [yield* withSnapshots.load(streamId), yield* withoutSnapshots.load(streamId)]
        if (from.version !== version || from.state !== whole.state) {
          return yield* Effect.dieMessage(`snapshot load gave ${from.state} at ${from.version}, not ${whole.state}`)
        }
        return {
          total: whole.state,
          without: yield* best(options.rounds, withoutSnapshots.load(streamId)),
          with: yield* best(options.rounds, withSnapshots.load(streamId))
        }
      }))

      const fold = (rows: ReadonlyArray<{ details: string }>, from: number) => {
        let total = from
        for (const row of rows) total += JSON.parse(row.details).by
        return total
      }
      const baselineWithout = await bestOf(options.rounds, async () => {
        const rows = await raw.eventsAfter(streamId, 0)
        if (rows.length !== version || fold(rows, 0) !== library.total) throw new Error("short load")
      })
      const baselineWith = await bestOf(options.rounds, async () => {
        const snapshot = await raw.snapshot(streamId)
        const rows = await raw.eventsAfter(streamId, Number(snapshot.version))
        if (rows.length !== behind || fold(rows, JSON.parse(snapshot.state)) !== library.total) {
          throw new Error("short load")
        }
      })

      const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`
      const scenario = `9. load a stream of ${length.toLocaleString("en-US")} events`
      const speedup = (library.without / library.with).toFixed(0)
      results.push(
        rate(`${scenario}, no snapshot`, backend, "loads/s", 1 / library.without, 1 / baselineWithout, {
          note: `library ${ms(library.without)}, baseline ${ms(baselineWithout)}`
        }),
        rate(`${scenario}, snapshot ${behind} behind`, backend, "loads/s", 1 / library.with, 1 / baselineWith, {
          note: `library ${ms(library.with)} (${speedup}x faster than without), baseline ${ms(baselineWith)}`
        })
      )
    }
  } finally {
    await runtime.dispose()
  }
  return results
}
