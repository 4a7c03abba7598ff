/**
 * README's first example is the quickstart example verbatim, which the examples test
 * type-checks and runs: the README cannot show code that does not work.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const readme = readFileSync(join(root, "README.md"), "utf8")

/** The first ts block after a `## heading` (and after a sub-heading inside it, if given). */
const codeBlockAfter = (heading: string, subheading?: string): string => {
  let section = readme.slice(readme.indexOf(`\n## ${heading}\n`))
  if (subheading !== undefined) section = section.slice(section.indexOf(`\n${subheading}\n`))
  const match = /```ts\n([\s\S]*?)```/.exec(section)
  if (match === null) throw new Error(`no ts block under "${heading}"`)
  return match[1]!
}

describe("README", () => {
  it("shows the quickstart example as it is in examples/quickstart/main.ts", () => {
    expect(codeBlockAfter("A first example")).toBe(readFileSync(join(root, "examples/quickstart/main.ts"), "utf8"))
  })

  it("shows the testing examples as they are in test/readme/", () => {
    expect(codeBlockAfter("Testing")).toBe(readFileSync(join(root, "test/readme/decider.test.ts"), "utf8"))
    expect(codeBlockAfter("Testing", "### Programs: the in-memory store")).toBe(
      readFileSync(join(root, "test/readme/memoryStore.test.ts"), "utf8")
    )
  })

  it("shows the transaction example as it is in test/readme/", () => {
    expect(codeBlockAfter("Backends", "### Transactions")).toBe(
      readFileSync(join(root, "test/readme/transaction.test.ts"), "utf8")
    )
  })

  it("shows the projection example as it is in test/readme/", () => {
    expect(codeBlockAfter("Projections")).toBe(readFileSync(join(root, "test/readme/projection.test.ts"), "utf8"))
  })

  it("shows the long-lived systems examples as they are in test/readme/", () => {
    expect(codeBlockAfter("Long-lived systems", "### Changing events safely")).toBe(
      readFileSync(join(root, "test/readme/evolution.test.ts"), "utf8")
    )
    expect(codeBlockAfter("Long-lived systems", "### Snapshots")).toBe(
      readFileSync(join(root, "test/readme/snapshots.test.ts"), "utf8")
    )
    expect(codeBlockAfter("Long-lived systems", "### Temporal queries and the audit trail")).toBe(
      readFileSync(join(root, "test/readme/history.test.ts"), "utf8")
    )
    expect(codeBlockAfter("Long-lived systems", "### The event catalog")).toBe(
      readFileSync(join(root, "test/readme/catalog.test.ts"), "utf8")
    )
  })

  it("gives the two quick-start commands", () => {
    expect(readme).toContain("```sh\nnpm ci && npm start\n```")
    expect(readme).toContain("```sh\nnpm ci && npm test\n```")
  })
})
