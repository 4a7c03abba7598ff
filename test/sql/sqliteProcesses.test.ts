/**
 * SQLite and the event loop. better-sqlite3 runs every statement synchronously, so the store
 * must not hold the loop for long: a write waiting for another process's lock waits with a short
 * busy timeout and sleeps between tries, and a long read gives the loop a turn between pages.
 * Transactions run with `SqliteEventStore.withTransaction` never fail with "database is locked"
 * however often another process writes.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Stream } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { temporaryDatabase } from "../support/sqlite.js"

const root = join(import.meta.dirname, "..", "..")

/** Starts a helper script in a process of its own; resolves once it printed `ready`. */
const startProcess = (script: string, args: ReadonlyArray<string>, ready: string) =>
  new Promise<{ readonly child: ChildProcess; readonly output: Promise<string> }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=effect-eventsourcing-source", join(root, "test", "support", script), ...args],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] }
    )
    let text = ""
    const output = new Promise<string>((done) => child.on("exit", () => done(text)))
    child.stdout!.on("data", (data: Buffer) => {
      text += data.toString()
      if (text.includes(ready)) resolve({ child, output })
    })
    child.on("error", reject)
    child.on("exit", (code) => code !== 0 && reject(new Error(`${script} exited with ${code}`)))
  })

const append = (streamId: string) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.append({
        streamId,
        streamType: "thing",
        expectedVersion: ExpectedVersion.any,
        events: [{ type: "A", data: {} }]
      })
  )

describe("SQLite shared with other processes", () => {
  it.live("waits for another process's lock without holding the event loop", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const layer = SqliteEventStore.layer({ filename })
      yield* Effect.provide(append("before"), layer)
      const { output } = yield* Effect.promise(() => startProcess("sqliteLocker.ts", [filename, "1500"], "locked"))
      // A timer that should fire every 10 ms: how often it fired while the append waited.
      let ticks = 0
      const timer = setInterval(() => ticks++, 10)
      const started = Date.now()
      const appended = yield* Effect.provide(append("during"), layer).pipe(
        Effect.ensuring(Effect.sync(() => clearInterval(timer)))
      )
      const waited = Date.now() - started
      expect(yield* Effect.promise(() => output)).toContain("done")
      expect(appended.version).toBe(1)
      // It waited for the lock (held 1.5 s)...
      expect(waited).toBeGreaterThan(1_000)
      // ...and the timer kept firing meanwhile (with the loop blocked it would not fire at all).
      expect(ticks).toBeGreaterThan(30)
    }), 60_000)

  it.live(
    "runs application transactions beside another process's writes without 'database is locked'",
    () =>
      Effect.gen(function*() {
        const filename = temporaryDatabase()
        const layer = SqliteEventStore.layer({ filename })
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE IF NOT EXISTS notes (stream_id TEXT NOT NULL, version INT NOT NULL)`
          yield* append("ours")
        }).pipe(Effect.provide(layer))
        const { output } = yield* Effect.promise(() =>
          startProcess("sqliteLoop.ts", [filename, "other", "4000"], "started")
        )
        const transactions = 150
        const failures: Array<string> = []
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          for (let n = 0; n < transactions; n++) {
            // Reads first, then writes: a deferred transaction would fail here when the other
            // process wrote in between.
            const transaction = SqliteEventStore.withTransaction(Effect.gen(function*() {
              const version = yield* store.streamVersion("ours")
              const appended = yield* store.append({
                streamId: "ours",
                streamType: "thing",
                expectedVersion: ExpectedVersion.exact(version),
                events: [{ type: "A", data: { n } }]
              })
              yield* sql`INSERT INTO notes ${sql.insert({ stream_id: "ours", version: appended.version })}`
            }))
            const outcome = yield* Effect.either(transaction)
            if (outcome._tag === "Left") failures.push(String(outcome.left))
          }
        }).pipe(Effect.provide(layer))
        const report = JSON.parse((yield* Effect.promise(() => output)).split("\n")[1]!) as { appends: number }
        expect(failures).toEqual([])
        expect(report.appends).toBeGreaterThan(100)
        const stored = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          return {
            version: yield* store.streamVersion("ours"),
            notes: (yield* sql<{ count: number }>`SELECT count(*) AS count FROM notes`)[0]!.count
          }
        }).pipe(Effect.provide(layer))
        expect(stored).toEqual({ version: 1 + transactions, notes: transactions })
      }),
    120_000
  )

  it.live("gives the event loop a turn between the pages of a long read", () =>
    Effect.gen(function*() {
      const filename = temporaryDatabase()
      const layer = SqliteEventStore.layer({ filename })
      yield* Effect.provide(append("created"), layer)
      const database = new Database(filename)
      const streams = 100
      const perStream = 1_000
      database.transaction(() => {
        const entity = database.prepare(`INSERT INTO entities (id, type, version) VALUES (?, 'thing', ?)`)
        const event = database.prepare(
          `INSERT INTO events (entity_id, name, details, actor, ordinal, position) VALUES (?, 'Loaded', '{"n":1}', 'loader', ?, ?)`
        )
        let position = 10
        for (let stream = 0; stream < streams; stream++) {
          entity.run(`loaded-${stream}`, perStream)
          for (let ordinal = 1; ordinal <= perStream; ordinal++) event.run(`loaded-${stream}`, ordinal, position++)
        }
      })()
      database.close()
      let ticks = 0
      const timer = setInterval(() => ticks++, 5)
      const started = Date.now()
      const counted = yield* Effect.flatMap(EventStore.EventStore, (store) =>
        Effect.all([Stream.runCount(store.readAll()), Stream.runCount(store.readStream("loaded-0"))])).pipe(
          Effect.provide(layer),
          Effect.ensuring(Effect.sync(() =>
            clearInterval(timer)
          ))
        )
      const took = Date.now() - started
      expect(counted).toEqual([streams * perStream + 1, perStream])
      // A loop held for the whole read would not fire the timer at all.
      expect(ticks).toBeGreaterThan(Math.min(10, took / 50))
    }), 60_000)
})
