/**
 * An aggregate as data plus two pure functions: `decide` turns a command and the current state
 * into new events (or a domain error), `evolve` applies one event to a state. The state of a
 * stream is its events folded with `evolve`, starting from `initialState`.
 *
 * ```ts
 * import { Decider } from "effect-eventsourcing"
 * import { Effect, Schema } from "effect"
 *
 * const Incremented = Schema.TaggedStruct("Incremented", { by: Schema.Number })
 *
 * const counter = Decider.make({
 *   streamType: "counter",
 *   events: Incremented,
 *   initialState: 0,
 *   decide: (command: { readonly by: number }, total: number) =>
 *     command.by > 0 ? [Incremented.make({ by: command.by })] : Effect.fail("must be positive" as const),
 *   evolve: (total, event) => total + event.by
 * })
 * ```
 *
 * Persistence, retries and time live outside a decider: see `CommandHandler`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { EventSchema } from "./Events.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Decider<State, Command, Event extends { readonly _tag: string }, E = never, R = never> {
  /** The type of the streams this decider owns, stored with each stream and checked on load. */
  readonly streamType: string
  /** The Schema of the events, a union of tagged schemas whose tags are the stored event types. */
  readonly events: EventSchema<Event>
  /** The state of a stream with no events. */
  readonly initialState: State
  /**
   * The events a command produces in a state, or a domain error. Synchronous deciders return
   * the events; effectful ones (or ones that fail) return an Effect. An empty array means the
   * command changes nothing.
   */
  readonly decide: (
    command: Command,
    state: State
  ) => ReadonlyArray<Event> | Effect.Effect<ReadonlyArray<Event>, E, R>
  /** The state after one event. Must be pure: it runs again every time the stream is loaded. */
  readonly evolve: (state: State, event: Event) => State
}

/**
 * Any decider, for functions that accept every decider.
 *
 * @since 0.1.0
 * @category models
 */
export type Any = Decider<any, any, any, any, any>

/**
 * @since 0.1.0
 * @category type-level
 */
export type State<D> = D extends Decider<infer S, any, any, any, any> ? S : never

/**
 * @since 0.1.0
 * @category type-level
 */
export type Command<D> = D extends Decider<any, infer C, any, any, any> ? C : never

/**
 * @since 0.1.0
 * @category type-level
 */
export type Event<D> = D extends Decider<any, any, infer Ev, any, any> ? Ev : never

/**
 * @since 0.1.0
 * @category type-level
 */
export type Error<D> = D extends Decider<any, any, any, infer E, any> ? E : never

/**
 * @since 0.1.0
 * @category type-level
 */
export type Context<D> = D extends Decider<any, any, any, any, infer R> ? R : never

/**
 * Defines a decider; the identity function, there to infer its types.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event extends { readonly _tag: string }, E = never, R = never>(
  decider: Decider<State, Command, Event, E, R>
): Decider<State, Command, Event, E, R> => decider

/**
 * Folds events into a state with `evolve`, from `initialState` or from the given state.
 *
 * @since 0.1.0
 * @category folding
 */
export const fold = <State, Event extends { readonly _tag: string }>(
  decider: Decider<State, any, Event, any, any>,
  events: Iterable<Event>,
  from: State = decider.initialState
): State => {
  let state = from
  for (const event of events) {
    state = decider.evolve(state, event)
  }
  return state
}

/**
 * Runs `decide` as an Effect, whether the decider answered synchronously or not.
 *
 * @since 0.1.0
 * @category deciding
 */
export const decide = <State, Command, Event extends { readonly _tag: string }, E, R>(
  decider: Decider<State, Command, Event, E, R>,
  command: Command,
  state: State
): Effect.Effect<ReadonlyArray<Event>, E, R> =>
  Effect.suspend(() => {
    const decided = decider.decide(command, state)
    return Effect.isEffect(decided) ? decided : Effect.succeed(decided)
  })
