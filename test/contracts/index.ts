/**
 * Every contract, for one backend: the runner of each backend (memory.test.ts, sqlite.test.ts,
 * postgres.test.ts) builds its `ContractBackend` and calls this, so that every backend runs the
 * same cases. A case only some backends can run asks the backend for what it needs (see
 * `ContractStore`), and is left out where the backend does not give it.
 */
import { describe } from "@effect/vitest"
import { appendContract } from "./append.js"
import type { ContractBackend } from "./backend.js"
import { historyContract } from "./history.js"
import { projectionsContract } from "./projections.js"
import { readContract } from "./read.js"
import { readAllContract } from "./readAll.js"
import { retriesContract } from "./retries.js"
import { snapshotsContract } from "./snapshots.js"
import { subscribeContract } from "./subscribe.js"

export const runContracts = <R>(backend: ContractBackend<R>) =>
  describe.skipIf(backend.skip)(backend.name, () => {
    appendContract(backend)
    readContract(backend)
    readAllContract(backend)
    subscribeContract(backend)
    retriesContract(backend)
    projectionsContract(backend)
    snapshotsContract(backend)
    historyContract(backend)
  })
