import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"

/** A path for a SQLite file in a temporary directory removed after the test file. */
export const temporaryDatabase = (name = "events.sqlite"): string => {
  const directory = mkdtempSync(join(tmpdir(), "effect-eventsourcing-"))
  afterAll(() => rmSync(directory, { recursive: true, force: true }))
  return join(directory, name)
}
