/**
 * Appends made inside the application's own `sql.withTransaction` join that transaction: the
 * events and the application's writes commit together or not at all, and a failed append leaves
 * the application's transaction usable.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import { Errors, EventStore, ExpectedVersion } from "effect-eventsourcing"
import { backends, execute } from "../support/backends.js"
import { live } from "../support/live.js"

class Abort extends Error {}

for (const backend of backends("transactions")) {
  describe.skipIf(backend.skip)(`${backend.name} transactions`, () => {
    layer(backend.layer)((methods) => {
      const it = live(methods)
      const notes = backend.table("notes")
      const p = backend.placeholder

      const setUp = execute(`CREATE TABLE IF NOT EXISTS ${notes} (id TEXT PRIMARY KEY, text TEXT NOT NULL)`)
      const note = (id: string, text: string) =>
        execute(`INSERT INTO ${notes} (id, text) VALUES (${p(1)}, ${p(2)})`, [id, text])
      const noteExists = (id: string) =>
        Effect.map(execute(`SELECT id FROM ${notes} WHERE id = ${p(1)}`, [id]), (rows) => rows.length === 1)
      const append = (streamId: string, expectedVersion: ExpectedVersion.ExpectedVersion, id?: string) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          store.append({
            streamId,
            streamType: "thing",
            expectedVersion,
            events: [id === undefined ? { type: "Noted", data: {} } : { type: "Noted", data: {}, id }]
          }))
      const version = (streamId: string) =>
        Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion(streamId))

      it.effect("commits the events and the application's writes together", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* setUp
          const streamId = `together-${crypto.randomUUID()}`
          yield* sql.withTransaction(
            Effect.zipRight(append(streamId, ExpectedVersion.noStream), note(streamId, "kept"))
          )
          expect(yield* version(streamId)).toBe(1)
          expect(yield* noteExists(streamId)).toBe(true)
        }))

      it.effect("rolls the events back with the application's transaction", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* setUp
          const streamId = `rolled-back-${crypto.randomUUID()}`
          const outcome = yield* Effect.either(
            sql.withTransaction(Effect.gen(function*() {
              yield* append(streamId, ExpectedVersion.noStream)
              yield* append(`${streamId}-other`, ExpectedVersion.noStream)
              yield* note(streamId, "lost")
              return yield* Effect.fail(new Abort())
            }))
          )
          expect(Either.isLeft(outcome) && outcome.left).toBeInstanceOf(Abort)
          expect(yield* version(streamId)).toBe(0)
          expect(yield* version(`${streamId}-other`)).toBe(0)
          expect(yield* noteExists(streamId)).toBe(false)
          // The stream can be created afresh: nothing of the rolled-back append remains.
          expect((yield* append(streamId, ExpectedVersion.noStream)).version).toBe(1)
        }))

      it.effect("leaves the application's transaction usable after an append fails", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* setUp
          const streamId = `conflicted-${crypto.randomUUID()}`
          const eventId = crypto.randomUUID()
          yield* append(streamId, ExpectedVersion.noStream, eventId)
          const results = yield* sql.withTransaction(Effect.gen(function*() {
            const conflict = yield* Effect.flip(append(streamId, ExpectedVersion.noStream))
            const reused = yield* Effect.flip(append(`${streamId}-other`, ExpectedVersion.noStream, eventId))
            // A retry of the stored append hits the unique event id inside the transaction.
            const retried = yield* append(streamId, ExpectedVersion.noStream, eventId)
            yield* note(streamId, "still here")
            const next = yield* append(streamId, ExpectedVersion.exact(1))
            return { conflict, reused, retried, next }
          }))
          expect(results.conflict).toBeInstanceOf(Errors.ConcurrencyError)
          expect(results.reused).toBeInstanceOf(Errors.InvalidAppendError)
          expect(results.retried.version).toBe(1)
          expect(results.next.version).toBe(2)
          expect(yield* noteExists(streamId)).toBe(true)
          expect(yield* version(streamId)).toBe(2)
        }))
    })
  })
}
