/**
 * Snapshots in the store's `snapshots` table: the latest of each stream for each schema
 * identity (a write deletes the older ones of its identity). Reading one is an index probe.
 *
 * Like every statement through the `SqlClient`, one run inside a transaction joins it. Command
 * handlers write their snapshots from a fiber of their own, outside any transaction.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { SnapshotStore, StoredSnapshot } from "../../SnapshotStore.js"
import { runStatement, storeError } from "./shared.js"
import type { TableNames } from "./tables.js"
import { forClient } from "./tables.js"

interface SnapshotRow {
  readonly stream_id: string
  readonly stream_type: string
  readonly version: number
  readonly event_id: string
  readonly schema_id: string
  readonly state: string
  readonly created_at: Date | string
}


export const make = (names: Partial<TableNames> | undefined): Effect.Effect<SnapshotStore, never, SqlClient.SqlClient> =>
  Effect.map(SqlClient.SqlClient, (sql) => {
    const tables = forClient(sql, names)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const now = isPg ? "now()" : "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    const { snapshots } = tables
    const run = <A extends object>(query: string, values: ReadonlyArray<unknown>) => runStatement<A>(sql, query, values)
    /** Collects a statement's values; `param(value)` returns the value's placeholder. */
    const parameters = () => {
      const values: Array<unknown> = []
      const param = (value: unknown) => {
        values.push(value)
        return isPg ? `$${values.length}` : "?"
      }
      return { values, param }
    }

    const store: SnapshotStore = {
      read: (streamId, options) => {
        const { param, values } = parameters()
        const where = [`stream_id = ${param(streamId)}`]
        if (options?.schemaId !== undefined) where.push(`schema_id = ${param(options.schemaId)}`)
        if (options?.maxVersion !== undefined) where.push(`version <= ${param(options.maxVersion)}`)
        return run<SnapshotRow>(
          `SELECT stream_id, stream_type, version, event_id, schema_id, state, created_at FROM ${snapshots}
          WHERE ${where.join(" AND ")} ORDER BY version DESC, created_at DESC LIMIT 1`,
          values
        ).pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toStored)),
          Effect.mapError(storeError("read a snapshot"))
        )
      },

      write: (snapshot) => {
        const { param, values } = parameters()
        const upsert = run(
          `INSERT INTO ${snapshots} (stream_id, stream_type, version, event_id, schema_id, state)
          VALUES (${param(snapshot.streamId)}, ${param(snapshot.streamType)}, ${param(snapshot.version)}, ${
            param(snapshot.eventId)
          }, ${param(snapshot.schemaId)}, ${param(snapshot.state)})
          ON CONFLICT (stream_id, schema_id, version)
          DO UPDATE SET stream_type = excluded.stream_type, event_id = excluded.event_id, state = excluded.state,
            created_at = ${now}`,
          values
        )
        // A writer only deletes what is older than its own: the latest snapshot always stays.
        const older = run(
          `DELETE FROM ${snapshots} WHERE stream_id = ${isPg ? "$1" : "?"} AND schema_id = ${isPg ? "$2" : "?"}
          AND version < ${isPg ? "$3" : "?"}`,
          [snapshot.streamId, snapshot.schemaId, snapshot.version]
        )
        return Effect.zipRight(upsert, older).pipe(Effect.asVoid, Effect.mapError(storeError("write a snapshot")))
      },

      delete: (streamId) =>
        run(`DELETE FROM ${snapshots} WHERE stream_id = ${isPg ? "$1" : "?"}`, [streamId]).pipe(
          Effect.asVoid,
          Effect.mapError(storeError("delete a stream's snapshots"))
        ),

      deleteAll: run(`DELETE FROM ${snapshots}`, []).pipe(
        Effect.asVoid,
        Effect.mapError(storeError("delete all snapshots"))
      )
    }
    return store
  })

const toStored = (row: SnapshotRow): StoredSnapshot => ({
  streamId: row.stream_id,
  streamType: row.stream_type,
  version: Number(row.version),
  eventId: row.event_id,
  schemaId: row.schema_id,
  state: row.state,
  createdAt: new Date(row.created_at)
})
