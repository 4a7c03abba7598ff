import { expect, it } from "@effect/vitest"
import { Either } from "effect"
import { EventCatalog } from "effect-eventsourcing"
import * as Cart from "../../examples/shopping-cart/Cart.js"
import * as CartsReadModel from "../../examples/shopping-cart/CartsReadModel.js"

it("catalogs the cart's events", () => {
  const catalog = Either.getOrThrow(
    EventCatalog.make({ deciders: [Cart.decider], projections: [CartsReadModel.projection] })
  )
  // One entry per event type: who emits it, who consumes it, and the JSON Schema of its details.
  const created = catalog.events.find((event) => event.type === "CartCreated")
  expect(created).toMatchObject({
    streamTypes: ["cart"],
    projections: ["carts"],
    schema: { type: "object", required: ["tenantId", "cartId", "currency"] }
  })

  // For tools, agents and other implementations of the protocol: stable JSON text.
  expect(JSON.parse(EventCatalog.toJson(catalog))).toEqual(catalog)
  // For people: a Markdown page with an overview and a section per event type.
  expect(EventCatalog.toMarkdown(catalog, { title: "Shopping cart events" })).toContain("### `CartCreated`")
})
