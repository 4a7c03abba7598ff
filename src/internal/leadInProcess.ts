/**
 * The right to run a projection within this process: a semaphore per projection, created the
 * first time it is asked for (synchronously, so that two runners cannot each make one).
 */
import * as Effect from "effect/Effect"
import type { RunnerSupport } from "./projectionRunnerSupport.js"

export const leadInProcess = (): RunnerSupport["lead"] => {
  const leaders = new Map<string, Effect.Semaphore>()
  return (projection) =>
    Effect.gen(function*() {
      const semaphore = yield* Effect.sync(() => {
        const existing = leaders.get(projection)
        if (existing !== undefined) return existing
        const created = Effect.unsafeMakeSemaphore(1)
        leaders.set(projection, created)
        return created
      })
      yield* Effect.acquireRelease(semaphore.take(1), () => semaphore.release(1))
      return Effect.never
    })
}
