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
import type { Dialect } from "./dialect.js"
import { execute, storeError, withSqlClient } from "./shared.js"

interface SnapshotRow {
  readonly stream_id: string
  readonly stream_type: string
  readonly version: number
  readonly event_id: string
  readonly schema_id: string
  readonly state: string
  readonly created_at: Date | string
}

export const make = (dialect: Dialect): Effect.Effect<SnapshotStore, never, SqlClient.SqlClient> =>
  Effect.map(SqlClient.SqlClient, (sql) => {
    const snapshots = sql.literal(dialect.tables.snapshots)
    const now = sql.literal(dialect.currentTimestamp)
    const withSql = withSqlClient(sql)

    const store: SnapshotStore = {
      read: (streamId, options) =>
        execute<SnapshotRow>(
          sql`SELECT stream_id, stream_type, version, event_id, schema_id, state, created_at FROM ${snapshots}
          WHERE ${
            sql.and([
              sql`stream_id = ${streamId}`,
              ...(options?.schemaId === undefined ? [] : [sql`schema_id = ${options.schemaId}`]),
              ...(options?.maxVersion === undefined ? [] : [sql`version <= ${options.maxVersion}`])
            ])
          } ORDER BY version DESC, created_at DESC LIMIT 1`
        ).pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toStored)),
          Effect.mapError(storeError("read a snapshot")),
          withSql
        ),

      write: (snapshot) => {
        const upsert = execute(
          sql`INSERT INTO ${snapshots} (stream_id, stream_type, version, event_id, schema_id, state)
          VALUES (${snapshot.streamId}, ${snapshot.streamType}, ${snapshot.version}, ${snapshot.eventId},
            ${snapshot.schemaId}, ${snapshot.state})
          ON CONFLICT (stream_id, schema_id, version)
          DO UPDATE SET stream_type = excluded.stream_type, event_id = excluded.event_id, state = excluded.state,
            created_at = ${now}`
        )
        // A writer only deletes what is older than its own: the latest snapshot always stays.
        const older = execute(
          sql`DELETE FROM ${snapshots}
          WHERE stream_id = ${snapshot.streamId} AND schema_id = ${snapshot.schemaId} AND version < ${snapshot.version}`
        )
        return Effect.zipRight(upsert, older).pipe(
          Effect.asVoid,
          Effect.mapError(storeError("write a snapshot")),
          withSql
        )
      },

      delete: (streamId) =>
        execute(sql`DELETE FROM ${snapshots} WHERE stream_id = ${streamId}`).pipe(
          Effect.asVoid,
          Effect.mapError(storeError("delete a stream's snapshots")),
          withSql
        ),

      deleteAll: execute(sql`DELETE FROM ${snapshots}`).pipe(
        Effect.asVoid,
        Effect.mapError(storeError("delete all snapshots")),
        withSql
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
