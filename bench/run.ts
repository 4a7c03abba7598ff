/**
 * `npm run bench`: the library's hot paths against the least work the same database does
 * through the same driver (`pg`, `better-sqlite3`), in the same run, so that each figure is a
 * ratio that holds on a busy machine. `npm run bench -- --quick` runs a short version of each
 * scenario. Results are printed as a table and written to bench/results.json.
 */
import { ManagedRuntime } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe } from "./machine.js"
import * as Append from "./scenarios/append.js"
import * as Growth from "./scenarios/growth.js"
import * as Latency from "./scenarios/latency.js"
import * as Memory from "./scenarios/memory.js"
import * as Read from "./scenarios/read.js"
import * as Snapshots from "./scenarios/snapshots.js"
import { seed } from "./seed.js"
import type { Backend, Result } from "./support.js"
import { environment } from "./support.js"

const quick = process.argv.includes("--quick")
/** `--only 1,5,8`: run only these scenarios (for working on one). */
const only = (() => {
  const index = process.argv.indexOf("--only")
  return index === -1 ? undefined : new Set(process.argv[index + 1]!.split(",").map(Number))
})()
const wanted = (scenario: number) => only === undefined || only.has(scenario)
/** `--output <file>`: where to write the results (default bench/results.json). */
const output = (() => {
  const index = process.argv.indexOf("--output")
  return index === -1 ? join(import.meta.dirname, "results.json") : process.argv[index + 1]!
})()

const sizes = quick
  ? {
    appends: 400,
    rounds: 1,
    hot: 80,
    catchUp: 20_000,
    latency: 100,
    load: 10_000,
    memory: [20_000, 80_000],
    snapshots: { lengths: [1_000, 10_000], rounds: 3 },
    growth: { sizes: [10_000, 100_000] as const, repetitions: 60, warmUp: 10, countRepetitions: 9 }
  }
  : {
    appends: 4_000,
    rounds: 2,
    hot: 400,
    catchUp: 200_000,
    latency: 1_000,
    load: 10_000,
    memory: [250_000, 1_000_000],
    snapshots: { lengths: [1_000, 10_000, 50_000], rounds: 5 },
    growth: { sizes: [10_000, 1_000_000] as const, repetitions: 300, warmUp: 30, countRepetitions: 15 }
  }

const main = async () => {
  const startedAt = new Date()
  const machine = await describe()
  console.log(
    `${
      quick ? "Quick run" : "Run"
    } on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; ` +
      `PostgreSQL ${machine.postgres.version} (synchronous_commit ${machine.postgres.synchronous_commit}), ` +
      `SQLite ${machine.sqlite.version}\n`
  )
  // Scenario 10 prints a header of its own: its columns are not library and baseline.
  if (only === undefined || [...only].some((scenario) => scenario !== 10)) {
    console.log(
      `${"scenario".padEnd(56)} ${"backend".padEnd(9)} ${"library".padStart(9)} ${"baseline".padStart(9)}  ${
        "unit".padEnd(10)
      } ratio`
    )
  }
  const results: Array<Result> = []
  const report = (result: Result) => {
    results.push(result)
    const figure = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1)).padStart(9)
    console.log(
      `${result.scenario.padEnd(56)} ${result.backend.padEnd(9)} ${figure(result.library)} ${
        figure(result.baseline)
      }  ${result.unit.padEnd(10)} ${result.ratio.toFixed(2)}${result.note === undefined ? "" : `   ${result.note}`}`
    )
  }

  const env = await environment()
  try {
    for (const backend of ["postgres", "sqlite"] as Array<Backend>) {
      const runtime = ManagedRuntime.make(env.layers[backend])
      try {
        if (wanted(1)) {
          report(
            await Append.newStreams(env, backend, runtime, {
              appends: sizes.appends,
              eventsPerAppend: 1,
              rounds: sizes.rounds
            })
          )
        }
        if (wanted(2)) {
          report(
            await Append.newStreams(env, backend, runtime, {
              appends: sizes.appends / 2,
              eventsPerAppend: 10,
              rounds: sizes.rounds
            })
          )
        }
        if (wanted(3)) {
          report(
            await Append.existingStreams(env, backend, runtime, {
              appends: sizes.appends,
              streams: 1000,
              rounds: sizes.rounds
            })
          )
        }
        if (wanted(4)) report(await Append.hotStream(env, backend, runtime, { appends: sizes.hot }))
        if (wanted(7)) {
          report(
            await Read.load(backend, runtime, { pool: env.pool, sqlite: env.sqlite, schema: env.schema }, sizes.load)
          )
        }
        if (wanted(9)) (await Snapshots.loadWithSnapshots(backend, env, sizes.snapshots)).forEach(report)
      } finally {
        await runtime.dispose()
      }
    }
  } finally {
    await env.close()
  }

  for (const backend of ["postgres", "sqlite"] as Array<Backend>) {
    if (!wanted(5) && !(wanted(6) && backend === "postgres")) continue
    const store = await seed(backend, sizes.catchUp)
    try {
      if (wanted(5)) report(await Read.catchUp(store))
      if (backend === "postgres" && wanted(6)) {
        report(await Latency.liveLatency(store, { appends: sizes.latency, listen: true }))
        report(await Latency.liveLatency(store, { appends: Math.min(sizes.latency, 200), listen: false }))
      }
    } finally {
      await store.drop()
    }
  }

  for (const backend of ["postgres", "sqlite"] as Array<Backend>) {
    if (!wanted(8)) continue
    const [small, large] = [await seed(backend, sizes.memory[0]!), await seed(backend, sizes.memory[1]!)]
    try {
      report(await Memory.peakMemory(small, large))
    } finally {
      await Promise.all([small.drop(), large.drop()])
    }
  }

  if (wanted(10)) {
    // The library against itself: the two figures are two sizes of the store, not library and
    // baseline, and the ratio is large / small (1 is flat, higher is worse).
    const [small, large] = sizes.growth.sizes.map((
      size
    ) => (size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`))
    console.log(
      `\n${"10. costs as the store grows (median per operation)".padEnd(56)} ${"backend".padEnd(9)} ${
        `${small} store`.padStart(9)
      } ${`${large} store`.padStart(9)}  ${"unit".padEnd(10)} ${large} / ${small}`
    )
  }
  for (const backend of ["postgres", "sqlite"] as Array<Backend>) {
    if (wanted(10)) (await Growth.costsAsTheStoreGrows(backend, sizes.growth)).forEach(report)
  }

  const seconds = (Date.now() - startedAt.getTime()) / 1000
  console.log(
    `\n${results.length} scenarios in ${
      seconds.toFixed(0)
    } s. Ratio: library / baseline for rates, baseline / library for times and memory; 1 is parity` +
      (wanted(10) ? "; scenario 10: large store / small store, 1 is flat." : ".")
  )
  writeFileSync(
    output,
    JSON.stringify({ startedAt: startedAt.toISOString(), quick, seconds, machine, results }, null, 2) + "\n"
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
