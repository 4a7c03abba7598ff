/**
 * PostgreSQL for tests: the server named by `DATABASE_URL` (default: the local `test`
 * database), with each test file isolated in a schema of its own that is dropped afterwards.
 *
 * When the server cannot be reached the tests fail and say how to point them at one. Setting
 * `EVENTSOURCING_SKIP_POSTGRES=1` skips them instead, for machines without PostgreSQL; CI never
 * sets it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import type * as SqlEventStore from "effect-eventsourcing/SqlEventStore"
import pg from "pg"

export const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

export const skipPostgres = process.env.EVENTSOURCING_SKIP_POSTGRES === "1"

const unreachable = (cause: unknown) =>
  new Error(
    `PostgreSQL is not reachable at ${databaseUrl} (${cause instanceof Error ? cause.message : String(cause)}).\n` +
      `Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), or set DATABASE_URL ` +
      `to a database where this user can create schemas, or set EVENTSOURCING_SKIP_POSTGRES=1 to skip these tests.`
  )

/** A schema name of its own for one test file (or one part of it). */
export const isolatedSchema = (label: string) =>
  `es_test_${label.replace(/\W/g, "_")}_${crypto.randomUUID().slice(0, 8)}`

export const tablesIn = (schema: string): SqlEventStore.TableNames => ({
  entities: `${schema}.entities`,
  events: `${schema}.events`,
  projections: `${schema}.projections`,
  snapshots: `${schema}.snapshots`,
  migrations: `${schema}.effect_eventsourcing_migrations`
})

/**
 * The PostgreSQL event store in a schema of its own, dropped when the layer is released; the
 * layer also provides the `SqlClient`.
 */
export const isolatedLayer = (
  schema: string,
  options?: { readonly maxConnections?: number; readonly preparedStatements?: boolean }
) =>
  Layer.scopedDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))))
  ).pipe(
    Layer.provideMerge(
      PgEventStore.layer({
        url: databaseUrl,
        tables: tablesIn(schema),
        maxConnections: options?.maxConnections ?? 10,
        preparedStatements: options?.preparedStatements
      })
    ),
    Layer.mapError((error) =>
      error.operation === "connect to PostgreSQL" ? unreachable(error.cause) : error
    )
  )

/** A raw node-postgres connection, for driving interleavings by hand. Close it with `end()`. */
export const rawConnection = async (): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: databaseUrl })
  // A test may have the server end this connection; that is not an error of the test run.
  client.on("error", () => {})
  try {
    await client.connect()
  } catch (cause) {
    throw unreachable(cause)
  }
  return client
}
