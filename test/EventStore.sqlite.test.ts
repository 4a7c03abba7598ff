import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Config, ConfigProvider, Effect } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { existsSync } from "node:fs"
import { temporaryDatabase } from "./support/sqlite.js"

// The contracts run on this store in contracts/sqlite.test.ts; these cases are its own.
describe("SqliteEventStore", () => {
  it.live("uses the table names it is given", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const tables = {
        entities: "es_streams",
        events: "es_events",
        projections: "es_checkpoints",
        snapshots: "es_snapshots",
        migrations: "es_migrations"
      }
      yield* Effect.flatMap(EventStore.EventStore, (store) =>
        store.append({
          streamId: "named",
          streamType: "thing",
          expectedVersion: ExpectedVersion.noStream,
          events: [{ type: "Named", data: {} }]
        })).pipe(Effect.provide(SqliteEventStore.layer({ filename, tables })))
      const database = new Database(filename, { readonly: true })
      const names = database.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all()
      const events = database.prepare(`SELECT entity_id, name FROM es_events`).all()
      database.close()
      expect(names.map((row) => (row as { name: string }).name)).toEqual(
        [...Object.values(tables), "es_checkpoints_dead_letters"].sort()
      )
      expect(events).toEqual([{ entity_id: "named", name: "Named" }])
    }))

  it.live("reads configuration for its file", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const version = yield* Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion("none")).pipe(
        Effect.provide(SqliteEventStore.layerConfig({ filename: Config.string("EVENTS_FILE") })),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["EVENTS_FILE", filename]])))
      )
      expect(version).toBe(0)
      expect(existsSync(filename)).toBe(true)
    }))
})
