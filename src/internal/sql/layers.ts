/**
 * The SQL stores as one layer over a `SqlClient`, and the failures of building it as one typed
 * error.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { EventStoreError } from "../../Errors.js"
import { EventStore } from "../../EventStore.js"
import { ProjectionStore } from "../../ProjectionStore.js"
import { SnapshotStore } from "../../SnapshotStore.js"
import * as Dialects from "./dialects.js"
import type { Listener } from "./sqlEventStore.js"
import * as SqlEventStore from "./sqlEventStore.js"
import * as SqlProjectionStore from "./sqlProjectionStore.js"
import * as SqlSnapshotStore from "./sqlSnapshotStore.js"
import type { TableNames } from "./tables.js"

export interface Options extends SqlProjectionStore.Options {
  readonly tables?: Partial<TableNames> | undefined
  /** PostgreSQL: whether the statements go as named prepared statements (default `true`). */
  readonly preparedStatements?: boolean | undefined
  /** Tells the event store of appends by other processes (PostgreSQL's notifications). */
  readonly listener?: Listener | undefined
}

/**
 * The event, projection and snapshot stores on the `SqlClient`'s database, which is told apart
 * and migrated once for the three.
 */
export const stores = (
  options: Options
): Layer.Layer<EventStore | ProjectionStore | SnapshotStore, EventStoreError, SqlClient.SqlClient> =>
  Layer.scopedContext(Effect.gen(function*() {
    const dialect = yield* Dialects.open(options)
    const events = yield* SqlEventStore.make(dialect, options.listener)
    const projections = yield* SqlProjectionStore.make(dialect, options)
    const snapshots = yield* SqlSnapshotStore.make(dialect)
    return Context.make(EventStore, events).pipe(
      Context.add(ProjectionStore, projections),
      Context.add(SnapshotStore, snapshots)
    )
  }))

/**
 * Turns every failure of a layer (a typed error, or a defect such as the driver throwing when a
 * file cannot be opened) into an `EventStoreError` naming what was being done. Interruption stays
 * interruption.
 */
export const failingAs =
  (operation: string) => <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, EventStoreError, R> =>
    Layer.catchAllCause(layer, (cause) => {
      if (Cause.isInterruptedOnly(cause)) return Layer.failCause(cause as Cause.Cause<never>)
      const error = Cause.squash(cause)
      return Layer.fail(error instanceof EventStoreError ? error : new EventStoreError({ operation, cause: error }))
    })
