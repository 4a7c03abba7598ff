/**
 * Projection checkpoints in the protocol's `projections` table.
 *
 * A commit moves the checkpoint with a compare-and-set (it must still be where the runner left
 * it) and runs the handler's work in the same transaction, so the handler's writes through the
 * same `SqlClient` and the checkpoint land together. On PostgreSQL the right to run a projection
 * is a session advisory lock held on a connection of its own for as long as the runner runs; a
 * second runner waits on the lock and takes over when the first one's session ends.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { CheckpointConflictError, EventStoreError } from "../../Errors.js"
import * as Position from "../../Position.js"
import type { DeadLetter, ProjectionStore } from "../../ProjectionStore.js"
import { positionOf } from "./rows.js"
import { withImmediateTransaction } from "./sqlite.js"
import { leadInProcess } from "../leadInProcess.js"
import * as PgLeads from "./pgLeads.js"
import { runStatement, storeError } from "./shared.js"
import type { TableNames } from "./tables.js"
import { forClient } from "./tables.js"

/** How often the session that holds the projection locks is checked. */
const leadCheckInterval = Duration.seconds(2)
/** How often a runner waiting for a projection's lock asks again. */
const leadRetryInterval = Duration.millis(500)


interface DeadLetterRow {
  readonly projection: string
  readonly event_id: string
  readonly stream_id: string
  readonly version: number
  readonly event_type: string
  readonly position: string | number
  readonly transaction_id: string | null
  readonly reason: string
  readonly failed_at: Date | string
}

export interface Options {
  /**
   * Opens the PostgreSQL session that holds the projection locks of this process. By default a
   * connection reserved from the store's pool, for as long as the store lives.
   */
  readonly lockSession?: Effect.Effect<PgLeads.LockSession, unknown, Scope.Scope> | undefined
}

export const make = (
  names: Partial<TableNames> | undefined,
  options?: Options
): Effect.Effect<ProjectionStore, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = forClient(sql, names)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    // The server's default isolation: a transaction of the store's own asks for READ COMMITTED
    // only when the default is another (one round trip less per batch otherwise).
    const readCommitted = !isPg || (yield* sql.unsafe<{ isolation: string }>(
      `SELECT current_setting('default_transaction_isolation') AS isolation`
    ).pipe(
      Effect.map((rows) => rows[0]?.isolation === "read committed"),
      Effect.orElseSucceed(() => false)
    ))
    const committed = yield* PubSub.sliding<void>(1)
    const withSql = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, SqlClient.SqlClient, sql)
    const run = <A extends object>(query: string, values: ReadonlyArray<unknown>) => runStatement<A>(sql, query, values)
    const placeholder = (index: number) => (isPg ? `$${index}` : "?")
    const xid = (index: number) => (isPg ? `$${index}::xid8` : "?")
    const { deadLetters, projections } = tables

    /**
     * A transaction (a savepoint inside one); a failed commit is a typed error, not a defect. On
     * PostgreSQL a transaction of the store's own runs at READ COMMITTED, which appends need.
     */
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | EventStoreError, R> =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
        isPg
          ? sql.withTransaction(
            Option.isSome(outer) || readCommitted
              ? effect
              : Effect.zipRight(run(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`, []), effect)
          )
          : withSql(withImmediateTransaction(effect))
      ).pipe(
        Effect.catchSomeDefect((defect) => defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()),
        Effect.catchIf(
          (error): error is SqlError => error instanceof SqlError,
          (error) => Effect.fail(storeError("run a projection transaction")(error))
        )
      ) as Effect.Effect<A, E | EventStoreError, R>

    /** Moves the checkpoint if it is still at `from`; the number of rows moved. */
    const moveCheckpoint = (projection: string, from: Option.Option<Position.Position>, to: Position.Position) => {
      const toValues = isPg ? [String(to.sequence), String(to.transaction)] : [Number(to.sequence)]
      const toColumns = isPg ? "position, transaction_id" : "position"
      return Option.match(from, {
        // No checkpoint yet: no row, or a row without a position (the protocol allows NULL).
        onNone: () =>
          run<{ source: string }>(
            `INSERT INTO ${projections} AS target (source, ${toColumns}) VALUES (${placeholder(1)}, ${placeholder(2)}${
              isPg ? `, ${xid(3)}` : ""
            }) ON CONFLICT (source) DO UPDATE SET position = excluded.position${
              isPg ? ", transaction_id = excluded.transaction_id" : ""
            } WHERE target.position IS NULL RETURNING source`,
            [projection, ...toValues]
          ),
        onSome: (at) =>
          isPg
            ? run<{ source: string }>(
              `UPDATE ${projections} SET position = $1, transaction_id = $2::xid8
              WHERE source = $3 AND position = $4 AND transaction_id = $5::xid8 RETURNING source`,
              [...toValues, projection, String(at.sequence), String(at.transaction)]
            )
            : run<{ source: string }>(
              `UPDATE ${projections} SET position = ? WHERE source = ? AND position = ? RETURNING source`,
              [...toValues, projection, Number(at.sequence)]
            )
      })
    }

    const inProcess = leadInProcess()
    const acrossProcesses = isPg
      ? yield* PgLeads.make({
        open: options?.lockSession ?? poolSession(sql),
        terminate: (pid) => sql.unsafe(`SELECT pg_terminate_backend($1)`, [pid]),
        lockSpace: `effect-eventsourcing projection ${tables.names.projections}`,
        retry: leadRetryInterval,
        heartbeat: leadCheckInterval
      })
      : undefined
    // Within the process first (a session's locks are its own: two runners in one process would
    // both get the same lock), then across processes.
    const lead: ProjectionStore["lead"] = (projection) =>
      Effect.zipRight(inProcess(projection), acrossProcesses === undefined ? Effect.succeed(Effect.never) : acrossProcesses(projection))

    const store: ProjectionStore = {
      checkpoint: (projection) =>
        run<{ position: string | number | null; transaction_id?: string | null }>(
          `SELECT position${isPg ? ", transaction_id::text AS transaction_id" : ""} FROM ${projections} WHERE source = ${
            placeholder(1)
          }`,
          [projection]
        ).pipe(
          Effect.map((rows) =>
            Option.flatMap(
              Option.fromNullable(rows[0]),
              (row) =>
                row.position === null ? Option.none() : Option.some(positionOf(row.position, row.transaction_id ?? null))
            )
          ),
          Effect.mapError(storeError("read a projection checkpoint"))
        ),

      // The handler first, then the checkpoint (the handler runs a round trip sooner; a runner
      // that lost the checkpoint to another rolls its handler's work back with the transaction).
      commit: (projection, from, to, effect) =>
        Effect.tap(
          transaction(
            Effect.gen(function*() {
              const result = yield* effect
              const moved = yield* Effect.mapError(moveCheckpoint(projection, from, to), storeError("move a checkpoint"))
              if (moved.length === 0) return yield* new CheckpointConflictError({ projection })
              return result
            })
          ),
          () => PubSub.publish(committed, undefined)
        ),

      transaction,

      deadLetter: (projection, event, reason) =>
        run(
          `INSERT INTO ${deadLetters}
            (projection, event_id, stream_id, version, event_type, position, ${isPg ? "transaction_id, " : ""}reason)
          VALUES (${[1, 2, 3, 4, 5, 6].map(placeholder).join(", ")}, ${isPg ? `${xid(7)}, $8` : "?"})
          ON CONFLICT (projection, event_id) DO NOTHING`,
          [
            projection,
            event.id,
            event.streamId,
            event.version,
            event.type,
            isPg ? String(event.position.sequence) : Number(event.position.sequence),
            ...(isPg ? [String(event.position.transaction)] : []),
            reason
          ]
        ).pipe(Effect.asVoid, Effect.mapError(storeError("record a dead letter")), withSql),

      deadLetters: (projection) =>
        run<DeadLetterRow>(
          `SELECT d.projection, d.event_id, d.stream_id, d.version, d.event_type, d.position${
            isPg ? "::text AS position, d.transaction_id::text AS transaction_id" : ", NULL AS transaction_id"
          }, d.reason, d.failed_at FROM ${deadLetters} d WHERE d.projection = ${placeholder(1)}
          ORDER BY ${isPg ? "d.transaction_id, " : ""}d.position, d.stream_id, d.version`,
          [projection]
        ).pipe(
          Effect.map((rows) =>
            rows.map((row): DeadLetter => ({
              projection: row.projection,
              eventId: row.event_id,
              streamId: row.stream_id,
              version: Number(row.version),
              eventType: row.event_type,
              position: positionOf(row.position, row.transaction_id),
              reason: row.reason,
              failedAt: new Date(row.failed_at)
            }))
          ),
          Effect.mapError(storeError("read dead letters"))
        ),

      reset: (projection, effect) =>
        transaction(
          Effect.tap(effect, () =>
            Effect.mapError(
              Effect.zipRight(
                run(`DELETE FROM ${projections} WHERE source = ${placeholder(1)}`, [projection]),
                run(`DELETE FROM ${deadLetters} WHERE projection = ${placeholder(1)}`, [projection])
              ),
              storeError("reset a projection")
            ))
        ),

      lead,

      commits: Effect.map(PubSub.subscribe(committed), (dequeue) => Effect.asVoid(Queue.take(dequeue)))
    }
    return store
  })

/** A session on a connection reserved from the store's pool. */
const poolSession = (sql: SqlClient.SqlClient): Effect.Effect<PgLeads.LockSession, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const connection = yield* sql.reserve
    const [row] = yield* connection.executeUnprepared(`SELECT pg_backend_pid() AS pid`, [], undefined)
    return {
      query: (text, values) => connection.executeUnprepared(text, values, undefined),
      pid: Number((row as { pid: number }).pid),
      ended: Effect.never
    }
  })
