/**
 * The event store on any `SqlClient`: validation, retries, conflict resolution, paging and
 * decoding are here; the statements come from the client's dialect.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { EventStoreError } from "../../Errors.js"
import type { AppendRequest, EventStore } from "../../EventStore.js"
import type * as Position from "../../Position.js"
import { isWellFormed } from "../prepareAppend.js"
import { countLimit, verifyLimit } from "../readOptions.js"
import * as Subscription from "../subscription.js"
import type { Dialect } from "./dialect.js"
import * as Pg from "./pg.js"
import * as Appending from "./sqlAppend.js"
import * as Reads from "./sqlReads.js"
import * as Sqlite from "./sqlite.js"
import { storeError } from "./shared.js"
import * as Tables from "./tables.js"
import * as Verify from "./verify.js"

export interface Options {
  readonly tables?: Partial<Tables.TableNames> | undefined
}

/**
 * Something that tells the store of events appended elsewhere (by another process): it runs for
 * as long as the store, publishing to the store's wake-ups.
 */
export type Listener = (tables: Tables.Tables, wakeups: Subscription.Wakeups) => Effect.Effect<void, never, Scope.Scope>

export const migrate = (dialect: Dialect, tables: Tables.Tables) =>
  dialect.exclusively(
    Migrator.make({})({ loader: Migrator.fromRecord(dialect.migrations), table: tables.names.migrations })
  ).pipe(
    // The migrator reports a failed migration, and @effect/sql a failed commit, as defects.
    Effect.catchAllDefect(Effect.fail),
    Effect.mapError(storeError("migrate the event store schema"))
  )

/**
 * Fails when a table the store needs is missing after its migrations ran: they are recorded per
 * events table, so they ran before with other names for its other tables (one renamed through
 * `tables` on a database already migrated).
 */
const checkTables = (dialect: Dialect, tables: Tables.Tables) =>
  Effect.flatMap(
    Effect.mapError(dialect.missingTables, storeError("check the store's tables")),
    (missing) =>
      missing.length === 0 ? Effect.void : Effect.fail(
        new EventStoreError({
          operation: "check the store's tables",
          cause: new Error(
            `the tables ${missing.map((name) => JSON.stringify(name)).join(", ")} do not exist, although the migrations recorded in ${
              JSON.stringify(tables.names.migrations)
            } have run: they ran with other names for the store's tables. A store's tables cannot be renamed one at a time through \`tables\`: rename them in the database too, or use the names they were created with`
          )
        })
      )
  )

export const dialectOf = (
  sql: SqlClient.SqlClient,
  tables: Tables.Tables
): Effect.Effect<Dialect | undefined, SqlError, Scope.Scope> =>
  sql.onDialectOrElse({
    pg: () =>
      Effect.flatMap(Pg.defaultIsolation(sql), (isolation) =>
        Effect.provideService(Pg.make(tables, { isolation }), SqlClient.SqlClient, sql)),
    sqlite: () => Effect.succeed(Sqlite.make(tables)),
    orElse: () => Effect.succeed(undefined)
  })

export const make = (
  options?: Options,
  listener?: Listener
): Effect.Effect<EventStore, EventStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = Tables.forClient(sql, options?.tables)
    const dialect = yield* Effect.mapError(dialectOf(sql, tables), storeError("connect to the database"))
    if (dialect === undefined) {
      return yield* Effect.dieMessage("The SQL event store supports PostgreSQL and SQLite clients only")
    }
    const problems = dialect.nameProblems
    if (problems.length > 0) {
      return yield* new EventStoreError({ operation: "check the table names", cause: new Error(problems.join("; ")) })
    }
    yield* migrate(dialect, tables)
    yield* checkTables(dialect, tables)
    const wakeups = yield* Subscription.makeWakeups
    if (listener !== undefined) yield* listener(tables, wakeups)

    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      Effect.provideService(effect, SqlClient.SqlClient, sql)
    const append = Appending.appendMany(dialect, wakeups)
    const appendMany = (requests: ReadonlyArray<AppendRequest>) => withSql(append(requests))
    const batch = Reads.readBatch(dialect)
    const readAll = (after: Position.Position, size: number) => withSql(batch(after, size))
    const readPages = Reads.readStream(dialect)

    return {
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
      streamVersion: (streamId) =>
        (isWellFormed(streamId) ? dialect.streamStates([streamId]) : Effect.succeed([])).pipe(
          Effect.map((states) => states[0]?.version ?? 0),
          Effect.mapError(storeError("read a stream's version")),
          withSql
        )
    }
  })
