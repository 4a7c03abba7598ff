/**
 * What one append costs the client: fiber operations (counted by a supervisor, with operation
 * supervision on) and CPU (`process.cpuUsage`, the whole process) per append, for 8,000 appends
 * of one event to new streams by 1 and by 8 writers, after a warm-up round of each.
 *
 *   npx tsx bench/perAppend.ts [package directory] [sqlite|postgres]
 *
 * The package directory (default `dist`, the build) can be another build of the package, such
 * as a worktree of an earlier commit, to compare two versions on the same machine and hour.
 */
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import pg from "pg"
import { databaseUrl } from "./support.js"

class OperationCounter extends Supervisor.AbstractSupervisor<number> {
  operations = 0
  get value() {
    return Effect.sync(() => this.operations)
  }
  override onEffect() {
    this.operations++
  }
}

const directory = resolve(process.argv[2] ?? "dist")
const backend = process.argv[3] ?? "sqlite"
const load = (module: string) => import(pathToFileURL(`${directory}/${module}.js`).href)
const appends = 8_000

const main = async () => {
  const { EventStore, ExpectedVersion } = await load("index")
  const schema = `per_append_${crypto.randomUUID().slice(0, 8)}`
  const layer = backend === "postgres"
    ? (await load("PgEventStore")).layer({
      url: databaseUrl,
      maxConnections: 8,
      tables: {
        entities: `${schema}.entities`,
        events: `${schema}.events`,
        projections: `${schema}.projections`,
        snapshots: `${schema}.snapshots`,
        migrations: `${schema}.effect_eventsourcing_migrations`
      }
    })
    : (await load("SqliteEventStore")).layer({ filename: `/tmp/per-append-${schema}.sqlite` })
  const program = Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const run = (tag: string, writers: number) =>
      Effect.forEach(
        Array.from({ length: appends }, (_, n) => n),
        (n) =>
          store.append({
            streamId: `${tag}-${n}`,
            streamType: "bench",
            expectedVersion: ExpectedVersion.noStream,
            events: [{ type: "Happened", data: { n } }]
          }),
        { concurrency: writers, discard: true }
      )
    for (const writers of [1, 8]) {
      yield* run(`warm-${writers}`, writers)
      const counter = new OperationCounter()
      const cpu = process.cpuUsage()
      const start = performance.now()
      yield* Effect.supervised(run(`measured-${writers}`, writers), counter).pipe(
        Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
      )
      const used = process.cpuUsage(cpu)
      const seconds = (performance.now() - start) / 1000
      console.log(
        `${backend}, ${writers} writer${writers === 1 ? "" : "s"}: ${
          (counter.operations / appends).toFixed(0)
        } fiber ` +
          `operations and ${((used.user + used.system) / appends).toFixed(0)} µs of CPU per append, ` +
          `${Math.round(appends / seconds)} appends/s (with operation supervision on)`
      )
    }
  })
  try {
    await Effect.runPromise(Effect.provide(program, layer) as Effect.Effect<void, unknown>)
  } finally {
    if (backend === "postgres") {
      const client = new pg.Client({ connectionString: databaseUrl })
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await client.end()
    }
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
