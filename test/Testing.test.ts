import { describe, expect, it } from "@effect/vitest"
import { Cause, Data, Effect, Exit, Option, Schema } from "effect"
import { Decider, Evolution } from "effect-eventsourcing"
import * as Testing from "effect-eventsourcing/Testing"
import { AssertionError } from "node:assert"

const Switched = Schema.TaggedStruct("Switched", { on: Schema.Boolean })
class AlreadyOn extends Data.TaggedError("AlreadyOn")<{ readonly since: number }> {}

const lightDecider = Decider.make({
  streamType: "light",
  events: Switched,
  initialState: { on: false, switches: 0 },
  decide: (command: "on" | "off", state: { readonly on: boolean; readonly switches: number }) =>
    command === "on" && state.on
      ? Effect.fail(new AlreadyOn({ since: state.switches }))
      : command === "on" || state.on
      ? [Switched.make({ on: command === "on" })]
      : [],
  evolve: (state, event) => ({ on: event.on, switches: state.switches + 1 })
})
const light = Testing.decider(lightDecider)

/** The assertion failure an expectation died with, or `undefined` if it held. */
const failure = <E>(check: Effect.Effect<void, E>) =>
  Effect.map(
    Effect.exit(check),
    (exit) => Exit.isSuccess(exit) ? undefined : Option.getOrUndefined(Cause.dieOption(exit.cause))
  )

const Measured = Schema.TaggedStruct("Measured", { value: Schema.Number })
const gauge = Testing.decider(Decider.make({
  streamType: "gauge",
  events: Measured,
  initialState: 0,
  decide: (value: number) => [Measured.make({ value })],
  evolve: (_: number, event) => event.value
}))

describe("Testing.decider", () => {
  it.effect("passes when the expectation holds", () =>
    Effect.gen(function*() {
      yield* light.given([]).when("on").thenEvents([Switched.make({ on: true })])
      yield* light.given([]).when("off").thenEvents([])
      yield* light.given([Switched.make({ on: true })]).when("off").thenState({ on: false, switches: 2 })
      yield* light.given([Switched.make({ on: true })]).when("on").thenFails(new AlreadyOn({ since: 1 }))
      yield* light.given([Switched.make({ on: true })]).when("on").thenFails((error) => error.since === 1)
    }))

  it.effect("fails the test, showing both sides, when the expectation does not hold", () =>
    Effect.gen(function*() {
      const wrongEvents = yield* failure(light.given([]).when("on").thenEvents([Switched.make({ on: false })]))
      expect(wrongEvents).toBeInstanceOf(AssertionError)
      expect((wrongEvents as AssertionError).actual).toEqual([{ type: "Switched", data: { on: true } }])
      expect((wrongEvents as AssertionError).expected).toEqual([{ type: "Switched", data: { on: false } }])

      const wrongState = yield* failure(light.given([]).when("on").thenState({ on: true, switches: 7 }))
      expect(wrongState).toBeInstanceOf(AssertionError)

      const unexpectedError = yield* failure(light.given([Switched.make({ on: true })]).when("on").thenEvents([]))
      expect(String(unexpectedError)).toContain("AlreadyOn")

      const noError = yield* failure(light.given([]).when("on").thenFails(new AlreadyOn({ since: 0 })))
      expect(String(noError)).toContain(`decided [{"type":"Switched","data":{"on":true}}]`)

      const otherError = yield* failure(
        light.given([Switched.make({ on: true })]).when("on").thenFails(new AlreadyOn({ since: 5 }))
      )
      expect(otherError).toBeInstanceOf(AssertionError)

      // NaN encodes with Schema.Number, but JSON would store it as null: it could never be loaded.
      const unstorable = yield* failure(
        gauge.given([]).when(Number.NaN).thenEvents([Measured.make({ value: Number.NaN })])
      )
      expect(String(unstorable)).toContain("cannot be stored")
      const unstorableGiven = yield* failure(gauge.given([Measured.make({ value: Infinity })]).when(1).thenState(1))
      expect(String(unstorableGiven)).toContain("given events cannot be stored")

      const refused = yield* failure(light.given([Switched.make({ on: true })]).when("on").thenFails(() => false))
      expect(refused).toBeInstanceOf(AssertionError)
    }))

  it.effect("loads given events as an older release stored them, through the Schema's evolution", () =>
    Effect.gen(function*() {
      // Version 1 of "Switched" was "Toggled" with a state of "up" or "down".
      const Evolved = Switched.annotations(Evolution.declare({
        formerNames: ["Toggled"],
        upcasts: [
          Evolution.upcast(Schema.Struct({ state: Schema.Literal("up", "down") }), (v1) => ({ on: v1.state === "up" }))
        ]
      }))
      const evolved = Testing.decider(Decider.make({ ...lightDecider, events: Evolved }))
      yield* evolved.givenStored([{ type: "Toggled", data: { state: "up" } }]).when("on").thenFails(
        new AlreadyOn({ since: 1 })
      )
      yield* evolved.givenStored([
        { type: "Toggled", data: { state: "up" } },
        { type: "Switched", data: { on: false }, schemaVersion: 2 }
      ]).when("on").thenState({ on: true, switches: 3 })
      // Events given in the current form go through the current version.
      yield* evolved.given([Switched.make({ on: true })]).when("off").thenState({ on: false, switches: 2 })
      const unreadable = yield* failure(
        evolved.givenStored([{ type: "Toggled", data: { state: "sideways" } }]).when("on").thenEvents([])
      )
      expect(String(unreadable)).toContain("given events cannot be loaded")
      expect(String(unreadable)).toContain("reading version 1 as version 2")
      const notJson = yield* failure(
        evolved.givenStored([{ type: "Switched", data: { on: new Date(0) } }]).when("on").thenEvents([])
      )
      expect(String(notJson)).toContain("JSON cannot hold")
    }))
})
