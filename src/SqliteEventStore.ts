/**
 * The event store on an embedded SQLite file (through `@effect/sql-sqlite-node` and
 * `better-sqlite3`): the default for applications that run on one machine, and for tests that
 * want a real database without a server.
 *
 * The layer also provides the `SqlClient` (and `SqliteClient`), so the application's read models
 * can live in the same file and be written in the same transactions as the events.
 *
 * ```ts
 * import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"
 *
 * const EventStoreLive = SqliteEventStore.layer({ filename: "data/events.sqlite" })
 * ```
 *
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { EventStoreError } from "./Errors.js"
import type { EventStore } from "./EventStore.js"
import { failingAs } from "./internal/sql/layers.js"
import * as Sqlite from "./internal/sql/sqlite.js"
import type { ProjectionStore } from "./ProjectionStore.js"
import type { SnapshotStore } from "./SnapshotStore.js"
import * as SqlEventStore from "./SqlEventStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends SqlEventStore.Options {
  /** The database file; created if missing. `":memory:"` gives a private in-memory database. */
  readonly filename: string
  /**
   * How long a statement may wait for another process's lock on the file before it fails with
   * `SQLITE_BUSY` (SQLite's `busy_timeout`; default 5 ms). better-sqlite3 waits synchronously,
   * holding the event loop, so keep it short: the store's own transactions, and those run with
   * {@link withTransaction}, wait for the lock without holding the loop, for up to 30 seconds.
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  EventStore | ProjectionStore | SnapshotStore | SqlClient.SqlClient | SqliteClient.SqliteClient,
  EventStoreError
> =>
  SqlEventStore.layer(options).pipe(
    Layer.provideMerge(
      Layer.effectDiscard(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe(
            `PRAGMA busy_timeout = ${Math.round(Duration.toMillis(options.busyTimeout ?? defaultBusyTimeout))}`
          ))
      ).pipe(Layer.provideMerge(SqliteClient.layer({ filename: options.filename })))
    ),
    // Opening the file throws (a defect) when its directory is missing or it is not a database.
    failingAs(`open the SQLite database ${JSON.stringify(options.filename)}`)
  )

/**
 * How long a statement waits for another process's lock before it fails: 5 milliseconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBusyTimeout: Duration.Duration = Duration.millis(5)

/**
 * Runs an effect in a transaction that takes SQLite's write lock before anything else runs
 * (`BEGIN IMMEDIATE`), waiting for other processes that hold it without holding the event loop
 * (it tries again after 1 ms, doubling up to 50 ms, for 30 seconds). Appends and the
 * application's own writes inside it commit together, or not at all. Inside a transaction it is
 * a savepoint.
 *
 * Use it instead of `sql.withTransaction` for transactions that write on a file other processes
 * write too: `sql.withTransaction` begins a deferred transaction, which SQLite refuses with
 * `SQLITE_BUSY` ("database is locked") when it reads first and another process writes before it
 * writes, and which no waiting can save.
 *
 * @since 0.1.0
 * @category transactions
 */
export const withTransaction: <A, E, R>(
  effect: Effect.Effect<A, E, R>
) => Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> = Sqlite.withImmediateTransaction

/**
 * The layer with its options read from configuration, for example
 * `SqliteEventStore.layerConfig({ filename: Config.string("EVENTS_FILE") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  EventStore | ProjectionStore | SnapshotStore | SqlClient.SqlClient | SqliteClient.SqliteClient,
  EventStoreError | ConfigError.ConfigError
> => Layer.unwrapEffect(Config.map(Config.unwrap(config), layer))
