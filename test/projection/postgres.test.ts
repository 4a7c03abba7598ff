import { describe } from "@effect/vitest"
import { Layer } from "effect"
import { isolatedLayer, isolatedSchema, skipPostgres } from "../support/postgres.js"
import { projectionContract, sqlReadModel } from "./projectionContract.js"

const schema = isolatedSchema("projections")

describe.skipIf(skipPostgres)("PostgreSQL", () => {
  projectionContract("PostgreSQL", sqlReadModel(`${schema}.totals`).pipe(Layer.provideMerge(isolatedLayer(schema))), {
    transactional: true
  })
})
