/**
 * The SQLite store's migrations.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import type { Dialect } from "../dialect.js"
import { createDeadLetters, createSnapshots } from "../dialect.js"
import type { SqliteObjects } from "./objects.js"
import { now } from "./objects.js"

export const migrations = ({ tables }: SqliteObjects): Dialect["migrations"] => {
  const { entities, events, projections } = tables
  return {
    "1_protocol_tables": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${entities} (
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        version INT NOT NULL,
        PRIMARY KEY (id)
      )`)
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${events} (
        entity_id TEXT NOT NULL,
        name TEXT NOT NULL,
        details TEXT NOT NULL,
        actor TEXT NOT NULL,
        timestamp DECIMAL(12,7) DEFAULT (JulianDay(CURRENT_TIMESTAMP) - 2440587.5),
        ordinal INT NOT NULL,
        position BIGINT NOT NULL
      )`)
      // Extensions, added to a table another implementation may have created. SQLite cannot add
      // a column whose default is computed, so a trigger gives event ids to rows that come
      // without one (from a plain protocol writer).
      const present = new Set(
        (yield* sql.unsafe<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, [tables.names.events]))
          .map((column) => column.name)
      )
      if (!present.has("event_id")) yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN event_id TEXT`)
      if (!present.has("metadata")) {
        yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'`)
      }
      yield* sql.unsafe(`UPDATE ${events} SET event_id = lower(hex(randomblob(16))) WHERE event_id IS NULL`)
      yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${tables.eventsObject("event_id_default")}
        AFTER INSERT ON ${events} WHEN NEW.event_id IS NULL
        BEGIN UPDATE ${events} SET event_id = lower(hex(randomblob(16))) WHERE rowid = NEW.rowid; END`)
      yield* sql.unsafe(
        `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("stream_version")} ON ${events} (entity_id, ordinal)`
      )
      yield* sql.unsafe(`CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("event_id")} ON ${events} (event_id)`)
      yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS ${tables.eventsObject("position")} ON ${events} (position)`)
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${projections} (source TEXT PRIMARY KEY, position BIGINT)`)
    }),
    "2_dead_letters": createDeadLetters(tables.deadLetters, {
      failedAt: `TEXT NOT NULL DEFAULT (${now})`
    }),
    // Rows written before this migration, or by a writer that does not know the column, were
    // written in the first version of their event type's schema. A table another implementation
    // created may have the column already.
    "3_event_schema_versions": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const present = yield* sql.unsafe<{ name: string }>(
        `SELECT name FROM pragma_table_info(?) WHERE name = 'schema_version'`,
        [tables.names.events]
      )
      if (present.length === 0) {
        yield* sql.unsafe(`ALTER TABLE ${events} ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1`)
      }
    }),
    "4_snapshots": createSnapshots(tables.snapshots, `TEXT NOT NULL DEFAULT (${now})`)
  }
}
