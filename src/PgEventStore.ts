/**
 * The event store on PostgreSQL (through `@effect/sql-pg` and node-postgres), for production.
 *
 * The layer also provides the `SqlClient` (and `PgClient`), so read models can be written in the
 * same database and the same transactions as the events.
 *
 * ```ts
 * import * as PgEventStore from "effect-eventsourcing/PgEventStore"
 *
 * // DATABASE_URL, and DATABASE_POOL_SIZE (default 10), from the environment:
 * const EventStoreLive = PgEventStore.layerConfig()
 * ```
 *
 * Global readers only read events of transactions older than the oldest writing transaction
 * still running on the server, so a long-running writing transaction delays them (it never
 * makes them skip an event). Keep writing transactions short, and consider
 * `idle_in_transaction_session_timeout` so that a session left idle in a transaction cannot stall
 * readers for long.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { EventStoreError } from "./Errors.js"
import type { EventStore } from "./EventStore.js"
import * as Layers from "./internal/sql/layers.js"
import * as Listener from "./internal/sql/pgListener.js"
import * as PgSession from "./internal/sql/pgSession.js"
import type { ProjectionStore } from "./ProjectionStore.js"
import type { SnapshotStore } from "./SnapshotStore.js"
import type * as SqlEventStore from "./SqlEventStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends SqlEventStore.Options {
  /** The connection URL, `postgres://user:password@host:port/database`. */
  readonly url: string | Redacted.Redacted
  /** The most connections in the pool (default 10). */
  readonly maxConnections?: number | undefined
  /** The name the connections report to the server (default `effect-eventsourcing`). */
  readonly applicationName?: string | undefined
  /**
   * Listen for notifications of appends from other processes, so that subscriptions wake at
   * once rather than at their next poll (default `true`).
   */
  readonly listen?: boolean | undefined
  /** How often the listening connection is checked (default 5 seconds). */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/**
 * Reads the options from the environment: `DATABASE_URL` and `DATABASE_POOL_SIZE` (default 10).
 *
 * @since 0.1.0
 * @category config
 */
export const configFromEnv: Config.Config.Wrap<Options> = {
  url: Config.redacted("DATABASE_URL"),
  maxConnections: Config.integer("DATABASE_POOL_SIZE").pipe(Config.withDefault(10))
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  EventStore | ProjectionStore | SnapshotStore | SqlClient.SqlClient | PgClient.PgClient,
  EventStoreError
> => {
  const url = typeof options.url === "string" ? options.url : Redacted.value(options.url)
  const applicationName = options.applicationName ?? "effect-eventsourcing"
  return Layers.stores({
    tables: options.tables,
    preparedStatements: options.preparedStatements,
    listener: options.listen === false ? undefined : Listener.make({
      url,
      applicationName: `${applicationName}-listener`,
      heartbeat: options.heartbeat ?? "5 seconds"
    }),
    // The projection locks of this process on a session of their own, outside the pool.
    lockSession: PgSession.lockSession(url, `${applicationName}-locks`)
  }).pipe(
    Layer.provideMerge(
      PgClient.layer({
        url: Redacted.make(url),
        maxConnections: options.maxConnections ?? 10,
        applicationName
      })
    ),
    Layers.failingAs("connect to PostgreSQL")
  )
}

/**
 * The layer with its options read from configuration; by default from the environment
 * ({@link configFromEnv}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = configFromEnv
): Layer.Layer<
  EventStore | ProjectionStore | SnapshotStore | SqlClient.SqlClient | PgClient.PgClient,
  EventStoreError | ConfigError.ConfigError
> => Layer.unwrapEffect(Config.map(Config.unwrap(config), layer))
