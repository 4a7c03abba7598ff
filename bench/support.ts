/**
 * What every benchmark shares: the databases (a PostgreSQL schema and a SQLite file of the
 * bench's own, created by the library's migrations so that library and baseline write the same
 * tables), the raw drivers for the baselines, timing, and the shape of a result.
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import type { EventStore, ProjectionStore } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"

export const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

export type Backend = "postgres" | "sqlite"

export interface Result {
  readonly scenario: string
  readonly backend: Backend
  /** What the figures count, for example "appends/s". */
  readonly unit: string
  readonly library: number
  readonly baseline: number
  /** library / baseline for rates, baseline / library for durations: 1 is parity, higher is better. */
  readonly ratio: number
  readonly latency?: { readonly library: Percentiles; readonly baseline: Percentiles }
  readonly peakRssMiB?: Readonly<Record<string, number>>
  /**
   * Scenario 10 compares the library with itself at two sizes of the store: `library` is the
   * time at the small size, `baseline` at the large one, and `ratio` is large / small (1 is
   * flat, higher is worse).
   */
  readonly stores?: { readonly small: StoreSize; readonly large: StoreSize }
  /**
   * The rates of a second baseline that batches appends by hand (the best an application could
   * do with the driver alone), and the library's ratio to it.
   */
  readonly batched?: { readonly baseline: number; readonly ratio: number }
  readonly note?: string
}

/** One size of scenario 10's store: its events, how long loading them took, the figure there. */
export interface StoreSize {
  readonly events: number
  /** The time loading the store to this size took (from the previous size). */
  readonly loadSeconds: number
  /** The median time of the operation at this size (the row's `library` or `baseline`). */
  readonly microseconds: number
}

export interface Percentiles {
  readonly p50: number
  readonly p95: number
  readonly p99: number
}

export const percentiles = (samples: ReadonlyArray<number>): Percentiles => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) }
}

export const rate = (
  scenario: string,
  backend: Backend,
  unit: string,
  library: number,
  baseline: number,
  extra?: Partial<Result>
): Result => ({
  scenario,
  backend,
  unit,
  library,
  baseline,
  ratio: library / baseline,
  ...extra
})

/** Seconds taken by an async function. */
export const time = async (run: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await run()
  return (performance.now() - start) / 1000
}

/** Runs `count` tasks from `writers` concurrent workers, each taking the next task. */
export const concurrently = async (
  writers: number,
  count: number,
  task: (index: number, writer: number) => Promise<void>
) => {
  let next = 0
  await Promise.all(Array.from({ length: writers }, async (_, writer) => {
    for (let index = next++; index < count; index = next++) await task(index, writer)
  }))
}

export interface Environment {
  readonly schema: string
  readonly sqliteFile: string
  readonly pool: pg.Pool
  readonly sqlite: Database.Database
  readonly layers: {
    readonly postgres: Layer.Layer<EventStore.EventStore | ProjectionStore.ProjectionStore, unknown>
    readonly sqlite: Layer.Layer<EventStore.EventStore | ProjectionStore.ProjectionStore, unknown>
  }
  readonly close: () => Promise<void>
}

export const writers = 8

/** A fresh PostgreSQL schema and SQLite file, with the library's tables, for one run. */
export const environment = async (): Promise<Environment> => {
  const schema = `bench_${crypto.randomUUID().slice(0, 8)}`
  const directory = mkdtempSync(join(tmpdir(), "effect-eventsourcing-bench-"))
  const sqliteFile = join(directory, "bench.sqlite")
  const tables = {
    entities: `${schema}.entities`,
    events: `${schema}.events`,
    projections: `${schema}.projections`,
    migrations: `${schema}.effect_eventsourcing_migrations`
  }
  const layers = {
    postgres: PgEventStore.layer({ url: databaseUrl, tables, maxConnections: writers }),
    sqlite: SqliteEventStore.layer({ filename: sqliteFile })
  }
  // Create the tables once through the library, so the baselines write the very same ones.
  await Effect.runPromise(Effect.provide(Effect.void, Layer.merge(layers.postgres, layers.sqlite)))
  const pool = new pg.Pool({ connectionString: databaseUrl, max: writers })
  const sqlite = new Database(sqliteFile)
  sqlite.pragma("journal_mode = WAL")
  return {
    schema,
    sqliteFile,
    pool,
    sqlite,
    layers,
    close: async () => {
      sqlite.close()
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await pool.end()
      rmSync(directory, { recursive: true, force: true })
    }
  }
}
