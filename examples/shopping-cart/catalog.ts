/**
 * `npm run catalog`: writes the shopping cart's event catalog beside this file, as
 * `catalog.json` (for tools, agents and other implementations of the protocol) and `CATALOG.md`
 * (for people). Both are committed; a test fails when they are out of date with the code, so run
 * this again after changing an event or a projection.
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Either } from "effect"
import { EventCatalog } from "effect-eventsourcing"
import { fileURLToPath } from "node:url"
import * as Cart from "./Cart.js"
import * as CartsReadModel from "./CartsReadModel.js"

/** The generated files by name, with the text they must have. */
export const files = Either.map(
  EventCatalog.make({ deciders: [Cart.decider], projections: [CartsReadModel.projection] }),
  (catalog) => ({
    "catalog.json": EventCatalog.toJson(catalog),
    "CATALOG.md": EventCatalog.toMarkdown(catalog, { title: "Shopping cart: event catalog" })
  })
)

const write = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  for (const [name, text] of Object.entries(yield* files)) {
    const file = path.join(import.meta.dirname, name)
    yield* fs.writeFileString(file, text)
    yield* Console.log(`wrote ${path.relative(process.cwd(), file)}`)
  }
})

// Only when run as the program: the test imports `files` to compare them with the committed ones.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  NodeRuntime.runMain(write.pipe(Effect.provide(NodeContext.layer)))
}
