/**
 * Projections in real processes: a runner killed with SIGKILL in the middle of a long catch-up
 * and started again ends with every event applied exactly once; and of two runners of one
 * projection in two processes only one works, the other taking over when it is killed.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres, tablesIn } from "../support/postgres.js"
import { temporaryDatabase } from "../support/sqlite.js"

const root = join(import.meta.dirname, "..", "..")

interface Applied {
  readonly event_id: string
  readonly stream_id: string
  readonly by_value: number
  readonly runner: string
}

interface Backend {
  readonly name: string
  readonly skip: boolean
  readonly args: ReadonlyArray<string>
  readonly layer: ReturnType<typeof SqliteEventStore.layer> | ReturnType<typeof PgEventStore.layer>
  readonly query: <A>(text: string) => Promise<ReadonlyArray<A>>
  readonly applied: string
  readonly projections: string
  readonly cleanUp: () => Promise<void>
}

const sqliteBackend = (): Backend => {
  const filename = temporaryDatabase()
  return {
    name: "SQLite",
    skip: false,
    args: ["sqlite", filename],
    layer: SqliteEventStore.layer({ filename }),
    query: async <A>(text: string) => {
      const database = new Database(filename)
      try {
        const statement = database.prepare(text)
        return (statement.reader ? statement.all() : (statement.run(), [])) as ReadonlyArray<A>
      } finally {
        database.close()
      }
    },
    applied: "applied",
    projections: "projections",
    cleanUp: async () => {}
  }
}

const postgresBackend = (): Backend => {
  const schema = isolatedSchema("processes")
  const query = async <A>(text: string) => {
    const client = await rawConnection()
    try {
      return (await client.query(text)).rows as ReadonlyArray<A>
    } finally {
      await client.end()
    }
  }
  return {
    name: "PostgreSQL",
    skip: skipPostgres,
    args: ["pg", schema],
    layer: PgEventStore.layer({ url: databaseUrl, tables: tablesIn(schema) }),
    query,
    applied: `"${schema}".applied`,
    projections: `"${schema}".projections`,
    cleanUp: async () => void (await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
  }
}

/** Starts a projection process and waits until it runs. */
const startWorker = (backend: Backend, projection: string, runner: string, delay: number) =>
  new Promise<ChildProcess>((resolve, reject) => {
    // Node itself, with tsx as a loader: the tsx command would run the script in a child process
    // of its own, which a SIGKILL of the command would leave running.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--conditions=effect-eventsourcing-source",
        join(root, "test", "support", "projectionWorker.ts"),
        ...backend.args,
        projection,
        runner,
        String(delay)
      ],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] }
    )
    child.stdout!.on("data", (data: Buffer) => {
      if (data.toString().includes("running")) resolve(child)
    })
    child.on("exit", (code) => reject(new Error(`worker ${runner} exited with ${code}`)))
  })

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

const waitUntil = async (condition: () => Promise<boolean>, what: string, timeout = 60_000) => {
  const deadline = Date.now() + timeout
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Appends `count` Counted events over `streams` streams, one append each, through the library. */
const appendEvents = (backend: Backend, prefix: string, count: number, streams: number) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      for (let n = 0; n < count; n++) {
        yield* store.append({
          streamId: `${prefix}-${n % streams}`,
          streamType: "counter",
          expectedVersion: ExpectedVersion.any,
          events: [{ type: "Counted", data: { by: n % 11 } }]
        })
      }
    }).pipe(Effect.provide(backend.layer))
  )

const createApplied = (backend: Backend) =>
  backend.query(`CREATE TABLE IF NOT EXISTS ${backend.applied} (
    projection TEXT NOT NULL, event_id TEXT NOT NULL, stream_id TEXT NOT NULL, by_value INT NOT NULL, runner TEXT NOT NULL)`)

const appliedBy = (backend: Backend, projection: string) =>
  backend.query<Applied>(
    `SELECT event_id, stream_id, by_value, runner FROM ${backend.applied} WHERE projection = '${projection}'`
  )

const storedEvents = (backend: Backend) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const head = yield* store.head
      const count = yield* store.countAfter({ transaction: 0n, sequence: 0n })
      return { head, count }
    }).pipe(Effect.provide(backend.layer))
  )

for (const make of [sqliteBackend, postgresBackend]) {
  const backend = make()
  describe.skipIf(backend.skip)(`${backend.name} projection processes`, () => {
    afterAll(() => backend.cleanUp())

    it("end a catch-up killed with SIGKILL and started again with every event applied once", async () => {
      const projection = `crash-${crypto.randomUUID()}`
      const total = 600
      await appendEvents(backend, `crash-${projection}`, total, 12)
      await createApplied(backend)
      const count = async () => (await appliedBy(backend, projection)).length

      // A slow runner, killed in the middle of the catch-up...
      const first = await startWorker(backend, projection, "first", 5)
      await waitUntil(async () => (await count()) >= 100, "the first runner has applied 100 events")
      await kill(first)
      const afterKill = await count()
      expect(afterKill).toBeLessThan(total)
      // ...then a fast one, started again, finishes.
      const second = await startWorker(backend, projection, "second", 0)
      await waitUntil(async () => (await count()) >= total, `all ${total} events are applied`)
      await new Promise((resolve) => setTimeout(resolve, 300))
      await kill(second)

      const applied = await appliedBy(backend, projection)
      expect(applied).toHaveLength(total)
      expect(new Set(applied.map((row) => row.event_id)).size).toBe(total)
      expect(new Set(applied.map((row) => row.runner))).toEqual(new Set(["first", "second"]))
      const checkpoint = await backend.query<{ position: string | number }>(
        `SELECT position FROM ${backend.projections} WHERE source = '${projection}'`
      )
      const { head } = await storedEvents(backend)
      expect(BigInt(checkpoint[0]!.position)).toBe(head.sequence)
    }, 120_000)
  })
}

describe.skipIf(skipPostgres)("PostgreSQL projection runners in two processes", () => {
  it("let only one of them work, and the other take over when it is killed", async () => {
    const backend = postgresBackend()
    try {
      const projection = `takeover-${crypto.randomUUID()}`
      await appendEvents(backend, `takeover-${projection}`, 1, 1)
      await createApplied(backend)
      const a = await startWorker(backend, projection, "a", 0)
      const b = await startWorker(backend, projection, "b", 0)
      const children = { a, b }

      await appendEvents(backend, `takeover-${projection}`, 40, 4)
      await waitUntil(async () => (await appliedBy(backend, projection)).length >= 41, "41 events are applied")
      const early = await appliedBy(backend, projection)
      const runners = new Set(early.map((row) => row.runner))
      expect(runners.size).toBe(1)
      const [leader] = [...runners] as Array<"a" | "b">
      const follower = leader === "a" ? "b" : "a"

      await kill(children[leader!])
      await appendEvents(backend, `takeover-${projection}`, 40, 4)
      await waitUntil(async () => (await appliedBy(backend, projection)).length >= 81, "81 events are applied")
      await new Promise((resolve) => setTimeout(resolve, 300))
      await kill(children[follower])

      const applied = await appliedBy(backend, projection)
      expect(applied).toHaveLength(81)
      expect(new Set(applied.map((row) => row.event_id)).size).toBe(81)
      const byRunner = (runner: string) => applied.filter((row) => row.runner === runner).length
      expect([byRunner(leader!), byRunner(follower)]).toEqual([41, 40])
    } finally {
      await backend.cleanUp()
    }
  }, 120_000)
})
