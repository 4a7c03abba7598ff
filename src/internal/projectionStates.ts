/**
 * What the runners of this process are doing, by projection: for `Projection.status` and for
 * `Projection.waitFor`, which must fail rather than wait for a projection that stopped here.
 * Kept per `ProjectionStore` (each build of a store layer has its own), so that it describes
 * the runners of that store.
 */
import type { ProjectionError } from "../Errors.js"
import type { ProjectionStore } from "../ProjectionStore.js"

/**
 * What a runner of a projection in this process is doing.
 *
 * - `standby`: waiting for the projection's lead, which another runner holds;
 * - `catching-up`: reading the events after its checkpoint, not yet up to the head;
 * - `running`: caught up, handling new events as they come;
 * - `stopped`: stopped at an event with a `ProjectionError`.
 */
export type RunnerState = "standby" | "catching-up" | "running" | "stopped"

interface Runner {
  state: RunnerState
  error: ProjectionError | undefined
}

const registries = new WeakMap<ProjectionStore, Map<string, Set<Runner>>>()

const runnersOf = (store: ProjectionStore, projection: string): Set<Runner> => {
  let byName = registries.get(store)
  if (byName === undefined) {
    byName = new Map()
    registries.set(store, byName)
  }
  let runners = byName.get(projection)
  if (runners === undefined) {
    runners = new Set()
    byName.set(projection, runners)
  }
  return runners
}

/** A runner of this process, registered until `remove`; a stopped one stays until another starts. */
export const register = (store: ProjectionStore, projection: string) => {
  const runners = runnersOf(store, projection)
  for (const runner of runners) if (runner.state === "stopped") runners.delete(runner)
  const runner: Runner = { state: "standby", error: undefined }
  runners.add(runner)
  return {
    set: (state: Exclude<RunnerState, "stopped">) => {
      runner.state = state
    },
    stop: (error: ProjectionError) => {
      runner.state = "stopped"
      runner.error = error
    },
    /** A runner interrupted (stopped on purpose) leaves no state behind. */
    remove: () => {
      if (runner.state !== "stopped") runners.delete(runner)
    }
  }
}

const rank: Record<RunnerState, number> = { running: 3, "catching-up": 2, standby: 1, stopped: 0 }

/**
 * The state of a projection's runners in this process: that of the one furthest along (one that
 * works before one that waits), `stopped` only when every runner here stopped, `undefined` when
 * none runs here.
 */
export const stateOf = (
  store: ProjectionStore,
  projection: string
): { readonly state: RunnerState; readonly error: ProjectionError | undefined } | undefined => {
  let best: Runner | undefined
  for (const runner of registries.get(store)?.get(projection) ?? []) {
    if (best === undefined || rank[runner.state] > rank[best.state]) best = runner
  }
  return best === undefined ? undefined : { state: best.state, error: best.error }
}

/** The projections that command handlers of this process run inline, by store. */
const inline = new WeakMap<ProjectionStore, Set<string>>()

/**
 * Why a projection cannot be run both ways: inline in a command handler, which applies each
 * append's events as it is made, and by a runner, which would apply them all again.
 */
export const bothWays = (projection: string) =>
  `Projection ${
    JSON.stringify(projection)
  } runs inline in a command handler and by a runner (Projection.run or Projection.layer): the runner would apply its events a second time. Run it one way, or give the other one another name.`

/** Records that a command handler runs a projection inline; false when a runner of it runs here. */
export const claimInline = (store: ProjectionStore, projection: string): boolean => {
  const running = [...(registries.get(store)?.get(projection) ?? [])].some((runner) => runner.state !== "stopped")
  if (running) return false
  let names = inline.get(store)
  if (names === undefined) {
    names = new Set()
    inline.set(store, names)
  }
  names.add(projection)
  return true
}

/** Whether a command handler of this process ran the projection inline. */
export const runsInline = (store: ProjectionStore, projection: string): boolean =>
  inline.get(store)?.has(projection) ?? false
