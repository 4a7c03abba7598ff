/**
 * The shopping cart's business rules, each as given / when / then, and the seed's data example
 * run end to end on the in-memory store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { EventStore, Projection } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import * as Testing from "effect-eventsourcing/Testing"
import * as Cart from "../../examples/shopping-cart/Cart.js"
import * as CartsReadModel from "../../examples/shopping-cart/CartsReadModel.js"
import { scenario } from "../../examples/shopping-cart/scenario.js"

const tenantId = "acme"
const cartId = "cart-1"
const ids = { tenantId, cartId }
const cart = Testing.decider(Cart.decider)

const created = Cart.CartCreated.make({ ...ids, currency: "USD" })
const item = (sku: string, quantity: number, unitPrice: number) => ({ sku, name: `Item ${sku}`, quantity, unitPrice })
const added = (sku: string, quantity: number, unitPrice: number) =>
  Cart.ItemAddedToCart.make({ item: item(sku, quantity, unitPrice) })
const add = (sku: string, quantity: number, unitPrice: number) =>
  Cart.AddItemToCart.make({ ...ids, item: item(sku, quantity, unitPrice) })
const remove = (sku: string, quantity: number) => Cart.RemoveItemFromCart.make({ ...ids, sku, quantity })
const checkOut = (total: number) => Cart.CheckOutCart.make({ ...ids, orderId: "order-1", total })
const checkedOut = Cart.CartCheckedOut.make({ orderId: "order-1", total: 0 })
const cancelled = Cart.CartCancelled.make({ reason: "changed my mind" })

describe("shopping cart", () => {
  describe("creating", () => {
    it.effect("creates a cart", () =>
      cart.given([]).when(Cart.CreateCart.make({ ...ids, currency: "USD" })).thenEvents([created]))

    it.effect("refuses to create a cart twice", () =>
      cart.given([created]).when(Cart.CreateCart.make({ ...ids, currency: "EUR" })).thenFails(
        new Cart.CartAlreadyExists({ cartId })
      ))
  })

  describe("rule: only positive quantities are allowed for items", () => {
    it.effect("adds an item with a positive quantity", () =>
      cart.given([created]).when(add("SKU-1", 2, 25)).thenEvents([added("SKU-1", 2, 25)]))

    for (const quantity of [0, -1]) {
      it.effect(`refuses to add ${quantity} of an item`, () =>
        cart.given([created]).when(add("SKU-1", quantity, 25)).thenFails(
          new Cart.InvalidQuantity({ sku: "SKU-1", quantity })
        ))

      it.effect(`refuses to remove ${quantity} of an item`, () =>
        cart.given([created, added("SKU-1", 2, 25)]).when(remove("SKU-1", quantity)).thenFails(
          new Cart.InvalidQuantity({ sku: "SKU-1", quantity })
        ))
    }
  })

  describe("rule: cannot remove more items than exist in the cart", () => {
    it.effect("removes part of an item", () =>
      cart.given([created, added("SKU-1", 2, 25)]).when(remove("SKU-1", 1)).thenEvents([
        Cart.ItemRemovedFromCart.make({ sku: "SKU-1", quantity: 1 })
      ]))

    it.effect("removes all of an item, which leaves the cart", () =>
      cart.given([created, added("SKU-1", 2, 25), added("SKU-2", 1, 5)]).when(remove("SKU-1", 2)).thenState({
        status: "active",
        ...ids,
        currency: "USD",
        items: [item("SKU-2", 1, 5)]
      }))

    it.effect("refuses to remove more than the cart holds", () =>
      cart.given([created, added("SKU-1", 2, 25)]).when(remove("SKU-1", 3)).thenFails(
        new Cart.NotEnoughItems({ sku: "SKU-1", requested: 3, available: 2 })
      ))

    it.effect("refuses to remove an item the cart does not hold", () =>
      cart.given([created, added("SKU-1", 2, 25), Cart.ItemRemovedFromCart.make({ sku: "SKU-1", quantity: 2 })])
        .when(remove("SKU-1", 1))
        .thenFails(new Cart.NotEnoughItems({ sku: "SKU-1", requested: 1, available: 0 })))
  })

  describe("rule: cannot modify a cart that has been checked out or cancelled", () => {
    const commands = [
      add("SKU-1", 1, 25),
      remove("SKU-1", 1),
      Cart.EmptyCart.make(ids),
      checkOut(0),
      Cart.CancelCart.make({ ...ids, reason: "again" })
    ]
    for (const [closing, status] of [[checkedOut, "checkedOut"], [cancelled, "cancelled"]] as const) {
      for (const command of commands) {
        it.effect(`refuses ${command._tag} on a ${status} cart`, () =>
          cart.given([created, added("SKU-1", 1, 25), closing]).when(command).thenFails(
            new Cart.CartClosed({ cartId, status })
          ))
      }
    }
  })

  describe("rule: total amount cannot be negative during checkout", () => {
    it.effect("checks out at the cart's total", () =>
      cart.given([created, added("SKU-1", 2, 25), added("SKU-2", 1, 15)]).when(checkOut(65)).thenEvents([
        Cart.CartCheckedOut.make({ orderId: "order-1", total: 65 })
      ]))

    it.effect("refuses a negative total given at checkout", () =>
      cart.given([created]).when(checkOut(-5)).thenFails(new Cart.NegativeTotal({ total: -5 })))

    it.effect("refuses to check out a cart whose discounts make its total negative", () =>
      cart.given([created, added("SKU-1", 1, 10), added("DISCOUNT", 1, -30)]).when(checkOut(-20)).thenFails(
        new Cart.NegativeTotal({ total: -20 })
      ))

    it.effect("(addition) refuses a total that is not the cart's", () =>
      cart.given([created, added("SKU-1", 2, 25)]).when(checkOut(40)).thenFails(
        new Cart.TotalMismatch({ cartTotal: 50, requested: 40 })
      ))
  })

  describe("rule: all operations require valid tenantId and cartId", () => {
    const blanks = [{ tenantId: "", cartId }, { tenantId, cartId: "  " }]
    for (const blank of blanks) {
      it.effect(`refuses to create a cart with ${JSON.stringify(blank)}`, () =>
        cart.given([]).when(Cart.CreateCart.make({ ...blank, currency: "USD" })).thenFails(
          new Cart.InvalidCartIdentity(blank)
        ))

      it.effect(`refuses to change a cart with ${JSON.stringify(blank)}`, () =>
        cart.given([created]).when(Cart.EmptyCart.make(blank)).thenFails(new Cart.InvalidCartIdentity(blank)))
    }

    it.effect("refuses a command naming another tenant", () =>
      cart.given([created]).when(Cart.AddItemToCart.make({ tenantId: "other", cartId, item: item("SKU-1", 1, 1) }))
        .thenFails(new Cart.CartNotFound({ tenantId: "other", cartId })))

    it.effect("refuses a command naming another cart", () =>
      cart.given([created]).when(Cart.EmptyCart.make({ tenantId, cartId: "cart-2" })).thenFails(
        new Cart.CartNotFound({ tenantId, cartId: "cart-2" })
      ))

    it.effect("refuses to change a cart that was never created", () =>
      cart.given([]).when(add("SKU-1", 1, 1)).thenFails(new Cart.CartNotFound(ids)))
  })

  describe("(addition) an item already in the cart keeps its unit price", () => {
    it.effect("adds more of an item at the same price, merging the line", () =>
      cart.given([created, added("SKU-1", 1, 25)]).when(add("SKU-1", 2, 25)).thenState({
        status: "active",
        ...ids,
        currency: "USD",
        items: [item("SKU-1", 3, 25)]
      }))

    it.effect("refuses the same item at another price", () =>
      cart.given([created, added("SKU-1", 1, 25)]).when(add("SKU-1", 1, 20)).thenFails(
        new Cart.UnitPriceMismatch({ sku: "SKU-1", unitPrice: 25, requested: 20 })
      ))
  })

  describe("emptying and cancelling", () => {
    it.effect("empties a cart", () =>
      cart.given([created, added("SKU-1", 1, 25)]).when(Cart.EmptyCart.make(ids)).thenEvents([
        Cart.CartEmptied.make({})
      ]))

    it.effect("records nothing when emptying an empty cart", () =>
      cart.given([created]).when(Cart.EmptyCart.make(ids)).thenEvents([]))

    it.effect("cancels a cart, keeping its items", () =>
      cart.given([created, added("SKU-1", 1, 25)]).when(Cart.CancelCart.make({ ...ids, reason: "changed my mind" }))
        .thenState({
          status: "cancelled",
          ...ids,
          currency: "USD",
          items: [item("SKU-1", 1, 25)],
          reason: "changed my mind"
        }))
  })

  it.effect("projects the seed's carts row from the data example", () =>
    Effect.gen(function*() {
      yield* CartsReadModel.setUp
      const runner = yield* Effect.fork(Projection.run(CartsReadModel.projection, { pollInterval: "20 millis" }))
      const cartId = "de9f2d24-2475-49dc-88d7-652028650204"
      const orderId = "38fc43c4-893d-4398-9290-2441490d0545"
      const { position } = yield* scenario({ cartId, orderId })
      yield* Projection.waitFor(CartsReadModel.projection.name, position).pipe(Effect.timeout("20 seconds"))
      yield* Fiber.interrupt(runner)
      const row = yield* CartsReadModel.find(cartId)
      expect(row).toMatchObject({ cart_id: cartId, currency: "USD" })
      expect(JSON.parse(row!.items_json)).toEqual({
        items: [
          { sku: "SKU-123", name: "Item 123", quantity: 1, unitPrice: 25 },
          { sku: "SKU-456", name: "Item 456", quantity: 1, unitPrice: 15 }
        ],
        total: 40,
        orderId
      })
    }).pipe(Effect.provide(SqliteEventStore.layer({ filename: ":memory:" }))))

  it.effect("runs the seed's data example to a checked-out cart with total 40", () =>
    Effect.gen(function*() {
      const { state, stored } = yield* scenario({ cartId: "de9f2d24", orderId: "38fc43c4" })
      expect(stored.map((event) => [event.version, event.type, event.data])).toEqual([
        [1, "CartCreated", { tenantId: "acme", cartId: "de9f2d24", currency: "USD" }],
        [2, "ItemAddedToCart", { item: { sku: "SKU-123", name: "Item 123", quantity: 2, unitPrice: 25 } }],
        [3, "ItemAddedToCart", { item: { sku: "SKU-456", name: "Item 456", quantity: 1, unitPrice: 15 } }],
        [4, "ItemRemovedFromCart", { sku: "SKU-123", quantity: 1 }],
        [5, "CartCheckedOut", { orderId: "38fc43c4", total: 40 }]
      ])
      expect(stored.every((event) => event.actor === "customer:alice" && event.streamType === "cart")).toBe(true)
      expect(state).toEqual({
        status: "checkedOut",
        tenantId: "acme",
        cartId: "de9f2d24",
        currency: "USD",
        items: [
          { sku: "SKU-123", name: "Item 123", quantity: 1, unitPrice: 25 },
          { sku: "SKU-456", name: "Item 456", quantity: 1, unitPrice: 15 }
        ],
        orderId: "38fc43c4",
        total: 40
      })
    }).pipe(Effect.provide(EventStore.layerMemory)))
})
