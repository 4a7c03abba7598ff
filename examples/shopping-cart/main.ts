/**
 * `npm start`: runs the shopping-cart scenario on a new cart and prints the stored events, the
 * final state, and the cart's row in the `carts` read model that a projection keeps. It runs on
 * a SQLite file by default and on PostgreSQL when `DATABASE_URL` is set (see `backend.ts`);
 * every run adds a new cart to the same store.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Position, Projection } from "effect-eventsourcing"
import * as Backend from "./backend.js"
import * as CartsReadModel from "./CartsReadModel.js"
import { scenario } from "./scenario.js"

const program = Effect.gen(function*() {
  const { cartId, commands, position, state, stored } = yield* scenario({
    cartId: crypto.randomUUID(),
    orderId: crypto.randomUUID()
  })
  yield* Console.log(`Shopping cart ${cartId} on ${yield* Backend.Backend}\n`)
  yield* Console.log("Commands:")
  for (const command of commands) {
    const { _tag, cartId: _cart, tenantId: _tenant, ...fields } = command
    yield* Console.log(`  ${_tag.padEnd(20)} ${JSON.stringify(fields)}`)
  }
  yield* Console.log("\nStored events (version, position, type, details, actor):")
  for (const event of stored) {
    yield* Console.log(
      `  ${event.version}  ${Position.toString(event.position).padEnd(6)} ${event.type.padEnd(20)} ${
        JSON.stringify(event.data)
      }  by ${event.actor}`
    )
  }
  yield* Console.log(`\nFinal state:\n${JSON.stringify(state, null, 2)}`)

  // Read-your-writes: wait until the projection has handled the last append, then read its row.
  yield* Projection.waitFor(CartsReadModel.projection.name, position).pipe(Effect.timeout("30 seconds"))
  const row = yield* CartsReadModel.find(cartId)
  yield* Console.log("\nProjected row of the carts read model (cart_id | currency | items_json):")
  yield* Console.log(row === undefined ? "  (none)" : `  ${row.cart_id} | ${row.currency} | ${row.items_json}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(CartsReadModel.layer.pipe(Layer.provideMerge(Backend.layer)))))
