import { describe } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import type { WriteDated } from "./contract/historyContract.js"
import { historyContract } from "./contract/historyContract.js"
import type { Backend } from "./support/backends.js"
import { postgresBackend, sqliteBackend } from "./support/backends.js"

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

/**
 * Rows as another implementation of the protocol (or an older release) writes them: its columns
 * only, with the timestamp in days since the Unix epoch.
 */
const insertProtocolRows = (backend: Backend): WriteDated => (streamId, events) =>
  Effect.promise(async () => {
    const p = backend.placeholder
    await backend.query(
      `INSERT INTO ${backend.table("entities")} (id, type, version) VALUES (${p(1)}, 'counter', ${p(2)})`,
      [streamId, events.length]
    )
    for (const [index, event] of events.entries()) {
      await backend.query(
        `INSERT INTO ${backend.table("events")} (entity_id, name, details, actor, timestamp, ordinal, position)
        VALUES (${p(1)}, 'Counted', ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)},
          (SELECT COALESCE(MAX(position), 0) + 1 FROM ${backend.table("events")}))`,
        [streamId, JSON.stringify({ by: event.by }), event.actor, event.timestamp.getTime() / 86_400_000, index + 1]
      )
    }
  })

historyContract("memory", EventStore.layerMemory, appendOnTestClock)

const sqlite = sqliteBackend()
historyContract(sqlite.name, sqlite.layer, insertProtocolRows(sqlite))

const postgres = postgresBackend("history")
describe.skipIf(postgres.skip)(postgres.name, () => {
  historyContract(postgres.name, postgres.layer, insertProtocolRows(postgres))
})
