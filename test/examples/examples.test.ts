/**
 * Every example type-checks and runs, so none can rot: each `examples/<name>/main.ts` is
 * compiled with the project's settings and run as `npm start` runs it.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import ts from "typescript"
import { databaseUrl, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"

const root = join(import.meta.dirname, "..", "..")
const examples = readdirSync(join(root, "examples"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)

/** Runs an example's main.ts as `npm start` does, with extra environment variables. */
const runExample = async (example: string, env: Record<string, string>): Promise<string> => {
  const { DATABASE_URL: _, ...inherited } = process.env
  const { stdout } = await promisify(execFile)(
    join(root, "node_modules", ".bin", "tsx"),
    ["--conditions=effect-eventsourcing-source", join(root, "examples", example, "main.ts")],
    { cwd: root, env: { ...inherited, NO_COLOR: "1", ...env } }
  )
  return stdout
}

let scratchDirectory: string | undefined
const scratch = () => (scratchDirectory ??= mkdtempSync(join(tmpdir(), "effect-eventsourcing-examples-")))
afterAll(() => {
  if (scratchDirectory !== undefined) rmSync(scratchDirectory, { recursive: true, force: true })
})

/** What each example must print. */
const expectedOutput: Record<string, ReadonlyArray<RegExp>> = {
  "shopping-cart": [
    /5 +0:5 +CartCheckedOut +\{"orderId":"[0-9a-f-]+","total":40\}/,
    /"status": "checkedOut"/,
    /"total": 40/,
    /\n {2}[0-9a-f-]+ \| USD \| \{"items":\[\{"sku":"SKU-123","name":"Item 123","quantity":1,"unitPrice":25\},\{"sku":"SKU-456","name":"Item 456","quantity":1,"unitPrice":15\}\],"total":40,"orderId":"[0-9a-f-]+"\}\n/
  ],
  quickstart: [/^balance 70 at version 2\nrefused: InsufficientFunds\n$/]
}

const typeErrors = (files: ReadonlyArray<string>): ReadonlyArray<string> => {
  const configPath = join(root, "tsconfig.json")
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: () => {}
  })!
  const program = ts.createProgram(files, config.options)
  return ts.getPreEmitDiagnostics(program).map((diagnostic) =>
    ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
  )
}

describe("examples", () => {
  it("has examples", () => expect(examples).toContain("shopping-cart"))

  for (const example of examples) {
    const directory = join(root, "examples", example)
    const files = readdirSync(directory).filter((file) => file.endsWith(".ts")).map((file) => join(directory, file))

    it(`${example} type-checks`, () => {
      expect(typeErrors(files)).toEqual([])
    })

    it(`${example} runs to completion`, async () => {
      const stdout = await runExample(example, { SHOPPING_CART_DB: join(scratch(), "demo.sqlite") })
      expect(expectedOutput[example], `the expected output of ${example}`).toBeDefined()
      for (const pattern of expectedOutput[example]!) {
        expect(stdout).toMatch(pattern)
      }
    })
  }

  describe("shopping-cart demo", () => {
    const cartOf = (stdout: string) => /Shopping cart (\S+) on (.+)\n/.exec(stdout)!.slice(1)

    it("runs on a SQLite file by default, and again on the same file with a new cart", async () => {
      const database = join(scratch(), "carts.sqlite")
      const first = await runExample("shopping-cart", { SHOPPING_CART_DB: database })
      const second = await runExample("shopping-cart", { SHOPPING_CART_DB: database })
      expect(cartOf(first)[1]).toBe(`the SQLite file ${database}`)
      expect(cartOf(second)[0]).not.toBe(cartOf(first)[0])
      // The second run's events come after the first run's five.
      expect(second).toMatch(/\n {2}1 {2}0:6 +CartCreated/)
      expect(second).toContain(`"total": 40`)
    })

    it.skipIf(skipPostgres)("runs on PostgreSQL when DATABASE_URL is set", async () => {
      const schema = isolatedSchema("demo")
      const client = await rawConnection()
      await client.query(`CREATE SCHEMA "${schema}"`)
      try {
        const url = new URL(databaseUrl)
        url.searchParams.set("options", `-c search_path=${schema}`)
        const stdout = await runExample("shopping-cart", { DATABASE_URL: url.toString() })
        expect(cartOf(stdout)[1]).toBe("PostgreSQL (DATABASE_URL)")
        expect(stdout).toMatch(/\n {2}5 {2}\d+:5 +CartCheckedOut/)
        const rows = await client.query(`SELECT count(*)::int AS count FROM "${schema}".events`)
        expect(rows.rows[0].count).toBe(5)
      } finally {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`)
        await client.end()
      }
    })
  })
})
