/**
 * A randomized concurrent history test, Jepsen-style, on every backend: twelve fibers perform
 * random appends (every expected-version variant, several streams at once, retries by event id,
 * appends in the application's transaction, interrupted appends, refusals on purpose) on a few
 * streams, while subscribers follow the global order and a projection is interrupted and
 * restarted; PostgreSQL also has its connections killed, and SQLite other processes writing
 * to the same file, the first of them killed (SIGKILL) mid-run. The recorded history is then
 * checked (see checker.ts) against the store's final state.
 *
 * The seed is fixed so that CI replays the same workload; run others by hand:
 *
 *   HISTORY_SEED=7 HISTORY_OPS=3000 npx vitest run test/history
 *
 * A failing run names its seed and writes its whole history to a file for inspection.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import type { Scope } from "effect"
import { Duration, Effect, Fiber, Layer, Metric } from "effect"
import { EventStore, ProjectionStore } from "effect-eventsourcing"
import type { Events } from "effect-eventsourcing"
import * as PgEventStore from "effect-eventsourcing/PgEventStore"
import * as SqlEventStore from "effect-eventsourcing/SqlEventStore"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { live } from "../support/live.js"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres, tablesIn } from "../support/postgres.js"
import type { Random } from "../support/random.js"
import { derive, seeded } from "../support/random.js"
import { temporaryDatabase } from "../support/sqlite.js"
import type { Operation, ReadModelRow } from "./checker.js"
import { check } from "./checker.js"
import type { Plan, Transaction } from "./operations.js"
import { now } from "./operations.js"
import type { Consumed, Environment, OtherProcess, ReadModel, Stats } from "./workload.js"
import { runHistory } from "./workload.js"

const seed = Number(process.env.HISTORY_SEED ?? 20_240_611)
/** Operations per run: by default as many as keep each backend's run to several seconds here. */
const operationsFor = (byDefault: number) => Number(process.env.HISTORY_OPS ?? byDefault)
const verbose = process.env.HISTORY_SEED !== undefined || process.env.HISTORY_VERBOSE !== undefined
const timeout = 240_000

const root = join(import.meta.dirname, "..", "..")

/** The read model's next row after one event, as the SQL upsert computes it. */
const applied = (row: ReadModelRow | undefined, event: Events.RecordedEvent<Consumed>): ReadModelRow => ({
  applied: (row?.applied ?? 0) + 1,
  total: (row?.total ?? 0) + (event.data._tag === "Withdrawn" ? -event.data.amount : event.data.amount),
  versions: row === undefined ? String(event.version) : `${row.versions},${event.version}`
})

export const memoryReadModel = (): ReadModel<never> => {
  const rows = new Map<string, ReadModelRow>()
  return {
    apply: (event) => Effect.sync(() => void rows.set(event.streamId, applied(rows.get(event.streamId), event))),
    rows: Effect.sync(() => Object.fromEntries(rows))
  }
}

/**
 * A read model in a table of the store's database, written in the projection's transactions.
 * Its statement runs to its end when the projection is interrupted, as the docs advise: on
 * PostgreSQL an interrupted query is cancelled by a signal that can land on the next statement
 * of its connection, another fiber's, once the connection is back in the pool.
 */
const sqlReadModel = (table: string): ReadModel<SqlClient.SqlClient> => ({
  apply: (event) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => {
      const amount = event.data._tag === "Withdrawn" ? -event.data.amount : event.data.amount
      return sql`INSERT INTO ${sql(table)} AS m (stream_id, applied, total, versions)
        VALUES (${event.streamId}, 1, ${amount}, ${String(event.version)})
        ON CONFLICT (stream_id) DO UPDATE
        SET applied = m.applied + 1, total = m.total + excluded.total, versions = m.versions || ',' || excluded.versions`
        .pipe(
          Effect.uninterruptible
        )
    }),
  rows: Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ stream_id: string; applied: number; total: number; versions: string }>`SELECT * FROM ${sql(table)}`,
      (rows) =>
        Object.fromEntries(
          rows.map((
            row
          ) => [row.stream_id, { applied: Number(row.applied), total: Number(row.total), versions: row.versions }])
        )
    ))
})

const createTables = (readModel: string, outbox: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql`CREATE TABLE IF NOT EXISTS ${sql(readModel)} (
        stream_id TEXT PRIMARY KEY, applied INT NOT NULL, total INT NOT NULL, versions TEXT NOT NULL)`,
      sql`CREATE TABLE IF NOT EXISTS ${sql(outbox)} (op_id TEXT PRIMARY KEY)`
    ))

/**
 * The application's transaction around an append: it also records an outbox row for the
 * operation (before or after the append), which must commit exactly when the events do. A retry
 * writes the row again, so the insert ignores a row already there.
 */
const sqlTransaction = (
  outbox: string,
  begin: (
    key: string
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, unknown, R | SqlClient.SqlClient>
): Transaction<SqlClient.SqlClient> =>
(key, writesFirst, effect) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const row = sql`INSERT INTO ${sql(outbox)} (op_id) VALUES (${key}) ON CONFLICT (op_id) DO NOTHING`
    return begin(key)(writesFirst ? Effect.zipRight(row, effect) : Effect.tap(effect, () => row))
  })

const outboxRows = (outbox: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      Effect.map(sql<{ op_id: string }>`SELECT op_id FROM ${sql(outbox)}`, (rows) => rows.map((row) => row.op_id))
  )

/** Runs the workload, checks its history, and fails with the violations (and where the history is). */
const runAndCheck = <R>(backend: string, operations: number, environment: Environment<R>) =>
  Effect.gen(function*() {
    const batchesBefore = yield* Metric.value(SqlEventStore.appendBatchSize)
    const { history, stats } = yield* runHistory(environment, { seed, operations, fibers: 12, subscribers: 3 })
    const batches = yield* Metric.value(SqlEventStore.appendBatchSize)
    const alone = (state: typeof batches) => state.buckets.find(([bound]) => bound === 1)?.[1] ?? 0
    // Group commits of more than one append (none on the in-memory store, which has none).
    const combined = batches.count - alone(batches) - (batchesBefore.count - alone(batchesBefore))
    const violations = check(history)
    const summary = `${backend}, seed ${seed}, ${operations} operations: ${JSON.stringify({ ...stats, combined })}`
    if (verbose || violations.length > 0) console.info(summary)
    let where = ""
    if (violations.length > 0) {
      where = join(tmpdir(), `history-${backend.toLowerCase()}-${seed}-${Date.now()}.json`)
      writeFileSync(where, JSON.stringify({ seed, operations, stats, violations, history }, null, 1))
    }
    expect(
      violations.slice(0, 25).map((violation) => `${violation.kind}: ${violation.message}`),
      `${violations.length} violations with HISTORY_SEED=${seed} HISTORY_OPS=${operations}; the history is in ${where}`
    ).toEqual([])
    expectExercised(stats, operations)
    if (backend !== "memory") expect(combined).toBeGreaterThan(0)
    return stats
  })

/** The run did what it is for: conflicts, retries, refusals, restarts all happened. */
const expectExercised = (stats: Stats, operations: number) => {
  const count = (key: string) => stats.outcomes[key] ?? 0
  expect(count("Acknowledged")).toBeGreaterThan(operations / 5)
  expect(count("Acknowledged retry")).toBeGreaterThan(0)
  expect(count("ConcurrencyError")).toBeGreaterThan(0)
  expect(count("InvalidAppendError")).toBeGreaterThan(0)
  expect(count("StreamTypeMismatchError")).toBeGreaterThan(0)
  expect(stats.readerRestarts).toBeGreaterThan(0)
  expect(stats.projectionRestarts).toBeGreaterThan(0)
  expect(stats.readerFailures).toEqual([])
  expect(stats.projectionFailures).toEqual([])
}

describe("history: memory", () => {
  layer(EventStore.layerMemory)((methods) => {
    const it = live(methods)
    it.effect(
      "every acknowledged append stored once, every refusal justified, one order for every reader",
      () =>
        runAndCheck<ProjectionStore.ProjectionStore>("memory", operationsFor(6_000), {
          readModel: memoryReadModel(),
          // The in-memory store's transactions hold other writers back and undo a failed append.
          transaction: (_key, _writesFirst, effect) =>
            Effect.flatMap(ProjectionStore.ProjectionStore, (projections) => projections.transaction(effect))
        }),
      timeout
    )
  })
})

interface Writer {
  /** Ends the process by closing its input; what it did. */
  readonly stop: Effect.Effect<ReadonlyArray<Operation>, unknown>
  /** Kills the process; what it did, with the operations in flight as unknown. */
  readonly kill: Effect.Effect<ReadonlyArray<Operation>>
}

/** A writer process on the SQLite file (see writerProcess.ts), for the life of the scope. */
const startWriter = (filename: string, seed: number, prefix: string): Effect.Effect<Writer, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const journal = `${filename}.${prefix}.jsonl`
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            "--conditions=effect-eventsourcing-source",
            join(import.meta.dirname, "writerProcess.ts"),
            filename,
            String(seed),
            prefix,
            journal
          ],
          { cwd: root, stdio: ["pipe", "pipe", "inherit"] }
        )
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
    )
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (data: Buffer) => {
        if (data.toString().includes("ready")) resolve()
      })
      child.once("exit", (code) => reject(new Error(`the writer process exited with ${code} before it was ready`)))
    })
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    yield* Effect.promise(() => ready)
    /** What the process did, from its journal: completed operations, and those it was sending. */
    const journaled = () => {
      const operations: Array<Operation> = []
      const inFlight = new Map<string, { readonly plan: Plan; readonly at: number }>()
      // A line cut short by the kill is not an operation sent: it is written before sending.
      for (const line of readFileSync(journal, "utf8").split("\n").filter((line) => line.endsWith("}"))) {
        const entry = JSON.parse(line) as { readonly operation: Operation } | {
          readonly invoking: Plan
          readonly at: number
        }
        if ("invoking" in entry) {
          inFlight.set(entry.invoking.id, { plan: entry.invoking, at: entry.at })
        } else {
          inFlight.delete(entry.operation.id)
          operations.push(entry.operation)
        }
      }
      return { operations, inFlight: [...inFlight.values()] }
    }
    return {
      stop: Effect.gen(function*() {
        child.stdin.end()
        const code = yield* Effect.promise(() => exited)
        if (code !== 0) return yield* Effect.fail(new Error(`the writer process exited with ${code}`))
        return journaled().operations
      }),
      kill: Effect.gen(function*() {
        child.kill("SIGKILL")
        yield* Effect.promise(() => exited)
        // Whatever it was sending when it died may or may not have been committed.
        const killedAt = now()
        const { inFlight, operations } = journaled()
        return [
          ...operations,
          ...inFlight.map(({ at, plan }): Operation => ({
            ...plan,
            invokedAt: at,
            completedAt: killedAt,
            outcome: { _tag: "Unknown", reason: "the writer process was killed" }
          }))
        ]
      })
    }
  })

/**
 * Two writer processes on the SQLite file, one after the other: the first is killed mid-run
 * (SIGKILL, with an append in flight as like as not, perhaps holding the write lock), the second
 * starts after it and writes until the run ends.
 */
const writerProcesses = (filename: string) => (seed: number): Effect.Effect<OtherProcess, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const random = seeded(seed)
    const first = yield* startWriter(filename, derive(seed, 0), "wa")
    const second = yield* Effect.forkScoped(Effect.gen(function*() {
      yield* Effect.sleep(Duration.millis(random.int(300, 2_000)))
      const killed = yield* first.kill
      return { killed, writer: yield* startWriter(filename, derive(seed, 1), "wb") }
    }))
    return {
      stop: Effect.gen(function*() {
        const { killed, writer } = yield* Fiber.join(second)
        const operations = [...killed, ...yield* writer.stop]
        const unknownAtKill = killed.filter((operation) =>
          operation.outcome._tag === "Unknown" && operation.outcome.reason.includes("killed")
        )
        return { operations, summary: { writersKilled: 1, inFlightWhenKilled: unknownAtKill.length } }
      })
    }
  })

describe("history: SQLite", () => {
  const filename = temporaryDatabase("history.sqlite")
  layer(SqliteEventStore.layer({ filename }))((methods) => {
    const it = live(methods)
    it.effect(
      "the same, with other processes writing to the file, one of them killed mid-run",
      () =>
        Effect.gen(function*() {
          yield* createTables("history_read_model", "history_outbox")
          return yield* runAndCheck("SQLite", operationsFor(2_500), {
            readModel: sqlReadModel("history_read_model"),
            // Mostly as docs/05-transactions.md advises (BEGIN IMMEDIATE); sometimes a plain deferred transaction,
            // which may fail to get the lock from the other process: that must store nothing.
            transaction: sqlTransaction("history_outbox", (key) => (effect) =>
              key.endsWith("3")
                ? Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))
                : SqliteEventStore.withTransaction(effect)),
            outbox: outboxRows("history_outbox"),
            otherProcess: writerProcesses(filename)
          })
        }),
      timeout
    )
  })
})

/** Kills the store's pooled connections now and then, and less often its listening and lock sessions. */
const connectionKiller = (applicationName: string) => (random: Random) => {
  const counts = { kills: 0, terminated: 0, sessionKills: 0 }
  return {
    summary: () => counts,
    run: Effect.acquireUseRelease(
      Effect.promise(() => rawConnection()),
      (client) =>
        Effect.forever(Effect.gen(function*() {
          yield* Effect.sleep(Duration.millis(random.int(100, 600)))
          const sessions = random.chance(0.15)
          const result = yield* Effect.promise(() =>
            client.query(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND (application_name = $1 OR ($2 AND application_name LIKE $1 || '-%'))`,
              [applicationName, sessions]
            )
          )
          counts.kills++
          if (sessions) counts.sessionKills++
          counts.terminated += result.rowCount ?? 0
        })),
      (client) => Effect.promise(() => client.end().catch(() => undefined))
    )
  }
}

describe.skipIf(skipPostgres)("history: PostgreSQL", () => {
  const schema = isolatedSchema("history")
  // A name of this file's own, so that the killer ends only this store's connections.
  const applicationName = `es-history-${schema.slice(-8)}`
  const store = Layer.scopedDiscard(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
    )
  ).pipe(
    Layer.provideMerge(
      PgEventStore.layer({ url: databaseUrl, tables: tablesIn(schema), maxConnections: 8, applicationName })
    ),
    // Fails with how to point the tests at a server when there is none.
    Layer.tap(() => Effect.promise(async () => (await rawConnection()).end()))
  )
  layer(store)((methods) => {
    const it = live(methods)
    it.effect("the same, with connections killed throughout", () =>
      Effect.gen(function*() {
        const readModel = `${schema}.history_read_model`
        const outbox = `${schema}.history_outbox`
        yield* createTables(readModel, outbox)
        return yield* runAndCheck("PostgreSQL", operationsFor(2_500), {
          readModel: sqlReadModel(readModel),
          transaction: sqlTransaction(outbox, () => (effect) =>
            Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))),
          outbox: outboxRows(outbox),
          faults: connectionKiller(applicationName)
        })
      }), timeout)
  })
})
