import { expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { CommandHandler, Decider, EventStore, Evolution, ExpectedVersion } from "effect-eventsourcing"

// Release 1 stored "CartItemAdded" { sku, price } with the price in euros. Release 2 renamed it
// "ItemAdded" and stored cents (schema version 2). Release 3, this one, added a quantity.
const ItemAdded = Schema.TaggedStruct("ItemAdded", { sku: Schema.String, priceCents: Schema.Int, quantity: Schema.Int })
  .annotations(Evolution.declare({
    formerNames: ["CartItemAdded"],
    upcasts: [
      // version 1 -> 2
      Evolution.upcast(Schema.Struct({ sku: Schema.String, price: Schema.Number }), (v1) => ({
        sku: v1.sku,
        priceCents: Math.round(v1.price * 100)
      })),
      // version 2 -> 3
      Evolution.upcast(Schema.Struct({ sku: Schema.String, priceCents: Schema.Int }), (v2) => ({ ...v2, quantity: 1 }))
    ]
  }))
const ItemRemoved = Schema.TaggedStruct("ItemRemoved", { sku: Schema.String })

const BasketEvent = Schema.Union(ItemAdded, ItemRemoved)

/** A basket's lines: each sku's total in cents. */
type Lines = ReadonlyMap<string, number>

const basket = Decider.make({
  streamType: "basket",
  events: BasketEvent,
  initialState: new Map() as Lines,
  decide: (command: { readonly sku: string; readonly priceCents: number }, _: Lines) => [
    ItemAdded.make({ ...command, quantity: 1 })
  ],
  evolve: (lines: Lines, event: typeof BasketEvent.Type): Lines => {
    const next = new Map(lines)
    if (event._tag === "ItemAdded") next.set(event.sku, event.priceCents * event.quantity)
    else next.delete(event.sku)
    return next
  }
})

it.effect("reads what older releases stored, and stores the current version", () =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    // What releases 1 and 2 stored (a row with no recorded schema version is version 1).
    yield* store.append({
      streamId: "basket-1",
      streamType: "basket",
      expectedVersion: ExpectedVersion.noStream,
      events: [
        { type: "CartItemAdded", data: { sku: "A", price: 2.5 } },
        { type: "ItemAdded", data: { sku: "B", priceCents: 199 }, schemaVersion: 2 }
      ]
    })
    const baskets = CommandHandler.make(basket)
    const loaded = yield* baskets.load("basket-1")
    expect([...loaded.state]).toEqual([["A", 250], ["B", 199]])

    const result = yield* baskets.handle("basket-1", { sku: "C", priceCents: 100 })
    expect(result.events[0]!.schemaVersion).toBe(3)
  }).pipe(Effect.provide(EventStore.layerMemory)))
