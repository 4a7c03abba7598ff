/**
 * The event store on an embedded SQLite file (through `@effect/sql-sqlite-node` and
 * `better-sqlite3`): the default for applications that run on one machine, and for tests that
 * want a real database without a server.
 *
 * The layer also provides the `SqlClient` (and `SqliteClient`), so the application's read models
 * can live in the same file and be written in the same transactions as the events.
 *
 * ```ts
 * import { SqliteEventStore } from "effect-eventsourcing"
 *
 * const EventStoreLive = SqliteEventStore.layer({ filename: "data/events.sqlite" })
 * ```
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import type { EventStoreError } from "./Errors.js"
import type { EventStore } from "./EventStore.js"
import type { ProjectionStore } from "./ProjectionStore.js"
import type { SnapshotStore } from "./SnapshotStore.js"
import { failingAs } from "./internal/sql/layers.js"
import * as SqlEventStore from "./SqlEventStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends SqlEventStore.Options {
  /** The database file; created if missing. `":memory:"` gives a private in-memory database. */
  readonly filename: string
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
    Layer.provideMerge(SqliteClient.layer({ filename: options.filename })),
    // Opening the file throws (a defect) when its directory is missing or it is not a database.
    failingAs(`open the SQLite database ${JSON.stringify(options.filename)}`)
  )

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
