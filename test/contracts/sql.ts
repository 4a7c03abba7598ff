/**
 * The SQL backends as the contracts take them: a file or schema of their own per contract, the
 * read model in a table next to the store's, and plain SQL for what the contracts do behind the
 * library's back.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { Backend } from "../support/backends.js"
import type { ContractBackend, ContractStore, WriteDated } from "./backend.js"
import { sqlReadModel } from "./readModel.js"

export const sqlContractBackend = (options: {
  readonly name: string
  readonly skip: boolean
  /** A backend on tables of its own; the label names its PostgreSQL schema. */
  readonly open: (label: string) => Backend
}): ContractBackend<SqlClient.SqlClient> => ({
  name: options.name,
  skip: options.skip,
  transactional: true,
  open: (label) => sqlStore(options.open(label))
})

const sqlStore = (backend: Backend): ContractStore<SqlClient.SqlClient> => ({
  layer: backend.layer,
  readModel: sqlReadModel(backend.tableName("totals")),
  writeDated: insertProtocolRows(backend),
  corruptSnapshots: (streamId, state) =>
    Effect.promise(() =>
      backend.query(
        `UPDATE ${backend.table("snapshots")} SET state = ${backend.placeholder(1)} WHERE stream_id = ${
          backend.placeholder(2)
        }`,
        [state, streamId]
      )
    ),
  deleteStream: (streamId) =>
    Effect.promise(async () => {
      const p = backend.placeholder
      await backend.query(`DELETE FROM ${backend.table("events")} WHERE entity_id = ${p(1)}`, [streamId])
      await backend.query(`DELETE FROM ${backend.table("entities")} WHERE id = ${p(1)}`, [streamId])
    }),
  inTransaction: (effect) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))
})

/**
 * Rows as another implementation of the protocol (or an older release) writes them: its columns
 * only, with the timestamp in days since the Unix epoch.
 */
const insertProtocolRows = (backend: Backend): WriteDated => (streamId, events) =>
  Effect.promise(async () => {
    const p = backend.placeholder
    await backend.query(
      `INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'counter', ${p(2)})`,
      [streamId, events.length]
    )
    for (const [index, event] of events.entries()) {
      await backend.query(
        `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, timestamp, ordinal, position)
        VALUES (${p(1)}, 'Counted', ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)},
          (SELECT COALESCE(MAX(position), 0) + 1 FROM ${backend.table("events")}))`,
        [streamId, JSON.stringify({ by: event.by }), event.actor, event.timestamp.getTime() / 86_400_000, index + 1]
      )
    }
  })
