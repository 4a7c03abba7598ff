import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { CommandHandler, EventStore } from "effect-eventsourcing"
import * as Cart from "../../examples/shopping-cart/Cart.js"

const carts = CommandHandler.make(Cart.decider)
const ids = { tenantId: "acme", cartId: "cart-1" }
const item = { sku: "SKU-1", name: "Item 1", quantity: 1, unitPrice: 40 }

it.effect("checks out a cart", () =>
  Effect.gen(function*() {
    yield* carts.handle(ids.cartId, Cart.CreateCart.make({ ...ids, currency: "USD" }))
    yield* carts.handle(ids.cartId, Cart.AddItemToCart.make({ ...ids, item }))
    const { state, version } = yield* carts.handle(
      ids.cartId,
      Cart.CheckOutCart.make({ ...ids, orderId: "order-1", total: 40 })
    )
    expect(state.status).toBe("checkedOut")
    expect(version).toBe(3)
  }).pipe(Effect.provide(EventStore.layerMemory)))
