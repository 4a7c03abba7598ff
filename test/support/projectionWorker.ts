/**
 * A projection process for the crash and takeover tests. It runs the projection `name` over the
 * store the arguments name, recording every event it applies, with the name of this runner, in
 * the table `applied` of the same database (in the projection's transaction). It runs until it
 * is killed.
 *
 *   projectionWorker.ts sqlite <file> <projection> <runner> <delay ms>
 *   projectionWorker.ts pg <schema> <projection> <runner> <delay ms>
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, Schema } from "effect"
import { Projection } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { databaseUrl, tablesIn } from "./postgres.js"

const [backend, where, name, runner, delay] = process.argv.slice(2) as [string, string, string, string, string]

const store = backend === "pg"
  ? PgEventStore.layer({ url: databaseUrl, tables: tablesIn(where), applicationName: `worker-${runner}` })
  : SqliteEventStore.layer({ filename: where })
const applied = backend === "pg" ? `${where}.applied` : "applied"

export const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })

const projection = Projection.make({
  name,
  events: Counted,
  handle: (event) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      if (Number(delay) > 0) yield* Effect.sleep(Number(delay))
      yield* sql`INSERT INTO ${sql(applied)} (projection, event_id, stream_id, by_value, runner)
        VALUES (${name}, ${event.id}, ${event.streamId}, ${event.data.by}, ${runner})`
    })
})

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(applied)} (
    projection TEXT NOT NULL, event_id TEXT NOT NULL, stream_id TEXT NOT NULL, by_value INT NOT NULL, runner TEXT NOT NULL)`
  console.log("running")
  return yield* Projection.run(projection, { batchSize: 20, pollInterval: "50 millis" })
})

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(store)))).catch((error) => {
  console.error(error)
  process.exit(1)
})
