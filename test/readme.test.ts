/**
 * The documentation's code is real code: README's first example is the quickstart example
 * verbatim, which the examples test type-checks and runs, and every other tested block in
 * README and docs/ is a test file in test/readme/, run by the suite. The docs cannot show code
 * that does not work, and their links cannot point at pages or headings that do not exist.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative } from "node:path"

const root = join(import.meta.dirname, "..")
const read = (file: string) => readFileSync(join(root, file), "utf8")

/** Fenced code blocks, whose lines are not headings and whose brackets are not links. */
const withoutCode = (markdown: string): string => markdown.replace(/^```[\s\S]*?^```/gm, "")

/** The lines that are headings (`#` to `######`), outside code blocks. */
const headings = (markdown: string): Array<string> =>
  [...withoutCode(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)].map((match) => match[1]!)

/**
 * The first ts block of a markdown file, or the first after a heading (of any level) in it.
 */
const codeBlockIn = (file: string, heading?: string): string => {
  const markdown = read(file)
  let section = markdown
  if (heading !== undefined) {
    const at = new RegExp(`^#{1,6} ${heading.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m").exec(markdown)
    if (at === null) throw new Error(`no heading "${heading}" in ${file}`)
    section = markdown.slice(at.index)
  }
  const match = /```ts\n([\s\S]*?)```/.exec(section)
  if (match === null) throw new Error(`no ts block in ${file}${heading === undefined ? "" : ` under "${heading}"`}`)
  return match[1]!
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped (but '-' and '_'), spaces to '-'. */
const slug = (heading: string): string =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-")

/** Every anchor of a file, repeated headings numbered as GitHub numbers them (`-1`, `-2`). */
const anchors = (markdown: string): Set<string> => {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const heading of headings(markdown)) {
    const base = slug(heading)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

/** The markdown files whose links are checked. */
const documents = [
  "README.md",
  "CHANGELOG.md",
  "bench/README.md",
  ...readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`)
]

/** The targets of a file's inline links, `[text](target)`, outside code blocks and code spans. */
const links = (markdown: string): Array<string> =>
  [...withoutCode(markdown).replace(/`[^`\n]*`/g, "code").matchAll(/\]\(([^)\s]+)(?: +"[^"]*")?\)/g)].map((match) =>
    match[1]!
  )

/** What is wrong with one relative link of `file`, or undefined. */
const brokenLink = (file: string, target: string): string | undefined => {
  const [path, anchor] = target.split("#", 2) as [string, string | undefined]
  const resolved = path === "" ? file : relative(root, join(root, dirname(file), decodeURIComponent(path)))
  if (resolved.startsWith("..") || !existsSync(join(root, resolved))) return `${file}: ${target}: no file ${resolved}`
  if (anchor === undefined) return undefined
  if (statSync(join(root, resolved)).isDirectory() || !resolved.endsWith(".md")) {
    return `${file}: ${target}: an anchor into a file that is not markdown`
  }
  return anchors(read(resolved)).has(anchor) ? undefined : `${file}: ${target}: no heading #${anchor} in ${resolved}`
}

describe("README and docs", () => {
  it("shows the quickstart example as it is in examples/quickstart/main.ts", () => {
    expect(codeBlockIn("README.md", "A first example")).toBe(read("examples/quickstart/main.ts"))
  })

  it("shows the testing examples as they are in test/readme/", () => {
    expect(codeBlockIn("docs/11-testing.md", "Deciders: given / when / then")).toBe(read("test/readme/decider.test.ts"))
    expect(codeBlockIn("docs/11-testing.md", "Programs: the in-memory store")).toBe(
      read("test/readme/memoryStore.test.ts")
    )
  })

  it("shows the transaction example as it is in test/readme/", () => {
    expect(codeBlockIn("docs/05-transactions.md", "Transactions")).toBe(read("test/readme/transaction.test.ts"))
  })

  it("shows the projection example as it is in test/readme/", () => {
    expect(codeBlockIn("docs/06-projections.md", "Projections")).toBe(read("test/readme/projection.test.ts"))
  })

  it("shows the long-lived systems examples as they are in test/readme/", () => {
    expect(codeBlockIn("docs/07-evolution.md", "Changing events safely")).toBe(read("test/readme/evolution.test.ts"))
    expect(codeBlockIn("docs/08-snapshots.md", "Snapshots")).toBe(read("test/readme/snapshots.test.ts"))
    expect(codeBlockIn("docs/09-history.md", "Temporal queries and the audit trail")).toBe(
      read("test/readme/history.test.ts")
    )
    expect(codeBlockIn("docs/10-catalog.md", "The event catalog")).toBe(read("test/readme/catalog.test.ts"))
  })

  it("gives the two quick-start commands", () => {
    const readme = read("README.md")
    expect(readme).toContain("```sh\nnpm ci && npm start\n```")
    expect(readme).toContain("```sh\nnpm ci && npm test\n```")
  })

  it("links only to files and headings that exist", () => {
    const relativeLinks = documents.flatMap((file) =>
      links(read(file))
        .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
        .map((target) => [file, target] as const)
    )
    expect(relativeLinks.length).toBeGreaterThan(50)
    expect(relativeLinks.flatMap(([file, target]) => brokenLink(file, target) ?? [])).toEqual([])
  })
})
