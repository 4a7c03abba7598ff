/**
 * Event schema evolution on every backend: events stored in their old shapes and under their
 * old names, as older releases of a program stored them (with plain SQL on the SQL backends,
 * without the schema version column), load, fold and project correctly with the new code, and
 * are never rewritten.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Fiber, Ref, Stream } from "effect"
import {
  CommandHandler,
  Decider,
  Events,
  EventStore,
  ExpectedVersion,
  Position,
  Projection
} from "effect-eventsourcing"
import type { Backend } from "./support/backends.js"
import { postgresBackend, sqliteBackend } from "./support/backends.js"
import { BasketEvent, ItemAdded } from "./support/basket.js"
import { live } from "./support/live.js"

type Basket = ReadonlyMap<string, { readonly priceCents: number; readonly quantity: number }>

const basket = Decider.make({
  streamType: "basket",
  events: BasketEvent,
  initialState: new Map() as Basket,
  decide: (command: { readonly add: string; readonly priceCents: number; readonly quantity: number }, _: Basket) => [
    ItemAdded.make({ sku: command.add, priceCents: command.priceCents, quantity: command.quantity })
  ],
  evolve: (state: Basket, event: BasketEvent): Basket => {
    const next = new Map(state)
    if (event._tag === "ItemAdded") next.set(event.sku, { priceCents: event.priceCents, quantity: event.quantity })
    else next.delete(event.sku)
    return next
  }
})

const total = (state: Basket) => [...state.values()].reduce((sum, item) => sum + item.priceCents * item.quantity, 0)

/** The rows older releases stored: type, data as JSON text, and schema version if it recorded one. */
const oldRows: ReadonlyArray<readonly [string, string, number | undefined]> = [
  ["CartItemAdded", `{"sku":"A","price":2.5}`, undefined],
  ["CartItemAdded", `{"sku":"B","price":10}`, undefined],
  ["ItemAdded", `{"sku":"C","priceCents":199}`, 2],
  ["ItemRemoved", `{"sku":"B"}`, undefined]
]

/** Stores the old rows as the older releases did: plain SQL on the SQL backends. */
const storeOldRows = (backend: Backend | undefined, streamId: string) =>
  Effect.gen(function*() {
    if (backend === undefined) {
      // In memory there is no SQL: the old release appended through the store.
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamId,
        streamType: "basket",
        expectedVersion: ExpectedVersion.noStream,
        events: oldRows.map(([type, data, version]) => ({
          type,
          data: JSON.parse(data),
          ...(version === undefined ? {} : { schemaVersion: version })
        }))
      })
      return
    }
    const p = backend.placeholder
    const max = (yield* Effect.promise(() =>
      backend.query(`SELECT COALESCE(MAX(position), 0) AS max FROM ${backend.table("events")}`)
    ))[0]!.max
    yield* Effect.promise(() =>
      backend.query(
        `INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'basket', ${oldRows.length})`,
        [streamId]
      )
    )
    for (const [index, [type, data, version]] of oldRows.entries()) {
      // Release 1 knew nothing of schema versions; release 2 recorded its own.
      const values = [streamId, type, data, index + 1, Number(max) + 1 + index]
      yield* Effect.promise(() =>
        version === undefined
          ? backend.query(
            `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, ordinal, position)
            VALUES (${p(1)}, ${p(2)}, ${p(3)}, 'release-1', ${p(4)}, ${p(5)})`,
            values
          )
          : backend.query(
            `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, ordinal, position, schema_version)
            VALUES (${p(1)}, ${p(2)}, ${p(3)}, 'release-2', ${p(4)}, ${p(5)}, ${p(6)})`,
            [...values, version]
          )
      )
    }
  })

const cases: ReadonlyArray<{ readonly name: string; readonly skip: boolean; readonly backend: Backend | undefined }> = [
  { name: "memory", skip: false, backend: undefined },
  ...[sqliteBackend(), postgresBackend("evolution")].map((backend) => ({
    name: backend.name,
    skip: backend.skip,
    backend
  }))
]

for (const { backend, name, skip } of cases) {
  describe.skipIf(skip)(`Event schema evolution on ${name}`, () => {
    layer(backend?.layer ?? EventStore.layerMemory)((methods) => {
      const it = live(methods)

      it.effect("loads, folds and projects events stored in old shapes and names, without rewriting them", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamId = `basket-${crypto.randomUUID()}`
          yield* storeOldRows(backend, streamId)
          const stored = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId)))
          expect(stored.map((event) => [event.type, event.schemaVersion])).toEqual([
            ["CartItemAdded", 1],
            ["CartItemAdded", 1],
            ["ItemAdded", 2],
            ["ItemRemoved", 1]
          ])

          // Loading reads every old row as the current event.
          const handler = CommandHandler.make(basket)
          const loaded = yield* handler.load(streamId)
          expect(loaded.version).toBe(4)
          expect([...loaded.state]).toEqual([["A", { priceCents: 250, quantity: 1 }], ["C", {
            priceCents: 199,
            quantity: 1
          }]])
          expect(total(loaded.state)).toBe(449)

          // Folding the decoded events gives the same state.
          const decode = Events.decoder(BasketEvent)
          const decoded = stored.map((event) => {
            const result = decode(event)
            if (result._tag === "Left") throw result.left
            return result.right
          })
          expect(decoded.map((event) => event.type)).toEqual(["ItemAdded", "ItemAdded", "ItemAdded", "ItemRemoved"])
          expect(Decider.fold(basket, decoded.map((event) => event.data))).toEqual(loaded.state)

          // New events go on in the current version.
          const result = yield* handler.handle(streamId, { add: "D", priceCents: 500, quantity: 2 })
          expect(result.version).toBe(5)
          expect(result.events[0]!.schemaVersion).toBe(3)
          expect(total(result.state)).toBe(1449)

          // A projection of the new code reads the old events too, under their current names.
          const seen = yield* Ref.make<ReadonlyArray<readonly [string, number]>>([])
          const projection = Projection.make({
            name: `basket-totals-${crypto.randomUUID()}`,
            events: BasketEvent,
            handle: (event) =>
              event.streamId === streamId
                ? Ref.update(seen, (all) => [
                  ...all,
                  [
                    event.data._tag,
                    event.data._tag === "ItemAdded" ? event.data.priceCents * event.data.quantity : 0
                  ] as const
                ])
                : Effect.void
          })
          const runner = yield* Effect.fork(Projection.run(projection, { pollInterval: "20 millis" }))
          yield* Projection.waitFor(projection.name, result.position)
          yield* Fiber.interrupt(runner)
          expect(yield* Ref.get(seen)).toEqual([
            ["ItemAdded", 250],
            ["ItemAdded", 1000],
            ["ItemAdded", 199],
            ["ItemRemoved", 0],
            ["ItemAdded", 1000]
          ])

          // So does one that consumes only the type that changed.
          const added = yield* Ref.make<ReadonlyArray<string>>([])
          const additions = Projection.make({
            name: `basket-additions-${crypto.randomUUID()}`,
            events: ItemAdded,
            handle: (event) =>
              event.streamId === streamId ? Ref.update(added, (all) => [...all, event.data.sku]) : Effect.void
          })
          const additionsRunner = yield* Effect.fork(Projection.run(additions, { pollInterval: "20 millis" }))
          yield* Projection.waitFor(additions.name, result.position)
          yield* Fiber.interrupt(additionsRunner)
          expect(yield* Ref.get(added)).toEqual(["A", "B", "C", "D"])

          // The stored rows are as the old releases wrote them.
          const after = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId)))
          expect(after.slice(0, 4)).toEqual(stored)
          expect(Position.equals(after[4]!.position, result.position)).toBe(true)
          if (backend !== undefined) {
            const rows = yield* Effect.promise(() =>
              backend.query(
                `SELECT name, details, schema_version FROM ${backend.table("events")} WHERE entity_id = ${
                  backend.placeholder(1)
                } ORDER BY ordinal`,
                [streamId]
              )
            )
            expect(rows.map((row) => [row.name, row.details, Number(row.schema_version)])).toEqual([
              ...oldRows.map(([type, data, version]) => [type, data, version ?? 1]),
              ["ItemAdded", `{"sku":"D","priceCents":500,"quantity":2}`, 3]
            ])
          }
        }))
    })
  })
}
