/**
 * An event type whose stored form changed twice, for the tests of event schema evolution.
 * Release 1 stored "CartItemAdded" with a price in euros as `price`. Release 2 renamed it
 * "ItemAdded" and stored cents as `priceCents` (schema version 2). Release 3, the current one,
 * also stores a quantity (version 3).
 */
import { Schema } from "effect"
import { Evolution } from "effect-eventsourcing"

export const ItemAdded = Schema.TaggedStruct("ItemAdded", {
  sku: Schema.String,
  priceCents: Schema.Int,
  quantity: Schema.Int
})
  .annotations(Evolution.declare({
    formerNames: ["CartItemAdded"],
    upcasts: [
      Evolution.upcast(Schema.Struct({ sku: Schema.String, price: Schema.Number }), (v1) => ({
        sku: v1.sku,
        priceCents: Math.round(v1.price * 100)
      })),
      Evolution.upcast(Schema.Struct({ sku: Schema.String, priceCents: Schema.Int }), (v2) => ({ ...v2, quantity: 1 }))
    ]
  }))

/** A type that never changed. */
export const ItemRemoved = Schema.TaggedStruct("ItemRemoved", { sku: Schema.String })

export const BasketEvent = Schema.Union(ItemAdded, ItemRemoved)
export type BasketEvent = typeof BasketEvent.Type
