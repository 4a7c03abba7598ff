import type { Effect } from "effect"
import { TestServices } from "effect"

/**
 * Tests in a `layer(...)` block that run on the real clock: database tests wait on real time,
 * and races need real scheduling. (`excludeTestServices` would do this, but in @effect/vitest
 * 0.30.0 it leaves the live Clock in place for later tests of the same file.)
 */
export const live = <R>(methods: {
  readonly effect: (name: string, self: () => Effect.Effect<unknown, unknown, R>, timeout?: number) => void
}) => ({
  effect: <A, E>(name: string, body: () => Effect.Effect<A, E, R>, timeout?: number) =>
    methods.effect(name, () => TestServices.provideLive(body()), timeout)
})
