/**
 * Folding a stream through a decider, shared by command handlers, snapshots and temporal
 * queries: read the stream's events from a starting state, check the stream type, decode and
 * evolve them a page at a time, and stop where the caller says.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Decider from "../Decider.js"
import type { EventDecodeError, EventStoreError } from "../Errors.js"
import { StreamTypeMismatchError } from "../Errors.js"
import type { RecordedEvent } from "../Events.js"
import * as Events from "../Events.js"
import { EventStore } from "../EventStore.js"
import * as Position from "../Position.js"
import * as StreamPages from "./streamPages.js"

/** A stream folded through a decider: its state and the version and position it was folded to. */
export interface Loaded<State> {
  readonly state: State
  /** The number of events folded (`0` for a new stream). */
  readonly version: number
  /** The position of the latest event folded (`Position.start` for a new stream). */
  readonly position: Position.Position
}

export interface FoldOptions<State> {
  /** Where to start: a state folded up to its version; the events after it are read. */
  readonly start: Loaded<State>
  /** Fold no further than this version. */
  readonly toVersion?: number
  /** Stop before the first event for which this holds (it is not folded). */
  readonly stopBefore?: (recorded: RecordedEvent) => boolean
}

/** What loading a stream can fail with. */
export type LoadError = StreamTypeMismatchError | EventDecodeError | EventStoreError

/** A stream with no events, as a decider sees it. */
export const initialOf = <State>(decider: Decider.Decider<State, any, any, any, any>): Loaded<State> => ({
  state: decider.initialState,
  version: 0,
  position: Position.start
})

interface Progress<State> {
  readonly loaded: Loaded<State>
  readonly done: boolean
}

/**
 * Builds the fold of one decider's streams. Each page is folded in one synchronous loop:
 * loading a long stream is the hot path of every command.
 */
export const foldStream = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>
) => {
  const foldChunk = chunkFolder(decider)
  return (streamId: string, options: FoldOptions<State>): Effect.Effect<Loaded<State>, LoadError, EventStore> =>
    Effect.flatMap(EventStore, (store) => {
      const { start: from, stopBefore, toVersion } = options
      const limit = toVersion === undefined ? undefined : Math.max(0, toVersion - from.version)
      if (limit === 0) return Effect.succeed(from)
      return foldPages(
        store,
        streamId,
        from.version + 1,
        limit,
        { loaded: from, done: false },
        (progress, events) => foldChunk(streamId, progress, events, stopBefore)
      ).pipe(Effect.map((progress) => progress.loaded))
    })
}

/**
 * Builds the fold of one decider's streams from a state saved at a version (a snapshot): the
 * read starts at the event of that version, which must still be the one the state was folded
 * to (the same id, in a stream of the decider's type), then folds the events after it. Gives
 * nothing when the event is not there: the stream was cut short, or deleted and written again,
 * and the state describes events it no longer holds.
 */
export const resumeStream = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>
) => {
  const foldChunk = chunkFolder(decider)
  return (
    streamId: string,
    from: Loaded<State>,
    eventId: string
  ): Effect.Effect<Option.Option<Loaded<State>>, LoadError, EventStore> =>
    Effect.flatMap(EventStore, (store) => {
      let anchored = false
      const resume = (progress: Progress<State>, events: ReadonlyArray<RecordedEvent>) => {
        if (anchored) return foldChunk(streamId, progress, events, undefined)
        const first = events[0]
        if (
          first === undefined || first.version !== from.version || first.id !== eventId ||
          first.streamType !== decider.streamType
        ) {
          return Effect.succeed({ loaded: progress.loaded, done: true })
        }
        anchored = true
        const loaded = { ...progress.loaded, position: first.position }
        return foldChunk(streamId, { loaded, done: false }, events.slice(1), undefined)
      }
      return foldPages(store, streamId, from.version, undefined, { loaded: from, done: false }, resume).pipe(
        Effect.map((progress) => (anchored ? Option.some(progress.loaded) : Option.none()))
      )
    })
}

/**
 * Folds a stream's events from version `from` (at most `limit` of them) a page at a time:
 * through the store's page reader where it has one (see streamPages.ts), its `readStream`
 * otherwise. A row the store cannot read fails the fold there, unless the fold stopped before it.
 */
const foldPages = <State>(
  store: EventStore,
  streamId: string,
  from: number,
  limit: number | undefined,
  start: Progress<State>,
  step: (
    progress: Progress<State>,
    events: ReadonlyArray<RecordedEvent>
  ) => Effect.Effect<Progress<State>, StreamTypeMismatchError | EventDecodeError>
): Effect.Effect<Progress<State>, LoadError> => {
  const readPage = StreamPages.of(store)
  if (readPage === undefined) {
    return Stream.runFoldWhileEffect(
      Stream.chunks(store.readStream(streamId, limit === undefined ? { from } : { from, limit })),
      start,
      (progress) => !progress.done,
      (progress, chunk: Chunk.Chunk<RecordedEvent>) => step(progress, Chunk.toReadonlyArray(chunk))
    )
  }
  return Effect.gen(function*() {
    let progress = start
    let next = from
    let remaining = limit ?? Infinity
    while (!progress.done && remaining > 0) {
      const size = Math.min(remaining, StreamPages.pageSize)
      const page = yield* readPage(streamId, next, size, size === remaining)
      progress = yield* step(progress, page.events)
      if (progress.done) break
      if (page.broken !== undefined) return yield* Effect.fail(page.broken)
      if (!page.more) break
      next += page.events.length
      remaining -= page.events.length
    }
    return progress
  })
}

/** Folds one page of a stream's events into the progress so far. */
const chunkFolder = <State, Event extends { readonly _tag: string }>(
  decider: Decider.Decider<State, any, Event, any, any>
) => {
  const decode = Events.decoder(decider.events)
  return (
    streamId: string,
    progress: Progress<State>,
    chunk: Iterable<RecordedEvent>,
    stopBefore: ((recorded: RecordedEvent) => boolean) | undefined
  ): Effect.Effect<Progress<State>, StreamTypeMismatchError | EventDecodeError> => {
    let state = progress.loaded.state
    let last: RecordedEvent | undefined
    let done = false
    for (const recorded of chunk) {
      if (recorded.streamType !== decider.streamType) {
        return Effect.fail(
          new StreamTypeMismatchError({ streamId, expectedType: decider.streamType, actualType: recorded.streamType })
        )
      }
      if (stopBefore !== undefined && stopBefore(recorded)) {
        done = true
        break
      }
      const event = decode(recorded)
      if (Either.isLeft(event)) return Effect.fail(event.left)
      state = decider.evolve(state, event.right.data)
      last = recorded
    }
    const loaded = last === undefined ? progress.loaded : { state, version: last.version, position: last.position }
    return Effect.succeed({ loaded, done })
  }
}
