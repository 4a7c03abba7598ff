import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Errors, Events, Evolution, Position } from "effect-eventsourcing"
import { BasketEvent, ItemAdded, ItemRemoved } from "./support/basket.js"

const Opened = Schema.TaggedStruct("Opened", { at: Schema.Date })
class Closed extends Schema.TaggedClass<Closed>()("Closed", { reason: Schema.String }) {}
const Event = Schema.Union(Opened, Closed)

const recorded = (type: string, data: unknown): Events.RecordedEvent => ({
  id: "id-1",
  streamId: "door-1",
  streamType: "door",
  version: 3,
  position: Position.make({ sequence: 9n }),
  type,
  data,
  actor: "system",
  timestamp: new Date(0),
  metadata: {},
  schemaVersion: 1
})

describe("Events", () => {
  it("lists the event types of a union of tagged structs and classes", () => {
    expect(Events.eventTypes(Event)).toEqual(new Set(["Opened", "Closed"]))
    expect(Events.eventTypes(Opened)).toEqual(new Set(["Opened"]))
    expect(Events.eventTypes(Schema.Unknown)).toBeUndefined()
  })

  it("encodes an event to its type and the rest of its encoded form", () => {
    const encode = Events.encoder(Event, "door")
    expect(encode(Opened.make({ at: new Date("2024-01-02T03:04:05.000Z") }))).toEqual(
      Either.right({ type: "Opened", data: { at: "2024-01-02T03:04:05.000Z" } })
    )
    expect(encode(new Closed({ reason: "wind" }))).toEqual(Either.right({ type: "Closed", data: { reason: "wind" } }))
    const invalid = encode({ _tag: "Opened", at: "not a date" } as never)
    expect(Either.isLeft(invalid) && invalid.left).toBeInstanceOf(Errors.EventEncodeError)
  })

  it("decodes stored data back to the typed event, keeping the envelope", () => {
    const decode = Events.decoder(Event)
    const opened = decode(recorded("Opened", { at: "2024-01-02T03:04:05.000Z" }))
    expect(opened).toEqual(
      Either.right({ ...recorded("Opened", null), data: { _tag: "Opened", at: new Date("2024-01-02T03:04:05.000Z") } })
    )
    const closed = decode(recorded("Closed", { reason: "wind" }))
    expect(Either.isRight(closed) && closed.right.data).toBeInstanceOf(Closed)
  })

  it("decodes an event stored with null data as one without fields", () => {
    const Emptied = Schema.TaggedStruct("Emptied", {})
    expect(Events.decoder(Emptied)(recorded("Emptied", null))).toEqual(
      Either.right({ ...recorded("Emptied", null), data: { _tag: "Emptied" } })
    )
  })

  it("fails with EventDecodeError naming the stream, version and type", () => {
    const decode = Events.decoder(Event)
    const failures = [
      recorded("Opened", { at: 12 }),
      recorded("Opened", "2024-01-02"),
      recorded("Opened", [1]),
      recorded("Slammed", {})
    ].map((event) => Either.flip(decode(event)))
    for (const failure of failures) {
      const error = Either.getOrThrow(failure)
      expect(error).toBeInstanceOf(Errors.EventDecodeError)
      expect(error).toMatchObject({ streamId: "door-1", version: 3 })
      expect(error.message).toContain(`version 3 of stream "door-1"`)
    }
    expect(Either.getOrThrow(failures[3]!).reason).toContain(`not one of "Opened", "Closed"`)
  })
})

describe("Evolution.declare", () => {
  const decode = Events.decoder(BasketEvent)
  const stored = (type: string, data: unknown, schemaVersion: number) => ({ ...recorded(type, data), schemaVersion })

  it("stores new events in the current version of their type", () => {
    const encode = Events.encoder(BasketEvent, "cart")
    expect(encode(ItemAdded.make({ sku: "A", priceCents: 250, quantity: 2 }))).toEqual(
      Either.right({ type: "ItemAdded", data: { sku: "A", priceCents: 250, quantity: 2 }, schemaVersion: 3 })
    )
    // A type that never changed keeps the default version, 1.
    expect(encode(ItemRemoved.make({ sku: "A" }))).toEqual(Either.right({ type: "ItemRemoved", data: { sku: "A" } }))
    expect(Evolution.schemaVersion(BasketEvent, "ItemAdded")).toBe(3)
    expect(Evolution.schemaVersion(BasketEvent, "ItemRemoved")).toBe(1)
  })

  it("reads every older version, and former names, as the current event", () => {
    const current = ItemAdded.make({ sku: "A", priceCents: 250, quantity: 1 })
    const rows = [
      stored("ItemAdded", { sku: "A", price: 2.5 }, 1),
      stored("ItemAdded", { sku: "A", priceCents: 250 }, 2),
      stored("ItemAdded", { sku: "A", priceCents: 250, quantity: 1 }, 3),
      stored("CartItemAdded", { sku: "A", price: 2.5 }, 1)
    ]
    for (const row of rows) {
      const event = Either.getOrThrow(decode(row))
      expect(event.data).toEqual(current)
      expect(event.type).toBe("ItemAdded")
      expect(event.schemaVersion).toBe(row.schemaVersion)
    }
  })

  it("keeps the declaration in every Schema built from the event's: a projection's, a union of unions", () => {
    const built: ReadonlyArray<Schema.Schema<any, any>> = [
      ItemAdded,
      Schema.Union(ItemAdded),
      Schema.Union(BasketEvent, Opened),
      BasketEvent.annotations({ title: "Cart" })
    ]
    for (const schema of built) {
      expect(Evolution.schemaVersion(schema, "ItemAdded")).toBe(3)
      expect(Events.storedTypes(schema)?.has("CartItemAdded")).toBe(true)
      expect(Either.getOrThrow(Events.decoder(schema)(stored("CartItemAdded", { sku: "A", price: 2.5 }, 1))).data)
        .toEqual(ItemAdded.make({ sku: "A", priceCents: 250, quantity: 1 }))
    }
    // A Schema.TaggedClass takes it as its annotations.
    class Renamed extends Schema.TaggedClass<Renamed>()(
      "Renamed",
      { to: Schema.String },
      Evolution.declare({ formerNames: ["Retitled"] })
    ) {}
    expect(Either.getOrThrow(Events.decoder(Renamed)(stored("Retitled", { to: "b" }, 1))).data).toEqual(
      new Renamed({ to: "b" })
    )
  })

  it("names the version it could not read, and refuses versions from a newer program", () => {
    const broken = Either.getOrThrow(Either.flip(decode(stored("ItemAdded", { sku: "A", price: "cheap" }, 1))))
    expect(broken).toBeInstanceOf(Errors.EventDecodeError)
    expect(broken.reason).toContain("reading version 1 as version 2")
    const newer = Either.getOrThrow(Either.flip(decode(stored("ItemAdded", { sku: "A" }, 4))))
    expect(newer.reason).toContain("stored in version 4")
    expect(newer.reason).toContain("knows versions up to 3")
    const notOurs = Either.getOrThrow(Either.flip(decode(stored("CartCheckedOut", {}, 1))))
    expect(notOurs.reason).toContain(`not one of "ItemAdded", "ItemRemoved", "CartItemAdded"`)
  })

  it("fails a row with a broken schema version, or an upcast that throws, with EventDecodeError", () => {
    for (const version of [0, -1, 1.5, Number.NaN]) {
      const refused = Either.getOrThrow(Either.flip(decode(stored("ItemRemoved", { sku: "A" }, version))))
      expect(refused.reason).toContain("is not a positive integer")
    }
    const Counted = Schema.TaggedStruct("Counted", { n: Schema.Int }).annotations(Evolution.declare({
      upcasts: [
        Evolution.upcast(
          Schema.Struct({ items: Schema.NullOr(Schema.Array(Schema.String)) }),
          (v1) => ({ n: v1.items!.length })
        )
      ]
    }))
    const threw = Either.getOrThrow(Either.flip(Events.decoder(Counted)(stored("Counted", { items: null }, 1))))
    expect(threw).toBeInstanceOf(Errors.EventDecodeError)
    expect(threw.reason).toContain("the upcast threw")
  })

  it("refuses declarations that contradict each other", () => {
    const Old = Schema.TaggedStruct("Old", {})
    const claimsOld = Schema.TaggedStruct("New", {}).annotations(Evolution.declare({ formerNames: ["Old"] }))
    expect(() => Events.decoder(Schema.Union(claimsOld, Old))).toThrow(
      /"Old", a former name of "New", is still an event type/
    )
    const alsoClaims = Schema.TaggedStruct("Newer", {}).annotations(Evolution.declare({ formerNames: ["Old"] }))
    expect(() => Events.decoder(Schema.Union(claimsOld, alsoClaims))).toThrow(/former name of both "New" and "Newer"/)
    expect(() => Events.decoder(Schema.Union(claimsOld, ItemRemoved).annotations(Evolution.declare({}))))
      .toThrow(/not on a union/)
    expect(() => Evolution.declare({ formerNames: ["A", "A"] })).toThrow(/given twice/)
  })

  it("never writes an older version", () => {
    const step = Evolution.upcast(Schema.Struct({ price: Schema.Number }), (v1) => ({ priceCents: v1.price * 100 }))
    expect(Either.isLeft(Schema.encodeEither(step)({ priceCents: 100 }))).toBe(true)
  })
})

describe("Position", () => {
  it("orders by transaction, then sequence", () => {
    const positions = [
      Position.make({ sequence: 5n, transaction: 2n }),
      Position.make({ sequence: 9n, transaction: 1n }),
      Position.make({ sequence: 1n, transaction: 2n }),
      Position.start
    ]
    expect([...positions].sort(Position.Order)).toEqual([
      Position.start,
      Position.make({ sequence: 9n, transaction: 1n }),
      Position.make({ sequence: 1n, transaction: 2n }),
      Position.make({ sequence: 5n, transaction: 2n })
    ])
    expect(Position.isAfter(Position.make({ sequence: 1n }), Position.start)).toBe(true)
    expect(Position.isAfter(Position.make({ sequence: 1n }), Position.make({ sequence: 1n }))).toBe(false)
    expect(Position.max(Position.make({ sequence: 3n }), Position.make({ sequence: 2n, transaction: 1n }))).toEqual(
      Position.make({ sequence: 2n, transaction: 1n })
    )
  })

  it("round-trips through its text form", () => {
    const position = Position.make({ sequence: 18_446_744_073_709_551_615n, transaction: 42n })
    expect(Position.toString(position)).toBe("42:18446744073709551615")
    expect(Position.fromString(Position.toString(position))).toEqual(Either.right(position))
    expect(Schema.encodeSync(Position.FromString)(Position.make({ sequence: 7n }))).toBe("0:7")
    for (const text of ["", "7", "a:1", "1:-2", "1:2:3"]) {
      expect(Either.isLeft(Position.fromString(text))).toBe(true)
    }
  })

  it("explains a decode failure with the event type's own schema, not the whole union", () => {
    const Described = Schema.Union(
      Schema.TaggedStruct("Opened", { at: Schema.Date }).annotations({ description: "a door was opened" }),
      Schema.TaggedStruct("Locked", { by: Schema.String }).annotations({ description: "a door was locked" }),
      Closed
    )
    const error = Either.getOrThrow(Either.flip(Events.decoder(Described)(recorded("Locked", { by: 7 }))))
    expect(error.eventType).toBe("Locked")
    expect(error.reason).toContain(`["by"]`)
    expect(error.reason).toContain("Expected string, actual 7")
    expect(error.reason).not.toContain("opened")
    expect(error.reason).not.toContain("Closed")
    const classError = Either.getOrThrow(Either.flip(Events.decoder(Described)(recorded("Closed", {}))))
    expect(classError.reason).toContain(`["reason"]`)
    expect(classError.reason).not.toContain("locked")
  })
})
