import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
import { eventStoreContract } from "./contract/eventStoreContract.js"
import { temporaryDatabase } from "./support/sqlite.js"

eventStoreContract("SQLite", SqliteEventStore.layer({ filename: temporaryDatabase() }))
