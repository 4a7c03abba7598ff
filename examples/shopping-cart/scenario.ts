/**
 * The seed's data example as a program: create a cart, add SKU-123 x2 @ 25 and SKU-456 x1 @ 15,
 * remove one SKU-123, check out for 40. It runs on whichever event store it is given.
 */
import { Effect, Stream } from "effect"
import { CommandHandler, EventStore, Metadata } from "effect-eventsourcing"
import * as Cart from "./Cart.js"

export const carts = CommandHandler.make(Cart.decider)

export const scenario = (ids: { readonly cartId: string; readonly orderId: string }) =>
  Effect.gen(function*() {
    const { cartId, orderId } = ids
    const tenantId = "acme"
    const commands: ReadonlyArray<Cart.CartCommand> = [
      Cart.CreateCart.make({ tenantId, cartId, currency: "USD" }),
      Cart.AddItemToCart.make({
        tenantId,
        cartId,
        item: { sku: "SKU-123", name: "Item 123", quantity: 2, unitPrice: 25 }
      }),
      Cart.AddItemToCart.make({
        tenantId,
        cartId,
        item: { sku: "SKU-456", name: "Item 456", quantity: 1, unitPrice: 15 }
      }),
      Cart.RemoveItemFromCart.make({ tenantId, cartId, sku: "SKU-123", quantity: 1 }),
      Cart.CheckOutCart.make({ tenantId, cartId, orderId, total: 40 })
    ]
    let result: CommandHandler.Result<Cart.CartState, Cart.CartEvent> | undefined
    for (const command of commands) {
      result = yield* carts.handle(cartId, command)
    }
    const store = yield* EventStore.EventStore
    const stored = yield* Stream.runCollect(store.readStream(cartId))
    return { cartId, commands, stored: [...stored], state: result!.state, position: result!.position }
  }).pipe(Metadata.withActor("customer:alice"), Metadata.withCorrelationId(`checkout-${ids.cartId}`))
