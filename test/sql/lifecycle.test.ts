/**
 * The life of a SQL store: the schema is the library's to create and upgrade (migrations run
 * when a store starts, twice is a no-op, several processes starting at once take turns, tables an
 * older protocol writer created are upgraded with their rows kept), and a database that cannot be
 * reached or goes away mid-append gives a typed error and loses nothing.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Chunk, Deferred, Effect, Fiber, Stream } from "effect"
import { Errors, EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres, tablesIn } from "../support/postgres.js"
import { temporaryDatabase } from "../support/sqlite.js"

const root = join(import.meta.dirname, "..", "..")

/** The migrations a store runs on a fresh database, in order, as the migrator records them. */
const allMigrations = [
  { migration_id: 1, name: "protocol_tables" },
  { migration_id: 2, name: "dead_letters" },
  { migration_id: 3, name: "event_schema_versions" },
  { migration_id: 4, name: "snapshots" }
]
/** PostgreSQL also keeps its position sequence ahead of plain protocol writers. */
const pgMigrations = [...allMigrations, { migration_id: 5, name: "positions_ahead_of_plain_writers" }]

/** The tables of two stores prefixed "a" and "b", each with its own migration records. */
const twoStoresTables = ["a", "b"].flatMap((prefix) =>
  ["entities", "events", "events_migrations", "events_snapshots", "projections", "projections_dead_letters"].map((
    table
  ) => `${prefix}_${table}`)
)

const append = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion, type = "Made") =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => store.append({ streamId, streamType: "thing", expectedVersion, events: [{ type, data: {} }] })
  )

const readAll = Effect.flatMap(
  EventStore.EventStore,
  (store) => Effect.map(Stream.runCollect(store.readAll()), Chunk.toReadonlyArray)
)

/** The seed's DDL (000_*), as an older implementation of the protocol would have run it. */
const seedTables = [
  `CREATE TABLE IF NOT EXISTS Entities (id TEXT NOT NULL, type TEXT NOT NULL, version INT NOT NULL, PRIMARY KEY (id))`,
  `CREATE TABLE IF NOT EXISTS Events (
    entity_id TEXT NOT NULL, name TEXT NOT NULL, details TEXT NOT NULL, actor TEXT NOT NULL,
    timestamp DECIMAL(12,7) DEFAULT (JulianDay(CURRENT_TIMESTAMP) - 2440587.5),
    ordinal INT NOT NULL, position BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS Projections (source TEXT PRIMARY KEY, position BIGINT)`
]

describe("SQLite migrations", () => {
  it.live("run once, and a second start finds nothing to do", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      for (let start = 0; start < 2; start++) {
        yield* Effect.provide(Effect.void, SqliteEventStore.layer({ filename }))
      }
      const database = new Database(filename, { readonly: true })
      const migrations = database.prepare(`SELECT migration_id, name FROM effect_eventsourcing_migrations`).all()
      database.close()
      expect(migrations).toEqual(allMigrations)
    }))

  it.live("upgrade tables written by an older protocol writer, keeping their rows", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const database = new Database(filename)
      for (const statement of seedTables) database.exec(statement)
      database.exec(`INSERT INTO Entities VALUES ('old-cart', 'cart', 2)`)
      database.exec(`INSERT INTO Events (entity_id, name, details, actor, ordinal, position) VALUES
        ('old-cart', 'CartCreated', '{"currency":"USD"}', 'legacy', 1, 7),
        ('old-cart', 'CartEmptied', '{}', 'legacy', 2, 9)`)
      database.close()

      const [events, appended] = yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const appended = yield* store.append({
          streamId: "old-cart",
          streamType: "cart",
          expectedVersion: ExpectedVersion.exact(2),
          events: [{ type: "CartCancelled", data: { reason: "old" } }]
        })
        return [yield* readAll, appended] as const
      }).pipe(Effect.provide(SqliteEventStore.layer({ filename })))

      expect(events.map((event) => [event.type, event.version, Number(event.position.sequence), event.actor])).toEqual([
        ["CartCreated", 1, 7, "legacy"],
        ["CartEmptied", 2, 9, "legacy"],
        ["CartCancelled", 3, 10, "system"]
      ])
      expect(new Set(events.map((event) => event.id)).size).toBe(3)
      expect(appended.position.sequence).toBe(10n)
    }))

  it.live("upgrade an events table that already has a schema_version column", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const database = new Database(filename)
      for (const statement of seedTables) database.exec(statement)
      // Another implementation already records versions in a column of the same name.
      database.exec(`ALTER TABLE Events ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1`)
      database.exec(`INSERT INTO Entities VALUES ('versioned', 'thing', 1)`)
      database.exec(`INSERT INTO Events (entity_id, name, details, actor, ordinal, position, schema_version)
        VALUES ('versioned', 'Made', '{}', 'other', 1, 1, 2)`)
      database.close()
      const events = yield* readAll.pipe(Effect.provide(SqliteEventStore.layer({ filename })))
      expect(events.map((event) => [event.type, event.schemaVersion])).toEqual([["Made", 2]])
    }))

  it("let processes sharing one file start and append at once", async () => {
    const filename = temporaryDatabase()
    const processes = 3
    const appends = 40
    const outputs = await Promise.all(
      Array.from({ length: processes }, (_, index) =>
        promisify(execFile)(
          join(root, "node_modules", ".bin", "tsx"),
          [
            "--conditions=effect-eventsourcing-source",
            join(root, "test", "support", "sqliteWriter.ts"),
            filename,
            `p${index}`,
            String(appends)
          ],
          { cwd: root }
        ))
    )
    const reports = outputs.map(({ stdout }) =>
      JSON.parse(stdout) as { acknowledged: Array<string>; conflicts: number }
    )
    const acknowledged = reports.flatMap((report) => report.acknowledged)
    expect(acknowledged).toHaveLength(processes * appends * 2)

    const events = await Effect.runPromise(readAll.pipe(Effect.provide(SqliteEventStore.layer({ filename }))))
    expect(events.map((event) => event.id).sort()).toEqual([...acknowledged].sort())
    const hot = events.filter((event) => event.streamId === "hot")
    expect(hot.map((event) => event.version)).toEqual(hot.map((_, index) => index + 1))
    const positions = events.map((event) => event.position.sequence)
    expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
    const database = new Database(filename, { readonly: true })
    expect(database.prepare(`SELECT count(*) AS count FROM effect_eventsourcing_migrations`).get()).toEqual({
      count: allMigrations.length
    })
    database.close()
  }, 120_000)
})

describe.skipIf(skipPostgres)("PostgreSQL migrations", () => {
  const layerIn = (schema: string) =>
    PgEventStore.layer({ url: databaseUrl, tables: tablesIn(schema), maxConnections: 2 })
  const dropSchema = (schema: string) =>
    Effect.promise(async () => {
      const client = await rawConnection()
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await client.end()
    })

  it.live("let several processes start at once on an empty database, migrating it once", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("concurrent_migrations")
      // Each store has its own pool: as many connections migrating at once as processes would.
      const versions = yield* Effect.all(
        Array.from({ length: 6 }, (_, index) =>
          Effect.flatMap(EventStore.EventStore, (store) =>
            store.append({
              streamId: `process-${index}`,
              streamType: "thing",
              expectedVersion: ExpectedVersion.noStream,
              events: [{ type: "Started", data: {} }]
            })).pipe(Effect.provide(layerIn(schema)))),
        { concurrency: "unbounded" }
      )
      expect(versions.map((result) => result.version)).toEqual([1, 1, 1, 1, 1, 1])
      const rows = yield* Effect.promise(async () => {
        const client = await rawConnection()
        const result = await client.query(`SELECT migration_id, name FROM "${schema}".effect_eventsourcing_migrations`)
        await client.end()
        return result.rows
      })
      expect(rows).toEqual(pgMigrations)
      yield* dropSchema(schema)
    }))

  it.live("upgrade tables written by an older protocol writer, keeping their rows and positions", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("upgrade")
      yield* Effect.promise(async () => {
        const client = await rawConnection()
        await client.query(`CREATE SCHEMA "${schema}"`)
        await client.query(`SET search_path TO "${schema}"`)
        for (const statement of seedTables) {
          await client.query(
            statement.replace("(JulianDay(CURRENT_TIMESTAMP) - 2440587.5)", "(EXTRACT(EPOCH FROM now()) / 86400)")
          )
        }
        await client.query(`INSERT INTO entities VALUES ('old-cart', 'cart', 2)`)
        await client.query(`INSERT INTO events (entity_id, name, details, actor, ordinal, position) VALUES
          ('old-cart', 'CartCreated', '{"currency":"USD"}', 'legacy', 1, 7),
          ('old-cart', 'CartEmptied', '{}', 'legacy', 2, 9)`)
        await client.query(`INSERT INTO projections (source, position) VALUES ('old-read-model', 7)`)
        await client.end()
      })
      const events = yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.append({
          streamId: "old-cart",
          streamType: "cart",
          expectedVersion: ExpectedVersion.exact(2),
          events: [{ type: "CartCancelled", data: { reason: "old" } }]
        })
        return yield* readAll
      }).pipe(Effect.provide(layerIn(schema)))
      expect(events.map((event) => [event.type, event.version, event.actor])).toEqual([
        ["CartCreated", 1, "legacy"],
        ["CartEmptied", 2, "legacy"],
        ["CartCancelled", 3, "system"]
      ])
      // The new append's position comes after the positions the old writer used.
      expect(events[2]!.position.sequence).toBe(10n)
      // An old checkpoint still points between the old events: after the first, before the second.
      const [checkpoint] = yield* Effect.promise(async () => {
        const client = await rawConnection()
        const result = await client.query(
          `SELECT transaction_id::text AS transaction, position::text AS sequence FROM "${schema}".projections`
        )
        await client.end()
        return result.rows as Array<{ transaction: string; sequence: string }>
      })
      expect(checkpoint!.transaction).toBe(String(events[0]!.position.transaction))
      expect(checkpoint!.sequence).toBe("7")
      yield* dropSchema(schema)
    }))

  it.live("keep two stores in one schema apart when their tables are named apart", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("two_stores")
      const layerFor = (prefix: string) =>
        PgEventStore.layer({
          url: databaseUrl,
          tables: {
            entities: `${schema}.${prefix}_entities`,
            events: `${schema}.${prefix}_events`,
            projections: `${schema}.${prefix}_projections`
          }
        })
      for (const prefix of ["a", "b"]) {
        yield* append("same-id", ExpectedVersion.noStream).pipe(Effect.provide(layerFor(prefix)))
      }
      const tables = yield* Effect.promise(async () => {
        const client = await rawConnection()
        const result = await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema])
        await client.end()
        return result.rows.map((row) => row.tablename)
      })
      expect(tables).toEqual(twoStoresTables)
      yield* dropSchema(schema)
    }))

  it.live("refuse a migrations table name PostgreSQL would fold to lower case", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(Effect.void, PgEventStore.layer({ url: databaseUrl, tables: { migrations: "Mixed_Case" } }))
      )
      expect(error.message).toContain("must be lower case")
    }))

  it.live("fail with a typed error that names the server when it cannot be reached", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(Effect.void, PgEventStore.layer({ url: "postgres://postgres@127.0.0.1:1/test" }))
      )
      expect(error._tag).toBe("EventStoreError")
      expect(error.message).toContain("connect to PostgreSQL")
    }))

  it.live("fail an append whose connection dies with a typed error, storing none of it, then recover", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("terminated")
      const applicationName = `effect-eventsourcing-${schema}`
      const outcome = yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const request = (streamId: string, expectedVersion: number) => ({
          streamId,
          streamType: "thing",
          expectedVersion: ExpectedVersion.exact(expectedVersion),
          events: [{ type: "Lived", data: {} }]
        })
        yield* store.appendMany([request("a", 0), request("b", 0)])
        // A raw session holds stream b's row, so the next append to a and b stops half-way...
        const blocker = yield* Effect.promise(() => rawConnection())
        yield* Effect.promise(() => blocker.query("BEGIN"))
        yield* Effect.promise(() => blocker.query(`UPDATE "${schema}".entities SET version = version WHERE id = 'b'`))
        const append = yield* Effect.fork(Effect.either(store.appendMany([request("a", 1), request("b", 1)])))
        // ...and the server ends its connection while it waits.
        yield* Effect.promise(async () => {
          for (let attempt = 0; attempt < 100; attempt++) {
            const ended = await blocker.query(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = $1 AND wait_event_type = 'Lock'`,
              [applicationName]
            )
            if (ended.rowCount! > 0) return
            await new Promise((resolve) => setTimeout(resolve, 10))
          }
          throw new Error("the append never waited for the lock")
        })
        const failed = yield* Fiber.join(append)
        yield* Effect.promise(() => blocker.query("ROLLBACK").then(() => blocker.end()))
        const versions = [yield* store.streamVersion("a"), yield* store.streamVersion("b")]
        const recovered = yield* store.appendMany([request("a", 1), request("b", 1)])
        return { failed, versions, recovered, events: (yield* readAll).length }
      }).pipe(Effect.provide(PgEventStore.layer({ url: databaseUrl, tables: tablesIn(schema), applicationName })))

      expect(outcome.failed._tag).toBe("Left")
      if (outcome.failed._tag === "Left") {
        expect(outcome.failed.left).toBeInstanceOf(Errors.EventStoreError)
        expect(outcome.failed.left.message).toContain("append events")
      }
      // Nothing of the failed append was stored: a was not moved without b.
      expect(outcome.versions).toEqual([1, 1])
      expect(outcome.recovered.map((result) => result.version)).toEqual([2, 2])
      expect(outcome.events).toBe(4)
      yield* dropSchema(schema)
    }))
})

describe("SQLite stores sharing a file", () => {
  it.live("keep apart when their tables are named apart, each with its own migration records", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const appendTo = (prefix: string) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          store.append({
            streamId: "same-id",
            streamType: prefix,
            expectedVersion: ExpectedVersion.noStream,
            events: [{ type: "Made", data: { by: prefix } }]
          })).pipe(
            Effect.provide(SqliteEventStore.layer({
              filename,
              tables: {
                entities: `${prefix}_entities`,
                events: `${prefix}_events`,
                projections: `${prefix}_projections`
              }
            }))
          )
      yield* appendTo("a")
      yield* appendTo("b")
      const database = new Database(filename, { readonly: true })
      const tables = database.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all()
      database.close()
      expect(tables.map((row) => (row as { name: string }).name)).toEqual(twoStoresTables)
    }))
})

describe("SQLite failures", () => {
  it.live("report a constraint of the application's own as EventStoreError, not as a conflict", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const database = new Database(filename)
      database.close()
      const error = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`CREATE TRIGGER no_secrets BEFORE INSERT ON events WHEN NEW.name = 'Secret'
          BEGIN SELECT RAISE(ABORT, 'secrets are not stored'); END`)
        return yield* Effect.flip(append("secret", ExpectedVersion.noStream, "Secret"))
      }).pipe(Effect.provide(SqliteEventStore.layer({ filename })))
      expect(error).toBeInstanceOf(Errors.EventStoreError)
      expect(error.message).toContain("secrets are not stored")
    }))

  it.live("let an append waiting for the connection be interrupted", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const elapsed = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const release = yield* Deferred.make<void>()
        // Another fiber holds the connection in a transaction...
        const holder = yield* Effect.fork(sql.withTransaction(Deferred.await(release)))
        yield* Effect.sleep("20 millis")
        // ...so an append waits for it, and a timeout ends the wait at once.
        const start = Date.now()
        const outcome = yield* Effect.timeoutOption(append("waiting", ExpectedVersion.noStream), "100 millis")
        const waited = Date.now() - start
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        expect(outcome._tag).toBe("None")
        return waited
      }).pipe(Effect.provide(SqliteEventStore.layer({ filename })))
      expect(elapsed).toBeLessThan(1_000)
    }))

  it.live("fail with a typed error that names the file when it cannot be opened", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(Effect.void, SqliteEventStore.layer({ filename: "/nonexistent/directory/events.sqlite" }))
      )
      expect(error._tag).toBe("EventStoreError")
      expect(error.message).toContain("/nonexistent/directory/events.sqlite")
    }))
})
