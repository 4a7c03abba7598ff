/**
 * `npm start`: runs the shopping-cart scenario on a new cart and prints the stored events and
 * the final state. It runs on a SQLite file by default and on PostgreSQL when `DATABASE_URL` is
 * set (see `backend.ts`); every run adds a new cart to the same store.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Position } from "effect-eventsourcing"
import * as Backend from "./backend.js"
import { scenario } from "./scenario.js"

const program = Effect.gen(function*() {
  const { cartId, commands, state, stored } = yield* scenario({
    cartId: crypto.randomUUID(),
    orderId: crypto.randomUUID()
  })
  yield* Console.log(`Shopping cart ${cartId} on ${yield* Backend.Backend}\n`)
  yield* Console.log("Commands:")
  for (const command of commands) {
    const { _tag, tenantId: _tenant, cartId: _cart, ...fields } = command
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
})

NodeRuntime.runMain(program.pipe(Effect.provide(Backend.layer)))
