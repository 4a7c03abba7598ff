/**
 * Event sourcing and CQRS on Effect.
 *
 * The root holds the core, which needs only `effect`. The SQL backends are imported from their
 * own paths (`effect-eventsourcing/SqlEventStore`, `/SqliteEventStore`, `/PgEventStore`), so an
 * application installs only the database drivers it uses; so is the test kit
 * (`effect-eventsourcing/Testing`), which needs Node's `assert`.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as CommandHandler from "./CommandHandler.js"

/** @since 0.1.0 */
export * as Decider from "./Decider.js"

/** @since 0.1.0 */
export * as Errors from "./Errors.js"

/** @since 0.1.0 */
export * as EventCatalog from "./EventCatalog.js"

/** @since 0.1.0 */
export * as Events from "./Events.js"

/** @since 0.1.0 */
export * as EventStore from "./EventStore.js"

/** @since 0.1.0 */
export * as Evolution from "./Evolution.js"

/** @since 0.1.0 */
export * as ExpectedVersion from "./ExpectedVersion.js"

/** @since 0.1.0 */
export * as History from "./History.js"

/** @since 0.1.0 */
export * as Metadata from "./Metadata.js"

/** @since 0.1.0 */
export * as Position from "./Position.js"

/** @since 0.1.0 */
export * as Projection from "./Projection.js"

/** @since 0.1.0 */
export * as ProjectionStore from "./ProjectionStore.js"

/** @since 0.1.0 */
export * as Snapshot from "./Snapshot.js"

/** @since 0.1.0 */
export * as SnapshotStore from "./SnapshotStore.js"
