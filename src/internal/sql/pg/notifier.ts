import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"

/**
 * Tells listeners that events were appended, outside the appends' transactions. A notification
 * sent inside a transaction takes a lock, at commit, that every other notifying transaction
 * waits for, which serializes concurrent appends; so an append that runs while others from this
 * process are in flight asks for a notification once it has committed, and one fiber sends
 * them one at a time: requests that come while one is being sent are answered by the next, so
 * there is at most one in flight however fast appends come. (An append alone notifies from
 * inside its own statement: no lock to wait for, and no round trip of its own.)
 */
export const makeNotifier = (channel: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const requests = yield* Queue.sliding<void>(1)
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Queue.take(requests),
          Effect.ignore(sql.unsafe(`SELECT pg_notify($1, '1')`, [channel]))
        )
      )
    )
    return Effect.asVoid(Queue.offer(requests, undefined))
  })
