/**
 * A database written by the library reads back with plain SQL per the common protocol: the
 * tables, columns, ordinals, shared positions and days-since-epoch timestamps are what another
 * implementation of the protocol expects.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { EventStore, ExpectedVersion, Metadata } from "effect-eventsourcing"
import { backends } from "../support/backends.js"
import { live } from "../support/live.js"

for (const backend of backends("protocol")) {
  describe.skipIf(backend.skip)(`${backend.name} protocol tables`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)

      it.effect("hold streams, events and positions as the protocol defines them", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const cart = `cart-${crypto.randomUUID()}`
          const order = `order-${crypto.randomUUID()}`
          const before = Date.now()
          const first = yield* store.append({
            streamId: cart,
            streamType: "cart",
            expectedVersion: ExpectedVersion.noStream,
            events: [
              { type: "CartCreated", data: { currency: "USD" } },
              { type: "ItemAddedToCart", data: { item: { sku: "SKU-123", quantity: 2, unitPrice: 25 } } }
            ]
          }).pipe(Metadata.withActor("customer:alice"), Metadata.withCorrelationId("request-1"))
          yield* store.appendMany([
            {
              streamId: cart,
              streamType: "cart",
              expectedVersion: ExpectedVersion.exact(2),
              events: [{ type: "CartCheckedOut", data: { total: 50 } }]
            },
            {
              streamId: order,
              streamType: "order",
              expectedVersion: ExpectedVersion.noStream,
              events: [{ type: "OrderPlaced", data: { cart } }]
            }
          ])
          const after = Date.now()

          const p = backend.placeholder
          const streams = yield* Effect.promise(() =>
            backend.query(
              `SELECT id, type, version FROM ${backend.table("entities")} WHERE id IN (${p(1)}, ${p(2)}) ORDER BY type`,
              [cart, order]
            )
          )
          expect(streams.map((row) => ({ ...row, version: Number(row.version) }))).toEqual([
            { id: cart, type: "cart", version: 3 },
            { id: order, type: "order", version: 1 }
          ])

          const rows = yield* Effect.promise(() =>
            backend.query(
              `SELECT entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata
              FROM ${backend.table("events")} WHERE entity_id IN (${p(1)}, ${
                p(2)
              }) ORDER BY position, entity_id, ordinal`,
              [cart, order]
            )
          )
          expect(
            rows.map((
              row
            ) => [row.entity_id, row.name, JSON.parse(String(row.details)), row.actor, Number(row.ordinal)])
          )
            .toEqual([
              [cart, "CartCreated", { currency: "USD" }, "customer:alice", 1],
              [cart, "ItemAddedToCart", { item: { sku: "SKU-123", quantity: 2, unitPrice: 25 } }, "customer:alice", 2],
              [cart, "CartCheckedOut", { total: 50 }, "system", 3],
              [order, "OrderPlaced", { cart }, "system", 1]
            ])
          // One position per append, shared by its events, growing from one append to the next.
          const positions = rows.map((row) => BigInt(row.position as string | number))
          expect(positions[0]).toBe(positions[1])
          expect(positions[2]).toBe(positions[3])
          expect(positions[2]! > positions[0]!).toBe(true)
          expect(positions[0]).toBe(first.position.sequence)
          // Timestamps are days since the Unix epoch.
          for (const row of rows) {
            const milliseconds = Number(row.timestamp) * 86_400_000
            expect(milliseconds).toBeGreaterThanOrEqual(before - 60_000)
            expect(milliseconds).toBeLessThanOrEqual(after + 60_000)
          }
          expect(Number(rows[0]!.timestamp)).toBeCloseTo(before / 86_400_000, 3)
          // The extensions: event ids and metadata.
          expect(rows[0]!.event_id).toBe(first.events[0]!.id)
          expect(JSON.parse(String(rows[0]!.metadata))).toEqual({ correlationId: "request-1" })
        }))

      it.effect("accept events written by a plain protocol writer, with the extensions defaulted", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `plain-${crypto.randomUUID()}`
          // Another implementation writes the protocol's columns only.
          const max = (yield* Effect.promise(() =>
            backend.query(`SELECT COALESCE(MAX(position), 0) AS max FROM ${backend.table("events")}`)
          ))[0]!.max
          const p = backend.placeholder
          yield* Effect.promise(() =>
            backend.query(`INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'thing', 2)`, [
              streamId
            ])
          )
          yield* Effect.promise(() =>
            backend.query(
              `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, ordinal, position)
              VALUES (${p(1)}, 'Made', '{"n":1}', 'legacy', 1, ${p(2)}), (${p(3)}, 'Made', '{"n":2}', 'legacy', 2, ${
                p(4)
              })`,
              [streamId, Number(max) + 1_000, streamId, Number(max) + 1_000]
            )
          )
          const stored = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId)))
          expect(stored.map((event) => [event.version, event.type, event.data, event.actor, event.metadata])).toEqual([
            [1, "Made", { n: 1 }, "legacy", {}],
            [2, "Made", { n: 2 }, "legacy", {}]
          ])
          expect(stored[0]!.id).not.toBe(stored[1]!.id)
          expect(stored[0]!.id.length).toBeGreaterThan(0)
          // The library goes on appending after it.
          const next = yield* store.append({
            streamId,
            streamType: "thing",
            expectedVersion: ExpectedVersion.exact(2),
            events: [{ type: "Made", data: { n: 3 } }]
          })
          expect(next.version).toBe(3)
        }))

      it.effect("keep a projections table with a source and a position", () =>
        Effect.gen(function*() {
          const p = backend.placeholder
          yield* Effect.promise(() =>
            backend.query(`INSERT INTO ${backend.table("projections")} (source, position) VALUES (${p(1)}, 42)`, [
              "carts-read-model"
            ])
          )
          const rows = yield* Effect.promise(() =>
            backend.query(`SELECT source, position FROM ${backend.table("projections")}`)
          )
          expect(rows.map((row) => [row.source, Number(row.position)])).toEqual([["carts-read-model", 42]])
        }))
    })
  })
}
