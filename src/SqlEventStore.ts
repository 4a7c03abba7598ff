/**
 * The event store on SQL, for any `SqlClient` from `@effect/sql` whose dialect is PostgreSQL or
 * SQLite: swapping one database for the other is a change of the client layer and nothing else.
 *
 * Events are stored in the common protocol's tables (`entities`, `events`, `projections`), with
 * three extension columns that have defaults, so that a plain protocol writer still works:
 * `event_id` (idempotent retries), `metadata` (correlation and causation ids) and, on
 * PostgreSQL, `transaction_id` (the writing transaction, which keeps global readers from
 * skipping events that commit late). The schema is created and upgraded by the library's own
 * forward-only migrations, recorded in their own table, when the store is made; two processes
 * starting at once take turns.
 *
 * Appends made inside the application's `sql.withTransaction` join that transaction: the events
 * and the application's own writes commit together, or not at all.
 *
 * ```ts
 * import * as SqlEventStore from "effect-eventsourcing/SqlEventStore"
 * import * as PgClient from "@effect/sql-pg/PgClient"
 * import { Layer, Redacted } from "effect"
 *
 * const EventStoreLive = SqlEventStore.layer().pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
 * )
 * ```
 *
 * `SqliteEventStore` and `PgEventStore` build the client too.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import type { EventStoreError } from "./Errors.js"
import type { EventStore } from "./EventStore.js"
import * as Dialects from "./internal/sql/dialects.js"
import * as Layers from "./internal/sql/layers.js"
import * as Appending from "./internal/sql/sqlAppend.js"
import * as Internal from "./internal/sql/sqlEventStore.js"
import * as Reads from "./internal/sql/sqlReads.js"
import * as Tables from "./internal/sql/tables.js"
import type { ProjectionStore } from "./ProjectionStore.js"
import type { SnapshotStore } from "./SnapshotStore.js"

/**
 * The names of the store's tables. Names may be qualified with a schema on PostgreSQL
 * (`"app.events"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface TableNames {
  readonly entities: string
  readonly events: string
  readonly projections: string
  /**
   * The snapshots of streams' states (see `SnapshotStore`). Unless named, it sits beside the
   * events table: `snapshots`, or `<events>_snapshots` when the events table has another name.
   */
  readonly snapshots: string
  /** The table that records which of the library's migrations have run. */
  readonly migrations: string
}

/**
 * The protocol's names, `snapshots` for snapshots and `effect_eventsourcing_migrations` for the
 * migrations.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTableNames: TableNames = Tables.defaultTableNames

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Table names to use instead of the defaults (any subset). */
  readonly tables?: Partial<TableNames> | undefined
  /**
   * PostgreSQL: send the store's statements as named prepared statements, parsed and planned
   * once per connection instead of once per call (default `true`; the manual's "Prepared
   * statements", in `docs/04-backends.md`). Turn it off behind a connection pooler that cannot
   * keep them, such as PgBouncer in transaction mode before 1.21. SQLite always prepares its
   * statements.
   */
  readonly preparedStatements?: boolean | undefined
}

/**
 * Makes the store on the `SqlClient` in context, first running the migrations it needs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<EventStore, EventStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.flatMap(Dialects.open(options ?? {}), (dialect) => Internal.make(dialect))

/**
 * The store, with the projection store that keeps checkpoints and the snapshot store in the same
 * database, as a layer over a `SqlClient` layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<EventStore | ProjectionStore | SnapshotStore, EventStoreError, SqlClient.SqlClient> =>
  Layers.stores({ tables: options?.tables, preparedStatements: options?.preparedStatements })

/**
 * How many appends each group commit of a SQL store took: 1 for an append that found the
 * database free, more for appends that came while earlier ones were in flight and were stored
 * together, in one transaction and one commit (the manual's "Group commit", in
 * `docs/04-backends.md`). Every store in the process updates it.
 *
 * @since 0.1.0
 * @category metrics
 */
export const appendBatchSize: Metric.Metric.Histogram<number> = Appending.batchSizes

/**
 * Group commits that failed as a whole (a database failure, or an append in them that hit a
 * unique constraint, such as a retry of stored events by their ids), whose appends were then sent
 * again one by one, each with its own outcome.
 *
 * @since 0.1.0
 * @category metrics
 */
export const appendBatchFallbacks: Metric.Metric.Counter<number> = Appending.batchFallbacks

/**
 * How many `streamVersion` reads each statement of them took: reads from outside a transaction
 * that come while others are in flight share one statement, as appends share a group commit.
 *
 * @since 0.1.0
 * @category metrics
 */
export const versionReadBatchSize: Metric.Metric.Histogram<number> = Reads.versionReadBatchSizes
