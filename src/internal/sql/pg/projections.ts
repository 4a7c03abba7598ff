/**
 * Checkpoints and dead letters on PostgreSQL, where a position is a transaction id and a
 * sequence, and the right to run a projection across processes: a session advisory lock.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { ProjectionStatements } from "../dialect.js"
import * as PgLeads from "../pgLeads.js"
import type { DeadLetterRow } from "../rows.js"
import { positionOf, toDeadLetter } from "../rows.js"
import { execute, withClient } from "../shared.js"
import type { PgObjects } from "./objects.js"

/** How often the session that holds the projection locks is checked. */
const leadCheckInterval = Duration.seconds(2)
/** How often a runner waiting for a projection's lock asks again. */
const leadRetryInterval = Duration.millis(500)

export const projectionStatements = ({ tables }: PgObjects): ProjectionStatements => {
  return {
    checkpoint: (projection) =>
      withClient((sql) =>
        execute<{ position: string | null; transaction_id: string }>(
          sql`SELECT position::text AS position, transaction_id::text AS transaction_id
          FROM ${sql.literal(tables.projections)} WHERE source = ${projection}`
        )
      ).pipe(Effect.map((rows) => Option.flatMap(Option.fromNullable(rows[0]), checkpointOf))),

    moveCheckpoint: (projection, from, to) =>
      withClient((sql) => {
        const table = sql.literal(tables.projections)
        const [sequence, transaction] = [String(to.sequence), String(to.transaction)]
        return execute(Option.match(from, {
          // No checkpoint yet: no row, or a row without a position (the protocol allows NULL).
          onNone: () =>
            sql`INSERT INTO ${table} AS target (source, position, transaction_id)
            VALUES (${projection}, ${sequence}, ${transaction}::xid8)
            ON CONFLICT (source) DO UPDATE SET position = excluded.position, transaction_id = excluded.transaction_id
            WHERE target.position IS NULL RETURNING source`,
          onSome: (at) =>
            sql`UPDATE ${table} SET position = ${sequence}, transaction_id = ${transaction}::xid8
            WHERE source = ${projection} AND position = ${String(at.sequence)}
              AND transaction_id = ${String(at.transaction)}::xid8 RETURNING source`
        }))
      }).pipe(Effect.map((rows) => rows.length > 0)),

    deadLetter: (projection, event, reason) =>
      withClient((sql) =>
        execute(
          sql`INSERT INTO ${sql.literal(tables.deadLetters)}
            (projection, event_id, stream_id, version, event_type, position, transaction_id, reason)
          VALUES (${projection}, ${event.id}, ${event.streamId}, ${event.version}, ${event.type},
            ${String(event.position.sequence)}, ${String(event.position.transaction)}::xid8, ${reason})
          ON CONFLICT (projection, event_id) DO NOTHING`
        )
      ).pipe(Effect.asVoid),

    deadLetters: (projection) =>
      withClient((sql) =>
        execute<DeadLetterRow>(
          // Ordered by the columns (`d.`), not by the text they are selected as.
          sql`SELECT d.projection, d.event_id, d.stream_id, d.version, d.event_type, d.position::text AS position,
            d.transaction_id::text AS transaction_id, d.reason, d.failed_at
          FROM ${sql.literal(tables.deadLetters)} d WHERE d.projection = ${projection}
          ORDER BY d.transaction_id, d.position, d.stream_id, d.version`
        )
      ).pipe(Effect.map((rows) => rows.map(toDeadLetter))),

    acrossProcesses: (session) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        PgLeads.make({
          open: session ?? poolSession(sql),
          terminate: (pid) => sql`SELECT pg_terminate_backend(${pid})`,
          lockSpace: `effect-eventsourcing projection ${tables.names.projections}`,
          retry: leadRetryInterval,
          heartbeat: leadCheckInterval
        }))
  }
}

const checkpointOf = (row: { position: string | null; transaction_id: string }) =>
  row.position === null ? Option.none() : Option.some(positionOf(row.position, row.transaction_id))

/** A session on a connection reserved from the store's pool. */
const poolSession = (sql: SqlClient.SqlClient): Effect.Effect<PgLeads.LockSession, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const connection = yield* sql.reserve
    const [row] = yield* connection.executeUnprepared(`SELECT pg_backend_pid() AS pid`, [], undefined)
    return {
      query: (text, values) => connection.executeUnprepared(text, values, undefined),
      pid: Number((row as { pid: number }).pid),
      ended: Effect.never
    }
  })
