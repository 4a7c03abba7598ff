/**
 * Reads of the in-memory store: of a stream, and of the global log by position.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ReadStreamOptions } from "../../EventStore.js"
import * as Position from "../../Position.js"
import { validated } from "../readOptions.js"
import type * as Subscription from "../subscription.js"
import type { MemoryState, StoredEvent } from "./state.js"
import { inOpenTransaction, toRecorded, visibleEvents, visibleLength } from "./state.js"

export const readStream = (state: MemoryState) => (streamId: string, options?: ReadStreamOptions) =>
  validated("readStream", options, () =>
    Stream.unwrap(Effect.map(inOpenTransaction(state), (inside) => {
      const events = visibleEvents(state, streamId, inside)
      const limit = options?.limit ?? Infinity
      if (options?.direction === "backward") {
        const last = Math.min(options.from ?? events.length, events.length)
        const first = Math.max(0, last - limit)
        return Stream.fromIterable(events.slice(first, Math.max(first, last)).reverse().map(toRecorded))
      }
      const first = Math.max(1, options?.from ?? 1) - 1
      return Stream.fromIterable(events.slice(first, first + limit).map(toRecorded))
    })))

/** The index in the log of the first event after `position`. */
export const indexAfter = (state: MemoryState, position: Position.Position): number => {
  const { log } = state
  let low = 0
  let high = log.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (Position.isAfter(log[middle]!.position, position)) high = middle
    else low = middle + 1
  }
  return low
}

/** A batch of at least `size` events after `position`, extended to end on a whole append. */
const batchAfter = (
  state: MemoryState,
  position: Position.Position,
  size: number,
  visible: number
): ReadonlyArray<StoredEvent> => {
  const { log } = state
  const first = Math.min(indexAfter(state, position), visible)
  let end = Math.min(first + size, visible)
  const lastPosition = log[end - 1]?.position
  while (end < visible && lastPosition !== undefined && Position.equals(log[end]!.position, lastPosition)) end++
  return log.slice(first, end)
}

export const readBatch = (state: MemoryState): Subscription.ReadBatch => (after, size) =>
  Effect.map(inOpenTransaction(state), (inside) => ({
    events: batchAfter(state, after, size, visibleLength(state, inside)).map(toRecorded)
  }))
