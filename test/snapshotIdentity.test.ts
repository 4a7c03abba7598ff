/**
 * Snapshots are a cache: deleting them never changes a result. So a snapshot folded by a
 * program whose events read differently (an upcast that changed meaning, an event type removed)
 * must not be used by this one, even though its state Schema is the same: a load from it and a
 * fold from the first event would give different answers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import {
  CommandHandler,
  Decider,
  Errors,
  EventStore,
  Evolution,
  ExpectedVersion,
  History,
  Snapshot
} from "effect-eventsourcing"

/** A total of amounts; version 1 of `Added` stored a `price`, version 2 an `amount`. */
const deciderWith = (events: Schema.Schema<any, any>) =>
  Decider.make({
    streamType: "till",
    events,
    initialState: 0,
    decide: (amount: number) => [{ _tag: "Added", amount }],
    evolve: (total: number, event: { readonly _tag: string; readonly amount?: number }) =>
      event._tag === "Added" ? total + event.amount! : total
  })

/** `Added` in version 2, reading version 1 through an upcast. */
const addedWith = (upcast: Evolution.Upcast) =>
  Schema.TaggedStruct("Added", { amount: Schema.Number }).annotations(Evolution.declare({ upcasts: [upcast] }))

const V1 = Schema.Struct({ price: Schema.Number })

const snapshots = Snapshot.make({ state: Schema.Number, policy: Snapshot.everyEvents(2) })

/** Old rows, as an earlier release stored them: version 1 of `Added`. */
const storeOldRows = (streamId: string, prices: ReadonlyArray<number>) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamId,
      streamType: "till",
      expectedVersion: ExpectedVersion.noStream,
      events: prices.map((price) => ({ type: "Added", data: { price }, schemaVersion: 1 }))
    }))

describe("Snapshot identity", () => {
  it.effect("covers the upcasts: one that changed meaning retires the snapshots folded through the old one", () =>
    Effect.gen(function*() {
      // A later release reads the old prices as cents: the upcast's code changed.
      const inUnits = deciderWith(addedWith(Evolution.upcast(V1, (v1) => ({ amount: v1.price }))))
      const inCents = deciderWith(addedWith(Evolution.upcast(V1, (v1) => ({ amount: v1.price * 100 }))))
      const streamId = "till-1"
      yield* storeOldRows(streamId, [1, 2, 3])
      // The old release folds in units and leaves a snapshot.
      yield* CommandHandler.make(inUnits, { snapshots }).handle(streamId, 4)
      yield* Snapshot.awaitWrites
      const fromStart = yield* History.stateAt(inCents)(streamId, { version: 4 })
      const loaded = yield* CommandHandler.make(inCents, { snapshots }).load(streamId)
      expect(fromStart.state).toBe(604)
      expect(loaded.state).toBe(fromStart.state)
      expect(Snapshot.identity(inCents, snapshots)).not.toBe(Snapshot.identity(inUnits, snapshots))
      // Code that reads the same but means something else (it calls a function that changed)
      // tells the fingerprint only through the upcast's stated identity.
      const upcastThrough = (toAmount: (price: number) => number, identity: string) =>
        deciderWith(addedWith(Evolution.upcast(V1, (v1) => ({ amount: toAmount(v1.price) }), { identity })))
      expect(Snapshot.identity(upcastThrough((price) => price, "units"), snapshots)).not.toBe(
        Snapshot.identity(upcastThrough((price) => price * 100, "cents"), snapshots)
      )
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("covers the event types: a stream with a type this program no longer knows fails, snapshot or not", () =>
    Effect.gen(function*() {
      const Added = Schema.TaggedStruct("Added", { amount: Schema.Number })
      const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
      const before = deciderWith(Schema.Union(Added, Noted))
      const after = deciderWith(Added)
      const streamId = "till-2"
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamId,
        streamType: "till",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Added", data: { amount: 1 } }, { type: "Noted", data: { text: "hi" } }]
      })
      yield* CommandHandler.make(before, { snapshots }).handle(streamId, 2)
      yield* Snapshot.awaitWrites
      const plain = yield* Effect.flip(CommandHandler.make(after).load(streamId))
      const snapshotted = yield* Effect.flip(CommandHandler.make(after, { snapshots }).load(streamId))
      expect(plain).toBeInstanceOf(Errors.EventDecodeError)
      expect(snapshotted).toEqual(plain)
    }).pipe(Effect.provide(EventStore.layerMemory)))
})
