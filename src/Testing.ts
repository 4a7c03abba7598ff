/**
 * Given / when / then tests for deciders, with no event store: given the events already in a
 * stream, when a command is handled, then these events are decided, or this error.
 *
 * Each check is an Effect that fails the test (with an `AssertionError` showing both sides)
 * when the expectation does not hold, so it runs directly in `it.effect` from `@effect/vitest`:
 *
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Testing } from "effect-eventsourcing"
 *
 * const cart = Testing.decider(Cart.decider)
 *
 * it.effect("adds an item", () =>
 *   cart.given([created]).when(addItem).thenEvents([itemAdded]))
 *
 * it.effect("rejects a negative quantity", () =>
 *   cart.given([created]).when(addMinusOne).thenFails(new Cart.InvalidQuantity({ quantity: -1 })))
 * ```
 *
 * Events go through their stored form as they would in a store: the given events are encoded,
 * kept as JSON and decoded before they are folded, and decided events are compared as stored
 * (type and JSON data). So a check also proves that the events can be stored and read back.
 * `givenStored` starts from events as a store holds them instead (type, JSON data, schema
 * version), to check that what an older release stored still loads.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import { AssertionError, deepStrictEqual } from "node:assert"
import * as Decider from "./Decider.js"
import * as Events from "./Events.js"
import { toJson } from "./internal/prepareAppend.js"
import * as Position from "./Position.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Given<State, Command, Event extends { readonly _tag: string }, E, R> {
  /** The command to handle after the given events. */
  readonly when: (command: Command) => When<State, Event, E, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface When<State, Event extends { readonly _tag: string }, E, R> {
  /** Succeeds when the command decides exactly these events (`[]`: no change). */
  readonly thenEvents: (expected: ReadonlyArray<Event>) => Effect.Effect<void, never, R>
  /** Succeeds when the state after the given and the decided events equals `expected`. */
  readonly thenState: (expected: State) => Effect.Effect<void, never, R>
  /**
   * Succeeds when the command fails with an error equal to `expected` (same tag and fields),
   * or, given a function, with an error for which it does not throw or return `false`.
   */
  readonly thenFails: (expected: E | ((error: E) => boolean | void)) => Effect.Effect<void, never, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeciderSpecification<State, Command, Event extends { readonly _tag: string }, E, R> {
  /** The events already in the stream, oldest first. */
  readonly given: (events: ReadonlyArray<Event>) => Given<State, Command, Event, E, R>
  /**
   * The events already in the stream as a store holds them, oldest first: type, JSON data and
   * schema version. For checking that events an older release stored (in older versions or
   * under former names, see `Evolution.declare`) still load as they should.
   */
  readonly givenStored: (events: ReadonlyArray<Events.NewEvent>) => Given<State, Command, Event, E, R>
}

/** A decider's events in their stored forms: as a store would keep them, and load them back. */
const storedForms = <Event extends { readonly _tag: string }>(self: Decider.Decider<any, any, Event, any, any>) => {
  const encode = Events.encoder(self.events, self.streamType)
  const decode = Events.decoder(self.events)
  /** An event in its stored form, as the store would keep it. */
  const encoded = (event: Event, which: string): Events.NewEvent =>
    Either.match(encode(event), {
      onLeft: (error) => {
        throw new AssertionError({ message: `One of the ${which} events cannot be stored: ${error.message}` })
      },
      onRight: (encoded) => ({ ...encoded, data: JSON.parse(JSON.stringify(encoded.data)) as unknown })
    })
  /** Events in their stored form as loading them from a store gives them back: decoded. */
  const loaded = (events: ReadonlyArray<Events.NewEvent>, which: string): ReadonlyArray<Event> =>
    events.map((event, index) => {
      // What a store would refuse to store cannot be given as stored either.
      const json = toJson(event.data)
      if (json === undefined) {
        throw new AssertionError({
          message: `One of the ${which} events has data that JSON cannot hold: ${String(event.data)}`
        })
      }
      return Either.match(
        decode({
          id: `given-${index + 1}`,
          streamId: "given",
          streamType: self.streamType,
          version: index + 1,
          position: Position.start,
          type: event.type,
          data: JSON.parse(json),
          actor: event.actor ?? "system",
          timestamp: new Date(0),
          metadata: event.metadata ?? {},
          schemaVersion: event.schemaVersion ?? 1
        }),
        {
          onLeft: (error) => {
            throw new AssertionError({ message: `One of the ${which} events cannot be loaded: ${error.message}` })
          },
          onRight: (recorded) => recorded.data
        }
      )
    })
  return {
    /** Events in their stored form, as decided events are compared: type and JSON data. */
    stored: (events: ReadonlyArray<Event>, which: string) =>
      events.map((event) => {
        const { data, type } = encoded(event, which)
        return { type, data }
      }),
    loaded,
    /** Events as loading them from a store gives them back: stored, then decoded. */
    reloaded: (events: ReadonlyArray<Event>, which: string): ReadonlyArray<Event> =>
      loaded(events.map((event) => encoded(event, which)), which)
  }
}

type StoredForms<Event extends { readonly _tag: string }> = ReturnType<typeof storedForms<Event>>

/** Checks that a command failed as expected: with an equal error, or one the predicate accepts. */
const checkFailure = <Event extends { readonly _tag: string }, E>(
  outcome: Either.Either<ReadonlyArray<Event>, E>,
  expected: E | ((error: E) => boolean | void),
  forms: StoredForms<Event>
) => {
  if (Either.isRight(outcome)) {
    throw new AssertionError({
      message: `Expected the command to fail, but it decided ${
        outcome.right.length === 0 ? "no events" : JSON.stringify(forms.stored(outcome.right, "decided"))
      }`
    })
  }
  const error = outcome.left
  if (typeof expected === "function") {
    if ((expected as (error: E) => boolean | void)(error) === false) {
      throw new AssertionError({ message: `The command failed with an unexpected error: ${describe(error)}` })
    }
  } else if (!Equal.equals(error, expected)) {
    deepStrictEqual(fields(error), fields(expected), "The command failed with another error than expected")
  }
}

/** The specification of a decider given a history: when a command, then what it decided. */
const specification = <State, Command, Event extends { readonly _tag: string }, E, R>(
  self: Decider.Decider<State, Command, Event, E, R>,
  forms: StoredForms<Event>,
  history: () => ReadonlyArray<Event>
): Given<State, Command, Event, E, R> => ({
  when: (command) => {
    const given = Effect.sync(() => Decider.fold(self, history()))
    const decided = Effect.flatMap(given, (state) => Effect.either(Decider.decide(self, command, state)))
    const succeeded = (what: string) =>
      Effect.flatMap(decided, (outcome) =>
        Either.isRight(outcome)
          ? Effect.succeed(outcome.right)
          : Effect.die(
            new AssertionError({
              message: `Expected ${what}, but the command failed with ${describe(outcome.left)}`,
              actual: outcome.left
            })
          ))
    return {
      thenEvents: (expected) =>
        Effect.flatMap(succeeded("events"), (events) =>
          Effect.sync(() =>
            deepStrictEqual(
              forms.stored(events, "decided"),
              forms.stored(expected, "expected"),
              "The command decided other events than expected"
            )
          )),
      thenState: (expected) =>
        Effect.flatMap(Effect.zip(given, succeeded("a state")), ([state, events]) =>
          Effect.sync(() =>
            deepStrictEqual(
              Decider.fold(self, forms.reloaded(events, "decided"), state),
              expected,
              "The state after the command is not the expected state"
            )
          )),
      thenFails: (expected) =>
        Effect.flatMap(decided, (outcome) => Effect.sync(() => checkFailure(outcome, expected, forms)))
    }
  }
})

/**
 * Starts a given / when / then specification of a decider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decider = <State, Command, Event extends { readonly _tag: string }, E, R>(
  self: Decider.Decider<State, Command, Event, E, R>
): DeciderSpecification<State, Command, Event, E, R> => {
  const forms = storedForms(self)
  return {
    given: (events) => specification(self, forms, () => forms.reloaded(events, "given")),
    givenStored: (events) => specification(self, forms, () => forms.loaded(events, "given"))
  }
}

/** An error's tag and own fields, the part of it that two equal errors share. */
const fields = (error: unknown): unknown =>
  typeof error === "object" && error !== null ? { _tag: (error as { _tag?: unknown })._tag, ...error } : error

const describe = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : JSON.stringify(error) ?? String(error)
