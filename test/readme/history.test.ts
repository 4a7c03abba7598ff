import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream, TestClock } from "effect"
import { CommandHandler, EventStore, History, Metadata } from "effect-eventsourcing"
import * as Cart from "../../examples/shopping-cart/Cart.js"

const carts = CommandHandler.make(Cart.decider)
const cartAt = History.stateAt(Cart.decider)
const ids = { tenantId: "acme", cartId: "cart-1" }
const item = { sku: "SKU-1", name: "Item 1", quantity: 1, unitPrice: 40 }

it.effect("shows a cart as it was, and who changed it when", () =>
  Effect.gen(function*() {
    // The memory store stamps events with the Clock, which TestClock controls.
    yield* TestClock.setTime(new Date("2024-03-01T09:00:00Z"))
    yield* carts.handle(ids.cartId, Cart.CreateCart.make({ ...ids, currency: "USD" })).pipe(
      Metadata.withActor("customer:alice"),
      Metadata.withCorrelationId("request-1")
    )
    yield* TestClock.setTime(new Date("2024-03-01T09:05:00Z"))
    yield* carts.handle(ids.cartId, Cart.AddItemToCart.make({ ...ids, item })).pipe(
      Metadata.withActor("support:bob"),
      Metadata.withCorrelationId("request-2")
    )

    const atNine = yield* cartAt(ids.cartId, { time: new Date("2024-03-01T09:01:00Z") })
    expect(atNine.version).toBe(1)
    expect(atNine.state).toMatchObject({ status: "active", items: [] })
    expect(yield* cartAt(ids.cartId, { version: 1 })).toEqual(atNine)

    const trail = yield* Stream.runCollect(History.audit(ids.cartId))
    expect(Chunk.toReadonlyArray(trail).map((entry) => [entry.version, entry.type, entry.actor, entry.correlationId]))
      .toEqual([
        [1, "CartCreated", "customer:alice", "request-1"],
        [2, "ItemAddedToCart", "support:bob", "request-2"]
      ])
    expect(Chunk.unsafeGet(trail, 1).timestamp.toISOString()).toBe("2024-03-01T09:05:00.000Z")
  }).pipe(Effect.provide(EventStore.layerMemory)))
