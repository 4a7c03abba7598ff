/**
 * Transactions of the in-memory store, with the outcomes the SQL backends give (for inline
 * projections and projection batches): a transaction holds the store's one write lock while it
 * is open, so its appends are the newest events, which other fibers do not see until it commits
 * and which are taken off the end of the log if it fails.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as PubSub from "effect/PubSub"
import type { Mark, MemoryState, Transaction } from "./state.js"
import { inOpenTransaction } from "./state.js"

const mark = (state: MemoryState): Mark => ({ logLength: state.log.length, sequence: state.sequence })

/** Undoes what was written after a mark: the newest events are at the end of the log and of their streams. */
const undo = (state: MemoryState, to: Mark) => {
  while (state.log.length > to.logLength) {
    const event = state.log.pop()!
    const stream = state.streams.get(event.streamId)!
    stream.events.pop()
    if (stream.events.length === 0) state.streams.delete(event.streamId)
    state.byId.delete(event.id)
  }
  state.sequence = to.sequence
}

/**
 * Runs an effect in a transaction of the store: its appends are seen by no other fiber until it
 * succeeds, and are undone if it fails; appends from other fibers wait until it ends. Inside a
 * transaction, it is a savepoint.
 */
export const transaction = (state: MemoryState) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(inOpenTransaction(state), (inside) => {
    if (inside) {
      const savepoint = mark(state)
      return Effect.onExit(
        effect,
        (exit) => (Exit.isFailure(exit) ? Effect.sync(() => undo(state, savepoint)) : Effect.void)
      )
    }
    return state.lock.withPermits(1)(Effect.suspend(() => {
      const begun: Transaction = { begun: mark(state) }
      state.open = begun
      return Effect.locally(effect, state.currentTransaction, begun).pipe(
        Effect.onExit((exit) =>
          Effect.suspend(() => {
            state.open = undefined
            if (Exit.isFailure(exit)) {
              undo(state, begun.begun)
              return Effect.void
            }
            return state.log.length > begun.begun.logLength ? PubSub.publish(state.wakeups, undefined) : Effect.void
          })
        )
      )
    }))
  })
