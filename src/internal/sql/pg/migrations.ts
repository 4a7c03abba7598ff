/**
 * The PostgreSQL store's migrations, and the lock they run under.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import type { Dialect } from "../dialect.js"
import { createDeadLetters, createSnapshots } from "../dialect.js"
import { quote, schemaOf } from "../tables.js"
import type { PgObjects } from "./objects.js"
import { now } from "./objects.js"

/** The protocol's tables, and the library's extensions of them. */
const protocolTables = ({ sequenceName, tables }: PgObjects) => {
  const { entities, events, projections } = tables
  return Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(
      [
        `CREATE TABLE IF NOT EXISTS ${entities} (
          id TEXT NOT NULL PRIMARY KEY,
          type TEXT NOT NULL,
          version INT NOT NULL
        )`,
        `CREATE TABLE IF NOT EXISTS ${events} (
          entity_id TEXT NOT NULL,
          name TEXT NOT NULL,
          details TEXT NOT NULL,
          actor TEXT NOT NULL,
          timestamp DECIMAL(12,7) DEFAULT ${now},
          ordinal INT NOT NULL,
          position BIGINT NOT NULL
        )`,
        // Extensions, each with a default so that a plain protocol writer still works.
        `ALTER TABLE ${entities} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT '0'`,
        `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS event_id TEXT NOT NULL DEFAULT gen_random_uuid()::text`,
        `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS metadata TEXT NOT NULL DEFAULT '{}'`,
        `ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT pg_current_xact_id()`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("stream_version")} ON ${events} (entity_id, ordinal)`,
        `CREATE UNIQUE INDEX IF NOT EXISTS ${tables.eventsObject("event_id")} ON ${events} (event_id)`,
        `CREATE INDEX IF NOT EXISTS ${tables.eventsObject("global_order")} ON ${events} (transaction_id, position)`,
        `CREATE SEQUENCE IF NOT EXISTS ${sequenceName}`,
        // A database written by another implementation already has positions: go on after them.
        `SELECT setval('${
          sequenceName.replace(/'/g, "''")
        }', max(position)) FROM ${events} HAVING max(position) IS NOT NULL`,
        `CREATE TABLE IF NOT EXISTS ${projections} (source TEXT PRIMARY KEY, position BIGINT)`,
        `ALTER TABLE ${projections} ADD COLUMN IF NOT EXISTS transaction_id XID8 NOT NULL DEFAULT '0'`,
        // Events stored before this migration were given its transaction id above; checkpoints
        // stored before it (by another implementation) point among them.
        `UPDATE ${projections} SET transaction_id = pg_current_xact_id() WHERE transaction_id = '0'`
      ],
      (statement) => sql.unsafe(statement),
      { discard: true }
    ))
}

// A plain protocol writer numbers its positions MAX(position) + 1, not from the sequence:
// each row it inserts moves the sequence past its position, before it commits, so the
// store never draws a position such a writer already holds. Only nextval moves the
// sequence, so it never goes back (setval racing with the store's own nextval could).
// Rows the store writes are drawn from the sequence and never fire the trigger.
const positionsAhead = ({ advancePositions, positionAhead, sequenceName, tables }: PgObjects) => {
  const { events } = tables
  return Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(
      [
        `CREATE OR REPLACE FUNCTION ${advancePositions}(target BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
        BEGIN
          WHILE COALESCE(pg_sequence_last_value('${sequenceName.replace(/'/g, "''")}'::regclass), 0) < target LOOP
            PERFORM nextval('${sequenceName.replace(/'/g, "''")}'::regclass);
          END LOOP;
        END $$`,
        `CREATE OR REPLACE FUNCTION ${positionAhead}() RETURNS TRIGGER LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM ${advancePositions}(NEW.position);
          RETURN NEW;
        END $$`,
        `DROP TRIGGER IF EXISTS ${tables.eventsObject("position_ahead")} ON ${events}`,
        `CREATE TRIGGER ${tables.eventsObject("position_ahead")} BEFORE INSERT ON ${events} FOR EACH ROW
        WHEN (NEW.position > COALESCE(pg_sequence_last_value('${sequenceName.replace(/'/g, "''")}'::regclass), 0))
        EXECUTE FUNCTION ${positionAhead}()`,
        // Rows written since the first migration set the sequence.
        `SELECT ${advancePositions}(max(position)) FROM ${events} HAVING max(position) IS NOT NULL`
      ],
      (statement) => sql.unsafe(statement),
      { discard: true }
    ))
}

export const migrations = (objects: PgObjects): Dialect["migrations"] => {
  const { tables } = objects
  const { events } = tables
  return {
    "1_protocol_tables": protocolTables(objects),
    "2_dead_letters": createDeadLetters(tables.deadLetters, {
      transactionId: "transaction_id XID8 NOT NULL",
      failedAt: "TIMESTAMPTZ NOT NULL DEFAULT now()"
    }),
    // Rows written before this migration, or by a writer that does not know the column, were
    // written in the first version of their event type's schema. (A constant default adds the
    // column without rewriting the table.)
    "3_event_schema_versions": Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql.unsafe(`ALTER TABLE ${events} ADD COLUMN IF NOT EXISTS schema_version INTEGER NOT NULL DEFAULT 1`)
    ),
    "4_snapshots": createSnapshots(tables.snapshots, "TIMESTAMPTZ NOT NULL DEFAULT now()"),
    "5_positions_ahead_of_plain_writers": positionsAhead(objects)
  }
}

export const withMigrationLock = ({ tables }: PgObjects): Dialect["withMigrationLock"] => (migrate) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(
      Effect.gen(function*() {
        // Concurrent migrators queue here, before anything (even the schema) is created.
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [
          `effect-eventsourcing migrations ${tables.names.migrations}`
        ])
        const schemas = new Set(
          Object.values(tables.names).map(schemaOf).filter((schema) => schema !== undefined)
        )
        for (const schema of schemas) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`)
        // The migrator probes its table with a query that would abort this transaction if
        // the table were missing, so it is created first (with the migrator's own columns).
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${quote(tables.names.migrations)} (
          migration_id integer primary key,
          created_at timestamp with time zone not null default now(),
          name text not null
        )`)
        return yield* migrate
      })
    ))
