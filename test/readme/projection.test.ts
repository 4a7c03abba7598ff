import * as SqlClient from "@effect/sql/SqlClient"
import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CommandHandler, Projection } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import * as Cart from "../../examples/shopping-cart/Cart.js"

// A read model: how many carts were created in each currency.
const cartsPerCurrency = Projection.make({
  name: "carts-per-currency",
  events: Cart.CartCreated,
  handle: (event) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        sql`INSERT INTO carts_per_currency (currency, carts) VALUES (${event.data.currency}, 1)
          ON CONFLICT (currency) DO UPDATE SET carts = carts_per_currency.carts + 1`
    )
})

const setUp = Layer.effectDiscard(
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE IF NOT EXISTS carts_per_currency (currency TEXT PRIMARY KEY, carts INT NOT NULL)`
  )
)

// The store, the read model's table, and the projection running for as long as the program.
const AppLive = Projection.layer(cartsPerCurrency).pipe(
  Layer.provide(setUp),
  Layer.provideMerge(SqliteEventStore.layer({ filename: ":memory:" }))
)

const carts = CommandHandler.make(Cart.decider)

it.effect("counts the carts of each currency", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const created = yield* carts.handle(
      "cart-1",
      Cart.CreateCart.make({ tenantId: "acme", cartId: "cart-1", currency: "EUR" })
    )
    // Read-your-writes: wait until the projection has handled this append.
    yield* Projection.waitFor("carts-per-currency", created.position)
    const rows = yield* sql`SELECT currency, carts FROM carts_per_currency`
    expect(rows).toEqual([{ currency: "EUR", carts: 1 }])
  }).pipe(Effect.provide(AppLive)))
