/**
 * What the event store contracts (append, read, readAll, subscribe, retries) share: new events,
 * reads collected into arrays, and the position to read after to see only what a case appends.
 */
import { Chunk, Deferred, Effect, Ref, Stream } from "effect"
import type { Events, Position } from "effect-eventsourcing"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"

export const newStreamId = (label: string) => `${label}-${crypto.randomUUID()}`

export const event = (type: string, data: unknown = {}): Events.NewEvent => ({ type, data })

export const events = (count: number, type = "Happened") =>
  Array.from({ length: count }, (_, index) => event(type, { index }))

/** Resolves once `parties` fibers have arrived, so they all pass a point before any goes on. */
export const makeBarrier = (parties: number) =>
  Effect.gen(function*() {
    const arrived = yield* Ref.make(0)
    const open = yield* Deferred.make<void>()
    return Effect.flatMap(Ref.updateAndGet(arrived, (count) => count + 1), (count) =>
      count === parties ? Deferred.succeed(open, undefined) : Deferred.await(open))
  })

export const readStream = (streamId: string, options?: EventStore.ReadStreamOptions) =>
  Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readStream(streamId, options))).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

export const readAllAfter = (after: Position.Position, batchSize?: number) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => Stream.runCollect(store.readAll(batchSize === undefined ? { after } : { after, batchSize }))
  ).pipe(Effect.map(Chunk.toReadonlyArray))

/** The position of a fresh marker append: reading after it reads what the test appends next. */
export const currentPosition = Effect.flatMap(EventStore.EventStore, (store) =>
  Effect.map(
    store.append({
      streamId: newStreamId("marker"),
      streamType: "marker",
      expectedVersion: ExpectedVersion.noStream,
      events: [event("Marked")]
    }),
    (result) => result.position
  ))

export const append = (
  streamId: string,
  expectedVersion: ExpectedVersion.ExpectedVersion,
  newEvents: ReadonlyArray<Events.NewEvent>,
  streamType = "thing"
) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => store.append({ streamId, streamType, expectedVersion, events: newEvents })
  )
