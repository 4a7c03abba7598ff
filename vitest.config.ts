import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Concurrency tests and examples spawn processes and open real connections; a busy
    // two-core machine needs more than vitest's five-second default.
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
