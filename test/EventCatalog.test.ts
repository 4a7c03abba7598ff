/**
 * The event catalog lists every event type a decider can emit, with the stream types that emit
 * it and the projections that consume it; it refuses what it cannot describe faithfully rather
 * than leave a gap or pick one of two definitions; and its JSON Schemas validate the stored data
 * of real events, read back with plain SQL from SQLite and PostgreSQL as another implementation
 * of the protocol would. The shopping-cart example's published catalog is up to date.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Ajv } from "ajv"
import { Arbitrary, Effect, Either, FastCheck, Schema } from "effect"
import {
  type Decider,
  EventCatalog,
  Events,
  EventStore,
  Evolution,
  ExpectedVersion,
  Projection
} from "effect-eventsourcing"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Cart from "../examples/shopping-cart/Cart.js"
import * as CartsReadModel from "../examples/shopping-cart/CartsReadModel.js"
import { files } from "../examples/shopping-cart/catalog.js"
import { scenario } from "../examples/shopping-cart/scenario.js"
import { backends } from "./support/backends.js"
import { live } from "./support/live.js"

// An account, with what the cart's events do not have: a class with a description, a nested
// class, fields whose stored form is not their type (a Date, a number as a string), unknown
// values, a record, a literal union, an optional field, a title, and a refined member.
class Address extends Schema.Class<Address>("Address")({ street: Schema.String, city: Schema.String }) {}

class AccountOpened extends Schema.TaggedClass<AccountOpened>()("AccountOpened", {
  owner: Schema.String,
  address: Address,
  openedAt: Schema.Date,
  limits: Schema.optional(Schema.Array(Schema.Int))
}, { description: "An account was opened for its owner." }) {}

const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", {
  amount: Schema.NumberFromString,
  currency: Schema.Literal("EUR", "USD"),
  reference: Schema.Unknown,
  remittance: Schema.Unknown,
  tags: Schema.Record({ key: Schema.String, value: Schema.String })
}).annotations({ title: "Deposit", description: "Money was paid into the account." })

const LimitChanged = Schema.TaggedStruct("LimitChanged", { from: Schema.Int, to: Schema.Int }).pipe(
  Schema.filter((event) => event.from !== event.to)
)

const AccountEvent = Schema.Union(AccountOpened, MoneyDeposited, LimitChanged)

// Not a decider with rules: the catalog reads only a decider's stream type and event Schema.
const account = { streamType: "account", events: AccountEvent }

// The event types, from the TypeScript types of the events: `satisfies` fails to compile when
// one is missing or extra, so this list does not come from the Schema's structure.
const cartEventTypes = Object.keys(
  {
    CartCreated: true,
    ItemAddedToCart: true,
    ItemRemovedFromCart: true,
    CartEmptied: true,
    CartCheckedOut: true,
    CartCancelled: true
  } satisfies Record<Cart.CartEvent["_tag"], true>
).sort()
const accountEventTypes = Object.keys(
  { AccountOpened: true, MoneyDeposited: true, LimitChanged: true } satisfies Record<
    typeof AccountEvent.Type["_tag"],
    true
  >
).sort()

type Emitter = Pick<Decider.Any, "streamType" | "events">
const emitters: ReadonlyArray<{ readonly decider: Emitter; readonly types: ReadonlyArray<string> }> = [
  { decider: Cart.decider, types: cartEventTypes },
  { decider: account, types: accountEventTypes }
]

const ignore = () => Effect.void
const ledger = Projection.make({
  name: "ledger",
  events: Schema.Union(MoneyDeposited, Cart.CartCheckedOut),
  handle: ignore
})
const openings = Projection.make({
  name: "openings",
  events: Schema.Union(AccountOpened, Cart.CartCreated),
  handle: ignore
})

const catalog = Either.getOrThrow(EventCatalog.make({
  deciders: [Cart.decider, account],
  projections: [CartsReadModel.projection, ledger, openings]
}))

const entry = (type: string) => catalog.events.find((event) => event.type === type)

const failure = (sources: EventCatalog.Sources) => Either.getOrThrow(Either.flip(EventCatalog.make(sources)))

/** A validator of the stored data of each cataloged type; ajv's default class is draft-07. */
const validators = () => {
  const ajv = new Ajv({ strict: true, allErrors: true })
  return new Map(catalog.events.map((event) => [event.type, ajv.compile(event.schema)]))
}

/** What is wrong with the stored data of an event, as the JSON Schema validator says it. */
const problems = (validate: ReturnType<typeof validators>, type: string, details: unknown): ReadonlyArray<string> => {
  const check = validate.get(type)
  if (check === undefined) return [`the catalog has no event type ${type}`]
  return check(details) ? [] : (check.errors ?? []).map((error) => `${type}${error.instancePath} ${error.message}`)
}

describe("EventCatalog", () => {
  describe("make", () => {
    it("lists every event type each decider can emit, and the stream type that emits it", () => {
      expect(catalog.events.map((event) => event.type)).toEqual([...cartEventTypes, ...accountEventTypes].sort())
      expect(catalog.streamTypes).toEqual([
        { streamType: "account", events: accountEventTypes },
        { streamType: "cart", events: cartEventTypes }
      ])
      for (const { decider, types } of emitters) {
        const generated: ReadonlyArray<{ readonly _tag: string }> = FastCheck.sample(
          Arbitrary.make(decider.events),
          300
        )
        for (const event of generated) {
          expect(entry(event._tag)?.streamTypes, event._tag).toContain(decider.streamType)
        }
        // The samples reach every type, so each of them was checked.
        expect(new Set(generated.map((event) => event._tag))).toEqual(new Set(types))
      }
    })

    it("names the projections that consume each event type", () => {
      expect(entry("CartCreated")).toMatchObject({ streamTypes: ["cart"], projections: ["carts", "openings"] })
      expect(entry("CartCheckedOut")).toMatchObject({ projections: ["carts", "ledger"] })
      expect(entry("MoneyDeposited")).toMatchObject({ streamTypes: ["account"], projections: ["ledger"] })
      expect(entry("LimitChanged")).toMatchObject({ streamTypes: ["account"], projections: [] })
      expect(catalog.projections).toEqual([
        { name: "carts", events: cartEventTypes },
        { name: "ledger", events: ["CartCheckedOut", "MoneyDeposited"] },
        { name: "openings", events: ["AccountOpened", "CartCreated"] }
      ])
    })

    it("describes the stored data, without the _tag, with the title and description of the event", () => {
      expect(entry("CartCreated")?.schema).toEqual({
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        required: ["tenantId", "cartId", "currency"],
        properties: { tenantId: { type: "string" }, cartId: { type: "string" }, currency: { type: "string" } },
        additionalProperties: false,
        description: "A customer opened a cart; every price in it is in this currency."
      })
      // An event without fields stores an empty object, not any value.
      expect(entry("CartEmptied")?.schema).toEqual({
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        additionalProperties: false,
        description: "Every item was taken out of an open cart at once."
      })
      expect(entry("AccountOpened")).toMatchObject({ description: "An account was opened for its owner." })
      expect(entry("MoneyDeposited")).toMatchObject({
        title: "Deposit",
        description: "Money was paid into the account."
      })
      // The encoded side: a Date and a number from a string are stored as strings.
      expect(entry("AccountOpened")?.schema).toMatchObject({ properties: { openedAt: { $ref: "#/$defs/Date" } } })
      expect(entry("AccountOpened")?.schema.$defs?.Date).toMatchObject({ type: "string" })
      expect(entry("MoneyDeposited")?.schema).toMatchObject({
        properties: { amount: { $ref: "#/$defs/NumberFromString" } }
      })
      // An unknown value may be undefined, which JSON leaves out: such a field is not required.
      expect(entry("MoneyDeposited")?.schema).toMatchObject({
        required: ["amount", "currency", "tags"],
        properties: { reference: { title: "unknown" }, remittance: { title: "unknown" } }
      })
    })

    it("gives every schema as valid draft-07 JSON Schema", () => {
      const ajv = new Ajv()
      for (const event of catalog.events) {
        expect(event.schema.$schema).toBe("http://json-schema.org/draft-07/schema#")
        expect(ajv.validateSchema(event.schema), `${event.type}: ${ajv.errorsText()}`).toBe(true)
      }
    })

    it("lists a type emitted by two stream types with one schema once, with both", () => {
      const wishlist = { streamType: "wishlist", events: Schema.Union(Cart.CartCreated, Cart.CartCancelled) }
      const shared = Either.getOrThrow(EventCatalog.make({ deciders: [Cart.decider, wishlist] }))
      expect(shared.events.find((event) => event.type === "CartCancelled")?.streamTypes).toEqual(["cart", "wishlist"])
    })

    it("takes a type's schema from its emitters, which a projection may read less of", () => {
      const currencies = { name: "currencies", events: Schema.TaggedStruct("CartCreated", { currency: Schema.String }) }
      const narrow = Either.getOrThrow(EventCatalog.make({ deciders: [Cart.decider], projections: [currencies] }))
      expect(narrow.events.find((event) => event.type === "CartCreated")?.schema).toEqual(entry("CartCreated")?.schema)
    })

    it("lists a type only consumed, with its consumers' schema and no stream type", () => {
      const LegacyImported = Schema.TaggedStruct("LegacyImported", { source: Schema.String })
      const audit = { name: "audit", events: Schema.Union(Cart.CartCreated, LegacyImported) }
      const consumed = Either.getOrThrow(EventCatalog.make({ deciders: [Cart.decider], projections: [audit] }))
      expect(consumed.events.find((event) => event.type === "LegacyImported")).toEqual({
        type: "LegacyImported",
        streamTypes: [],
        projections: ["audit"],
        schema: {
          $schema: "http://json-schema.org/draft-07/schema#",
          type: "object",
          required: ["source"],
          properties: { source: { type: "string" } },
          additionalProperties: false
        },
        schemaVersion: 1,
        olderVersions: [],
        formerNames: []
      })
    })

    it("describes a type with two stored forms in one Schema as either of them", () => {
      const renamed = {
        streamType: "profile",
        events: Schema.Union(
          Schema.TaggedStruct("Renamed", { name: Schema.String }),
          Schema.TaggedStruct("Renamed", { first: Schema.String, last: Schema.String })
        )
      }
      const forms = Either.getOrThrow(EventCatalog.make({ deciders: [renamed] }))
      const check = new Ajv({ strict: true }).compile(forms.events[0]!.schema)
      expect(
        [{ name: "Ada Lovelace" }, { first: "Ada", last: "Lovelace" }, { first: "Ada" }].map((data) => check(data))
      )
        .toEqual([true, true, false])
      expect(EventCatalog.toMarkdown(forms)).toContain("Stored form 2:")
      const reversed = { streamType: "profile", events: Schema.Union(...[...renamed.events.members].reverse()) }
      expect(EventCatalog.toJson(Either.getOrThrow(EventCatalog.make({ deciders: [reversed] })))).toBe(
        EventCatalog.toJson(forms)
      )
    })

    it("refuses one event type defined with different schemas, naming both definitions", () => {
      const basket = { streamType: "basket", events: Schema.TaggedStruct("CartCreated", { cartId: Schema.String }) }
      const error = failure({ deciders: [Cart.decider, basket] })
      expect(error).toBeInstanceOf(EventCatalog.EventCatalogError)
      expect(error).toMatchObject({ eventType: "CartCreated", sources: ["decider \"cart\"", "decider \"basket\""] })
      expect(error.message).toBe(
        "Cannot catalog event type \"CartCreated\" of decider \"cart\" and decider \"basket\": they define its data " +
          "with different schemas (or schema versions); give one of them another event type, or share one Schema"
      )
      // A description is part of the definition too.
      const described = { streamType: "basket", events: Cart.CartCancelled.annotations({ description: "Given up." }) }
      expect(failure({ deciders: [Cart.decider, described] })).toMatchObject({ eventType: "CartCancelled" })
    })

    it("lists each type's schema version, the schemas of its older versions and its former names", () => {
      const ItemAdded = Schema.TaggedStruct("ItemAdded", { sku: Schema.String, priceCents: Schema.Int })
      const V1 = Schema.Struct({ sku: Schema.String, price: Schema.Number })
      const events = ItemAdded.annotations(Evolution.declare({
        formerNames: ["ProductAdded", "CartItemAdded"],
        upcasts: [Evolution.upcast(V1, (v1) => ({ sku: v1.sku, priceCents: Math.round(v1.price * 100) }))]
      }))
      const evolved = Either.getOrThrow(EventCatalog.make({ deciders: [{ streamType: "basket", events }] }))
      const [added] = evolved.events
      expect(added).toMatchObject({
        type: "ItemAdded",
        schemaVersion: 2,
        formerNames: ["CartItemAdded", "ProductAdded"]
      })
      expect(added!.olderVersions.map((older) => older.version)).toEqual([1])
      // Rows stored in version 1 validate against version 1's schema, and not against the current one.
      const ajv = new Ajv({ strict: true })
      const stored = { sku: "A", price: 2.5 }
      expect(ajv.compile(added!.olderVersions[0]!.schema)(stored)).toBe(true)
      expect(ajv.compile(added!.schema)(stored)).toBe(false)
      const page = EventCatalog.toMarkdown(evolved)
      expect(page).toContain("Stored in schema version 2.")
      expect(page).toContain("Formerly stored as: `CartItemAdded`, `ProductAdded`.")
      expect(page).toContain("Schema version 1 stored:")
      // Contradictory histories are refused, not catalogued.
      const claims = Schema.TaggedStruct("ItemRemoved", {}).annotations(
        Evolution.declare({ formerNames: ["CartItemAdded"] })
      )
      expect(failure({ deciders: [{ streamType: "basket", events: Schema.Union(events, claims) }] }).reason)
        .toContain(`former name of both`)
      // Another decider with the same current schema but another history is another definition.
      const plain = { streamType: "cart", events: ItemAdded }
      expect(failure({ deciders: [{ streamType: "basket", events }, plain] })).toMatchObject({ eventType: "ItemAdded" })
    })

    it("refuses a decider or projection whose event Schema is not a union of tagged schemas", () => {
      const untagged = { streamType: "ledger", events: Schema.Struct({ amount: Schema.Number }) }
      expect(failure({ deciders: [untagged] })).toMatchObject({ sources: ["decider \"ledger\""] })
      expect(failure({ deciders: [untagged] }).message).toBe(
        "Cannot catalog decider \"ledger\": its event Schema is not a union of tagged schemas " +
          "(Schema.TaggedStruct, Schema.TaggedClass), so its event types cannot be read from it"
      )
      const partly = {
        streamType: "mixed",
        events: Schema.Union(Cart.CartCreated, Schema.Struct({ note: Schema.String }))
      }
      expect(failure({ deciders: [partly] })).toMatchObject({ sources: ["decider \"mixed\""] })
      const suspended = { name: "lazy", events: Schema.suspend(() => Cart.CartEvent) }
      expect(failure({ deciders: [Cart.decider], projections: [suspended] })).toMatchObject({
        sources: ["projection \"lazy\""]
      })
    })

    it("refuses an event whose data has no JSON Schema", () => {
      const stamped = { streamType: "clock", events: Schema.TaggedStruct("Stamped", { at: Schema.DateFromSelf }) }
      const error = failure({ deciders: [stamped] })
      expect(error).toMatchObject({ eventType: "Stamped", sources: ["decider \"clock\""] })
      expect(error.message).toContain("its data has no JSON Schema")
    })
  })

  describe("toJson", () => {
    it("is the catalog as stable JSON text, whatever the order of the sources", () => {
      const json = EventCatalog.toJson(catalog)
      expect(json.endsWith("}\n")).toBe(true)
      expect(JSON.parse(json)).toEqual(catalog)
      const reordered = Either.getOrThrow(EventCatalog.make({
        deciders: [
          { streamType: "account", events: Schema.Union(LimitChanged, MoneyDeposited, AccountOpened) },
          Cart.decider
        ],
        projections: [openings, ledger, CartsReadModel.projection]
      }))
      expect(EventCatalog.toJson(reordered)).toBe(json)
    })
  })

  describe("toMarkdown", () => {
    const page = EventCatalog.toMarkdown(catalog, { title: "Bank and shop events" })

    it("has an overview and a section per event type, with its fields and JSON Schema", () => {
      expect(page.startsWith("# Bank and shop events\n")).toBe(true)
      for (const event of catalog.events) {
        const anchor = event.type.toLowerCase()
        expect(page).toContain(`| [\`${event.type}\`](#${anchor}) |`)
        expect(page).toContain(`\n### \`${event.type}\`\n`)
        expect(page).toContain(`\`\`\`json\n${JSON.stringify(event.schema, null, 2)}\n\`\`\``)
      }
      expect(page).toContain("| `openings` | [`AccountOpened`](#accountopened), [`CartCreated`](#cartcreated) |")
      expect(page).toContain("| `address` | Address | yes |  |")
      expect(page).toContain("| `limits` | array of Int | no |  |")
      expect(page).toContain("| `currency` | \"EUR\" \\| \"USD\" | yes |  |")
      expect(page).toContain("**Deposit**\n\nMoney was paid into the account.\n")
      expect(page.endsWith("```\n")).toBe(true)
    })
  })

  it("is published by the shopping-cart example, up to date with the code", () => {
    const directory = join(import.meta.dirname, "..", "examples", "shopping-cart")
    for (const [name, text] of Object.entries(Either.getOrThrow(files))) {
      expect(readFileSync(join(directory, name), "utf8"), `${name} is out of date: run npm run catalog`).toBe(text)
    }
  })
})

// Stored events, read back as another implementation of the protocol reads them.
const generated = (decider: Emitter) => {
  const encode = Events.encoder(decider.events, decider.streamType)
  // Only what can be stored: an unknown value may be one JSON cannot hold, and is refused.
  return FastCheck.sample(Arbitrary.make(decider.events), { numRuns: 150, seed: 6 })
    .map(encode)
    .filter(Either.isRight)
    .map((encoded) => encoded.right)
}

for (const backend of backends("catalog")) {
  describe.skipIf(backend.skip)(`${backend.name}: the catalog's JSON Schemas and stored events`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)
      const p = backend.placeholder
      const storedDetails = (streamIds: ReadonlyArray<string>) =>
        Effect.promise(() =>
          backend.query(
            `SELECT entity_id, name, details FROM ${backend.table("events")}
             WHERE entity_id IN (${streamIds.map((_, index) => p(index + 1)).join(", ")}) ORDER BY position, ordinal`,
            streamIds
          )
        ).pipe(
          Effect.map((rows) =>
            rows.map((row) => ({ type: String(row.name), details: JSON.parse(String(row.details)) }))
          )
        )

      it.effect("validate the data of generated events and of the shopping-cart scenario", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const appended: Array<string> = []
          for (const { decider } of emitters) {
            const streamId = `${decider.streamType}-${crypto.randomUUID()}`
            const events = generated(decider)
            expect(events.length).toBeGreaterThan(100)
            yield* store.append({
              streamId,
              streamType: decider.streamType,
              expectedVersion: ExpectedVersion.noStream,
              events
            })
            appended.push(streamId)
          }
          const { cartId } = yield* scenario({ cartId: `cart-${crypto.randomUUID()}`, orderId: crypto.randomUUID() })
          appended.push(cartId)

          const rows = yield* storedDetails(appended)
          expect(rows.length).toBeGreaterThan(200)
          expect(new Set(rows.map((row) => row.type))).toEqual(new Set(catalog.events.map((event) => event.type)))
          const validate = validators()
          expect(rows.flatMap((row) => problems(validate, row.type, row.details))).toEqual([])
          expect(rows.slice(-5).map((row) => row.type)).toEqual([
            "CartCreated",
            "ItemAddedToCart",
            "ItemAddedToCart",
            "ItemRemovedFromCart",
            "CartCheckedOut"
          ])
        }))

      it.effect("reject the data of an event another writer stored wrongly", () =>
        Effect.gen(function*() {
          const streamId = `cart-${crypto.randomUUID()}`
          const events = backend.table("events")
          yield* Effect.promise(() =>
            backend.query(`INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'cart', 1)`, [
              streamId
            ])
          )
          yield* Effect.promise(() =>
            backend.query(
              `INSERT INTO ${events} (entity_id, name, details, actor, ordinal, position)
               VALUES (${p(1)}, 'ItemAddedToCart', ${
                p(2)
              }, 'legacy-writer', 1, (SELECT COALESCE(MAX(position), 0) + 1 FROM ${events}))`,
              [
                streamId,
                JSON.stringify({ item: { sku: "SKU-1", name: "Item 1", quantity: 1.5, unitPrice: "25" }, note: "" })
              ]
            )
          )
          const rows = yield* storedDetails([streamId])
          expect(rows.map((row) => problems(validators(), row.type, row.details))).toEqual([[
            "ItemAddedToCart must NOT have additional properties",
            "ItemAddedToCart/item/quantity must be integer",
            "ItemAddedToCart/item/unitPrice must be number"
          ]])
        }))
    })
  })
}
