/**
 * The one place a client's database is told apart: its dialect is chosen, and the database made
 * ready (names checked, migrations run, tables found), once for all the stores that share it.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { EventStoreError } from "../../Errors.js"
import type { Dialect } from "./dialect.js"
import * as Pg from "./pg.js"
import { canPrepare } from "./pg/objects.js"
import { storeError } from "./shared.js"
import * as Sqlite from "./sqlite.js"
import * as Tables from "./tables.js"

/** What a store asks of its dialect. */
export interface Options {
  /** Table names to use instead of the defaults (any subset). */
  readonly tables?: Partial<Tables.TableNames> | undefined
  /** PostgreSQL: whether the statements go as named prepared statements (default `true`). */
  readonly preparedStatements?: boolean | undefined
}

/** The dialect of the client's database, for a store with these options. */
const select = (
  sql: SqlClient.SqlClient,
  options: Options
): Effect.Effect<Dialect, EventStoreError, Scope.Scope> =>
  sql.onDialectOrElse({
    pg: () => {
      const tables = Tables.make(options.tables, Tables.pgIdentifierBytes)
      const prepared = canPrepare(sql, options.preparedStatements ?? true)
      return Pg.defaultIsolation(sql).pipe(
        Effect.flatMap((isolation) => Pg.make(tables, { isolation, prepared })),
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.mapError(storeError("connect to the database"))
      )
    },
    sqlite: () => Effect.succeed(Sqlite.make(Tables.make(options.tables))),
    orElse: () => Effect.dieMessage("The SQL event store supports PostgreSQL and SQLite clients only")
  })

/**
 * The dialect of the `SqlClient` in context, on a database migrated to what the stores need.
 */
export const open = (
  options: Options
): Effect.Effect<Dialect, EventStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* select(sql, options)
    const problems = dialect.nameProblems
    if (problems.length > 0) {
      return yield* new EventStoreError({ operation: "check the table names", cause: new Error(problems.join("; ")) })
    }
    yield* migrate(dialect)
    yield* checkTables(dialect)
    return dialect
  })

const migrate = (dialect: Dialect) =>
  dialect.withMigrationLock(
    Migrator.make({})({ loader: Migrator.fromRecord(dialect.migrations), table: dialect.tables.names.migrations })
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
const checkTables = (dialect: Dialect) =>
  Effect.flatMap(
    Effect.mapError(dialect.missingTables, storeError("check the store's tables")),
    (missing) =>
      missing.length === 0 ? Effect.void : Effect.fail(
        new EventStoreError({
          operation: "check the store's tables",
          cause: new Error(
            `the tables ${
              missing.map((name) => JSON.stringify(name)).join(", ")
            } do not exist, although the migrations recorded in ${
              JSON.stringify(dialect.tables.names.migrations)
            } have run: they ran with other names for the store's tables. A store's tables cannot be renamed one at a time through \`tables\`: rename them in the database too, or use the names they were created with`
          )
        })
      )
  )
