/**
 * Snapshots of a decider's state, so that loading a long stream reads only its latest events.
 * Opt in per decider with a Schema for the state and a policy, and give the settings to its
 * command handler:
 *
 * ```ts
 * import { CommandHandler, Snapshot } from "effect-eventsourcing"
 * import { Schema } from "effect"
 *
 * const accounts = CommandHandler.make(account, {
 *   snapshots: Snapshot.make({ state: Schema.Number, policy: Snapshot.everyEvents(100) })
 * })
 * ```
 *
 * A snapshot never fails a load and never changes its result: one it cannot use (another
 * stream type, a state that no longer decodes, events the stream no longer holds, another schema
 * identity, see {@link identity}) is ignored. New ones are written in the background, never from
 * inside a transaction that may still roll back. The whole story, and what the identity covers,
 * is in docs/08-snapshots.md.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as Decider from "./Decider.js"
import * as Internal from "./internal/snapshots.js"
import type { SnapshotStore } from "./SnapshotStore.js"

/**
 * When to write a snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export type Policy = EveryEvents | WhenLoadReads

/**
 * See {@link everyEvents}.
 *
 * @since 0.1.0
 * @category models
 */
export interface EveryEvents {
  readonly _tag: "EveryEvents"
  readonly events: number
}

/**
 * See {@link whenLoadReads}.
 *
 * @since 0.1.0
 * @category models
 */
export interface WhenLoadReads {
  readonly _tag: "WhenLoadReads"
  readonly events: number
}

/**
 * After a command, snapshot the new state when the stream is `events` or more events past the
 * snapshot its load started from (or past its start, when there was none): a stream gets a
 * snapshot about every `events` events, and loads read fewer than that plus whatever was
 * appended without this policy. A stream that was long before it had snapshots gets one after
 * its next command. Loads alone write none.
 *
 * @since 0.1.0
 * @category policies
 */
export const everyEvents = (events: number): Policy => ({
  _tag: "EveryEvents",
  events: positive("everyEvents", events)
})

/**
 * After a load (a command's or `CommandHandler.load`'s) that read `events` or more events,
 * snapshot the state it loaded. For streams that are read more often than they are written,
 * or written by other processes.
 *
 * @since 0.1.0
 * @category policies
 */
export const whenLoadReads = (events: number): Policy => ({
  _tag: "WhenLoadReads",
  events: positive("whenLoadReads", events)
})

const positive = (name: string, events: number): number => {
  if (Number.isSafeInteger(events) && events > 0) return events
  throw new Cause.IllegalArgumentException(`Snapshot.${name}: events must be a positive integer, got ${events}`)
}

/**
 * The snapshot settings of a decider, made by {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshots<State> {
  /** The Schema that encodes the state to JSON and decodes it back. */
  readonly state: Schema.Schema<State, any>
  /** What a snapshot must be stored with to be used: the Schema's fingerprint and the version. */
  readonly schemaId: string
  readonly policy: Policy
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<State, Encoded> {
  /**
   * The Schema of the state. Its encoded form must be JSON, and decoding what it encoded must
   * give back an equal state.
   */
  readonly state: Schema.Schema<State, Encoded>
  /**
   * Bump it when `evolve` changes what state the same events give without the Schema changing,
   * so that snapshots folded by the old logic are no longer used.
   */
  readonly version?: string | undefined
  readonly policy: Policy
}

/**
 * Snapshot settings for a decider whose state the Schema describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Encoded>(options: Options<State, Encoded>): Snapshots<State> => ({
  state: options.state,
  schemaId: options.version === undefined
    ? fingerprint(options.state)
    : `${fingerprint(options.state)}/${options.version}`,
  policy: options.policy
})

/**
 * The fingerprint of a Schema: a hash of its structure and annotations (not of the code of its
 * transformations), the same in every run of the same Schema. Snapshot identities start with
 * the state Schema's.
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const fingerprint = (schema: Schema.Schema.Any): string => Internal.fingerprint(schema.ast)

/**
 * The schema identity a decider's snapshots are stored under (`SnapshotStore` rows' `schemaId`):
 * the settings' `schemaId` followed by a fingerprint of what folding the decider's events depends
 * on besides the state Schema (its event types and their Schemas, their evolutions with each
 * upcast's old shape, code and identity, its initial state and the code of its `evolve`).
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const identity = (decider: Decider.Decider<any, any, any, any, any>, snapshots: Snapshots<any>): string =>
  Internal.identity(decider, snapshots)

/**
 * Waits until the snapshot writes started so far in the background, to the `SnapshotStore` in
 * context, have ended: for tests that check what was written, and for a shutdown that wants the
 * latest snapshots kept.
 *
 * @since 0.1.0
 * @category writing
 */
export const awaitWrites: Effect.Effect<void, never, SnapshotStore> = Internal.awaitWrites
