/**
 * Snapshots in memory: each stream's snapshots in version order. `createdAt` comes from the
 * `Clock`, so `TestClock` controls it.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { SnapshotStore, StoredSnapshot } from "../../SnapshotStore.js"

export const make: Effect.Effect<SnapshotStore> = Effect.sync(() => {
  const streams = new Map<string, Array<StoredSnapshot>>()

  const store: SnapshotStore = {
    read: (streamId, options) =>
      Effect.sync(() => {
        const snapshots = streams.get(streamId) ?? []
        for (let index = snapshots.length - 1; index >= 0; index--) {
          const snapshot = snapshots[index]!
          if (options?.schemaId !== undefined && snapshot.schemaId !== options.schemaId) continue
          if (options?.maxVersion !== undefined && snapshot.version > options.maxVersion) continue
          return Option.some(snapshot)
        }
        return Option.none()
      }),
    write: (snapshot) =>
      Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
        Effect.sync(() => {
          const stored: StoredSnapshot = { ...snapshot, createdAt: new Date(now) }
          // The latest snapshot of each schema identity is kept, as in SQL.
          const others = (streams.get(snapshot.streamId) ?? []).filter((existing) =>
            existing.schemaId !== snapshot.schemaId || existing.version > snapshot.version
          )
          streams.set(snapshot.streamId, [...others, stored].sort((a, b) => a.version - b.version))
        })),
    delete: (streamId) => Effect.sync(() => void streams.delete(streamId)),
    deleteAll: Effect.sync(() => streams.clear())
  }
  return store
})
