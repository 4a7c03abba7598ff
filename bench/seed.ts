/**
 * Stores of a given size for the read scenarios: fresh tables (made by the library's migrations)
 * filled with plain SQL, so that seeding a million events takes seconds. The events spread over
 * streams of 100 and are appended one append each, as the library would store them.
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import type { Backend } from "./support.js"
import { databaseUrl } from "./support.js"

export interface Seeded {
  readonly backend: Backend
  readonly count: number
  /** Where the store is: a PostgreSQL schema or a SQLite file. */
  readonly where: string
  readonly layer: (
    options?: { readonly listen?: boolean }
  ) => ReturnType<typeof PgEventStore.layer> | ReturnType<typeof SqliteEventStore.layer>
  readonly drop: () => Promise<void>
}

const details =
  `'{"item":{"sku":"SKU-' || (i % 1000) || '","name":"Item","quantity":' || (i % 3 + 1) || ',"unitPrice":25}}'`

export const pgTables = (schema: string) => ({
  entities: `${schema}.entities`,
  events: `${schema}.events`,
  projections: `${schema}.projections`,
  migrations: `${schema}.effect_eventsourcing_migrations`
})

export const seed = async (backend: Backend, count: number): Promise<Seeded> => {
  if (backend === "postgres") {
    const schema = `bench_seed_${crypto.randomUUID().slice(0, 8)}`
    const layer = (options?: { readonly listen?: boolean }) =>
      PgEventStore.layer({
        url: databaseUrl,
        tables: pgTables(schema),
        maxConnections: 8,
        listen: options?.listen ?? true
      })
    await Effect.runPromise(Effect.provide(Effect.void, layer()))
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`INSERT INTO ${schema}.entities (id, type, version)
      SELECT 'seeded-' || s, 'bench', 100 FROM generate_series(0, ${Math.ceil(count / 100) - 1}) s`)
    await client.query(`INSERT INTO ${schema}.events (entity_id, name, details, actor, ordinal, position)
      SELECT 'seeded-' || (i / 100), 'Seeded', ${details}, 'bench', i % 100 + 1, i + 1 FROM generate_series(0, ${
      count - 1
    }) i`)
    await client.query(`SELECT setval('${schema}.events_position_seq', ${count})`)
    await client.query(`ANALYZE ${schema}.events`)
    await client.end()
    return {
      backend,
      count,
      where: schema,
      layer,
      drop: async () => {
        const client = new pg.Client({ connectionString: databaseUrl })
        await client.connect()
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
        await client.end()
      }
    }
  }
  const directory = mkdtempSync(join(tmpdir(), "effect-eventsourcing-seed-"))
  const filename = join(directory, "seeded.sqlite")
  const layer = () => SqliteEventStore.layer({ filename })
  await Effect.runPromise(Effect.provide(Effect.void, layer()))
  const database = new Database(filename)
  database.exec(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${Math.ceil(count / 100) - 1})
    INSERT INTO entities (id, type, version) SELECT 'seeded-' || i, 'bench', 100 FROM s`)
  database.exec(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${count - 1})
    INSERT INTO events (entity_id, name, details, actor, ordinal, position, event_id)
    SELECT 'seeded-' || (i / 100), 'Seeded', ${details}, 'bench', i % 100 + 1, i + 1, 'seeded-id-' || i FROM s`)
  database.close()
  return {
    backend,
    count,
    where: filename,
    layer,
    drop: async () => rmSync(directory, { recursive: true, force: true })
  }
}
