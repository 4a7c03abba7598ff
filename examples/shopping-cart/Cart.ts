/**
 * The shopping cart: its commands, events, states, business rules and decider.
 *
 * Nothing here knows about storage. The rules (from the seed, with two additions marked):
 * - only positive quantities are allowed for items;
 * - a cart cannot lose more of an item than it holds;
 * - a checked-out or cancelled cart cannot be modified;
 * - the total cannot be negative at checkout (items may have negative unit prices: discounts);
 * - every command needs a non-blank tenant id and cart id, and names the cart's own tenant;
 * - (addition) an item already in the cart can only be added again at the same unit price;
 * - (addition) the total given at checkout must be the cart's total, so nobody checks out at a
 *   price they did not see.
 */
import { Data, Effect, Either, Schema } from "effect"
import { Decider } from "effect-eventsourcing"

// Items

export const CartItem = Schema.Struct({
  sku: Schema.String,
  name: Schema.String,
  quantity: Schema.Int,
  unitPrice: Schema.Finite
})
export type CartItem = typeof CartItem.Type

// Commands: what someone asks of a cart. Their fields are plain so that the rules below,
// not the constructors, decide what is acceptable.

export const CreateCart = Schema.TaggedStruct("CreateCart", {
  tenantId: Schema.String,
  cartId: Schema.String,
  currency: Schema.String
})
export const AddItemToCart = Schema.TaggedStruct("AddItemToCart", {
  tenantId: Schema.String,
  cartId: Schema.String,
  item: CartItem
})
export const RemoveItemFromCart = Schema.TaggedStruct("RemoveItemFromCart", {
  tenantId: Schema.String,
  cartId: Schema.String,
  sku: Schema.String,
  quantity: Schema.Int
})
export const EmptyCart = Schema.TaggedStruct("EmptyCart", {
  tenantId: Schema.String,
  cartId: Schema.String
})
export const CheckOutCart = Schema.TaggedStruct("CheckOutCart", {
  tenantId: Schema.String,
  cartId: Schema.String,
  orderId: Schema.String,
  total: Schema.Finite
})
export const CancelCart = Schema.TaggedStruct("CancelCart", {
  tenantId: Schema.String,
  cartId: Schema.String,
  reason: Schema.String
})

export const CartCommand = Schema.Union(
  CreateCart,
  AddItemToCart,
  RemoveItemFromCart,
  EmptyCart,
  CheckOutCart,
  CancelCart
)
export type CartCommand = typeof CartCommand.Type

// Events: what happened. The tag is the stored event name, the other fields its details.

export const CartCreated = Schema.TaggedStruct("CartCreated", {
  tenantId: Schema.String,
  cartId: Schema.String,
  currency: Schema.String
}).annotations({ description: "A customer opened a cart; every price in it is in this currency." })
export const ItemAddedToCart = Schema.TaggedStruct("ItemAddedToCart", { item: CartItem }).annotations({
  description: "An item was put in an open cart, or more of an item already in it (same SKU)."
})
export const ItemRemovedFromCart = Schema.TaggedStruct("ItemRemovedFromCart", {
  sku: Schema.String,
  quantity: Schema.Int
}).annotations({ description: "Some or all of an item's quantity was taken out of an open cart." })
export const CartEmptied = Schema.TaggedStruct("CartEmptied", {}).annotations({
  description: "Every item was taken out of an open cart at once."
})
export const CartCheckedOut = Schema.TaggedStruct("CartCheckedOut", {
  orderId: Schema.String,
  total: Schema.Finite
}).annotations({ description: "The customer ordered the cart's items: the cart is closed, with its total." })
export const CartCancelled = Schema.TaggedStruct("CartCancelled", { reason: Schema.String }).annotations({
  description: "The cart was abandoned; it is closed and can no longer change."
})

export const CartEvent = Schema.Union(
  CartCreated,
  ItemAddedToCart,
  ItemRemovedFromCart,
  CartEmptied,
  CartCheckedOut,
  CartCancelled
)
export type CartEvent = typeof CartEvent.Type

// States

export interface InitCart {
  readonly status: "init"
  readonly items: ReadonlyArray<CartItem>
}
interface OpenedCart {
  readonly tenantId: string
  readonly cartId: string
  readonly currency: string
  readonly items: ReadonlyArray<CartItem>
}
export interface ActiveCart extends OpenedCart {
  readonly status: "active"
}
export interface CheckedOutCart extends OpenedCart {
  readonly status: "checkedOut"
  readonly orderId: string
  readonly total: number
}
export interface CancelledCart extends OpenedCart {
  readonly status: "cancelled"
  readonly reason: string
}
export type CartState = InitCart | ActiveCart | CheckedOutCart | CancelledCart

export const initialState: CartState = { status: "init", items: [] }

export const totalOf = (items: ReadonlyArray<CartItem>): number =>
  items.reduce((total, item) => total + item.quantity * item.unitPrice, 0)

// Errors: the rules a command can break.

export class InvalidCartIdentity extends Data.TaggedError("InvalidCartIdentity")<{
  readonly tenantId: string
  readonly cartId: string
}> {}
export class CartAlreadyExists extends Data.TaggedError("CartAlreadyExists")<{ readonly cartId: string }> {}
export class CartNotFound extends Data.TaggedError("CartNotFound")<{
  readonly tenantId: string
  readonly cartId: string
}> {}
export class CartClosed extends Data.TaggedError("CartClosed")<{
  readonly cartId: string
  readonly status: "checkedOut" | "cancelled"
}> {}
export class InvalidQuantity extends Data.TaggedError("InvalidQuantity")<{
  readonly sku: string
  readonly quantity: number
}> {}
export class NotEnoughItems extends Data.TaggedError("NotEnoughItems")<{
  readonly sku: string
  readonly requested: number
  readonly available: number
}> {}
export class UnitPriceMismatch extends Data.TaggedError("UnitPriceMismatch")<{
  readonly sku: string
  readonly unitPrice: number
  readonly requested: number
}> {}
export class NegativeTotal extends Data.TaggedError("NegativeTotal")<{ readonly total: number }> {}
export class TotalMismatch extends Data.TaggedError("TotalMismatch")<{
  readonly cartTotal: number
  readonly requested: number
}> {}

export type CartError =
  | InvalidCartIdentity
  | CartAlreadyExists
  | CartNotFound
  | CartClosed
  | InvalidQuantity
  | NotEnoughItems
  | UnitPriceMismatch
  | NegativeTotal
  | TotalMismatch

// Deciding

type Rejection = Effect.Effect<never, CartError>

const isBlank = (text: string) => text.trim().length === 0

/** The active cart a command may change, or the rule the command breaks. */
const activeCart = (
  command: Exclude<CartCommand, typeof CreateCart.Type>,
  state: CartState
): Either.Either<ActiveCart, CartError> => {
  if (isBlank(command.tenantId) || isBlank(command.cartId)) {
    return Either.left(new InvalidCartIdentity({ tenantId: command.tenantId, cartId: command.cartId }))
  }
  if (state.status === "init" || state.tenantId !== command.tenantId || state.cartId !== command.cartId) {
    return Either.left(new CartNotFound({ tenantId: command.tenantId, cartId: command.cartId }))
  }
  if (state.status !== "active") return Either.left(new CartClosed({ cartId: state.cartId, status: state.status }))
  return Either.right(state)
}

const create = (command: typeof CreateCart.Type, state: CartState): ReadonlyArray<CartEvent> | Rejection => {
  if (isBlank(command.tenantId) || isBlank(command.cartId)) {
    return Effect.fail(new InvalidCartIdentity({ tenantId: command.tenantId, cartId: command.cartId }))
  }
  if (state.status !== "init") return Effect.fail(new CartAlreadyExists({ cartId: command.cartId }))
  return [CartCreated.make({ tenantId: command.tenantId, cartId: command.cartId, currency: command.currency })]
}

const change = (
  command: Exclude<CartCommand, typeof CreateCart.Type>,
  cart: ActiveCart
): ReadonlyArray<CartEvent> | Rejection => {
  switch (command._tag) {
    case "AddItemToCart": {
      const { item } = command
      if (item.quantity <= 0) return Effect.fail(new InvalidQuantity({ sku: item.sku, quantity: item.quantity }))
      const existing = cart.items.find((line) => line.sku === item.sku)
      if (existing !== undefined && existing.unitPrice !== item.unitPrice) {
        return Effect.fail(
          new UnitPriceMismatch({ sku: item.sku, unitPrice: existing.unitPrice, requested: item.unitPrice })
        )
      }
      return [ItemAddedToCart.make({ item })]
    }
    case "RemoveItemFromCart": {
      if (command.quantity <= 0) {
        return Effect.fail(new InvalidQuantity({ sku: command.sku, quantity: command.quantity }))
      }
      const available = cart.items.find((line) => line.sku === command.sku)?.quantity ?? 0
      if (command.quantity > available) {
        return Effect.fail(new NotEnoughItems({ sku: command.sku, requested: command.quantity, available }))
      }
      return [ItemRemovedFromCart.make({ sku: command.sku, quantity: command.quantity })]
    }
    case "EmptyCart":
      // Emptying an empty cart changes nothing, so it records nothing.
      return cart.items.length === 0 ? [] : [CartEmptied.make({})]
    case "CheckOutCart": {
      const cartTotal = totalOf(cart.items)
      if (command.total < 0 || cartTotal < 0) {
        return Effect.fail(new NegativeTotal({ total: Math.min(command.total, cartTotal) }))
      }
      if (command.total !== cartTotal) {
        return Effect.fail(new TotalMismatch({ cartTotal, requested: command.total }))
      }
      return [CartCheckedOut.make({ orderId: command.orderId, total: cartTotal })]
    }
    case "CancelCart":
      return [CartCancelled.make({ reason: command.reason })]
  }
}

export const decide = (command: CartCommand, state: CartState): ReadonlyArray<CartEvent> | Rejection => {
  if (command._tag === "CreateCart") return create(command, state)
  const cart = activeCart(command, state)
  return Either.isLeft(cart) ? Effect.fail(cart.left) : change(command, cart.right)
}

// Evolving

const withItems = (
  state: CartState,
  items: (items: ReadonlyArray<CartItem>) => ReadonlyArray<CartItem>
): CartState => state.status === "active" ? { ...state, items: items(state.items) } : state

export const evolve = (state: CartState, event: CartEvent): CartState => {
  switch (event._tag) {
    case "CartCreated":
      return { status: "active", tenantId: event.tenantId, cartId: event.cartId, currency: event.currency, items: [] }
    case "ItemAddedToCart":
      return withItems(state, (items) =>
        items.some((line) => line.sku === event.item.sku)
          ? items.map((line) =>
            line.sku === event.item.sku ? { ...line, quantity: line.quantity + event.item.quantity } : line
          )
          : [...items, event.item])
    case "ItemRemovedFromCart":
      return withItems(state, (items) =>
        items
          .map((line) => line.sku === event.sku ? { ...line, quantity: line.quantity - event.quantity } : line)
          .filter((line) => line.quantity > 0))
    case "CartEmptied":
      return withItems(state, () => [])
    case "CartCheckedOut":
      return state.status === "active"
        ? { ...state, status: "checkedOut", orderId: event.orderId, total: event.total }
        : state
    case "CartCancelled":
      return state.status === "active" ? { ...state, status: "cancelled", reason: event.reason } : state
  }
}

export const decider = Decider.make({
  streamType: "cart",
  events: CartEvent,
  initialState,
  decide,
  evolve
})
