/**
 * The read model of the projection contract: per projection and stream, the sum of the `by` of
 * its `Counted` events and how many were applied. After any run it must equal folding every
 * event exactly once.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer } from "effect"
import type { Events } from "effect-eventsourcing"

/** An event the read model counts: each test has its own tag (see `countedEvents` in projections.ts). */
export type Counted = { readonly _tag: string; readonly by: number }

export interface Totals {
  readonly total: number
  readonly count: number
}

/** Where a test projection writes: a table in the store's database, or memory. */
export class ReadModel extends Context.Tag("test/ReadModel")<ReadModel, {
  readonly apply: (projection: string, event: Events.RecordedEvent<Counted>) => Effect.Effect<void, unknown>
  readonly totals: (projection: string) => Effect.Effect<ReadonlyMap<string, Totals>, unknown>
  readonly clear: (projection: string) => Effect.Effect<void, unknown>
}>() {}

/** A read model in a table of the store's database, written in the projection's transactions. */
export const sqlReadModel = (table: string) =>
  Layer.effect(
    ReadModel,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
        projection TEXT NOT NULL, stream_id TEXT NOT NULL, total INT NOT NULL, count INT NOT NULL,
        PRIMARY KEY (projection, stream_id))`
      const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.provideService(effect, SqlClient.SqlClient, sql)
      return {
        apply: (projection, event) =>
          withSql(Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql`INSERT INTO ${sql(table)} (projection, stream_id, total, count)
            VALUES (${projection}, ${event.streamId}, ${event.data.by}, 1)
            ON CONFLICT (projection, stream_id)
            DO UPDATE SET total = ${sql(table)}.total + excluded.total, count = ${sql(table)}.count + 1`)),
        totals: (projection) =>
          Effect.map(
            sql<{ stream_id: string; total: number; count: number }>`SELECT stream_id, total, count FROM ${sql(table)}
              WHERE projection = ${projection}`,
            (rows) =>
              new Map(rows.map((row) => [row.stream_id, { total: Number(row.total), count: Number(row.count) }]))
          ),
        clear: (projection) => Effect.asVoid(sql`DELETE FROM ${sql(table)} WHERE projection = ${projection}`)
      }
    })
  )

/** A read model in memory, for the in-memory store. */
export const memoryReadModel = Layer.sync(ReadModel, () => {
  const rows = new Map<string, Map<string, Totals>>()
  return {
    apply: (projection, event) =>
      Effect.sync(() => {
        const table = rows.get(projection) ?? new Map<string, Totals>()
        const current = table.get(event.streamId) ?? { total: 0, count: 0 }
        table.set(event.streamId, { total: current.total + event.data.by, count: current.count + 1 })
        rows.set(projection, table)
      }),
    totals: (projection) => Effect.sync(() => new Map(rows.get(projection) ?? [])),
    clear: (projection) => Effect.sync(() => void rows.delete(projection))
  }
})
