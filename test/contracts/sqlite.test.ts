/** Every contract on SQLite, each on a file of its own. */
import { sqliteBackend } from "../support/backends.js"
import { runContracts } from "./index.js"
import { sqlContractBackend } from "./sql.js"

runContracts(sqlContractBackend({ name: "SQLite", skip: false, open: () => sqliteBackend() }))
