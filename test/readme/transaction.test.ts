import * as SqlClient from "@effect/sql/SqlClient"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { CommandHandler } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import * as Cart from "../../examples/shopping-cart/Cart.js"

const carts = CommandHandler.make(Cart.decider)
const ids = { tenantId: "acme", cartId: "cart-1" }

it.effect("creates a cart and records it in the same transaction", () =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS cart_owners (cart_id TEXT PRIMARY KEY, owner TEXT NOT NULL)`
    // On SQLite, SqliteEventStore.withTransaction; on PostgreSQL, sql.withTransaction.
    yield* SqliteEventStore.withTransaction(Effect.gen(function*() {
      yield* carts.handle(ids.cartId, Cart.CreateCart.make({ ...ids, currency: "USD" }))
      yield* sql`INSERT INTO cart_owners ${sql.insert({ cart_id: ids.cartId, owner: "alice" })}`
    }))
    const owners = yield* sql`SELECT owner FROM cart_owners WHERE cart_id = ${ids.cartId}`
    expect(owners).toEqual([{ owner: "alice" }])
  }).pipe(Effect.provide(SqliteEventStore.layer({ filename: ":memory:" }))))
