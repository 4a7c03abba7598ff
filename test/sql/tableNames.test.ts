/**
 * Table names the store cannot use make building its layer fail with an error that names the
 * problem, instead of a layer that builds and fails every append later: a table renamed on a
 * database whose migrations already ran with other names, a name longer than PostgreSQL keeps.
 * Names derived from a long events table stay apart.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import type { Layer } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import type * as SqlEventStore from "effect-eventsourcing/SqlEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"
import { temporaryDatabase } from "../support/sqlite.js"

const appendAndRead = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const streamId = `named-${crypto.randomUUID()}`
  yield* store.append({
    streamId,
    streamType: "thing",
    expectedVersion: ExpectedVersion.noStream,
    events: [{ type: "A", data: {} }]
  })
  yield* store.append({
    streamId,
    streamType: "thing",
    expectedVersion: ExpectedVersion.exact(1),
    events: [{ type: "B", data: {} }]
  })
  const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
  return all.filter((event) => event.streamId === streamId).map((event) => event.type)
})

/** The message a layer failed to build with. */
const buildFailure = <E>(layer: Layer.Layer<EventStore.EventStore, E>) =>
  Effect.map(Effect.exit(Effect.provide(EventStore.EventStore, layer)), (exit) => {
    expect(Exit.isFailure(exit)).toBe(true)
    return Exit.isFailure(exit) ? String(exit.cause) : ""
  })

describe("SQLite table names", () => {
  it.live("a table renamed on a database migrated with the old name fails the layer, naming it", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      yield* Effect.provide(appendAndRead, SqliteEventStore.layer({ filename }))
      for (const tables of [{ entities: "streams" }, { projections: "checkpoints" }, { snapshots: "states" }]) {
        const message = yield* buildFailure(SqliteEventStore.layer({ filename, tables }))
        expect(message).toContain(Object.values(tables)[0])
        expect(message).toContain("cannot be renamed one at a time")
      }
      // The store still works with the names it was created with.
      expect(yield* Effect.provide(appendAndRead, SqliteEventStore.layer({ filename }))).toEqual(["A", "B"])
    }))
})

describe.skipIf(skipPostgres)("PostgreSQL table names", () => {
  const layerOf = (tables: Partial<SqlEventStore.TableNames>) =>
    PgEventStore.layer({ url: databaseUrl, maxConnections: 2, listen: false, tables })
  const dropSchema = (schema: string) =>
    Effect.promise(async () => {
      const client = await rawConnection()
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await client.end()
    })

  it.live("a table renamed on a database migrated with the old name fails the layer, naming it", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("renamed")
      const tables = {
        events: `${schema}.events`,
        entities: `${schema}.entities`,
        projections: `${schema}.projections`
      }
      yield* Effect.provide(appendAndRead, layerOf(tables))
      const message = yield* buildFailure(layerOf({ ...tables, entities: `${schema}.streams` }))
      expect(message).toContain("streams")
      expect(message).toContain("cannot be renamed one at a time")
      const projections = yield* buildFailure(layerOf({ ...tables, projections: `${schema}.checkpoints` }))
      expect(projections).toContain("checkpoints")
      yield* dropSchema(schema)
    }))

  it.live("a 62-character events table works: the names derived from it stay apart", () =>
    Effect.gen(function*() {
      const schema = isolatedSchema("long")
      const long = `events_${"x".repeat(55)}`
      expect(long.length).toBe(62)
      const tables = {
        events: `${schema}.${long}`,
        entities: `${schema}.entities`,
        projections: `${schema}.projections`
      }
      expect(yield* Effect.provide(appendAndRead, layerOf(tables))).toEqual(["A", "B"])
      // A second start finds its migrations done and its tables in place.
      expect(yield* Effect.provide(appendAndRead, layerOf(tables))).toEqual(["A", "B"])
      const objects = yield* Effect.promise(async () => {
        const client = await rawConnection()
        const result = await client.query(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1`,
          [schema]
        )
        await client.end()
        return result.rows.map((row) => row.relname as string)
      })
      // Tables, indexes and the sequence: each its own, none cut to another's name.
      expect(new Set(objects).size).toBe(objects.length)
      expect(objects.every((name) => Buffer.byteLength(name) <= 63)).toBe(true)
      expect(objects.filter((name) => name.startsWith("events_x")).length).toBeGreaterThanOrEqual(6)
      yield* dropSchema(schema)
    }))

  it.live("a name longer than PostgreSQL keeps fails the layer, naming it", () =>
    Effect.gen(function*() {
      const long = `events_${"y".repeat(57)}`
      const message = yield* buildFailure(layerOf({ events: long }))
      expect(message).toContain(long)
      expect(message).toContain("63 bytes")
    }))
})
