/**
 * Runs commands against a decider's streams: load the stream (read and fold), decide, append
 * the new events expecting the version that was read. When another writer appended in between,
 * the append fails with `ConcurrencyError` and the whole cycle runs again, as the retry
 * `Schedule` allows.
 *
 * ```ts
 * import { CommandHandler, EventStore } from "effect-eventsourcing"
 *
 * const carts = CommandHandler.make(Cart.decider)
 *
 * const program = carts.handle(cartId, Cart.AddItem.make({ ... })).pipe(
 *   Effect.provide(EventStore.layerMemory)
 * )
 * ```
 *
 * A retried command runs `decide` again on the fresh state, so an effectful `decide` should be
 * safe to repeat.
 *
 * With `snapshots` (see `Snapshot`), loads start from the latest usable snapshot of the stream
 * and read only the events after it, and new snapshots are written in the background.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Decider from "./Decider.js"
import type { AppendError, EventEncodeError } from "./Errors.js"
import { ConcurrencyError, TransactionConflictError } from "./Errors.js"
import type { RecordedEvent } from "./Events.js"
import * as Events from "./Events.js"
import type { AppendRequest } from "./EventStore.js"
import { EventStore } from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as Loading from "./internal/loading.js"
import * as ProjectionStates from "./internal/projectionStates.js"
import * as Snapshotting from "./internal/snapshots.js"
import * as StateCache from "./internal/stateCache.js"
import * as TransactionProbe from "./internal/transactionProbe.js"
import type * as Position from "./Position.js"
import type * as Projection from "./Projection.js"
import { ProjectionStore } from "./ProjectionStore.js"
import type * as Snapshot from "./Snapshot.js"
import type { SnapshotStore } from "./SnapshotStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * How to retry a command that lost a race (`ConcurrencyError`): a `Schedule` over the error,
   * or `false` to fail at once. Defaults to {@link defaultRetry}.
   */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyError> | false
  /**
   * Whether commands to one stream handled through this handler in this process wait for each
   * other (the default) instead of racing: a queued command loads the state its predecessor
   * left, so a hot stream spends no time on conflicts the process causes itself. Commands from
   * other processes (or other handlers) still race, and lose with `ConcurrencyError`.
   */
  readonly queuePerStream?: boolean
  /**
   * The warm state cache: the handler keeps the state and version its commands appended on the
   * streams it handled last (at most `maxStreams`, default {@link defaultCacheSize}; the least
   * recently used goes first), and a load of one of them reads only the event at the cached
   * version (which must still be the one cached) and those after it. Other writers' events are
   * read like any others, and a failed command drops its stream's entry, so the cache never
   * changes an outcome; states must not be mutated by `evolve` (they are shared between
   * commands). Nothing is cached inside a transaction, which may still roll back. `false` turns
   * it off.
   */
  readonly cache?: false | { readonly maxStreams?: number } | undefined
}

/**
 * How many streams a handler's warm state cache keeps by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCacheSize = 1_000

/**
 * @since 0.1.0
 * @category models
 */
export interface SnapshotOptions<State> {
  /**
   * Snapshots of the state, made by `Snapshot.make`: loads start from the latest usable one, and
   * new ones are written in the background when its policy says so. Needs a `SnapshotStore`,
   * which every store layer provides.
   */
  readonly snapshots: Snapshot.Snapshots<State>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface InlineOptions<IE, IR> extends Options {
  /**
   * Projections run inside the append's own transaction, for read models that must be
   * consistent with the write: their writes commit with the events, or neither does (the
   * in-memory store undoes the append too, though not what a projection wrote elsewhere in
   * memory). Each handles the new events it consumes; a failure fails the command. A projection
   * run inline must not also be run by a runner (`Projection.run`), which would apply its events
   * a second time.
   */
  readonly inline: ReadonlyArray<Projection.Projection<any, IE, IR>>
}

/**
 * The default retry: up to 3 more attempts, each at once. A conflict means the stream just
 * moved on, so reloading it straight away is usually enough; pass a schedule with backoff for
 * streams that many writers contend for.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<number> = Schedule.recurs(3)

/**
 * A stream loaded through a decider: its state, and the version and position it was folded to
 * (`0` and `Position.start` for a new stream).
 *
 * @since 0.1.0
 * @category models
 */
export type Loaded<State> = Loading.Loaded<State>

/**
 * What a handled command did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Result<State, Event> {
  /** The new events as stored; empty when the decider decided nothing should change. */
  readonly events: ReadonlyArray<RecordedEvent<Event>>
  /** The state after the new events. */
  readonly state: State
  /** The stream's version after the command. */
  readonly version: number
  /** The position of the stream's latest event after the command. */
  readonly position: Position.Position
}

/**
 * What loading a stream can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadError = Loading.LoadError

/**
 * What handling a command can fail with, besides the decider's own errors.
 *
 * @since 0.1.0
 * @category errors
 */
export type HandleError = LoadError | AppendError | EventEncodeError

/**
 * A command handler. `LR` is what loading needs besides the `EventStore`: the `SnapshotStore`
 * when the handler has snapshots.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<State, Command, Event extends { readonly _tag: string }, E, R, LR = never> {
  readonly decider: Decider.Decider<State, Command, Event, any, any>
  /** Loads a stream and folds it into the decider's state. */
  readonly load: (streamId: string) => Effect.Effect<Loaded<State>, LoadError, EventStore | LR>
  /** Handles one command on one stream. */
  readonly handle: (
    streamId: string,
    command: Command
  ) => Effect.Effect<Result<State, Event>, E | HandleError, R | EventStore | LR>
}

/** The loader of a decider's streams, through snapshots when it has them. */
const loader = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>,
  snapshots: Snapshot.Snapshots<State> | undefined
): {
  readonly load: (streamId: string) => Effect.Effect<Snapshotting.Load<State>, LoadError, EventStore | SnapshotStore>
  readonly snapshotIfDue: (
    streamId: string,
    loaded: Loaded<State>,
    snapshotVersion: number
  ) => Effect.Effect<number, never, EventStore | SnapshotStore>
} => {
  if (snapshots !== undefined) return Snapshotting.make(decider, snapshots)
  const fold = Loading.foldStream(decider)
  const start = Loading.initialOf(decider)
  return {
    load: (streamId) => Effect.map(fold(streamId, { start }), (loaded) => ({ loaded, snapshotVersion: 0 })),
    snapshotIfDue: (_, __, snapshotVersion) => Effect.succeed(snapshotVersion)
  }
}

/**
 * Loads a stream through a decider: reads its events, checks the stream type, decodes and
 * folds them. With `snapshots`, it starts from the stream's latest usable snapshot and reads
 * only the events after it (and writes a snapshot in the background if the policy says so).
 *
 * @since 0.1.0
 * @category loading
 */
export function load<State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>
): (streamId: string) => Effect.Effect<Loaded<State>, LoadError, EventStore>
export function load<State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>,
  options: SnapshotOptions<State>
): (streamId: string) => Effect.Effect<Loaded<State>, LoadError, EventStore | SnapshotStore>
export function load<State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>,
  options?: SnapshotOptions<State>
): (streamId: string) => Effect.Effect<Loaded<State>, LoadError, EventStore | SnapshotStore> {
  const { load } = loader(decider, options?.snapshots)
  return (streamId) => Effect.map(load(streamId), ({ loaded }) => loaded)
}

/**
 * The options of {@link make}: what the handler needs follows from them (the `SnapshotStore` to
 * load with `snapshots`; the `ProjectionStore` and what the projections need with `inline`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions<State> extends Options {
  readonly snapshots?: Snapshot.Snapshots<State> | undefined
  readonly inline?: ReadonlyArray<Projection.Projection<any, any, any>> | undefined
}

/**
 * What loading needs besides the `EventStore`, for a handler made with options `O`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type LoadRequirements<O> = O extends { readonly snapshots: Snapshot.Snapshots<any> } ? SnapshotStore : never

/**
 * The errors of the inline projections of a handler made with options `O`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type InlineError<O> = O extends { readonly inline: ReadonlyArray<Projection.Projection<any, infer IE, any>> } ?
  IE
  : never

/**
 * What the inline projections of a handler made with options `O` need.
 *
 * @since 0.1.0
 * @category type-level
 */
export type InlineRequirements<O> = O extends
  { readonly inline: ReadonlyArray<Projection.Projection<any, any, infer IR>> } ? IR | ProjectionStore : never

type InlineRunner = ReturnType<typeof inlineRunner>

const cacheSize = (maxStreams: number | undefined): number => {
  if (maxStreams === undefined) return defaultCacheSize
  if (!Number.isSafeInteger(maxStreams) || maxStreams < 1) {
    throw new RangeError(`CommandHandler.make: cache.maxStreams must be a positive integer, got ${maxStreams}`)
  }
  return maxStreams
}

/** Appends a command's events, with the inline projections in the same transaction. */
const appender = (inline: ReadonlyArray<InlineRunner>) => (request: AppendRequest) =>
  Effect.flatMap(EventStore, (store) => {
    if (inline.length === 0) return store.append(request)
    return Effect.flatMap(ProjectionStore, (projections) => {
      const claimed = inline.find(({ name }) => !ProjectionStates.claimInline(projections, name))
      if (claimed !== undefined) return Effect.dieMessage(ProjectionStates.bothWays(claimed.name))
      return projections.transaction(
        Effect.tap(store.append(request), (appended) => Effect.forEach(inline, ({ run }) => run(appended.events)))
      )
    })
  })

/**
 * With inline projections the handler owns the transaction: one that lost its place in the
 * global order to a concurrent append (TransactionConflictError) is tried again as a new one.
 */
const retryTransactionConflicts = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.retry(effect, { times: 3, while: (error) => error instanceof TransactionConflictError })

/**
 * Builds the command handler of a decider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  State,
  Command,
  Event extends { readonly _tag: string },
  E,
  R,
  const O extends MakeOptions<State> = {}
>(
  decider: Decider.Decider<State, Command, Event, E, R>,
  options?: O
): CommandHandler<State, Command, Event, E | InlineError<O>, R | InlineRequirements<O>, LoadRequirements<O>> => {
  const { load: coldLoad, snapshotIfDue } = loader(decider, options?.snapshots)
  const cache: StateCache.StateCache<State> = options?.cache === false
    ? StateCache.none()
    : StateCache.make(cacheSize(options?.cache?.maxStreams))
  const resumeFrom = Loading.resumeStream(decider)

  /**
   * A stream loaded on from its cached state (reading the event at the cached version, which
   * must still be the one cached, and those after it), or afresh.
   */
  const loadStream = (streamId: string) => {
    const cached = cache.get(streamId)
    if (cached === undefined) return coldLoad(streamId)
    return Effect.flatMap(resumeFrom(streamId, cached.loaded, cached.eventId), (resumed) => {
      if (Option.isSome(resumed)) {
        return Effect.succeed({ loaded: resumed.value, snapshotVersion: cached.snapshotVersion })
      }
      cache.drop(streamId)
      return coldLoad(streamId)
    })
  }

  /**
   * Keeps the state a command appended, unless it appended nothing or inside a transaction
   * (which may still roll back); drops the stream's entry when the command failed.
   */
  const remembered = <E2, R2>(
    streamId: string,
    effect: Effect.Effect<{ readonly result: Result<State, Event>; readonly snapshotVersion: number }, E2, R2>
  ) =>
    Effect.onExit(effect, (exit) => {
      if (Exit.isFailure(exit)) return Effect.sync(() => cache.drop(streamId))
      const { result, snapshotVersion } = exit.value
      const last = result.events.at(-1)
      if (last === undefined) return Effect.void
      return Effect.flatMap(EventStore, (store) =>
        Effect.map(TransactionProbe.inTransaction(store), (inside) => {
          if (inside) return cache.drop(streamId)
          cache.set(streamId, {
            loaded: { state: result.state, version: result.version, position: result.position },
            eventId: last.id,
            snapshotVersion
          })
        }))
    })

  const encode = Events.encoder(decider.events, decider.streamType)
  const retry = options?.retry ?? defaultRetry
  const inline = (options?.inline ?? []).map(inlineRunner)
  const appendWithInline = appender(inline)
  const retryingTransactionConflicts = <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) =>
    inline.length === 0 ? effect : retryTransactionConflicts(effect)

  const attempt = (streamId: string, command: Command) =>
    Effect.map(remembered(streamId, decideAndAppend(streamId, command)), ({ result }) => result)

  const decideAndAppend = (streamId: string, command: Command) =>
    Effect.gen(function*() {
      const { loaded, snapshotVersion } = yield* loadStream(streamId)
      const decided = yield* Decider.decide(decider, command, loaded.state)
      if (decided.length === 0) {
        const snapshotAt = yield* snapshotIfDue(streamId, loaded, snapshotVersion)
        return { result: { events: [], ...loaded }, snapshotVersion: snapshotAt }
      }
      const newEvents = yield* Effect.forEach(decided, (event) => encode(event))
      const appended = yield* appendWithInline({
        streamId,
        streamType: decider.streamType,
        expectedVersion: ExpectedVersion.exact(loaded.version),
        events: newEvents
      })
      const result = {
        events: appended.events.map((recorded, index) => ({ ...recorded, data: decided[index]! })),
        state: Decider.fold(decider, decided, loaded.state),
        version: appended.version,
        position: appended.position
      }
      return { result, snapshotVersion: yield* snapshotIfDue(streamId, result, snapshotVersion) }
    })

  const queued = options?.queuePerStream === false ? undefined : streamQueues()

  const handle = retry === false
    ? (streamId: string, command: Command) => retryingTransactionConflicts(attempt(streamId, command))
    : (streamId: string, command: Command) =>
      // Only a lost race is retried: every other failure leaves the retry loop as a value.
      retryingTransactionConflicts(attempt(streamId, command)).pipe(
        Effect.map(Either.right),
        Effect.catchAll((error) =>
          error instanceof ConcurrencyError ? Effect.fail(error) : Effect.succeed(Either.left(error))
        ),
        Effect.retry(retry),
        Effect.flatMap((outcome) => outcome)
      )

  const handler: CommandHandler<State, Command, Event, unknown, unknown, unknown> = {
    decider,
    load: (streamId) => Effect.map(loadStream(streamId), ({ loaded }) => loaded),
    handle: queued === undefined ? handle : (streamId, command) => queued(streamId, handle(streamId, command))
  }
  // What it needs follows from the options, which only the signature can tell apart.
  return handler as unknown as CommandHandler<
    State,
    Command,
    Event,
    E | InlineError<O>,
    R | InlineRequirements<O>,
    LoadRequirements<O>
  >
}

/**
 * Runs effects for one stream one at a time, in the order they come: a semaphore per stream,
 * kept only while some effect holds or waits for it.
 */
const streamQueues = () => {
  const queues = new Map<string, { readonly semaphore: Effect.Semaphore; users: number }>()
  return <A, E, R>(streamId: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        let queue = queues.get(streamId)
        if (queue === undefined) {
          queue = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
          queues.set(streamId, queue)
        }
        queue.users++
        return queue
      }),
      (queue) => queue.semaphore.withPermits(1)(effect),
      (queue) =>
        Effect.sync(() => {
          if (--queue.users === 0) queues.delete(streamId)
        })
    )
}

/** Runs an inline projection over the events of one append: those it consumes, decoded. */
const inlineRunner = <E, R>(projection: Projection.Projection<any, E, R>) => {
  const types = Events.storedTypes(projection.events)
  const decode = Events.decoder(projection.events)
  return {
    name: projection.name,
    run: (events: ReadonlyArray<RecordedEvent>) =>
      Effect.flatMap(
        Effect.forEach(
          events.filter((event) => types === undefined || types.has(event.type)),
          (event) => decode(event)
        ),
        (decoded) => decoded.length === 0 ? Effect.void : projection.handleBatch(decoded)
      )
  }
}
