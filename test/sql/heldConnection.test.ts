/**
 * SQLite has one connection, and @effect/sql-sqlite-node gives its permit back as soon as a
 * statement has the connection, before the statement runs. A store's statement from outside a
 * transaction that yields at that moment would run later, inside whichever transaction began
 * meanwhile, and see (or write into) what that transaction has not committed. The store's
 * statements hold the connection while they run, so none can.
 *
 * The test lines that moment up: a reader queues for the connection behind a held transaction,
 * a writer queues behind the reader, and the reader yields after every few fiber operations. When the
 * holder lets go, the reader takes the connection; if it gave the permit back before its
 * statement ran, the writer would begin its transaction and write a snapshot in the reader's
 * yield, and the reader would read that snapshot, which the writer then rolls back.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Option } from "effect"
import { SnapshotStore } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { live } from "../support/live.js"
import { temporaryDatabase } from "../support/sqlite.js"

class RolledBack extends Error {}

/** Lets the fibers that are ready run, so that the queue for the connection forms in order. */
const settle = Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow(), { discard: true })

describe("SQLite statements outside a transaction", () => {
  layer(SqliteEventStore.layer({ filename: temporaryDatabase() }))((methods) => {
    const it = live(methods)

    it.effect("hold the connection while they run: none runs inside another fiber's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const snapshots = yield* SnapshotStore.SnapshotStore
        // Each attempt yields after a different number of operations (fewer than ten and a
        // fiber spends its whole turn yielding), so that one of them yields at the moment
        // between taking the connection and running the statement.
        for (let attempt = 0; attempt < 24; attempt++) {
          const streamId = `held-${attempt}`
          const holderGate = yield* Deferred.make<void>()
          const writerGate = yield* Deferred.make<void>()
          const writerWrote = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(sql.withTransaction(Deferred.await(holderGate)))
          yield* settle
          const reader = yield* Effect.fork(
            Effect.withMaxOpsBeforeYield(snapshots.read(streamId), 10 + attempt)
          )
          yield* settle
          const writer = yield* Effect.fork(
            sql.withTransaction(
              Effect.zipRight(
                snapshots.write({
                  streamId,
                  streamType: "thing",
                  version: 1,
                  eventId: "e1",
                  schemaId: "s",
                  state: "{}"
                }),
                Effect.zipRight(
                  Deferred.succeed(writerWrote, undefined),
                  Effect.zipRight(Deferred.await(writerGate), Effect.fail(new RolledBack()))
                )
              )
            )
          )
          yield* settle
          yield* Deferred.succeed(holderGate, undefined)
          yield* Fiber.join(holder)
          // The reader reads, or the writer took the connection first and waits at its gate
          // (the reader then reads after the writer has rolled back).
          yield* Effect.raceFirst(Effect.asVoid(Fiber.await(reader)), Deferred.await(writerWrote))
          yield* Deferred.succeed(writerGate, undefined)
          const read = yield* Fiber.join(reader)
          const written = yield* Effect.either(Fiber.join(writer))
          expect(Either.isLeft(written) && written.left instanceof RolledBack).toBe(true)
          // The snapshot was never committed: no reader may have seen it.
          expect(Option.isNone(read)).toBe(true)
          expect(Option.isNone(yield* snapshots.read(streamId))).toBe(true)
        }
      }))
  })
})
