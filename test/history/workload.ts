/**
 * The history test's run: many fibers performing random operations on a few streams, readers
 * following the global order throughout (restarted from their checkpoints now and then), a
 * projection interrupted and restarted several times, and whatever faults and other writers
 * the backend adds. It returns the recorded history, ready for `check`, and counts of what
 * happened, so that a test can tell that the run exercised what it meant to.
 *
 * The seed fixes every random choice (the operations, their streams and expectations, the
 * pauses and restarts); the interleaving is the scheduler's and the database's, and differs
 * from run to run. That is the point: the checker must accept every interleaving the store's
 * guarantees allow.
 */
import type { Scope } from "effect"
import { Cause, Chunk, Deferred, Duration, Effect, Either, Exit, Fiber, Schema, Stream } from "effect"
import type { Events, ProjectionStore } from "effect-eventsourcing"
import { EventStore, Position, Projection } from "effect-eventsourcing"
import type { Random } from "../support/random.js"
import { derive, seeded } from "../support/random.js"
import type { EventRecord, History, Operation, Reader, ReadModelRow } from "./checker.js"
import type { Kind, Plan, Transaction } from "./operations.js"
import { now, perform, retryPlan, shouldRetry, streamsOf, toEventRecord, worker } from "./operations.js"

export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int, op: Schema.String })
export const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int, op: Schema.String })
/** What the projection consumes; "Noted" events are passed over. */
export const Consumed = Schema.Union(Deposited, Withdrawn)
export type Consumed = typeof Consumed.Type

export const projectionName = "history-totals"

/** The projection's read model: per stream, how many events it applied, their sum and versions. */
export interface ReadModel<R> {
  readonly apply: (event: Events.RecordedEvent<Consumed>) => Effect.Effect<void, unknown, R>
  readonly rows: Effect.Effect<Record<string, ReadModelRow>, unknown, R>
}

/** Faults injected while the workers run; `summary` says what was done, for the test's report. */
export interface Faults<R> {
  readonly run: Effect.Effect<void, unknown, R>
  readonly summary: () => Record<string, number>
}

/** Other processes writing to the store; `stop` ends them and returns what they did. */
export interface OtherProcess {
  readonly stop: Effect.Effect<
    { readonly operations: ReadonlyArray<Operation>; readonly summary: Record<string, number> },
    unknown
  >
}

export interface Environment<R> {
  readonly readModel: ReadModel<R>
  /** Runs an append in the application's transaction, with an outbox row; absent: none. */
  readonly transaction?: Transaction<R> | undefined
  /** Whether `transaction` writes an outbox row, and how to read the committed ones. */
  readonly outbox?: Effect.Effect<ReadonlyArray<string>, unknown, R> | undefined
  readonly faults?: ((random: Random) => Faults<R>) | undefined
  /** Starts another writer (for the life of the scope: it is killed if the run fails). */
  readonly otherProcess?: ((seed: number) => Effect.Effect<OtherProcess, unknown, Scope.Scope>) | undefined
}

export interface WorkloadOptions {
  readonly seed: number
  /** Steps in all, shared among the fibers. */
  readonly operations: number
  readonly fibers: number
  readonly subscribers: number
  readonly weights?: Partial<Record<Kind, number>>
  /** How long the end of the run waits for readers and the projection to catch up (default 60 s). */
  readonly catchUpTimeout?: Duration.DurationInput
}

export const defaultWeights: Record<Kind, number> = {
  append: 32,
  appendMany: 14,
  transaction: 12,
  retry: 10,
  interrupted: 6,
  empty: 6,
  wrongType: 3,
  malformed: 2,
  reuse: 3,
  pause: 12
}

export interface Stats {
  readonly operations: number
  readonly outcomes: Record<string, number>
  readonly readerRestarts: number
  readonly readerFailures: ReadonlyArray<string>
  readonly projectionRestarts: number
  readonly projectionFailures: ReadonlyArray<string>
  readonly faults: Record<string, number>
  readonly otherProcessOperations: number
  readonly seconds: number
}

const millis = (random: Random, min: number, max: number) => Duration.millis(random.int(min, max))

const waitUntil = (condition: () => boolean, what: string, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.logWarning(`gave up waiting until ${what}`)
      yield* Effect.sleep("20 millis")
    }
  })

/** Why a fiber ended, unless it was interrupted. */
const failureOf = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? Cause.pretty(exit.cause) : undefined

export const runHistory = <R>(
  environment: Environment<R>,
  options: WorkloadOptions
): Effect.Effect<
  { readonly history: History; readonly stats: Stats },
  unknown,
  EventStore.EventStore | ProjectionStore.ProjectionStore | R
> =>
  Effect.scoped(Effect.gen(function*() {
    const started = now()
    const catchUpTimeout = Duration.decode(options.catchUpTimeout ?? "60 seconds")
    const store = yield* EventStore.EventStore
    const random = seeded(options.seed)
    const operations: Array<Operation> = []
    const record = (operation: Operation) => void operations.push(operation)
    // Readers and the projection restart at random until the workers are done; then they settle.
    const settled = yield* Deferred.make<void>()
    const restartOrSettle = (random: Random) =>
      Effect.raceFirst(Effect.sleep(millis(random, 50, 1_500)), Deferred.await(settled))

    // --- Readers: subscriptions that resume from the last event they received, as a consumer would.
    const readerFailures: Array<string> = []
    let readerRestarts = 0
    const readers = Array.from({ length: options.subscribers }, (_, index) => {
      const random = seeded(derive(options.seed, 1_000 + index))
      const events: Array<EventRecord> = []
      const chunkEnds: Array<number> = []
      let checkpoint = Position.start
      const follow = Effect.suspend(() =>
        store.subscribe({ after: checkpoint, batchSize: random.int(1, 60), pollInterval: "100 millis" }).pipe(
          Stream.runForEachChunk((chunk) =>
            Effect.sync(() => {
              for (const event of chunk) {
                events.push(toEventRecord(event))
                checkpoint = event.position
              }
              chunkEnds.push(events.length)
            })
          )
        )
      )
      const run = Effect.gen(function*() {
        while (!(yield* Deferred.isDone(settled))) {
          const fiber = yield* Effect.fork(follow)
          yield* restartOrSettle(random)
          const failure = failureOf(yield* Fiber.interrupt(fiber))
          if (failure !== undefined) readerFailures.push(failure)
          readerRestarts++
        }
        // To the end: a subscription that gives up (the store failed for a minute) is resumed.
        return yield* Effect.forever(
          Effect.catchAllCause(follow, (cause) => Effect.sync(() => void readerFailures.push(Cause.pretty(cause))))
        )
      })
      return { reader: { name: `subscriber ${index}`, events, chunkEnds } satisfies Reader, run }
    })
    const readerFibers = yield* Effect.forEach(readers, ({ run }) => Effect.fork(run))

    // --- The projection, interrupted and started again from its checkpoint.
    const projection = Projection.make({ name: projectionName, events: Consumed, handle: environment.readModel.apply })
    const projectionRandom = seeded(derive(options.seed, 2_000))
    const runProjection = Effect.suspend(() =>
      Projection.run(projection, { batchSize: projectionRandom.int(1, 40), pollInterval: "100 millis" })
    )
    const projectionFailures: Array<string> = []
    let projectionRestarts = 0
    const projectionChurn = yield* Effect.fork(Effect.gen(function*() {
      while (!(yield* Deferred.isDone(settled))) {
        const fiber = yield* Effect.fork(runProjection)
        yield* restartOrSettle(projectionRandom)
        const failure = failureOf(yield* Fiber.interrupt(fiber))
        if (failure !== undefined) projectionFailures.push(failure)
        projectionRestarts++
      }
    }))

    // --- Faults and the other writer, for the duration of the workers.
    const faults = environment.faults?.(seeded(derive(options.seed, 3_000)))
    const faultFiber = faults === undefined ? undefined : yield* Effect.fork(faults.run)
    const other = environment.otherProcess === undefined
      ? undefined
      : yield* environment.otherProcess(derive(options.seed, 4_000))

    // --- The workers.
    let progress = 0
    const acknowledged: Array<Operation> = []
    const weights = { ...defaultWeights, ...options.weights }
    const perFiber = Math.ceil(options.operations / options.fibers)
    yield* Effect.forEach(
      Array.from({ length: options.fibers }, (_, fiber) => fiber),
      (fiber) =>
        worker(
          {
            random: seeded(derive(options.seed, fiber)),
            process: "main",
            streams: streamsOf(() => progress),
            weights,
            acknowledged,
            transaction: environment.transaction,
            outbox: environment.outbox !== undefined
          },
          `m${fiber}.`,
          perFiber,
          (operation) => {
            progress++
            record(operation)
          }
        ),
      { concurrency: "unbounded", discard: true }
    )
    const otherRun = other === undefined ? { operations: [], summary: {} } : yield* other.stop
    const otherOperations = otherRun.operations
    for (const operation of otherOperations) operations.push(operation)
    if (faultFiber !== undefined) yield* Fiber.interrupt(faultFiber)
    yield* Deferred.succeed(settled, undefined)
    yield* Fiber.join(projectionChurn)

    // --- A last append, after every other writer has stopped: once a reader of the global order
    // has it, it has everything (on PostgreSQL, other tests' transactions can hold readers back).
    const sentinel: Plan = {
      id: "sentinel",
      process: "main",
      kind: "append",
      requests: [{
        streamId: "sentinel",
        streamType: "marker",
        expectedVersion: "no-stream",
        events: [{ id: "sentinel.0", type: "Noted", data: { amount: 0, op: "sentinel" } }]
      }]
    }
    let last = yield* perform(sentinel)
    record(last)
    for (let attempt = 0; shouldRetry(last) && attempt < 10; attempt++) {
      last = yield* perform(retryPlan(last, `sentinel.r${attempt}`, { keepTransaction: false }))
      record(last)
    }
    if (last.outcome._tag !== "Acknowledged") {
      return yield* Effect.dieMessage(`the final append failed: ${JSON.stringify(last.outcome)}`)
    }
    const end = Either.getOrThrow(Position.fromString(last.outcome.results[0]!.position))
    const deadline = Date.now() + Duration.toMillis(catchUpTimeout)
    while (Position.isAfter(end, yield* store.head)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage("the final append never became readable")
      yield* Effect.sleep("20 millis")
    }

    // --- The final state: the global order (twice, in different batch sizes), every stream.
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ batchSize: 100 }))).map(toEventRecord)
    const batchSize = random.int(1, 9)
    const smallBatches: Array<EventRecord> = []
    const smallBatchEnds: Array<number> = []
    yield* Stream.runForEachChunk(store.readAll({ batchSize }), (chunk) =>
      Effect.sync(() => {
        for (const event of chunk) smallBatches.push(toEventRecord(event))
        smallBatchEnds.push(smallBatches.length)
      }))
    const small: Reader = {
      name: `readAll in batches of ${batchSize}`,
      events: smallBatches,
      chunkEnds: smallBatchEnds
    }
    const streamIds = [
      ...new Set(operations.flatMap((operation) => operation.requests.map((request) => request.streamId)))
    ].sort()
    const streams: Record<string, ReadonlyArray<EventRecord>> = {}
    for (const streamId of streamIds) {
      streams[streamId] = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId))).map(toEventRecord)
    }

    // --- Readers and the projection reach the end.
    yield* waitUntil(
      () => readers.every(({ reader }) => reader.events.length >= all.length),
      "every subscriber has read every event",
      catchUpTimeout
    )
    yield* Effect.forEach(readerFibers, Fiber.interrupt, { discard: true })
    const finalRunner = yield* Effect.fork(runProjection)
    const reached = yield* Effect.either(Effect.timeout(Projection.waitFor(projectionName, end), catchUpTimeout))
    const finalFailure = failureOf(yield* Fiber.interrupt(finalRunner))
    if (finalFailure !== undefined) projectionFailures.push(finalFailure)
    if (reached._tag === "Left") {
      projectionFailures.push(`the projection did not reach the end: ${String(reached.left)}`)
    }

    const history: History = {
      operations,
      all,
      streams,
      readers: [...readers.map(({ reader }) => reader), small],
      projection: { consumes: ["Deposited", "Withdrawn"], readModel: yield* environment.readModel.rows },
      ...(environment.outbox === undefined ? {} : { outbox: yield* environment.outbox }),
      verify: (yield* store.verify()).violations
    }
    const outcomes: Record<string, number> = {}
    for (const operation of operations) {
      const outcome = operation.outcome
      const key = outcome._tag === "Failed"
        ? outcome.error._tag
        : outcome._tag === "Acknowledged" && operation.retryOf !== undefined
        ? "Acknowledged retry"
        : outcome._tag
      outcomes[key] = (outcomes[key] ?? 0) + 1
    }
    const stats: Stats = {
      operations: operations.length,
      outcomes,
      readerRestarts,
      readerFailures,
      projectionRestarts,
      projectionFailures,
      faults: { ...faults?.summary(), ...otherRun.summary },
      otherProcessOperations: otherOperations.length,
      seconds: Math.round((now() - started) / 100_000) / 10
    }
    return { history, stats }
  }))
