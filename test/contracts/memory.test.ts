/** Every contract on the in-memory store. */
import { Effect, Option, TestClock } from "effect"
import { EventStore, ExpectedVersion, SnapshotStore } from "effect-eventsourcing"
import type { WriteDated } from "./backend.js"
import { runContracts } from "./index.js"
import { memoryReadModel } from "./readModel.js"

/** The memory store stamps events with the Clock: set the test clock to each time and append. */
const appendOnTestClock: WriteDated = (streamId, events) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.forEach(
      events,
      (event, index) =>
        Effect.zipRight(
          TestClock.setTime(event.timestamp.getTime()),
          store.append({
            streamId,
            streamType: "counter",
            expectedVersion: ExpectedVersion.exact(index),
            events: [{ type: "Counted", data: { by: event.by }, actor: event.actor }]
          })
        ),
      { discard: true }
    ))

/** Rewrites the state of each of a stream's snapshots through the store, newest first. */
const corruptInMemory = (streamId: string, state: string, maxVersion = Number.MAX_SAFE_INTEGER): Effect.Effect<
  void,
  unknown,
  SnapshotStore.SnapshotStore
> =>
  Effect.flatMap(
    SnapshotStore.SnapshotStore,
    (store) =>
      Effect.flatMap(store.read(streamId, { maxVersion }), (snapshot) =>
        Option.match(snapshot, {
          onNone: () => Effect.void,
          onSome: (found) =>
            Effect.zipRight(store.write({ ...found, state }), corruptInMemory(streamId, state, found.version - 1))
        }))
  )

runContracts({
  name: "memory",
  skip: false,
  transactional: false,
  open: () => ({
    layer: EventStore.layerMemory,
    readModel: memoryReadModel,
    writeDated: appendOnTestClock,
    corruptSnapshots: (streamId, state) => corruptInMemory(streamId, state)
  })
})
