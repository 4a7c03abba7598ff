/**
 * Checkpoints and dead letters on SQLite, where a position is a number: one writer at a time
 * commits in position order, so no transaction id is kept beside it.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ProjectionStatements } from "../dialect.js"
import type { DeadLetterRow } from "../rows.js"
import { positionOf, toDeadLetter } from "../rows.js"
import { execute, withClient } from "../shared.js"
import type { SqliteObjects } from "./objects.js"

export const projectionStatements = ({ tables }: SqliteObjects): ProjectionStatements => ({
  checkpoint: (projection) =>
    withClient((sql) =>
      execute<{ position: number | null }>(
        sql`SELECT position FROM ${sql.literal(tables.projections)} WHERE source = ${projection}`
      )
    ).pipe(Effect.map((rows) =>
      Option.flatMap(
        Option.fromNullable(rows[0]),
        (row) => row.position === null ? Option.none() : Option.some(positionOf(row.position, null))
      )
    )),

  moveCheckpoint: (projection, from, to) =>
    withClient((sql) => {
      const table = sql.literal(tables.projections)
      return execute(Option.match(from, {
        // No checkpoint yet: no row, or a row without a position (the protocol allows NULL).
        onNone: () =>
          sql`INSERT INTO ${table} AS target (source, position) VALUES (${projection}, ${Number(to.sequence)})
          ON CONFLICT (source) DO UPDATE SET position = excluded.position WHERE target.position IS NULL
          RETURNING source`,
        onSome: (at) =>
          sql`UPDATE ${table} SET position = ${Number(to.sequence)}
          WHERE source = ${projection} AND position = ${Number(at.sequence)} RETURNING source`
      }))
    }).pipe(Effect.map((rows) => rows.length > 0)),

  deadLetter: (projection, event, reason) =>
    withClient((sql) =>
      execute(
        sql`INSERT INTO ${sql.literal(tables.deadLetters)}
          (projection, event_id, stream_id, version, event_type, position, reason)
        VALUES (${projection}, ${event.id}, ${event.streamId}, ${event.version}, ${event.type},
          ${Number(event.position.sequence)}, ${reason})
        ON CONFLICT (projection, event_id) DO NOTHING`
      )
    ).pipe(Effect.asVoid),

  deadLetters: (projection) =>
    withClient((sql) =>
      execute<DeadLetterRow>(
        sql`SELECT projection, event_id, stream_id, version, event_type, position, NULL AS transaction_id, reason,
          failed_at
        FROM ${sql.literal(tables.deadLetters)} WHERE projection = ${projection}
        ORDER BY position, stream_id, version`
      )
    ).pipe(Effect.map((rows) => rows.map(toDeadLetter)))
})
