/**
 * Scenario 8: peak resident memory while a subscription reads a store, at two sizes: it must
 * not grow with the number of events. Each reading runs in a fresh process with a V8 heap of
 * 128 MiB, which a reader whose memory grew with the events would outgrow.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import type { Seeded } from "../seed.js"
import type { Result } from "../support.js"

const root = join(import.meta.dirname, "..", "..")

const read = async (store: Seeded, mode: "library" | "baseline") => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      // A small heap: what the reader keeps must fit in it, so memory that grew with the number
      // of events would end the process instead of showing as a slightly larger peak.
      "--max-old-space-size=128",
      "--import",
      "tsx",
      join(root, "bench", "memoryChild.ts"),
      store.backend,
      store.where,
      String(store.count),
      mode
    ],
    { cwd: root, maxBuffer: 1 << 20 }
  )
  return JSON.parse(stdout) as { readonly peakRssMiB: number; readonly seconds: number }
}

export const peakMemory = async (small: Seeded, large: Seeded): Promise<Result> => {
  const library = { small: await read(small, "library"), large: await read(large, "library") }
  const baseline = { small: await read(small, "baseline"), large: await read(large, "baseline") }
  return {
    scenario: "8. peak RSS while a subscription reads the store",
    backend: small.backend,
    unit: "MiB",
    library: library.large.peakRssMiB,
    baseline: baseline.large.peakRssMiB,
    ratio: baseline.large.peakRssMiB / library.large.peakRssMiB,
    peakRssMiB: {
      [`library ${small.count}`]: library.small.peakRssMiB,
      [`library ${large.count}`]: library.large.peakRssMiB,
      [`baseline ${small.count}`]: baseline.small.peakRssMiB,
      [`baseline ${large.count}`]: baseline.large.peakRssMiB
    },
    note: `library ${library.small.peakRssMiB.toFixed(0)} MiB at ${small.count}, ${
      library.large.peakRssMiB.toFixed(0)
    } MiB at ${large.count} events; baseline ${baseline.small.peakRssMiB.toFixed(0)} / ${
      baseline.large.peakRssMiB.toFixed(0)
    } MiB`
  }
}
