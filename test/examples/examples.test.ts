/**
 * Every example type-checks and runs, so none can rot: each `examples/<name>/main.ts` is
 * compiled with the project's settings and run as `npm start` runs it.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import ts from "typescript"

const root = join(import.meta.dirname, "..", "..")
const examples = readdirSync(join(root, "examples"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)

/** What each example must print. */
const expectedOutput: Record<string, ReadonlyArray<RegExp>> = {
  "shopping-cart": [
    /5 +0:5 +CartCheckedOut +\{"orderId":"[0-9a-f-]+","total":40\}/,
    /"status": "checkedOut"/,
    /"total": 40/
  ],
  quickstart: [/^balance 70 at version 2\nrefused: InsufficientFunds\n$/]
}

const typeErrors = (files: ReadonlyArray<string>): ReadonlyArray<string> => {
  const configPath = join(root, "tsconfig.json")
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!
  const program = ts.createProgram(files, config.options)
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
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
      const { stdout } = await promisify(execFile)(
        join(root, "node_modules", ".bin", "tsx"),
        ["--conditions=effect-eventsourcing-source", join(directory, "main.ts")],
        { cwd: root, env: { ...process.env, NO_COLOR: "1" } }
      )
      expect(expectedOutput[example], `the expected output of ${example}`).toBeDefined()
      for (const pattern of expectedOutput[example]!) {
        expect(stdout).toMatch(pattern)
      }
    })
  }
})
