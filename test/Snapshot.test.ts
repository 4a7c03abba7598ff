import { describe, expect, it } from "@effect/vitest"
import { Cause, Schema } from "effect"
import { Snapshot } from "effect-eventsourcing"

// The snapshot contract runs on every backend in contracts/; these cases need no store.
describe("Snapshot", () => {
  const State = () => Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ sku: Schema.String })) })

  it("fingerprints Schemas with bigint bounds and examples", () => {
    const bounded = Schema.Struct({ amount: Schema.BigInt.pipe(Schema.betweenBigInt(0n, 10n)) })
    const wider = Schema.Struct({ amount: Schema.BigInt.pipe(Schema.betweenBigInt(0n, 20n)) })
    expect(Snapshot.fingerprint(bounded)).toMatch(/^[0-9a-f]{16}$/)
    expect(Snapshot.fingerprint(bounded)).not.toBe(Snapshot.fingerprint(wider))
    expect(() =>
      Snapshot.make({ state: bounded.annotations({ examples: [{ amount: 1n }] }), policy: Snapshot.everyEvents(5) })
    )
      .not.toThrow()
  })

  it("identifies a state Schema by its structure, the same for equal Schemas built apart", () => {
    expect(Snapshot.fingerprint(State())).toBe(Snapshot.fingerprint(State()))
    expect(Snapshot.fingerprint(State())).toMatch(/^[0-9a-f]{16}$/)
    const changed = [
      Schema.Struct({ total: Schema.Number, items: Schema.Array(Schema.Struct({ sku: Schema.String })) }),
      Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ code: Schema.String })) }),
      Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ sku: Schema.NumberFromString })) }),
      Schema.Struct({
        total: Schema.Int.pipe(Schema.positive()),
        items: Schema.Array(Schema.Struct({ sku: Schema.String }))
      })
    ]
    const fingerprints = new Set([State(), ...changed].map(Snapshot.fingerprint))
    expect(fingerprints.size).toBe(changed.length + 1)
  })

  it("adds the version to the schema identity", () => {
    const policy = Snapshot.everyEvents(10)
    const unversioned = Snapshot.make({ state: State(), policy })
    expect(unversioned.schemaId).toBe(Snapshot.fingerprint(State()))
    expect(Snapshot.make({ state: State(), version: "2", policy }).schemaId).toBe(`${unversioned.schemaId}/2`)
    expect(Snapshot.make({ state: State(), version: "3", policy }).schemaId).not.toBe(`${unversioned.schemaId}/2`)
  })

  it("refuses a policy that is not a positive number of events", () => {
    for (const events of [0, -1, 1.5, Number.NaN]) {
      expect(() => Snapshot.everyEvents(events)).toThrow(Cause.IllegalArgumentException)
      expect(() => Snapshot.whenLoadReads(events)).toThrow(Cause.IllegalArgumentException)
    }
    expect(Snapshot.whenLoadReads(50)).toEqual({ _tag: "WhenLoadReads", events: 50 })
  })
})
