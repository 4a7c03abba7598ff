/**
 * The benchmark suite runs, so that it cannot rot: a quick run of a few scenarios writes results
 * of the documented shape. (Its figures are measurements, not assertions: they live in bench/README.md.)
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { skipPostgres } from "./support/postgres.js"

const root = join(import.meta.dirname, "..")

describe.skipIf(skipPostgres)("benchmarks", () => {
  it("run quickly and write their results as JSON", async () => {
    const directory = mkdtempSync(join(tmpdir(), "effect-eventsourcing-bench-test-"))
    try {
      const output = join(directory, "results.json")
      await promisify(execFile)(
        process.execPath,
        [
          "--import",
          "tsx",
          "--conditions=effect-eventsourcing-source",
          join(root, "bench", "run.ts"),
          "--quick",
          "--only",
          "1,6,7",
          "--output",
          output
        ],
        { cwd: root, maxBuffer: 1 << 22 }
      )
      const report = JSON.parse(readFileSync(output, "utf8"))
      expect(report).toMatchObject({ quick: true, machine: { cores: expect.any(Number) } })
      expect(
        report.results.map((
          result: { scenario: string; backend: string }
        ) => [result.scenario.slice(0, 2), result.backend])
      )
        .toEqual([["1.", "postgres"], ["7.", "postgres"], ["1.", "sqlite"], ["7.", "sqlite"], ["6.", "postgres"], [
          "6.",
          "postgres"
        ]])
      for (const result of report.results) {
        expect(result.library).toBeGreaterThan(0)
        expect(result.baseline).toBeGreaterThan(0)
        expect(result.ratio).toBeCloseTo(
          result.scenario.startsWith("6.") ? result.baseline / result.library : result.library / result.baseline
        )
      }
      expect(report.results[4].latency.library).toMatchObject({
        p50: expect.any(Number),
        p95: expect.any(Number),
        p99: expect.any(Number)
      })
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 180_000)
})
