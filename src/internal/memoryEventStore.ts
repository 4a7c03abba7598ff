/**
 * The in-memory event store.
 *
 * Every operation on the shared state runs inside one synchronous step, and JavaScript runs one
 * step at a time, so each append checks and writes atomically with respect to every other fiber.
 * Stored events are never changed, so a read that spans several steps sees a consistent prefix
 * of each stream and of the global log.
 *
 * Transactions give the outcomes the SQL backends give (for inline projections and projection
 * batches): a transaction holds the store's one write lock while it is open, so its appends are
 * the newest events, which other fibers do not see until it commits and which are taken off the
 * end of the log if it fails.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Either from "effect/Either"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import { InvalidAppendError } from "../Errors.js"
import type { AppendError } from "../Errors.js"
import type { AppendRequest, AppendResult, EventStore, ReadStreamOptions, VerifyReport, Violation } from "../EventStore.js"
import type { RecordedEvent } from "../Events.js"
import * as Metadata from "../Metadata.js"
import * as Position from "../Position.js"
import { prepareAppends, refusal } from "./prepareAppend.js"
import type { PreparedAppend } from "./prepareAppend.js"
import * as Retries from "./retries.js"
import { compareStreamIds } from "./streamOrder.js"
import * as Subscription from "./subscription.js"
import { countLimit, validated, verifyLimit } from "./readOptions.js"

/** An event as kept in memory: data and metadata as JSON text, parsed afresh on every read. */
interface StoredEvent {
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

interface StoredStream {
  readonly type: string
  readonly events: Array<StoredEvent>
}

const toRecorded = (event: StoredEvent): RecordedEvent => ({
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

/** What the store held at a point: enough to undo what was written after it. */
interface Mark {
  readonly logLength: number
  readonly sequence: bigint
}

/** An open transaction, and what the store held when it began. */
interface Transaction {
  readonly begun: Mark
}

/** The store, and its transactions (for the in-memory projection store). */
export interface WithTransactions {
  readonly store: EventStore
  /**
   * Runs an effect in a transaction of the store, as the SQL backends run it in a database
   * transaction: its appends are seen by no other fiber until it succeeds, and are undone if it
   * fails; appends from other fibers wait until it ends. Inside a transaction, it is a savepoint.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const makeWithTransactions: Effect.Effect<WithTransactions> = Effect.map(Subscription.makeWakeups, (wakeups) => {
  const streams = new Map<string, StoredStream>()
  const log: Array<StoredEvent> = []
  const byId = new Map<string, StoredEvent>()
  let sequence = 0n
  /** One writer at a time: an append, or a transaction for as long as it is open. */
  const lock = Effect.unsafeMakeSemaphore(1)
  const currentTransaction = FiberRef.unsafeMake<Transaction | undefined>(undefined)
  let open: Transaction | undefined

  /** Whether the calling fiber works in the open transaction: it sees its writes and holds the lock. */
  const inOpenTransaction = Effect.map(FiberRef.get(currentTransaction), (transaction) =>
    transaction !== undefined && transaction === open)

  /** How much of the log a fiber sees: all of it, but what an open transaction it is not in wrote. */
  const visibleLength = (inside: boolean) => (open === undefined || inside ? log.length : open.begun.logLength)

  /** The events of a stream a fiber sees. */
  const visibleEvents = (streamId: string, inside: boolean): ReadonlyArray<StoredEvent> => {
    const events = streams.get(streamId)?.events ?? []
    if (open === undefined || inside) return events
    const before = open.begun.sequence
    let count = events.length
    while (count > 0 && events[count - 1]!.position.sequence > before) count--
    return count === events.length ? events : events.slice(0, count)
  }

  const mark = (): Mark => ({ logLength: log.length, sequence })

  /** Undoes what was written after a mark: the newest events are at the end of the log and of their streams. */
  const undo = (to: Mark) => {
    while (log.length > to.logLength) {
      const event = log.pop()!
      const stream = streams.get(event.streamId)!
      stream.events.pop()
      if (stream.events.length === 0) streams.delete(event.streamId)
      byId.delete(event.id)
    }
    sequence = to.sequence
  }

  const transaction: WithTransactions["transaction"] = (effect) =>
    Effect.flatMap(inOpenTransaction, (inside) => {
      if (inside) {
        const savepoint = mark()
        return Effect.onExit(effect, (exit) => (Exit.isFailure(exit) ? Effect.sync(() => undo(savepoint)) : Effect.void))
      }
      return lock.withPermits(1)(Effect.suspend(() => {
        const begun: Transaction = { begun: mark() }
        open = begun
        return Effect.locally(effect, currentTransaction, begun).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              open = undefined
              if (Exit.isFailure(exit)) {
                undo(begun.begun)
                return Effect.void
              }
              return log.length > begun.begun.logLength ? PubSub.publish(wakeups, undefined) : Effect.void
            })
          )
        )
      }))
    })

  /** A stream's version and latest position, as an append that stored nothing reports them. */
  const currentResult = (streamId: string): AppendResult => {
    const events = streams.get(streamId)?.events ?? []
    return { streamId, version: events.length, position: events.at(-1)?.position ?? Position.start, events: [] }
  }

  /** What the store holds for an append's event ids. */
  const storedIds = (append: PreparedAppend): Retries.StoredIds => {
    const events = append.events.map((event) => byId.get(event.id))
    const first = events[0]
    const originalSize = first === undefined
      ? 0
      : (streams.get(first.streamId)?.events ?? []).filter((event) => Position.equals(event.position, first.position))
        .length
    return { events: events.map((event) => event && toRecorded(event)), originalSize }
  }

  /** A retried append's outcome, or `undefined` when none of its ids is stored. */
  const asRetry = (appends: ReadonlyArray<PreparedAppend>) => {
    const outcome = Retries.combine(
      appends,
      appends.map((append) => append.events.length === 0 ? undefined : Retries.classify(append, storedIds(append))),
      currentResult
    )
    return outcome === undefined
      ? undefined
      : outcome instanceof InvalidAppendError
      ? Effect.fail(outcome)
      : Effect.succeed(outcome)
  }

  /** A stream as stored now, if it has events. */
  const found = (streamId: string) => {
    const stream = streams.get(streamId)
    return stream === undefined ? undefined : { type: stream.type, version: stream.events.length }
  }

  /** Stores checked appends at one new position. */
  const write = (appends: ReadonlyArray<PreparedAppend>, timestamp: number): ReadonlyArray<AppendResult> => {
    const position = appends.some((append) => append.events.length > 0)
      ? Position.make({ sequence: ++sequence })
      : Position.start
    // Within one position, the log holds the streams in stream id order, as SQL reads them.
    const written = new Map<string, AppendResult>()
    for (const append of [...appends].sort((a, b) => compareStreamIds(a.streamId, b.streamId))) {
      let stream = streams.get(append.streamId)
      if (stream === undefined && append.events.length > 0) {
        stream = { type: append.streamType, events: [] }
        streams.set(append.streamId, stream)
      }
      const recorded = append.events.map((event) => {
        const stored: StoredEvent = {
          id: event.id,
          type: event.type,
          data: event.data,
          actor: event.actor,
          metadata: event.metadata,
          schemaVersion: event.schemaVersion,
          streamId: append.streamId,
          streamType: append.streamType,
          version: stream!.events.length + 1,
          position,
          timestamp
        }
        stream!.events.push(stored)
        log.push(stored)
        byId.set(stored.id, stored)
        return toRecorded(stored)
      })
      written.set(append.streamId, { ...currentResult(append.streamId), events: recorded })
    }
    return appends.map((append) => written.get(append.streamId)!)
  }

  const appendMany = (
    requests: ReadonlyArray<AppendRequest>
  ): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> =>
    Effect.flatMap(
      Effect.all([Metadata.current, Clock.currentTimeMillis, inOpenTransaction]),
      ([context, now, inside]) => {
        // One synchronous step from here: nothing else runs between the checks and the write.
        const step = Effect.suspend((): Effect.Effect<ReadonlyArray<AppendResult>, AppendError> => {
          const prepared = prepareAppends(requests, context, () => crypto.randomUUID())
          if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
          const retried = asRetry(prepared.right)
          if (retried !== undefined) return retried
          const refused = refusal(prepared.right, found)
          if (refused !== undefined) return Effect.fail(refused)
          const results = write(prepared.right, now)
          // A transaction's appends wake readers when it commits.
          const wrote = !inside && results.some((result) => result.events.length > 0)
          return wrote ? Effect.as(PubSub.publish(wakeups, undefined), results) : Effect.succeed(results)
        })
        return inside ? step : lock.withPermits(1)(step)
      }
    )

  const readStream = (streamId: string, options?: ReadStreamOptions) =>
    validated("readStream", options, () => Stream.unwrap(Effect.map(inOpenTransaction, (inside) => {
      const events = visibleEvents(streamId, inside)
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
  const indexAfter = (position: Position.Position): number => {
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
  const batchAfter = (position: Position.Position, size: number, visible: number): ReadonlyArray<StoredEvent> => {
    const first = Math.min(indexAfter(position), visible)
    let end = Math.min(first + size, visible)
    const lastPosition = log[end - 1]?.position
    while (end < visible && lastPosition !== undefined && Position.equals(log[end]!.position, lastPosition)) end++
    return log.slice(first, end)
  }

  /**
   * The checks of the SQL backends over the store's own structures. Nothing but this module
   * writes them, so they find nothing unless it has a defect.
   */
  const verify = (limit: number): VerifyReport => {
    const violations: Array<Violation> = []
    for (const [streamId, stream] of streams) {
      if (stream.events.some((event, index) => event.version !== index + 1)) {
        violations.push({ _tag: "VersionGap", streamId, events: stream.events.length, lastVersion: stream.events.at(-1)?.version ?? 0 })
      }
      stream.events.forEach((event, index) => {
        const previous = stream.events[index - 1]
        if (previous !== undefined && Position.isAfter(previous.position, event.position)) {
          violations.push({ _tag: "OutOfOrder", streamId, version: event.version })
        }
      })
    }
    for (const event of log) {
      if (!streams.has(event.streamId)) {
        violations.push({ _tag: "EventWithoutStream", streamId: event.streamId, version: event.version, position: event.position })
      }
    }
    return { violations: violations.slice(0, limit), complete: violations.length <= limit }
  }

  const readBatch: Subscription.ReadBatch = (after, size) =>
    Effect.map(inOpenTransaction, (inside) => ({ events: batchAfter(after, size, visibleLength(inside)).map(toRecorded) }))

  const store: EventStore = {
    append: (request) => Effect.map(appendMany([request]), (results) => results[0]!),
    appendMany,
    readStream,
    readAll: (options) => Subscription.readAll(options, readBatch),
    subscribe: (options) => Subscription.follow(options, wakeups, readBatch),
    streamVersion: (streamId) => Effect.map(inOpenTransaction, (inside) => visibleEvents(streamId, inside).length),
    head: Effect.map(inOpenTransaction, (inside) => log[visibleLength(inside) - 1]?.position ?? Position.start),
    countAfter: (position, options) =>
      Effect.map(inOpenTransaction, (inside) => {
        const visible = visibleLength(inside)
        return Math.min(visible - Math.min(indexAfter(position), visible), countLimit(options))
      }),
    verify: (options) => Effect.sync(() => verify(verifyLimit(options)))
  }
  return { store, transaction }
})

export const make: Effect.Effect<EventStore> = Effect.map(makeWithTransactions, ({ store }) => store)
