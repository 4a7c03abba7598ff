import { it } from "@effect/vitest"
import * as Testing from "effect-eventsourcing/Testing"
import * as Cart from "../../examples/shopping-cart/Cart.js"

const cart = Testing.decider(Cart.decider)
const ids = { tenantId: "acme", cartId: "cart-1" }
const item = { sku: "SKU-1", name: "Item 1", quantity: 2, unitPrice: 25 }

it.effect("refuses to remove more than the cart holds", () =>
  cart
    .given([Cart.CartCreated.make({ ...ids, currency: "USD" }), Cart.ItemAddedToCart.make({ item })])
    .when(Cart.RemoveItemFromCart.make({ ...ids, sku: "SKU-1", quantity: 3 }))
    .thenFails(new Cart.NotEnoughItems({ sku: "SKU-1", requested: 3, available: 2 })))
