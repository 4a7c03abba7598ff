/**
 * Scenarios 1 to 4: appending.
 *
 * 1. one event per append, 8 concurrent writers, each append to a new stream;
 * 2. ten events per append, likewise;
 * 3. the command handler's shape on existing streams: read a stream's version, append expecting
 *    it, 8 writers over 1,000 streams;
 * 4. one hot stream, 8 writers through the command handler with retries: successful appends per
 *    second, and how many conflicts it took.
 */
import { Effect, Ref, Schedule, Schema } from "effect"
import type { ManagedRuntime } from "effect"
import type { ProjectionStore } from "effect-eventsourcing"
import { CommandHandler, Decider, EventStore, ExpectedVersion } from "effect-eventsourcing"
import type { NewRow } from "../baseline.js"
import { handGroupCommit, pgAppend, pgBatchedAppend, sqliteAppend, sqliteBatchedAppend } from "../baseline.js"
import type { Backend, Environment, Result } from "../support.js"
import { concurrently, rate, time, writers } from "../support.js"

type Runtime = ManagedRuntime.ManagedRuntime<EventStore.EventStore | ProjectionStore.ProjectionStore, unknown>

const data = (n: number) => ({
  item: { sku: `SKU-${n % 1000}`, name: `Item ${n % 1000}`, quantity: 1 + (n % 3), unitPrice: 25 }
})
const libraryEvents = (count: number, n: number) =>
  Array.from({ length: count }, (_, index) => ({ type: "ItemAdded", data: data(n + index) }))
const rows = (count: number, n: number): ReadonlyArray<NewRow> =>
  Array.from({ length: count }, (_, index) => ({ type: "ItemAdded", data: JSON.stringify(data(n + index)) }))

const indices = (count: number) => Array.from({ length: count }, (_, index) => index)

/**
 * The best of `rounds` measurements of each side, taking them in turn so that drift hits every
 * side, after one round of each to warm up (compilers, connections, caches).
 */
const bestOf = async <K extends string>(rounds: number, sides: Record<K, () => Promise<number>>) => {
  const names = Object.keys(sides) as Array<K>
  for (const name of names) await sides[name]()
  const best = Object.fromEntries(names.map((name) => [name, 0])) as Record<K, number>
  for (let round = 0; round < rounds; round++) {
    for (const name of names) best[name] = Math.max(best[name], await sides[name]())
  }
  return best
}

/** SQLite's hand-batched baseline: one transaction per writer's worth of appends. */
const handBatch = writers

const chunks = <A>(items: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size))

/** The figures beside the hand-batched baseline, as a result's `batched` and its note. */
const batchedExtra = (library: number, batched: number): Partial<Result> => ({
  batched: { baseline: batched, ratio: library / batched },
  note: `batched by hand: ${batched.toFixed(0)} (${(library / batched).toFixed(2)})`
})

export const newStreams = async (
  environment: Environment,
  backend: Backend,
  runtime: Runtime,
  options: { readonly appends: number; readonly eventsPerAppend: number; readonly rounds: number }
): Promise<Result> => {
  const { appends, eventsPerAppend } = options
  const run = crypto.randomUUID().slice(0, 8)
  let round = 0
  const library = async () => {
    const tag = `lib-${run}-${round++}`
    const seconds = await runtime.runPromise(Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const start = performance.now()
      yield* Effect.forEach(indices(appends), (n) =>
        store.append({
          streamId: `${tag}-${n}`,
          streamType: "bench",
          expectedVersion: ExpectedVersion.noStream,
          events: libraryEvents(eventsPerAppend, n)
        }), { concurrency: writers, discard: true })
      return (performance.now() - start) / 1000
    }))
    return appends / seconds
  }
  const baseline = async () => {
    const tag = `base-${run}-${round++}`
    if (backend === "postgres") {
      const append = pgAppend(environment.pool, environment.schema)
      const seconds = await time(() =>
        concurrently(writers, appends, (n) => append.create(`${tag}-${n}`, rows(eventsPerAppend, n)))
      )
      return appends / seconds
    }
    const append = sqliteAppend(environment.sqlite)
    const seconds = await time(async () => {
      for (let n = 0; n < appends; n++) append.create(`${tag}-${n}`, rows(eventsPerAppend, n))
    })
    return appends / seconds
  }
  const batched = async () => {
    const tag = `batched-${run}-${round++}`
    if (backend === "postgres") {
      const append = pgBatchedAppend(environment.pool, environment.schema)
      const submit = handGroupCommit(append.create)
      const seconds = await time(() =>
        concurrently(writers, appends, (n) => submit({ streamId: `${tag}-${n}`, rows: rows(eventsPerAppend, n) }))
      )
      return appends / seconds
    }
    const append = sqliteBatchedAppend(environment.sqlite)
    const seconds = await time(async () => {
      for (const batch of chunks(indices(appends), handBatch)) {
        append.create(batch.map((n) => ({ streamId: `${tag}-${n}`, rows: rows(eventsPerAppend, n) })))
      }
    })
    return appends / seconds
  }
  const best = await bestOf(options.rounds, { library, baseline, batched })
  return rate(
    eventsPerAppend === 1 ? "1. append 1 event, 8 writers, new streams" : "2. append 10 events, 8 writers, new streams",
    backend,
    "appends/s",
    best.library,
    best.baseline,
    batchedExtra(best.library, best.batched)
  )
}

export const existingStreams = async (
  environment: Environment,
  backend: Backend,
  runtime: Runtime,
  options: { readonly appends: number; readonly streams: number; readonly rounds: number }
): Promise<Result> => {
  const { appends, streams } = options
  const run = crypto.randomUUID().slice(0, 8)
  const library = async () => {
    const tag = `lib-existing-${run}`
    const conflicts = { count: 0 }
    const seconds = await runtime.runPromise(Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const start = performance.now()
      yield* Effect.forEach(indices(appends), (n) => {
        const streamId = `${tag}-${n % streams}`
        const attempt: Effect.Effect<void, unknown> = Effect.flatMap(
          store.streamVersion(streamId),
          (version) =>
            store.append({
              streamId,
              streamType: "bench",
              expectedVersion: ExpectedVersion.exact(version),
              events: libraryEvents(1, n)
            })
        ).pipe(
          Effect.asVoid,
          Effect.catchTag("ConcurrencyError", () => Effect.suspend(() => (conflicts.count++, attempt)))
        )
        return attempt
      }, { concurrency: writers, discard: true })
      return (performance.now() - start) / 1000
    }))
    return appends / seconds
  }
  const baseline = async () => {
    const tag = `base-existing-${run}`
    if (backend === "postgres") {
      const append = pgAppend(environment.pool, environment.schema)
      const seconds = await time(() =>
        concurrently(writers, appends, async (n) => {
          const streamId = `${tag}-${n % streams}`
          for (;;) {
            try {
              return await append.exact(streamId, await append.version(streamId), rows(1, n))
            } catch {
              // a lost race: read the version again
            }
          }
        })
      )
      return appends / seconds
    }
    const append = sqliteAppend(environment.sqlite)
    const seconds = await time(async () => {
      for (let n = 0; n < appends; n++) {
        const streamId = `${tag}-${n % streams}`
        append.exact(streamId, append.version(streamId), rows(1, n))
      }
    })
    return appends / seconds
  }
  // The streams exist before the clock starts, for both sides.
  await runtime.runPromise(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    yield* Effect.forEach(
      indices(streams),
      (n) =>
        store.appendMany([`lib-existing-${run}-${n}`, `base-existing-${run}-${n}`].map((streamId) => ({
          streamId,
          streamType: "bench",
          expectedVersion: ExpectedVersion.noStream,
          events: libraryEvents(1, n)
        }))),
      { concurrency: writers, discard: true }
    )
  }))
  // Batched by hand: a batch's versions in one query, then one statement appends at them.
  const batched = async () => {
    const tag = `base-existing-${run}`
    const batches = chunks(indices(appends), handBatch)
    if (backend === "postgres") {
      // Each writer reads its stream's version, then its append goes in the next batch; a
      // batch whose statement fails (a version moved) is sent again one append at a time.
      const append = pgBatchedAppend(environment.pool, environment.schema)
      const single = pgAppend(environment.pool, environment.schema)
      const submit = handGroupCommit<{ streamId: string; version: number; rows: ReadonlyArray<NewRow> }>((batch) =>
        append.exact(batch).catch(() =>
          Promise.allSettled(batch.map((one) => single.exact(one.streamId, one.version, one.rows))).then(
            (outcomes) => {
              if (outcomes.some((outcome) => outcome.status === "rejected")) throw new Error("a lost race")
            }
          )
        )
      )
      const seconds = await time(() =>
        concurrently(writers, appends, async (n) => {
          const streamId = `${tag}-${n % streams}`
          for (;;) {
            try {
              return await submit({ streamId, version: await single.version(streamId), rows: rows(1, n) })
            } catch {
              // a lost race: read the version again
            }
          }
        })
      )
      return appends / seconds
    }
    const append = sqliteBatchedAppend(environment.sqlite)
    const seconds = await time(async () => {
      for (const batch of batches) {
        append.exact(batch.map((n) => {
          const streamId = `${tag}-${n % streams}`
          return { streamId, version: append.version(streamId), rows: rows(1, n) }
        }))
      }
    })
    return appends / seconds
  }
  const best = await bestOf(options.rounds, { library, baseline, batched })
  return rate(
    "3. read version + append exact, 8 writers, 1,000 streams",
    backend,
    "appends/s",
    best.library,
    best.baseline,
    batchedExtra(best.library, best.batched)
  )
}

const Incremented = Schema.TaggedStruct("Incremented", { by: Schema.Int })

export const hotStream = async (
  environment: Environment,
  backend: Backend,
  runtime: Runtime,
  options: { readonly appends: number }
): Promise<Result> => {
  const { appends } = options
  const run = crypto.randomUUID().slice(0, 8)

  // The library: the command handler loads the stream, decides, appends, retries conflicts.
  const decisions = await runtime.runPromise(Ref.make(0))
  const counter = CommandHandler.make(
    Decider.make({
      streamType: "bench",
      events: Incremented,
      initialState: 0,
      decide: (by: number) => Effect.as(Ref.update(decisions, (n) => n + 1), [Incremented.make({ by })]),
      evolve: (total: number, event) => total + event.by
    }),
    { retry: Schedule.forever }
  )
  const librarySeconds = await runtime.runPromise(Effect.gen(function*() {
    const start = performance.now()
    yield* Effect.forEach(indices(appends), () => counter.handle(`lib-hot-${run}`, 1), {
      concurrency: writers,
      discard: true
    })
    return (performance.now() - start) / 1000
  }))
  const libraryConflicts = (await runtime.runPromise(Ref.get(decisions))) - appends

  // The baseline: read the stream's events, fold them, append expecting its version; again on a conflict.
  let baselineConflicts = 0
  const streamId = `base-hot-${run}`
  const baselineSeconds = await time(async () => {
    if (backend === "postgres") {
      const append = pgAppend(environment.pool, environment.schema)
      await concurrently(writers, appends, async (n) => {
        for (;;) {
          const stored = await environment.pool.query(
            `SELECT ordinal, details FROM ${environment.schema}.events WHERE entity_id = $1 ORDER BY ordinal`,
            [streamId]
          )
          const version = stored.rows.length
          stored.rows.reduce((total, row) => total + JSON.parse(row.details).by, 0)
          try {
            return await (version === 0
              ? append.create(streamId, [{ type: "Incremented", data: JSON.stringify({ by: n % 2 + 1 }) }])
              : append.exact(streamId, version, [{ type: "Incremented", data: JSON.stringify({ by: n % 2 + 1 }) }]))
          } catch {
            baselineConflicts++
          }
        }
      })
      return
    }
    const append = sqliteAppend(environment.sqlite)
    const select = environment.sqlite.prepare(
      `SELECT ordinal, details FROM events WHERE entity_id = ? ORDER BY ordinal`
    )
    for (let n = 0; n < appends; n++) {
      const stored = select.all(streamId) as Array<{ details: string }>
      stored.reduce((total, row) => total + JSON.parse(row.details).by, 0)
      const event = [{ type: "Incremented", data: JSON.stringify({ by: 1 }) }]
      if (stored.length === 0) append.create(streamId, event)
      else append.exact(streamId, stored.length, event)
    }
  })
  return rate(
    "4. hot stream, 8 writers, command handler with retries",
    backend,
    "appends/s",
    appends / librarySeconds,
    appends / baselineSeconds,
    { note: `conflicts: library ${libraryConflicts}, baseline ${baselineConflicts}` }
  )
}
