import { describe } from "@effect/vitest"
import { eventStoreContract } from "./contract/eventStoreContract.js"
import { isolatedLayer, isolatedSchema, skipPostgres } from "./support/postgres.js"

describe.skipIf(skipPostgres)("PostgreSQL", () => {
  eventStoreContract("PostgreSQL", isolatedLayer(isolatedSchema("contract")))
})
