/**
 * The event store the demo runs on: PostgreSQL when `DATABASE_URL` is set, otherwise a SQLite
 * file (`SHOPPING_CART_DB`, default `.data/shopping-cart.sqlite`).
 */
import { Config, Context, Effect, Layer, Option } from "effect"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"

/** Which database the demo's store is on, in words. */
export class Backend extends Context.Tag("shopping-cart/Backend")<Backend, string>() {}

export const layer = Layer.unwrapEffect(
  Effect.gen(function*() {
    const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))
    if (Option.isSome(databaseUrl)) {
      return Layer.merge(
        PgEventStore.layer({ url: databaseUrl.value }),
        Layer.succeed(Backend, "PostgreSQL (DATABASE_URL)")
      )
    }
    const filename = yield* Config.string("SHOPPING_CART_DB").pipe(Config.withDefault(".data/shopping-cart.sqlite"))
    mkdirSync(dirname(filename), { recursive: true })
    return Layer.merge(SqliteEventStore.layer({ filename }), Layer.succeed(Backend, `the SQLite file ${filename}`))
  })
)
