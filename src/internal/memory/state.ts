/**
 * What the in-memory event store holds, and what a fiber sees of it.
 *
 * Every operation on the state runs inside one synchronous step, and JavaScript runs one step at
 * a time, so each append checks and writes atomically with respect to every other fiber. Stored
 * events are never changed, so a read that spans several steps sees a consistent prefix of each
 * stream and of the global log.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type { RecordedEvent } from "../../Events.js"
import type * as Position from "../../Position.js"
import type * as Subscription from "../subscription.js"

/** An event as kept in memory: data and metadata as JSON text, parsed afresh on every read. */
export interface StoredEvent {
  readonly id: string
  readonly streamId: string
  readonly streamType: string
  readonly version: number
  readonly position: Position.Position
  readonly type: string
  readonly data: string
  readonly actor: string
  readonly timestamp: number
  readonly metadata: string
  readonly schemaVersion: number
}

export interface StoredStream {
  readonly type: string
  readonly events: Array<StoredEvent>
}

/** What the store held at a point: enough to undo what was written after it. */
export interface Mark {
  readonly logLength: number
  readonly sequence: bigint
}

/** An open transaction, and what the store held when it began. */
export interface Transaction {
  readonly begun: Mark
}

export interface MemoryState {
  readonly streams: Map<string, StoredStream>
  /** Every event in the global order. */
  readonly log: Array<StoredEvent>
  readonly byId: Map<string, StoredEvent>
  /** The sequence of the latest position given out. */
  sequence: bigint
  /** The transaction open now, if any: it holds `lock` while it is. */
  open: Transaction | undefined
  /** One writer at a time: an append, or a transaction for as long as it is open. */
  readonly lock: Effect.Semaphore
  /** The transaction the calling fiber works in. */
  readonly currentTransaction: FiberRef.FiberRef<Transaction | undefined>
  readonly wakeups: Subscription.Wakeups
}

export const makeState = (wakeups: Subscription.Wakeups): MemoryState => ({
  streams: new Map(),
  log: [],
  byId: new Map(),
  sequence: 0n,
  open: undefined,
  lock: Effect.unsafeMakeSemaphore(1),
  currentTransaction: FiberRef.unsafeMake<Transaction | undefined>(undefined),
  wakeups
})

export const toRecorded = (event: StoredEvent): RecordedEvent => ({
  id: event.id,
  streamId: event.streamId,
  streamType: event.streamType,
  version: event.version,
  position: event.position,
  type: event.type,
  data: JSON.parse(event.data),
  actor: event.actor,
  timestamp: new Date(event.timestamp),
  metadata: JSON.parse(event.metadata),
  schemaVersion: event.schemaVersion
})

/** Whether the calling fiber works in the open transaction: it sees its writes and holds the lock. */
export const inOpenTransaction = (state: MemoryState): Effect.Effect<boolean> =>
  Effect.map(
    FiberRef.get(state.currentTransaction),
    (transaction) => transaction !== undefined && transaction === state.open
  )

/** How much of the log a fiber sees: all of it, but what an open transaction it is not in wrote. */
export const visibleLength = (state: MemoryState, inside: boolean): number =>
  state.open === undefined || inside ? state.log.length : state.open.begun.logLength

/** The events of a stream a fiber sees. */
export const visibleEvents = (state: MemoryState, streamId: string, inside: boolean): ReadonlyArray<StoredEvent> => {
  const events = state.streams.get(streamId)?.events ?? []
  if (state.open === undefined || inside) return events
  const before = state.open.begun.sequence
  let count = events.length
  while (count > 0 && events[count - 1]!.position.sequence > before) count--
  return count === events.length ? events : events.slice(0, count)
}
