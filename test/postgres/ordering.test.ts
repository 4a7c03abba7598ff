/**
 * The global order on PostgreSQL is `(transaction_id, position)` compared as numbers. Rows
 * written with plain SQL at transaction ids and positions that cross a digit boundary (9999,
 * 10000, 10450) show any query that compares them as text: text puts "9999" after "10450".
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { EventStore, Position, Projection, ProjectionStore } from "effect-eventsourcing"
import { live } from "../support/live.js"
import { isolatedLayer, isolatedSchema, rawConnection, skipPostgres } from "../support/postgres.js"

const schema = isolatedSchema("ordering")
const q = (table: string) => `"${schema}"."${table}"`

/** Three one-event appends, each in its own stream, at these transaction ids and positions. */
const rows = [
  { transaction: 9_999n, sequence: 999n },
  { transaction: 10_000n, sequence: 1_000n },
  { transaction: 10_450n, sequence: 10_001n }
]

/**
 * Rows are read only below the oldest running transaction: on a server whose transaction ids
 * have not yet passed the rows' (a new cluster), transactions are used up until they have.
 */
const passRowTransactions = async (client: Awaited<ReturnType<typeof rawConnection>>) => {
  const last = rows.at(-1)!.transaction
  await client.query(`DO $$
    BEGIN
      WHILE pg_current_xact_id() <= '${last}'::xid8 LOOP
        COMMIT;
      END LOOP;
    END $$`)
}

const writeRows = Effect.promise(async () => {
  const client = await rawConnection()
  try {
    await passRowTransactions(client)
    for (const [index, row] of rows.entries()) {
      await client.query(`INSERT INTO ${q("entities")} (id, type, version) VALUES ($1, 'thing', 1)`, [`s-${index}`])
      await client.query(
        `INSERT INTO ${q("events")} (entity_id, name, details, actor, ordinal, position, transaction_id)
        VALUES ($1, 'Happened', '{}', 'raw', 1, $2, $3::xid8)`,
        [`s-${index}`, String(row.sequence), String(row.transaction)]
      )
    }
  } finally {
    await client.end()
  }
})

const readAll = (after: Position.Position) =>
  Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readAll({ after, batchSize: 1 }))).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

describe.skipIf(skipPostgres)("PostgreSQL global order across digit boundaries", () => {
  layer(isolatedLayer(schema))((methods) => {
    const it = live(methods)
    it.effect("head, countAfter, readAll, checkpoints and dead letters compare positions as numbers", () =>
      Effect.gen(function*() {
        yield* writeRows
        const store = yield* EventStore.EventStore
        const [first, second, third] = rows.map((row) => Position.make(row))

        expect(yield* store.head).toEqual(third)
        expect(yield* store.countAfter(Position.start)).toBe(3)
        expect(yield* store.countAfter(first!)).toBe(2)
        expect(yield* store.countAfter(second!)).toBe(1)
        expect(yield* store.countAfter(third!)).toBe(0)

        expect((yield* readAll(Position.start)).map((event) => event.streamId)).toEqual(["s-0", "s-1", "s-2"])
        expect((yield* readAll(first!)).map((event) => event.streamId)).toEqual(["s-1", "s-2"])

        const projections = yield* ProjectionStore.ProjectionStore
        yield* projections.commit("ordering", Option.none(), second!, Effect.void)
        const status = yield* Projection.status("ordering")
        expect(status.checkpoint).toEqual(Option.some(second))
        expect(status.head).toEqual(third)
        expect(status.lag).toBe(1)

        const events = yield* readAll(Position.start)
        yield* projections.commit(
          "letters",
          Option.none(),
          third!,
          Effect.forEach(
            [events[2]!, events[0]!, events[1]!],
            (event) => projections.deadLetter("letters", event, "test")
          )
        )
        const letters = yield* projections.deadLetters("letters")
        expect(letters.map((letter) => letter.streamId)).toEqual(["s-0", "s-1", "s-2"])
      }))
  })
})
