/**
 * Projections on SQL stores meeting what only a database can hold: rows another writer left
 * (a broken JSON, a checkpoint row without a position).
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Option, Schema } from "effect"
import { EventStore, ExpectedVersion, Position, Projection, ProjectionStore } from "effect-eventsourcing"
import { backends, execute } from "../support/backends.js"
import { live } from "../support/live.js"

const Noted = Schema.TaggedStruct("Noted", { n: Schema.Int })

const noting = (name: string) => Projection.make({ name, events: Noted, handle: () => Effect.void })

const appendNoted = (streamId: string, n: number) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.append({
        streamId,
        streamType: "note",
        expectedVersion: ExpectedVersion.any,
        events: [{ type: "Noted", data: { n } }]
      })
  )

for (const backend of backends("sql_projections")) {
  describe.skipIf(backend.skip)(`${backend.name} projections`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)
      const p = backend.placeholder

      it.effect("start from the first event when the checkpoint row has no position", () =>
        Effect.gen(function*() {
          const name = `null-checkpoint-${crypto.randomUUID()}`
          yield* execute(`INSERT INTO ${backend.table("projections")} (source, position) VALUES (${p(1)}, NULL)`, [
            name
          ])
          const appended = yield* appendNoted(`null-${crypto.randomUUID()}`, 1)
          const runner = yield* Effect.fork(Projection.run(noting(name), { pollInterval: "20 millis" }))
          yield* Projection.waitFor(name, appended.position).pipe(Effect.timeout("20 seconds"))
          yield* Fiber.interrupt(runner)
        }))

      // Last: every projection that reads the whole store meets the broken event from here on.
      it.effect("stop with ProjectionError at a stored event the store cannot read, instead of looping", () =>
        Effect.gen(function*() {
          const name = `broken-${crypto.randomUUID()}`
          const streamId = `broken-${crypto.randomUUID()}`
          const good = yield* appendNoted(streamId, 1)
          yield* appendNoted(streamId, 2)
          // Another writer stored details that are not JSON, on an event the projection does not even consume.
          yield* execute(
            `UPDATE ${backend.table("events")} SET details = ${p(1)}, name = 'Other' WHERE entity_id = ${
              p(2)
            } AND ordinal = 2`,
            ["{broken", streamId]
          )
          const error = yield* Effect.flip(Projection.run(noting(name), { pollInterval: "20 millis" })).pipe(
            Effect.timeout("20 seconds")
          )
          expect(error).toMatchObject({
            _tag: "ProjectionError",
            projection: name,
            streamId,
            version: 2,
            eventType: "Other"
          })
          expect(error.message).toContain("not valid JSON")
          const projections = yield* ProjectionStore.ProjectionStore
          // Everything before it was handled.
          const checkpoint = yield* projections.checkpoint(name)
          expect(Option.isSome(checkpoint) && !Position.isAfter(good.position, checkpoint.value)).toBe(true)
        }))
    })
  })
}
