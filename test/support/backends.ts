/**
 * The SQL backends, for tests that run the same checks on SQLite and PostgreSQL, each with a way
 * to query its tables directly, as another implementation of the protocol would.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import Database from "better-sqlite3"
import type { Layer } from "effect"
import { Effect } from "effect"
import type { EventStore, ProjectionStore, SnapshotStore } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "./postgres.js"
import { temporaryDatabase } from "./sqlite.js"

export interface Backend {
  readonly name: string
  readonly skip: boolean
  /** The store and its SqlClient, on tables of this test file's own. */
  readonly layer: Layer.Layer<
    EventStore.EventStore | ProjectionStore.ProjectionStore | SnapshotStore.SnapshotStore | SqlClient.SqlClient,
    unknown
  >
  /** A table of this test file (a protocol table, or one the test makes) as SQL must name it. */
  readonly table: (name: string) => string
  /** The same table as the library's `tables` option and `sql(...)` take it: unquoted, schema-qualified on PostgreSQL. */
  readonly tableName: (name: string) => string
  /** Runs plain SQL on a connection of its own, outside the library. */
  readonly query: (text: string, values?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<Record<string, unknown>>>
  /** The placeholder of the n-th (1-based) parameter; each placeholder takes a value of its own. */
  readonly placeholder: (n: number) => string
}

export const sqliteBackend = (): Backend => {
  const filename = temporaryDatabase()
  return {
    name: "SQLite",
    skip: false,
    layer: SqliteEventStore.layer({ filename }),
    table: (name) => name,
    tableName: (name) => name,
    query: async (text, values = []) => {
      const database = new Database(filename)
      try {
        const statement = database.prepare(text)
        return statement.reader
          ? statement.all(...values) as Array<Record<string, unknown>>
          : (statement.run(...values), [])
      } finally {
        database.close()
      }
    },
    placeholder: () => "?"
  }
}

export const postgresBackend = (label: string): Backend => {
  const schema = isolatedSchema(label)
  return {
    name: "PostgreSQL",
    skip: skipPostgres,
    layer: isolatedLayer(schema),
    table: (name) => `"${schema}"."${name}"`,
    tableName: (name) => `${schema}.${name}`,
    query: async (text, values = []) => {
      const client = await rawConnection()
      try {
        return (await client.query(text, values as Array<unknown>)).rows
      } finally {
        await client.end()
      }
    },
    placeholder: (n) => `$${n}`
  }
}

export const backends = (label: string): ReadonlyArray<Backend> => [sqliteBackend(), postgresBackend(label)]

/** Runs a statement through the library's `SqlClient` (inside whatever transaction is current). */
export const execute = (text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text, values as ReadonlyArray<never>))
