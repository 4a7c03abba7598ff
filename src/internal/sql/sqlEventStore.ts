/**
 * The event store on any `SqlClient`: validation, retries, conflict resolution, paging and
 * decoding are here; the statements come from the client's dialect.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { EventStore } from "../../EventStore.js"
import type * as Position from "../../Position.js"
import { countLimit, verifyLimit } from "../readOptions.js"
import * as StreamPages from "../streamPages.js"
import * as Subscription from "../subscription.js"
import * as TransactionProbe from "../transactionProbe.js"
import type { Dialect } from "./dialect.js"
import { storeError, withSqlClient } from "./shared.js"
import * as Appending from "./sqlAppend.js"
import * as Reads from "./sqlReads.js"
import type * as Tables from "./tables.js"
import * as Verify from "./verify.js"

/**
 * Something that tells the store of events appended elsewhere (by another process): it runs for
 * as long as the store, publishing to the store's wake-ups.
 */
export type Listener = (tables: Tables.Tables, wakeups: Subscription.Wakeups) => Effect.Effect<void, never, Scope.Scope>

export const make = (
  dialect: Dialect,
  listener?: Listener
): Effect.Effect<EventStore, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { tables } = dialect
    const wakeups = yield* Subscription.makeWakeups
    if (listener !== undefined) yield* listener(tables, wakeups)

    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) => withSqlClient(sql)(effect)
    const appendMany = yield* Appending.make(dialect, wakeups)
    const batch = Reads.readBatch(dialect)
    const readAll = (after: Position.Position, size: number) => withSql(batch(after, size))
    const readPages = Reads.readStream(dialect)

    const store: EventStore = {
      append: (request) => Effect.map(appendMany([request]), (results) => results[0]!),
      appendMany,
      readStream: (streamId, options) => Stream.provideService(readPages(streamId, options), SqlClient.SqlClient, sql),
      readAll: (options) => Subscription.readAll(options, readAll),
      subscribe: (options) => Subscription.follow(options, wakeups, readAll),
      head: dialect.head.pipe(Effect.mapError(storeError("read the head of the global order")), withSql),
      countAfter: (position, options) =>
        Effect.suspend(() => dialect.countAfter(position, countLimit(options))).pipe(
          Effect.mapError(storeError("count the events after a position")),
          withSql
        ),
      verify: (options) =>
        Effect.suspend(() => Verify.verify(tables, dialect.ordering, verifyLimit(options))).pipe(
          Effect.mapError(storeError("verify the store")),
          withSql
        ),
      streamVersion: Reads.streamVersion(dialect, sql)
    }
    return StreamPages.attach(
      TransactionProbe.attach(store, Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)),
      Reads.readPage(dialect, sql)
    )
  })
