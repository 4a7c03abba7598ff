/**
 * A second OS process writing to the history test's SQLite file while the test runs: random
 * operations on the same streams as the test process, from its own seed, until its standard
 * input closes. It prints "ready" once the store is open, then writes to its journal, as one
 * line of JSON each, every operation it is about to send (`{"invoking": plan, "at": time}`) and
 * every one it completed (`{"operation": ...}`), with times on the clock the test process
 * shares, so that the test adds them to its history, and those in flight when it killed the
 * process as unknown. The journal is a file written synchronously, line by line: what a process
 * writes to a pipe can wait in its own memory while the reader is slow, and die with it.
 *
 *   writerProcess.ts <file> <seed> <prefix of event ids> <journal>
 */
import { Effect } from "effect"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { openSync, writeSync } from "node:fs"
import { seeded } from "../support/random.js"
import type { Operation } from "./checker.js"
import { type Kind, now, streamsOf, worker } from "./operations.js"

const [filename, seed, prefix, journalPath] = process.argv.slice(2) as [string, string, string, string]
const journal = openSync(journalPath, "a")
const write = (entry: unknown) => writeSync(journal, `${JSON.stringify(entry)}\n`)

let stopping = false
process.stdin.on("end", () => {
  stopping = true
})
process.stdin.resume()

/** Everything but application transactions, which belong to the test process's own connection. */
const weights: Record<Kind, number> = {
  append: 40,
  appendMany: 16,
  transaction: 0,
  retry: 10,
  interrupted: 5,
  empty: 6,
  wrongType: 2,
  malformed: 2,
  reuse: 3,
  pause: 10
}

let progress = 0
const acknowledged: Array<Operation> = []
const program = Effect.gen(function*() {
  console.log("ready")
  yield* worker(
    {
      random: seeded(Number(seed)),
      process: "writer",
      streams: streamsOf(() => progress),
      weights,
      acknowledged,
      outbox: false,
      invoking: (plan) => write({ invoking: plan, at: now() })
    },
    prefix,
    () => !stopping,
    (operation) => {
      progress++
      write({ operation })
    }
  )
})

Effect.runPromise(program.pipe(Effect.provide(SqliteEventStore.layer({ filename })))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
