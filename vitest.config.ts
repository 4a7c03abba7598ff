import { defineConfig } from "vitest/config"

// Tests and examples import the library by its package name; this condition resolves that name
// to the TypeScript sources (see "exports" in package.json), so nothing needs building first.
const conditions = ["effect-eventsourcing-source"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    // Concurrency tests and examples open real connections and spawn processes; a busy
    // two-core machine needs more than vitest's five-second default.
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
