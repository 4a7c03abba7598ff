/**
 * Group commit on both SQL backends: appends that come while others are in flight are stored
 * together, in one transaction, and each keeps its own outcome. The tests hold the database's
 * writes from outside (PostgreSQL: the advisory locks of four streams, so that the appends to
 * them fill every batch slot; SQLite: its write lock, from a connection of its own), queue appends
 * behind them, then let go, so that the queued appends form one batch for certain.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, Chunk, Effect, Either, Exit, Fiber, Metric, Option, Stream } from "effect"
import type { Scope } from "effect"
import { EventStore, ExpectedVersion, Position } from "effect-eventsourcing"
import * as SqlEventStore from "effect-eventsourcing/SqlEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"
import { temporaryDatabase } from "../support/sqlite.js"

interface Setup {
  readonly name: string
  readonly skip: boolean
  readonly layer: ReturnType<typeof isolatedLayer>
  /**
   * Holds the store's writes until the returned effect is run: appends sent meanwhile wait,
   * after the ones `fillSlots` sent to take every batch slot.
   */
  readonly hold: Effect.Effect<{ readonly release: Effect.Effect<void> }, never, Scope.Scope>
  /** Streams whose appends fill every batch slot while writes are held. */
  readonly slotStreams: ReadonlyArray<string>
}

const pgSetup = (): Setup => {
  const schema = isolatedSchema("group_commit")
  // As many as the store has batches in flight (pg/append.ts).
  const slotStreams = [1, 2, 3, 4].map((n) => `slot-${n}-${crypto.randomUUID()}`)
  return {
    name: "PostgreSQL",
    skip: skipPostgres,
    layer: isolatedLayer(schema),
    slotStreams,
    hold: Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.promise(() => rawConnection()),
        (client) => Effect.promise(() => client.end())
      )
      yield* Effect.promise(() => client.query("BEGIN"))
      // The keys the store locks a stream under (see pg/append.ts).
      yield* Effect.promise(() =>
        client.query(
          `SELECT pg_advisory_xact_lock(hashtextextended($1 || id, 0)) FROM unnest($2::text[]) AS id`,
          [`effect-eventsourcing ${schema}.events`, slotStreams]
        )
      )
      return { release: Effect.asVoid(Effect.promise(() => client.query("COMMIT"))) }
    })
  }
}

const sqliteSetup = (): Setup => {
  const filename = temporaryDatabase("group-commit.sqlite")
  return {
    name: "SQLite",
    skip: false,
    layer: SqliteEventStore.layer({ filename }) as unknown as ReturnType<typeof isolatedLayer>,
    // One batch at a time: the append that leads it waits for the lock alone.
    slotStreams: [`slot-${crypto.randomUUID()}`],
    hold: Effect.gen(function*() {
      const database = yield* Effect.acquireRelease(
        Effect.sync(() => new Database(filename)),
        (database) => Effect.sync(() => database.close())
      )
      database.exec("BEGIN IMMEDIATE")
      return { release: Effect.sync(() => database.exec("COMMIT")) }
    })
  }
}

const event = (id?: string) => (id === undefined ? { type: "Noted", data: { at: Date.now() } } : {
  type: "Noted",
  data: {},
  id
})

const request = (
  streamId: string,
  expectedVersion: ExpectedVersion.ExpectedVersion,
  options: { readonly streamType?: string; readonly ids?: ReadonlyArray<string>; readonly count?: number } = {}
): EventStore.AppendRequest => ({
  streamId,
  streamType: options.streamType ?? "thing",
  expectedVersion,
  events: options.ids?.map((id) => event(id)) ?? Array.from({ length: options.count ?? 1 }, () => event())
})

/** Batches of more than one append so far, and fallbacks. */
const counts = Effect.gen(function*() {
  const sizes = yield* Metric.value(SqlEventStore.appendBatchSize)
  const single = sizes.buckets.find(([bound]) => bound === 1)?.[1] ?? 0
  return {
    batches: sizes.count,
    combined: sizes.count - single,
    appends: sizes.sum,
    fallbacks: (yield* Metric.value(SqlEventStore.appendBatchFallbacks)).count
  }
})

/**
 * Sends the appends that take every batch slot, and waits until each has started its batch
 * (which it counts before it sends anything), so that appends sent after them wait.
 */
const fillSlots = (setup: Setup) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    // One at a time: appends sent together would share one batch, and so one slot.
    return yield* Effect.forEach(setup.slotStreams, (streamId) =>
      Effect.gen(function*() {
        const started = (yield* counts).batches
        const slot = yield* Effect.fork(store.append(request(streamId, ExpectedVersion.any)))
        while ((yield* counts).batches === started) yield* Effect.sleep("5 millis")
        return slot
      }))
  })

/**
 * Runs `appends` while the store's writes are held, so that they wait behind the appends that
 * fill the batch slots and then go as one batch; their exits, in order.
 */
const whileHeld = (setup: Setup, appends: ReadonlyArray<EventStore.AppendRequest>) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const { release } = yield* setup.hold
    const slots = yield* fillSlots(setup)
    const fibers = yield* Effect.forEach(appends, (append) => Effect.fork(store.append(append)))
    yield* Effect.sleep("50 millis")
    yield* release
    yield* Fiber.joinAll(slots)
    return yield* Effect.forEach(fibers, Fiber.await)
  }))

/** The tag of the error an append failed with. */
const errorTag = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause))?._tag : undefined

const readAllEvents = Effect.flatMap(
  EventStore.EventStore,
  (store) => Effect.map(Stream.runCollect(store.readAll()), Chunk.toReadonlyArray)
)

for (const setup of [sqliteSetup(), pgSetup()]) {
  describe.skipIf(setup.skip)(`${setup.name} group commit`, () => {
    layer(setup.layer)((methods) => {
      const it = live(methods)

      it.effect("stores appends that waited in one batch, each with its own outcome", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          const existing = `existing-${id}`
          const other = `other-type-${id}`
          yield* store.append(request(existing, ExpectedVersion.noStream, { count: 2 }))
          yield* store.append(request(other, ExpectedVersion.noStream, { streamType: "gadget" }))
          const before = yield* counts

          const exits = yield* whileHeld(setup, [
            request(`new-${id}`, ExpectedVersion.noStream, { count: 3 }),
            request(existing, ExpectedVersion.exact(2)),
            request(`stale-${id}`, ExpectedVersion.exact(4)),
            request(other, ExpectedVersion.any),
            request(`any-${id}`, ExpectedVersion.any),
            request(`missing-${id}`, ExpectedVersion.streamExists),
            // The same stream as the first: in the next batch, after it.
            request(`new-${id}`, ExpectedVersion.exact(3))
          ])
          const after = yield* counts
          expect(after.combined - before.combined).toBeGreaterThanOrEqual(1)
          expect(after.fallbacks).toBe(before.fallbacks)

          const [created, moved, stale, mismatch, anyVersion, missing, next] = exits
          const ok = (exit: (typeof exits)[number]) => Exit.isSuccess(exit) ? exit.value : undefined
          expect(ok(created!)?.version).toBe(3)
          expect(ok(moved!)?.version).toBe(3)
          expect(ok(anyVersion!)?.version).toBe(1)
          expect(ok(next!)?.version).toBe(4)
          expect([stale, mismatch, missing].map((exit) => errorTag(exit!))).toEqual([
            "ConcurrencyError",
            "StreamTypeMismatchError",
            "ConcurrencyError"
          ])

          // What each append was told is what the store holds: its events, at its position.
          const all = yield* readAllEvents
          for (const result of [created, moved, anyVersion, next].map((exit) => ok(exit!)!)) {
            const stored = all.filter((event) => event.streamId === result.streamId && event.version <= result.version)
              .slice(-result.events.length)
            expect(stored.map((event) => event.id)).toEqual(result.events.map((event) => event.id))
            expect(stored.map((event) => event.position)).toEqual(stored.map(() => result.position))
          }
          // Each append at a position of its own, and nothing from the refused ones.
          const positions = new Set(
            [created, moved, anyVersion, next].map((exit) => Position.toString(ok(exit!)!.position))
          )
          expect(positions.size).toBe(4)
          for (const refused of [`stale-${id}`, `missing-${id}`]) {
            expect(yield* store.streamVersion(refused)).toBe(0)
          }
          expect(all.filter((event) => event.streamId === other)).toHaveLength(1)
          // One order: versions of each stream rise along the global order.
          for (const streamId of [`new-${id}`, existing]) {
            const versions = all.filter((event) => event.streamId === streamId).map((event) => event.version)
            expect(versions).toEqual(versions.map((_, index) => index + 1))
          }
        }))

      it.effect("sends a batch that fails as a whole again one append at a time, so one bad append fails none of the others", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          const ids = [`${id}-a`, `${id}-b`]
          const original = yield* store.append(request(`retried-${id}`, ExpectedVersion.noStream, { ids }))
          const before = yield* counts

          const exits = yield* whileHeld(setup, [
            request(`fresh-1-${id}`, ExpectedVersion.noStream),
            // The same events again, by their ids: a unique violation that fails the batch's statement.
            request(`retried-${id}`, ExpectedVersion.noStream, { ids }),
            request(`fresh-2-${id}`, ExpectedVersion.noStream),
            // Events whose ids another stream holds: refused, alone.
            request(`thief-${id}`, ExpectedVersion.noStream, { ids: [`${id}-a`] })
          ])
          const after = yield* counts
          expect(after.fallbacks - before.fallbacks).toBe(1)

          const [fresh1, retried, fresh2, thief] = exits
          expect(Exit.isSuccess(fresh1!) && fresh1.value.version).toBe(1)
          expect(Exit.isSuccess(fresh2!) && fresh2.value.version).toBe(1)
          // The retry is told what the original append was told.
          expect(Exit.isSuccess(retried!) && retried.value).toEqual(original)
          expect(errorTag(thief!)).toBe("InvalidAppendError")
          expect(yield* store.streamVersion(`thief-${id}`)).toBe(0)
          expect(yield* store.streamVersion(`retried-${id}`)).toBe(2)
        }))

      it.effect("stores hostile text in a batch exactly as given", () =>
        Effect.gen(function*() {
          const id = crypto.randomUUID()
          // In names too, but for NUL: PostgreSQL's text cannot hold it (JSON data escapes it).
          const name = (text: string) => text.replaceAll("\u0000", "")
          const texts = [
            "nul\u0000inside",
            "quotes \"'`",
            "line\u2028separator",
            "emoji 😀",
            "back\\slash",
            "{\"json\": 1}"
          ]
          const appends = texts.map((text, index): EventStore.AppendRequest => ({
            streamId: `hostile-${index}-${name(text)}-${id}`,
            streamType: `type ${name(text)}`,
            expectedVersion: ExpectedVersion.noStream,
            events: [{
              type: `Event ${name(text)}`,
              data: { text, list: [text] },
              actor: `actor ${name(text)}`,
              metadata: { text }
            }]
          }))
          const before = yield* counts
          const exits = yield* whileHeld(setup, appends)
          expect((yield* counts).combined - before.combined).toBeGreaterThanOrEqual(1)
          const all = yield* readAllEvents
          for (const [index, append] of appends.entries()) {
            const exit = exits[index]!
            expect(Exit.isSuccess(exit)).toBe(true)
            const stored = all.find((event) => event.streamId === append.streamId)!
            const sent = append.events[0]!
            expect({ type: stored.type, streamType: stored.streamType, data: stored.data, actor: stored.actor })
              .toEqual(
                { type: sent.type, streamType: append.streamType, data: sent.data, actor: sent.actor }
              )
            expect(stored.metadata).toMatchObject(sent.metadata!)
          }
        }))

      it.effect("withdraws an append interrupted while it waits for its batch", () =>
        Effect.scoped(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          const { release } = yield* setup.hold
          const slots = yield* fillSlots(setup)
          const waiting = yield* Effect.fork(store.append(request(`withdrawn-${id}`, ExpectedVersion.noStream)))
          const kept = yield* Effect.fork(store.append(request(`kept-${id}`, ExpectedVersion.noStream)))
          yield* Effect.sleep("50 millis")
          yield* Fiber.interrupt(waiting)
          yield* release
          yield* Fiber.joinAll(slots)
          expect((yield* Fiber.join(kept)).version).toBe(1)
          expect(yield* store.streamVersion(`withdrawn-${id}`)).toBe(0)
        })))

      it.effect("never puts an append made in the application's transaction in a batch", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          const before = yield* counts
          const rolledBack = yield* Effect.either(sql.withTransaction(Effect.gen(function*() {
            yield* Effect.forEach(
              [1, 2, 3],
              (n) => store.append(request(`in-transaction-${n}-${id}`, ExpectedVersion.noStream)),
              { concurrency: "unbounded" }
            )
            return yield* Effect.fail("abort" as const)
          })))
          expect(rolledBack).toEqual(Either.left("abort"))
          expect((yield* counts).batches).toBe(before.batches)
          for (const n of [1, 2, 3]) expect(yield* store.streamVersion(`in-transaction-${n}-${id}`)).toBe(0)
        }))

      it.effect("reads versions asked for together in one statement, each with its own answer", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          yield* store.append(request(`two-${id}`, ExpectedVersion.noStream, { count: 2 }))
          yield* store.append(request(`one-${id}`, ExpectedVersion.noStream))
          const asked = [`two-${id}`, `missing-${id}`, `one-${id}`, `two-${id}`, `bad\u0000${id}`, `one-${id}`]
          const before = yield* Metric.value(SqlEventStore.versionReadBatchSize)
          // Asked at one moment: the first read leads, and the others join it during its turn.
          const versions = yield* Effect.forEach(asked, (streamId) => store.streamVersion(streamId), {
            concurrency: "unbounded"
          })
          expect(versions).toEqual([2, 0, 1, 2, 0, 1])
          const after = yield* Metric.value(SqlEventStore.versionReadBatchSize)
          // The id no stream can have is answered without the database.
          expect(after.sum - before.sum).toBe(5)
          expect(after.count - before.count).toBeLessThan(5)

          // Inside a transaction the read is the transaction's own, never shared: it sees the
          // transaction's append (a read on another connection would not, and on SQLite would
          // wait for the transaction's end).
          const inside = yield* Effect.either(sql.withTransaction(Effect.gen(function*() {
            yield* store.append(request(`one-${id}`, ExpectedVersion.exact(1)))
            return yield* Effect.fail(yield* store.streamVersion(`one-${id}`))
          })))
          expect(inside).toEqual(Either.left(2))
          expect(yield* store.streamVersion(`one-${id}`)).toBe(1)
        }))

      it.effect("stores many concurrent appends, combined, with every event once and in one order", () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = crypto.randomUUID()
          const before = yield* counts
          const streams = Array.from({ length: 20 }, (_, n) => `busy-${n}-${id}`)
          // 400 appends, 40 at a time, each expecting the version its stream had when it was read.
          const results = yield* Effect.forEach(
            Array.from({ length: 400 }, (_, n) => n),
            (n) => {
              const streamId = streams[n % streams.length]!
              const attempt: Effect.Effect<EventStore.AppendResult, unknown> = Effect.flatMap(
                store.streamVersion(streamId),
                (version) => store.append(request(streamId, ExpectedVersion.exact(version), { count: 1 + (n % 3) }))
              ).pipe(Effect.catchTag("ConcurrencyError", () => Effect.suspend(() => attempt)))
              return attempt
            },
            { concurrency: 40 }
          )
          const after = yield* counts
          expect(after.combined - before.combined).toBeGreaterThan(0)
          const all = (yield* readAllEvents).filter((event) => event.streamId.endsWith(id))
          expect(all).toHaveLength(results.reduce((total, result) => total + result.events.length, 0))
          expect(new Set(all.map((event) => event.id)).size).toBe(all.length)
          for (const streamId of streams) {
            const versions = all.filter((event) => event.streamId === streamId).map((event) => event.version)
            expect(versions).toEqual(versions.map((_, index) => index + 1))
          }
        }))
    })
  })
}
