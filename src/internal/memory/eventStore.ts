/**
 * The in-memory event store, assembled from its operations (see `state.ts` for why each is
 * atomic), and its transactions for the in-memory projection store.
 */
import * as Effect from "effect/Effect"
import type { EventStore } from "../../EventStore.js"
import * as Position from "../../Position.js"
import { countLimit, verifyLimit } from "../readOptions.js"
import * as Subscription from "../subscription.js"
import * as TransactionProbe from "../transactionProbe.js"
import { appendMany } from "./append.js"
import { indexAfter, readBatch, readStream } from "./reads.js"
import { inOpenTransaction, makeState, visibleEvents, visibleLength } from "./state.js"
import { transaction } from "./transactions.js"
import { verify } from "./verify.js"

/** The store, and its transactions (for the in-memory projection store). */
export interface WithTransactions {
  readonly store: EventStore
  /** See `transactions.ts`. */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const makeWithTransactions: Effect.Effect<WithTransactions> = Effect.map(Subscription.makeWakeups, (wakeups) => {
  const state = makeState(wakeups)
  const append = appendMany(state)
  const batch = readBatch(state)
  const inside = inOpenTransaction(state)
  const store: EventStore = {
    append: (request) => Effect.map(append([request]), (results) => results[0]!),
    appendMany: append,
    readStream: readStream(state),
    readAll: (options) => Subscription.readAll(options, batch),
    subscribe: (options) => Subscription.follow(options, wakeups, batch),
    streamVersion: (streamId) => Effect.map(inside, (inside) => visibleEvents(state, streamId, inside).length),
    head: Effect.map(inside, (inside) => state.log[visibleLength(state, inside) - 1]?.position ?? Position.start),
    countAfter: (position, options) =>
      Effect.map(inside, (inside) => {
        const visible = visibleLength(state, inside)
        return Math.min(visible - Math.min(indexAfter(state, position), visible), countLimit(options))
      }),
    verify: (options) => Effect.sync(() => verify(state, verifyLimit(options)))
  }
  return { store: TransactionProbe.attach(store, inside), transaction: transaction(state) }
})

export const make: Effect.Effect<EventStore> = Effect.map(makeWithTransactions, ({ store }) => store)
