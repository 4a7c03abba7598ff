/**
 * The operations of the history test, shared by the test process and the SQLite writer process:
 * choosing a random operation from a seeded generator, running it against the store, and
 * recording it (request, invocation and completion times, outcome) as the checker reads it.
 *
 * Nothing here knows which backend runs: transactions and other backend-specific parts are
 * passed in by the caller.
 */
import { Cause, Duration, Effect, Exit, Fiber, Option } from "effect"
import type { Errors, Events } from "effect-eventsourcing"
import { EventStore, ExpectedVersion, Position } from "effect-eventsourcing"
import type { Random } from "../support/random.js"
import type { ErrorRecord, EventRecord, Operation, Outcome, RequestRecord, ResultRecord } from "./checker.js"

/**
 * Microseconds on CLOCK_MONOTONIC (what `process.hrtime` reads on Linux), which every process on
 * the machine shares: times recorded by the writer process compare with the test process's.
 */
export const now = (): number => Number(process.hrtime.bigint() / 1000n)

export const streamType = "account"
/** A stream type no stream of the workload is created with, for type mismatches. */
export const otherStreamType = "ledger"
/** Event types: the projection consumes the first two and passes over the third. */
export const eventTypes = ["Deposited", "Withdrawn", "Noted"] as const
export const hotStreams = ["s0", "s1", "s2", "s3", "s4"] as const

export const toEventRecord = (event: Events.RecordedEvent): EventRecord => ({
  id: event.id,
  streamId: event.streamId,
  streamType: event.streamType,
  version: event.version,
  position: Position.toString(event.position),
  type: event.type,
  data: event.data
})

const toResultRecord = (result: EventStore.AppendResult): ResultRecord => ({
  streamId: result.streamId,
  version: result.version,
  position: Position.toString(result.position),
  events: result.events.map((event) => ({
    id: event.id,
    version: event.version,
    position: Position.toString(event.position)
  }))
})

const errorRecord = (error: unknown): ErrorRecord | undefined => {
  const tag = (error as { readonly _tag?: unknown })?._tag
  switch (tag) {
    case "ConcurrencyError": {
      const conflict = error as Errors.ConcurrencyError
      return {
        _tag: "ConcurrencyError",
        streamId: conflict.streamId,
        expectedVersion: conflict.expectedVersion,
        actualVersion: conflict.actualVersion,
        others: conflict.others.map((other) => ({ ...other }))
      }
    }
    case "StreamTypeMismatchError": {
      const mismatch = error as Errors.StreamTypeMismatchError
      return {
        _tag: "StreamTypeMismatchError",
        streamId: mismatch.streamId,
        expectedType: mismatch.expectedType,
        actualType: mismatch.actualType
      }
    }
    case "InvalidAppendError": {
      const invalid = error as Errors.InvalidAppendError
      return { _tag: "InvalidAppendError", streamId: invalid.streamId, reason: invalid.reason }
    }
    case "TransactionConflictError":
      return { _tag: "TransactionConflictError", streamId: (error as Errors.TransactionConflictError).streamId }
    default:
      return undefined
  }
}

const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error))

/**
 * What an exit says of an append. The typed refusals promise nothing was stored; a storage
 * failure or an interruption leaves the outcome unknown. A `SqlError` can only come from the
 * application's own transaction (its begin or commit), so it counts as unknown there and as
 * unexpected anywhere else, like any defect.
 */
export const classify = (
  exit: Exit.Exit<ReadonlyArray<EventStore.AppendResult>, unknown>,
  inTransaction: boolean
): Outcome => {
  if (Exit.isSuccess(exit)) return { _tag: "Acknowledged", results: exit.value.map(toResultRecord) }
  const cause = exit.cause
  if (Cause.isInterruptedOnly(cause)) return { _tag: "Unknown", reason: "interrupted" }
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Option.getOrUndefined(Cause.dieOption(cause))
  const record = Option.isSome(failure) ? errorRecord(error) : undefined
  if (record !== undefined) return { _tag: "Failed", error: record }
  const tag = (error as { readonly _tag?: unknown } | undefined)?._tag
  if (tag === "EventStoreError" || (tag === "SqlError" && inTransaction)) {
    return { _tag: "Unknown", reason: describe(error) }
  }
  return { _tag: "Unexpected", cause: Cause.pretty(cause) }
}

/** An operation to run: everything the checker records of it but its times and outcome. */
export type Plan = Omit<Operation, "invokedAt" | "completedAt" | "outcome">

/** How to run an append in the application's transaction (with its outbox row keyed by `key`). */
export type Transaction<R> = <A, E, R2>(
  key: string,
  writesFirst: boolean,
  effect: Effect.Effect<A, E, R2>
) => Effect.Effect<A, unknown, R | R2>

export interface RunOptions<R> {
  readonly transaction?: Transaction<R> | undefined
  /** Interrupts the append after this many microseconds. */
  readonly interruptAfter?: number | undefined
}

/** Runs a plan against the store and records it. */
export const perform = <R = never>(
  plan: Plan,
  options: RunOptions<R> = {}
): Effect.Effect<Operation, never, EventStore.EventStore | R> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const call: Effect.Effect<ReadonlyArray<EventStore.AppendResult>, Errors.AppendError> = plan.kind === "append"
      ? Effect.map(store.append(plan.requests[0]!), (result) => [result])
      : store.appendMany(plan.requests)
    const transaction = plan.transaction
    const wrapped: Effect.Effect<ReadonlyArray<EventStore.AppendResult>, unknown, R> =
      transaction === undefined || options.transaction === undefined
        ? call
        : options.transaction(rootId(plan), transaction.writesFirst, call)
    const invokedAt = now()
    let exit: Exit.Exit<ReadonlyArray<EventStore.AppendResult>, unknown>
    if (options.interruptAfter === undefined) {
      exit = yield* Effect.exit(wrapped)
    } else {
      const fiber = yield* Effect.fork(wrapped)
      if (options.interruptAfter > 0) yield* Effect.sleep(Duration.micros(BigInt(options.interruptAfter)))
      exit = yield* Fiber.interrupt(fiber)
    }
    const completedAt = now()
    return { ...plan, invokedAt, completedAt, outcome: classify(exit, plan.transaction !== undefined) }
  })

/** The id of the operation whose event ids a plan sends (itself, or the one it retries). */
const rootId = (plan: Plan) => plan.retryOf ?? plan.id

/** Whether an outcome calls for sending the same request again: it may or may not be stored. */
export const shouldRetry = (operation: Operation) =>
  operation.outcome._tag === "Unknown" ||
  (operation.outcome._tag === "Failed" && operation.outcome.error._tag === "TransactionConflictError")

/** The same request again, with the same event ids: a retry by the book. */
export const retryPlan = (operation: Operation, id: string, options: { readonly keepTransaction: boolean }): Plan => ({
  id,
  process: operation.process,
  kind: operation.kind,
  requests: operation.requests,
  retryOf: operation.retryOf ?? operation.id,
  ...(operation.reusedIds === undefined ? {} : { reusedIds: operation.reusedIds }),
  ...(operation.malformed === undefined ? {} : { malformed: operation.malformed }),
  ...(options.keepTransaction && operation.transaction !== undefined ? { transaction: operation.transaction } : {})
})

export type Kind =
  | "append"
  | "appendMany"
  | "transaction"
  | "retry"
  | "interrupted"
  | "empty"
  | "wrongType"
  | "malformed"
  | "reuse"
  | "pause"

/** Where the planner picks streams: a few hot ones, and fresh ones that appear as the run goes on. */
export interface Streams {
  readonly pick: (random: Random) => string
}

export const streamsOf = (progress: () => number): Streams => ({
  pick: (random) => {
    if (random.chance(0.7)) return random.pick(hotStreams)
    // A new fresh stream every 40 operations, so several writers race to create each.
    return `f${Math.max(0, Math.floor(progress() / 40) - random.int(0, 1))}`
  }
})

/** A step of a worker: a plan to perform (with how), or a pause. */
export type Step<R> =
  | { readonly _tag: "Perform"; readonly plan: Plan; readonly options: RunOptions<R> }
  | { readonly _tag: "Pause"; readonly millis: number }

export interface Planner<R> {
  readonly random: Random
  readonly process: string
  readonly streams: Streams
  readonly weights: Readonly<Record<Kind, number>>
  /** Acknowledged operations that may be sent again (shared by the workers of one process). */
  readonly acknowledged: Array<Operation>
  readonly transaction?: Transaction<R> | undefined
  /** Whether the backend's transactions write an outbox row. */
  readonly outbox: boolean
  /** Called just before each operation is sent, for a process that may be killed with it in flight. */
  readonly invoking?: ((plan: Plan) => void) | undefined
}

/**
 * The next step of a worker. Reads the streams' versions for exact expectations just before,
 * as a command handler would; a read that fails (a killed connection) gives a pause instead.
 */
export const nextStep = <R>(planner: Planner<R>, id: string): Effect.Effect<Step<R>, never, EventStore.EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const { random, streams } = planner
    let event = 0
    const newEvents = (count: number) =>
      Array.from({ length: count }, () => ({
        id: `${id}.${event++}`,
        type: random.pick(eventTypes),
        data: { amount: random.int(1, 100), op: id }
      }))
    const expectation = (streamId: string): Effect.Effect<ExpectedVersion.ExpectedVersion, Errors.EventStoreError> => {
      const fresh = streamId.startsWith("f")
      const variant = random.weighted({
        any: 2,
        "no-stream": fresh ? 4 : 0.7,
        "stream-exists": 1.5,
        exact: 4,
        stale: 1.5
      })
      switch (variant) {
        case "any":
          return Effect.succeed(ExpectedVersion.any)
        case "no-stream":
          return Effect.succeed(ExpectedVersion.noStream)
        case "stream-exists":
          return Effect.succeed(ExpectedVersion.streamExists)
        case "exact":
          return Effect.map(store.streamVersion(streamId), ExpectedVersion.exact)
        case "stale":
          // A version read a while ago, or a guess: it may still be right.
          return Effect.map(
            store.streamVersion(streamId),
            (version) => ExpectedVersion.exact(random.int(Math.max(0, version - 3), version + 1))
          )
      }
    }
    const request = (streamId: string, count: number, type = streamType) =>
      Effect.map(expectation(streamId), (expectedVersion): RequestRecord => ({
        streamId,
        streamType: type,
        expectedVersion,
        events: newEvents(count)
      }))
    const distinctStreams = (count: number) => {
      const chosen = new Set<string>()
      while (chosen.size < count) chosen.add(streams.pick(random))
      return [...chosen]
    }
    const perform = (plan: Omit<Plan, "id" | "process">, options: RunOptions<R> = {}): Step<R> => ({
      _tag: "Perform",
      plan: { id, process: planner.process, ...plan },
      options
    })

    const kind = random.weighted(planner.weights)
    const pool = planner.acknowledged
    const pause = (millis: number): Step<R> => ({ _tag: "Pause", millis })
    const step = Effect.gen(function*() {
      switch (kind) {
        case "pause":
          return pause(random.int(0, 5))
        case "retry": {
          if (pool.length === 0) break
          const retry: Step<R> = {
            _tag: "Perform",
            plan: retryPlan(random.pick(pool), id, { keepTransaction: false }),
            options: {}
          }
          return retry
        }
        case "reuse": {
          if (pool.length === 0) break
          // One event id that another operation stored, among new ones: not a retry, so refused.
          const original = random.pick(pool)
          const reused = original.requests[0]!.events[0]!
          const target = yield* request(streams.pick(random), 1)
          return perform({
            kind: "append",
            requests: [{ ...target, expectedVersion: ExpectedVersion.any, events: [...target.events, reused] }],
            reusedIds: [reused.id]
          })
        }
        case "malformed": {
          const streamId = streams.pick(random)
          const first = yield* request(streamId, 1)
          if (random.chance(0.5)) {
            // One stream twice in one appendMany.
            return perform({ kind: "appendMany", requests: [first, yield* request(streamId, 1)], malformed: true })
          }
          // One event id twice in one append.
          return perform({
            kind: "append",
            requests: [{ ...first, events: [first.events[0]!, first.events[0]!] }],
            malformed: true
          })
        }
        case "wrongType": {
          // Expecting an existing stream, so that it never creates a hot stream with the wrong type.
          const target = yield* request(random.pick(hotStreams), 1, otherStreamType)
          return perform({ kind: "append", requests: [{ ...target, expectedVersion: ExpectedVersion.streamExists }] })
        }
        case "empty":
          return perform({ kind: "append", requests: [yield* request(streams.pick(random), 0)] })
        case "appendMany":
          return perform({
            kind: "appendMany",
            requests: yield* Effect.forEach(
              distinctStreams(random.int(2, 3)),
              (streamId) => request(streamId, random.int(1, 2))
            )
          })
        case "transaction": {
          if (planner.transaction === undefined) break
          const many = random.chance(0.4)
          const requests = many
            ? yield* Effect.forEach(distinctStreams(2), (streamId) => request(streamId, random.int(1, 2)))
            : [yield* request(streams.pick(random), random.int(1, 3))]
          return perform(
            {
              kind: many ? "appendMany" : "append",
              requests,
              transaction: { writesFirst: random.chance(0.5), outbox: planner.outbox }
            },
            { transaction: planner.transaction }
          )
        }
        case "interrupted":
          return perform(
            { kind: "append", requests: [yield* request(streams.pick(random), random.int(1, 3))] },
            // Now and then at once, before the append has even started.
            { interruptAfter: random.chance(0.2) ? 0 : random.int(1, 3000) }
          )
        case "append":
          break
      }
      return perform({ kind: "append", requests: [yield* request(streams.pick(random), random.int(1, 3))] })
    })
    return yield* Effect.catchAll(step, () => Effect.succeed(pause(1)))
  })

/**
 * One worker: a number of steps, each operation sent again while its outcome is unknown (or its
 * transaction came too late), as an application that wants its append stored would.
 */
export const worker = <R = never>(
  planner: Planner<R>,
  prefix: string,
  /** How many steps, or whether to take another one. */
  steps: number | (() => boolean),
  record: (operation: Operation) => void
): Effect.Effect<void, never, EventStore.EventStore | R> =>
  Effect.gen(function*() {
    let attempt = 0
    for (let n = 0; typeof steps === "number" ? n < steps : steps(); n++) {
      const step = yield* nextStep(planner, `${prefix}${n}`)
      if (step._tag === "Pause") {
        yield* Effect.sleep(Duration.millis(step.millis))
        continue
      }
      planner.invoking?.(step.plan)
      let operation = yield* perform(step.plan, step.options)
      record(operation)
      for (let retries = 0; shouldRetry(operation) && retries < 4; retries++) {
        yield* Effect.sleep(Duration.millis(planner.random.int(1, 20)))
        const retry = retryPlan(operation, `${prefix}${n}.r${attempt++}`, { keepTransaction: true })
        planner.invoking?.(retry)
        operation = yield* perform(retry, { transaction: planner.transaction })
        record(operation)
      }
      if (
        operation.outcome._tag === "Acknowledged" && operation.requests.every((request) => request.events.length > 0) &&
        operation.malformed !== true && operation.reusedIds === undefined
      ) {
        planner.acknowledged.push(operation)
      }
    }
  })
