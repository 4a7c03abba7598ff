/**
 * PostgreSQL's own projection cases: a runner that recovers when the server ends all its
 * connections, and more runners than the pool has connections. (The projection contract runs on
 * PostgreSQL in contracts/postgres.test.ts.)
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema } from "effect"
import { EventStore, ExpectedVersion, Position, Projection } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import { ReadModel, sqlReadModel } from "../contracts/readModel.js"
import { live } from "../support/live.js"
import {
  databaseUrl,
  isolatedLayer,
  isolatedSchema,
  rawConnection,
  skipPostgres,
  tablesIn
} from "../support/postgres.js"

describe.skipIf(skipPostgres)("PostgreSQL projection runner", () => {
  const recoverySchema = isolatedSchema("projection_recovery")
  const applicationName = `es-${recoverySchema}`
  const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })

  layer(
    sqlReadModel(`${recoverySchema}.totals`).pipe(
      Layer.provideMerge(
        Layer.scopedDiscard(Effect.addFinalizer(() =>
          Effect.promise(async () => {
            const client = await rawConnection()
            await client.query(`DROP SCHEMA IF EXISTS "${recoverySchema}" CASCADE`)
            await client.end()
          })
        )).pipe(Layer.provideMerge(
          PgEventStore.layer({
            url: databaseUrl,
            tables: tablesIn(recoverySchema),
            applicationName,
            heartbeat: "200 millis"
          })
        ))
      )
    )
  )((methods) => {
    const it = live(methods)

    it.effect("recovers by itself when the server ends all its connections, missing nothing", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const counted = Projection.make({
          name: "recovering",
          events: Counted,
          handle: (event) => Effect.flatMap(ReadModel, (model) => model.apply("recovering", event))
        })
        const append = (by: number) =>
          store.append({
            streamId: "stream",
            streamType: "counter",
            expectedVersion: ExpectedVersion.any,
            events: [{ type: "Counted", data: { by } }]
          })
        const runner = yield* Effect.fork(Projection.run(counted, { pollInterval: "1 minute" }))
        yield* Projection.waitFor("recovering", (yield* append(1)).position).pipe(Effect.timeout("20 seconds"))

        // As a restart of the server would: every connection of this application ends.
        const ended = yield* Effect.promise(async () => {
          const client = await rawConnection()
          const result = await client.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`,
            [`${applicationName}%`]
          )
          await client.end()
          return result.rowCount
        })
        expect(ended).toBeGreaterThanOrEqual(2)
        const appends = yield* Effect.forEach([2, 3, 4], (by) => Effect.retry(append(by), { times: 5 }))
        yield* Projection.waitFor("recovering", appends.at(-1)!.position).pipe(Effect.timeout("30 seconds"))
        yield* Fiber.interrupt(runner)
        const model = yield* ReadModel
        expect((yield* model.totals("recovering")).get("stream")).toEqual({ total: 10, count: 4 })
      }))
  })
})

describe.skipIf(skipPostgres)("PostgreSQL projections and the pool", () => {
  const poolSchema = isolatedSchema("projection_pool")
  const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })

  layer(isolatedLayer(poolSchema, { maxConnections: 3 }))((methods) => {
    const it = live(methods)

    it.effect("runs more projections than the pool has connections, and appends still go through", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const names = Array.from({ length: 6 }, (_, index) => `pool-${index}`)
        // Two runners of each: the leaders and their standbys all wait without a connection.
        const runners = yield* Effect.forEach(
          [...names, ...names],
          (name) =>
            Effect.fork(Projection.run(Projection.make({ name, events: Counted, handle: () => Effect.void }), {
              pollInterval: "20 millis"
            }))
        )
        const appended = yield* Effect.forEach(
          [1, 2, 3],
          (by) =>
            store.append({
              streamId: "pool",
              streamType: "counter",
              expectedVersion: ExpectedVersion.any,
              events: [{ type: "Counted", data: { by } }]
            }),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("10 seconds"))
        const last = appended.reduce((max, result) => Position.max(max, result.position), Position.start)
        yield* Effect.forEach(names, (name) => Projection.waitFor(name, last)).pipe(Effect.timeout("20 seconds"))
        yield* Effect.forEach(runners, Fiber.interrupt)
      }))
  })
})
