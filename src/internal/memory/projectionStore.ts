/**
 * Projection checkpoints in memory. `commit` runs the handler's effect (in a transaction of the
 * in-memory event store, when it has one) and then moves the checkpoint, so a failed effect
 * leaves the checkpoint where it was.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import { CheckpointConflictError } from "../../Errors.js"
import * as Position from "../../Position.js"
import type { DeadLetter, ProjectionStore } from "../../ProjectionStore.js"
import { leadInProcess } from "../leadInProcess.js"
import * as RunnerSupport from "../projectionRunnerSupport.js"

export interface Options {
  /**
   * The in-memory event store's transactions: a handler's appends are then undone with a failed
   * batch, and an inline projection's failure undoes its command's append, as on the SQL
   * backends. Without them (a projection store on its own) effects just run.
   */
  readonly transaction?: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = (options?: Options): Effect.Effect<ProjectionStore> =>
  Effect.gen(function*() {
    const transaction = options?.transaction ?? ((effect) => effect)
    const checkpoints = new Map<string, Position.Position>()
    const deadLetters: Array<DeadLetter> = []
    const committed = yield* PubSub.sliding<void>(1)

    const isAt = (projection: string, from: Option.Option<Position.Position>) => {
      const current = checkpoints.get(projection)
      return Option.match(from, {
        onNone: () => current === undefined,
        onSome: (position) => current !== undefined && Position.equals(current, position)
      })
    }

    const store: ProjectionStore = {
      checkpoint: (projection) => Effect.sync(() => Option.fromNullable(checkpoints.get(projection))),
      // Without transactions to undo half a batch, a batch in flight is not interrupted: it runs
      // to its end and moves the checkpoint, so an interrupted runner applies nothing twice.
      commit: (projection, from, to, effect) =>
        Effect.uninterruptible(
          Effect.suspend(() =>
            isAt(projection, from)
              ? Effect.tap(transaction(effect), () =>
                Effect.suspend(() => {
                  if (!isAt(projection, from)) return Effect.fail(new CheckpointConflictError({ projection }))
                  checkpoints.set(projection, to)
                  return PubSub.publish(committed, undefined)
                }))
              : Effect.fail(new CheckpointConflictError({ projection }))
          )
        ),
      transaction,
      deadLetter: (projection, event, reason) =>
        Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
          Effect.sync(() => {
            deadLetters.push({
              projection,
              eventId: event.id,
              streamId: event.streamId,
              version: event.version,
              eventType: event.type,
              position: event.position,
              reason,
              failedAt: new Date(now)
            })
          })),
      deadLetters: (projection) => Effect.sync(() => deadLetters.filter((letter) => letter.projection === projection)),
      reset: (projection, effect) =>
        Effect.tap(effect, () =>
          Effect.sync(() => {
            checkpoints.delete(projection)
            deadLetters.splice(
              0,
              deadLetters.length,
              ...deadLetters.filter((letter) => letter.projection !== projection)
            )
          }))
    }
    return RunnerSupport.attach(store, {
      lead: leadInProcess(),
      commits: Effect.map(PubSub.subscribe(committed), (dequeue) => Effect.asVoid(Queue.take(dequeue)))
    })
  })
