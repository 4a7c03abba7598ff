/**
 * Appends to the in-memory store: checked and written in one synchronous step.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as PubSub from "effect/PubSub"
import type { AppendError } from "../../Errors.js"
import { InvalidAppendError } from "../../Errors.js"
import type { AppendRequest, AppendResult } from "../../EventStore.js"
import * as Metadata from "../../Metadata.js"
import * as Position from "../../Position.js"
import type { PreparedAppend } from "../prepareAppend.js"
import { prepareAppends, refusal } from "../prepareAppend.js"
import * as Retries from "../retries.js"
import { compareStreamIds } from "../streamOrder.js"
import type { MemoryState, StoredEvent } from "./state.js"
import { inOpenTransaction, toRecorded } from "./state.js"

/** A stream's version and latest position, as an append that stored nothing reports them. */
const currentResult = (state: MemoryState) => (streamId: string): AppendResult => {
  const events = state.streams.get(streamId)?.events ?? []
  return { streamId, version: events.length, position: events.at(-1)?.position ?? Position.start, events: [] }
}

/** What the store holds for an append's event ids. */
const storedIds = (state: MemoryState, append: PreparedAppend): Retries.StoredIds => {
  const events = append.events.map((event) => state.byId.get(event.id))
  const first = events[0]
  const originalSize = first === undefined
    ? 0
    : (state.streams.get(first.streamId)?.events ?? []).filter((event) =>
      Position.equals(event.position, first.position)
    )
      .length
  return { events: events.map((event) => event && toRecorded(event)), originalSize }
}

/** A retried append's outcome, or `undefined` when none of its ids is stored. */
const asRetry = (state: MemoryState, appends: ReadonlyArray<PreparedAppend>) => {
  const outcome = Retries.combine(
    appends,
    appends.map((append) =>
      append.events.length === 0 ? undefined : Retries.classify(append, storedIds(state, append))
    ),
    currentResult(state)
  )
  return outcome === undefined
    ? undefined
    : outcome instanceof InvalidAppendError
    ? Effect.fail(outcome)
    : Effect.succeed(outcome)
}

/** A stream as stored now, if it has events. */
const found = (state: MemoryState) => (streamId: string) => {
  const stream = state.streams.get(streamId)
  return stream === undefined ? undefined : { type: stream.type, version: stream.events.length }
}

/** Stores the events of one stream's part of an append, creating the stream if it is new. */
const store = (state: MemoryState, append: PreparedAppend, position: Position.Position, timestamp: number) => {
  let stream = state.streams.get(append.streamId)
  if (stream === undefined) {
    stream = { type: append.streamType, events: [] }
    state.streams.set(append.streamId, stream)
  }
  const events = stream.events
  return append.events.map((event) => {
    const stored: StoredEvent = {
      id: event.id,
      type: event.type,
      data: event.data,
      actor: event.actor,
      metadata: event.metadata,
      schemaVersion: event.schemaVersion,
      streamId: append.streamId,
      streamType: append.streamType,
      version: events.length + 1,
      position,
      timestamp
    }
    events.push(stored)
    state.log.push(stored)
    state.byId.set(stored.id, stored)
    return toRecorded(stored)
  })
}

/** Stores checked appends at one new position. */
const write = (
  state: MemoryState,
  appends: ReadonlyArray<PreparedAppend>,
  timestamp: number
): ReadonlyArray<AppendResult> => {
  const position = appends.some((append) => append.events.length > 0)
    ? Position.make({ sequence: ++state.sequence })
    : Position.start
  // Within one position, the log holds the streams in stream id order, as SQL reads them.
  const written = new Map<string, AppendResult>()
  for (const append of [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))) {
    const recorded = append.events.length === 0 ? [] : store(state, append, position, timestamp)
    written.set(append.streamId, { ...currentResult(state)(append.streamId), events: recorded })
  }
  return appends.map((append) => written.get(append.streamId)!)
}

export const appendMany = (state: MemoryState) =>
(
  requests: ReadonlyArray<AppendRequest>
): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> =>
  Effect.flatMap(
    Effect.all([Metadata.current, Clock.currentTimeMillis, inOpenTransaction(state)]),
    ([context, now, inside]) => {
      // One synchronous step from here: nothing else runs between the checks and the write.
      const step = Effect.suspend((): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> => {
        const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
        if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
        const retried = asRetry(state, prepared.right)
        if (retried !== undefined) return retried
        const refused = refusal(prepared.right, found(state))
        if (refused !== undefined) return Effect.fail(refused)
        const results = write(state, prepared.right, now)
        // A transaction's appends wake readers when it commits.
        const wrote = !inside && results.some((result) => result.events.length > 0)
        return wrote ? Effect.as(PubSub.publish(state.wakeups, undefined), results) : Effect.succeed(results)
      })
      return inside ? step : state.lock.withPermits(1)(step)
    }
  )
