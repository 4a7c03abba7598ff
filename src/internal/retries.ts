/**
 * Recognising a retried append by its event ids, shared by every backend.
 *
 * An append is a retry when its event ids are exactly those of one earlier append to the same
 * stream: all of them, in order, of the same types, at versions its expected version allowed.
 * A retry stores nothing and gets the original result. Any other reuse of a stored id is
 * refused, so an id names one event for good.
 */
import { InvalidAppendError } from "../Errors.js"
import type { RecordedEvent } from "../Events.js"
import type { AppendResult } from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { PreparedAppend } from "./prepareAppend.js"

/** What the store holds for the ids of one append. */
export interface StoredIds {
  /** The stored event for each event of the append, by id; `undefined` where the id is new. */
  readonly events: ReadonlyArray<RecordedEvent | undefined>
  /** How many events the earlier append stored in this stream (those at the first one's position). */
  readonly originalSize: number
}

export type Classification = "new" | AppendResult | InvalidAppendError

export const classify = (append: PreparedAppend, stored: StoredIds): Classification => {
  const events = stored.events
  if (events.every((event) => event === undefined)) return "new"
  const first = events[0]
  const isRetry = first !== undefined &&
    stored.originalSize === events.length &&
    ExpectedVersion.isSatisfiedBy(append.expectedVersion, first.version - 1) &&
    events.every((event, index) =>
      event !== undefined && event.streamId === append.streamId && event.streamType === append.streamType &&
      event.version === first.version + index && event.type === append.events[index]!.type
    )
  if (isRetry) {
    return {
      streamId: append.streamId,
      version: first.version + events.length - 1,
      position: first.position,
      events: events as ReadonlyArray<RecordedEvent>
    }
  }
  const clash = events.find((event) => event !== undefined)!
  return new InvalidAppendError({
    streamId: append.streamId,
    reason: `the event id ${JSON.stringify(clash.id)} is already stored, at version ${clash.version} of stream ${
      JSON.stringify(clash.streamId)
    }, and this append is not a retry of the one that stored it`
  })
}

/**
 * The outcome of a whole (possibly multi-stream) append from its streams' classifications:
 * `undefined` when no id is stored (a new append), the original results when all of it was
 * stored before, a refusal otherwise. Streams without events take `current` as their result.
 */
export const combine = (
  appends: ReadonlyArray<PreparedAppend>,
  classifications: ReadonlyArray<Classification | undefined>,
  current: (streamId: string) => AppendResult
): ReadonlyArray<AppendResult> | InvalidAppendError | undefined => {
  const writing = classifications.filter((classification) => classification !== undefined)
  if (writing.every((classification) => classification === "new")) return undefined
  const refused = writing.find((classification) => classification instanceof InvalidAppendError)
  if (refused !== undefined) return refused
  if (writing.includes("new")) {
    const index = classifications.findIndex((classification) =>
      classification !== undefined && classification !== "new"
    )
    return new InvalidAppendError({
      streamId: appends[index]!.streamId,
      reason: "part of this append is already stored under the same event ids, and part is not"
    })
  }
  return appends.map((append, index) =>
    (classifications[index] as AppendResult | undefined) ?? current(append.streamId)
  )
}
