/**
 * The package as users get it: `npm run build`'s configuration emits JavaScript and type
 * declarations, every public module is importable by name through the `exports` map, and the
 * internals are not.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const root = join(import.meta.dirname, "..")
const run = promisify(execFile)
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly exports: Record<string, unknown>
}
const publicModules = Object.keys(manifest.exports)
  .filter((key) => key.startsWith("./") && !key.includes("*") && key !== "./package.json")
  .map((key) => key.slice(2))

describe("package", () => {
  it("builds, and exposes exactly the public modules", async () => {
    const packageDir = mkdtempSync(join(tmpdir(), "effect-eventsourcing-package-"))
    try {
      cpSync(join(root, "package.json"), join(packageDir, "package.json"))
      symlinkSync(join(root, "node_modules"), join(packageDir, "node_modules"))
      await run(join(root, "node_modules", ".bin", "tsc"), [
        "-p",
        join(root, "tsconfig.build.json"),
        "--outDir",
        join(packageDir, "dist")
      ])
      for (const module of ["index", ...publicModules]) {
        expect(existsSync(join(packageDir, "dist", `${module}.js`)), `${module}.js`).toBe(true)
        expect(existsSync(join(packageDir, "dist", `${module}.d.ts`)), `${module}.d.ts`).toBe(true)
      }

      const script = `
        const loaded = {}
        for (const specifier of ${
        JSON.stringify([manifest.name, ...publicModules.map((m) => `${manifest.name}/${m}`)])
      }) {
          loaded[specifier] = Object.keys(await import(specifier)).sort()
        }
        let internal
        try { await import("${manifest.name}/internal/memory/eventStore") } catch (error) { internal = error.code }
        console.log(JSON.stringify({ loaded, internal }))
      `
      const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: packageDir })
      const { internal, loaded } = JSON.parse(stdout) as {
        readonly loaded: Record<string, ReadonlyArray<string>>
        readonly internal: string
      }
      expect(internal).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED")
      // The root is the core: the SQL backends, which need optional peer dependencies, and the
      // test kit, which needs node:assert, are imported from their own paths.
      const ownPaths = ["PgEventStore", "SqlEventStore", "SqliteEventStore", "Testing"]
      expect(loaded[manifest.name]).toEqual(publicModules.filter((module) => !ownPaths.includes(module)).sort())
      expect(loaded[`${manifest.name}/SqliteEventStore`]).toContain("layer")
      expect(loaded[`${manifest.name}/EventStore`]).toContain("layerMemory")
      expect(loaded[`${manifest.name}/CommandHandler`]).toContain("make")
    } finally {
      rmSync(packageDir, { recursive: true, force: true })
    }
  })
})
