/**
 * Whether the calling fiber runs inside a transaction of a store's database. The SQL event store
 * carries one, so the core can ask without knowing @effect/sql; a store without one (in memory)
 * has no transactions to be inside.
 */
import * as Effect from "effect/Effect"

const probeKey: unique symbol = Symbol.for("effect-eventsourcing/TransactionProbe")

interface Probed {
  readonly [probeKey]: Effect.Effect<boolean>
}

/** The service, with the probe that tells whether the calling fiber is inside a transaction. */
export const attach = <S extends object>(service: S, inTransaction: Effect.Effect<boolean>): S =>
  Object.assign(service, { [probeKey]: inTransaction })

/** Whether the calling fiber is inside a transaction of the service's database. */
export const inTransaction = (service: object): Effect.Effect<boolean> =>
  probeKey in service ? (service as Probed)[probeKey] : Effect.succeed(false)
