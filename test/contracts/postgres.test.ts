/** Every contract on PostgreSQL, each in a schema of its own. */
import { postgresBackend } from "../support/backends.js"
import { skipPostgres } from "../support/postgres.js"
import { runContracts } from "./index.js"
import { sqlContractBackend } from "./sql.js"

runContracts(sqlContractBackend({ name: "PostgreSQL", skip: skipPostgres, open: (label) => postgresBackend(label) }))
