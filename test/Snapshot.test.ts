import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Option, Schema } from "effect"
import { EventStore, Snapshot, SnapshotStore } from "effect-eventsourcing"
import { snapshotContract } from "./contract/snapshotContract.js"
import { postgresBackend, sqliteBackend } from "./support/backends.js"

/** Rewrites the state of each of a stream's snapshots through the store, newest first. */
const corruptInMemory = (streamId: string, state: string, maxVersion = Number.MAX_SAFE_INTEGER): Effect.Effect<
  void,
  unknown,
  SnapshotStore.SnapshotStore
> =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) =>
    Effect.flatMap(store.read(streamId, { maxVersion }), (snapshot) =>
      Option.match(snapshot, {
        onNone: () => Effect.void,
        onSome: (found) =>
          Effect.zipRight(store.write({ ...found, state }), corruptInMemory(streamId, state, found.version - 1))
      })))

snapshotContract("memory", EventStore.layerMemory, { corrupt: (streamId, state) => corruptInMemory(streamId, state) })

for (const backend of [sqliteBackend(), postgresBackend("snapshots")]) {
  describe.skipIf(backend.skip)(backend.name, () => {
    snapshotContract(backend.name, backend.layer, {
      corrupt: (streamId, state) =>
        Effect.promise(() =>
          backend.query(
            `UPDATE ${backend.table("snapshots")} SET state = ${backend.placeholder(1)} WHERE stream_id = ${
              backend.placeholder(2)
            }`,
            [state, streamId]
          )
        ),
      deleteStream: (streamId) =>
        Effect.promise(async () => {
          const p = backend.placeholder
          await backend.query(`DELETE FROM ${backend.table("events")} WHERE entity_id = ${p(1)}`, [streamId])
          await backend.query(`DELETE FROM ${backend.table("entities")} WHERE id = ${p(1)}`, [streamId])
        }),
      inTransaction: (effect) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(effect))
    })
  })
}

describe("Snapshot", () => {
  const State = () => Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ sku: Schema.String })) })

  it("fingerprints Schemas with bigint bounds and examples", () => {
    const bounded = Schema.Struct({ amount: Schema.BigInt.pipe(Schema.betweenBigInt(0n, 10n)) })
    const wider = Schema.Struct({ amount: Schema.BigInt.pipe(Schema.betweenBigInt(0n, 20n)) })
    expect(Snapshot.fingerprint(bounded)).toMatch(/^[0-9a-f]{16}$/)
    expect(Snapshot.fingerprint(bounded)).not.toBe(Snapshot.fingerprint(wider))
    expect(() => Snapshot.make({ state: bounded.annotations({ examples: [{ amount: 1n }] }), policy: Snapshot.everyEvents(5) }))
      .not.toThrow()
  })

  it("identifies a state Schema by its structure, the same for equal Schemas built apart", () => {
    expect(Snapshot.fingerprint(State())).toBe(Snapshot.fingerprint(State()))
    expect(Snapshot.fingerprint(State())).toMatch(/^[0-9a-f]{16}$/)
    const changed = [
      Schema.Struct({ total: Schema.Number, items: Schema.Array(Schema.Struct({ sku: Schema.String })) }),
      Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ code: Schema.String })) }),
      Schema.Struct({ total: Schema.Int, items: Schema.Array(Schema.Struct({ sku: Schema.NumberFromString })) }),
      Schema.Struct({ total: Schema.Int.pipe(Schema.positive()), items: Schema.Array(Schema.Struct({ sku: Schema.String })) })
    ]
    const fingerprints = new Set([State(), ...changed].map(Snapshot.fingerprint))
    expect(fingerprints.size).toBe(changed.length + 1)
  })

  it("adds the version to the schema identity", () => {
    const policy = Snapshot.everyEvents(10)
    const unversioned = Snapshot.make({ state: State(), policy })
    expect(unversioned.schemaId).toBe(Snapshot.fingerprint(State()))
    expect(Snapshot.make({ state: State(), version: "2", policy }).schemaId).toBe(`${unversioned.schemaId}/2`)
    expect(Snapshot.make({ state: State(), version: "3", policy }).schemaId).not.toBe(`${unversioned.schemaId}/2`)
  })

  it("refuses a policy that is not a positive number of events", () => {
    for (const events of [0, -1, 1.5, Number.NaN]) {
      expect(() => Snapshot.everyEvents(events)).toThrow(Cause.IllegalArgumentException)
      expect(() => Snapshot.whenLoadReads(events)).toThrow(Cause.IllegalArgumentException)
    }
    expect(Snapshot.whenLoadReads(50)).toEqual({ _tag: "WhenLoadReads", events: 50 })
  })
})
