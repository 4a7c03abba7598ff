import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { EventStore } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres } from "./support/postgres.js"

// The contracts run on this store in contracts/postgres.test.ts; these cases are its own.
describe.skipIf(skipPostgres)("PostgreSQL", () => {
  it.live("reads DATABASE_URL and DATABASE_POOL_SIZE from the environment", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("config")
      const url = new URL(databaseUrl)
      url.searchParams.set("options", `-c search_path=${schema}`)
      yield* Effect.promise(async () => {
        const client = await rawConnection()
        await client.query(`CREATE SCHEMA "${schema}"`)
        await client.end()
      })
      const version = yield* Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion("none")).pipe(
        Effect.provide(PgEventStore.layerConfig()),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["DATABASE_URL", url.toString()], ["DATABASE_POOL_SIZE", "3"]]))
        )
      )
      const tables = yield* Effect.promise(async () => {
        const client = await rawConnection()
        const result = await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema])
        await client.query(`DROP SCHEMA "${schema}" CASCADE`)
        await client.end()
        return result.rows.map((row) => row.tablename)
      })
      expect(version).toBe(0)
      expect(tables).toEqual([
        "effect_eventsourcing_migrations",
        "entities",
        "events",
        "projections",
        "projections_dead_letters",
        "snapshots"
      ])
    }))
})
