import { Layer } from "effect"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { temporaryDatabase } from "../support/sqlite.js"
import { projectionContract, sqlReadModel } from "./projectionContract.js"

projectionContract(
  "SQLite",
  sqlReadModel("totals").pipe(Layer.provideMerge(SqliteEventStore.layer({ filename: temporaryDatabase() }))),
  { transactional: true }
)
