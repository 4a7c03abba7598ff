/**
 * The seed's `carts` read model: one row per cart with its currency and, as JSON, its items,
 * total and order id. A projection keeps it up to date from the cart events; on a SQL backend
 * each batch's writes commit with the projection's checkpoint, so every event counts once.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import { Projection } from "effect-eventsourcing"
import * as Cart from "./Cart.js"

/** What the `items_json` column holds. */
export interface CartItems {
  readonly items: ReadonlyArray<Cart.CartItem>
  readonly total: number
  readonly orderId?: string
}

export interface CartRow {
  readonly cart_id: string
  readonly currency: string
  readonly items_json: string
}

/** Creates the read model's table if it is missing: the application's own schema. */
export const setUp = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`CREATE TABLE IF NOT EXISTS carts (
    cart_id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    items_json TEXT NOT NULL
  )`)

/** The items of a cart after one more event. */
const evolve = (current: CartItems, event: Cart.CartEvent): CartItems => {
  const withItems = (items: ReadonlyArray<Cart.CartItem>) => ({ ...current, items, total: Cart.totalOf(items) })
  switch (event._tag) {
    case "CartCreated":
      return { items: [], total: 0 }
    case "ItemAddedToCart": {
      const existing = current.items.some((item) => item.sku === event.item.sku)
      return withItems(
        existing
          ? current.items.map((item) =>
            item.sku === event.item.sku ? { ...item, quantity: item.quantity + event.item.quantity } : item
          )
          : [...current.items, event.item]
      )
    }
    case "ItemRemovedFromCart":
      return withItems(
        current.items
          .map((item) => item.sku === event.sku ? { ...item, quantity: item.quantity - event.quantity } : item)
          .filter((item) => item.quantity > 0)
      )
    case "CartEmptied":
      return withItems([])
    case "CartCheckedOut":
      return { ...current, total: event.total, orderId: event.orderId }
    case "CartCancelled":
      return current
  }
}

export const projection = Projection.make({
  name: "carts",
  events: Cart.CartEvent,
  handle: (event) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const cartId = event.streamId
      if (event.data._tag === "CartCreated") {
        yield* sql`INSERT INTO carts ${
          sql.insert({
            cart_id: cartId,
            currency: event.data.currency,
            items_json: JSON.stringify({ items: [], total: 0 })
          })
        }`
        return
      }
      const [row] = yield* sql<CartRow>`SELECT cart_id, currency, items_json FROM carts WHERE cart_id = ${cartId}`
      if (row === undefined) {
        // Never skip an event silently: the projection stops (or dead-letters) with this reason.
        return yield* Effect.fail(new Error(`no row for cart ${cartId}: it was not created first`))
      }
      const items = evolve(JSON.parse(row.items_json) as CartItems, event.data)
      yield* sql`UPDATE carts SET items_json = ${JSON.stringify(items)} WHERE cart_id = ${cartId}`
    })
})

/** The projection, running for the life of the layer, after its table is set up. */
export const layer = Projection.layer(projection).pipe(Layer.provide(Layer.effectDiscard(setUp)))

/** A cart's row, if the projection has made one. */
export const find = (cartId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<CartRow>`SELECT cart_id, currency, items_json FROM carts WHERE cart_id = ${cartId}`,
      (rows) => rows[0]
    ))
