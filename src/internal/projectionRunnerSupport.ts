/**
 * What projection runners need of a projection store beyond its public interface: the right to
 * run a projection, and word of each commit. The library's stores carry it; a store made
 * elsewhere gets leads within the process and no word of commits (`waitFor` then polls).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { EventStoreError } from "../Errors.js"
import type { ProjectionStore } from "../ProjectionStore.js"
import { leadInProcess } from "./leadInProcess.js"

export interface RunnerSupport {
  /**
   * Takes the right to run a projection for the life of the scope, waiting until no one else
   * has it: across processes on PostgreSQL (a session advisory lock), within the process
   * elsewhere. The effect it returns fails if the right is lost (the connection holding it
   * died), so that the runner stops; it never succeeds.
   */
  readonly lead: (
    projection: string
  ) => Effect.Effect<Effect.Effect<never, EventStoreError>, EventStoreError, Scope.Scope>
  /** Wakes whoever waits for a projection's progress in this process when a commit lands. */
  readonly commits: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
}

const supportKey: unique symbol = Symbol.for("effect-eventsourcing/ProjectionRunnerSupport")

interface Supported {
  readonly [supportKey]: RunnerSupport
}

/** The store, carrying what its runners need. */
export const attach = (store: ProjectionStore, support: RunnerSupport): ProjectionStore =>
  Object.assign(store, { [supportKey]: support })

/** What runners use of stores made elsewhere, one per store so that its runners share leads. */
const fallbacks = new WeakMap<ProjectionStore, RunnerSupport>()

export const supportOf = (store: ProjectionStore): RunnerSupport => {
  if (supportKey in store) return (store as ProjectionStore & Supported)[supportKey]
  let fallback = fallbacks.get(store)
  if (fallback === undefined) {
    fallback = { lead: leadInProcess(), commits: Effect.succeed(Effect.never) }
    fallbacks.set(store, fallback)
  }
  return fallback
}
