/**
 * The history checker is not vacuous: run on deliberately broken stores (wrappers over the
 * in-memory store, each breaking one guarantee) and on hand-made histories, it reports each
 * violation, and on a correct history it reports none.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { Events } from "effect-eventsourcing"
import { Errors, EventStore, Position, ProjectionStore } from "effect-eventsourcing"
import type { EventRecord, History, Operation, ReadModelRow, ViolationKind } from "./checker.js"
import { check } from "./checker.js"
import type { Kind } from "./operations.js"
import type { Consumed, Environment, ReadModel } from "./workload.js"
import { runHistory } from "./workload.js"

/** The in-memory store with its EventStore service wrapped; the wrapper is built afresh per run. */
const broken = (wrap: (store: EventStore.EventStore) => EventStore.EventStore) =>
  Layer.effect(EventStore.EventStore, Effect.map(EventStore.EventStore, wrap)).pipe(
    Layer.provideMerge(EventStore.layerMemory)
  )

const memoryReadModel = (twice?: (applied: number) => boolean): ReadModel<never> => {
  const rows = new Map<string, ReadModelRow>()
  let applied = 0
  const once = (event: Events.RecordedEvent<Consumed>) => {
    const row = rows.get(event.streamId)
    const amount = event.data._tag === "Withdrawn" ? -event.data.amount : event.data.amount
    rows.set(event.streamId, {
      applied: (row?.applied ?? 0) + 1,
      total: (row?.total ?? 0) + amount,
      versions: row === undefined ? String(event.version) : `${row.versions},${event.version}`
    })
  }
  return {
    apply: (event) =>
      Effect.sync(() => {
        once(event)
        if (twice?.(++applied) === true) once(event)
      }),
    rows: Effect.sync(() => Object.fromEntries(rows))
  }
}

const environment = (readModel = memoryReadModel()): Environment<ProjectionStore.ProjectionStore> => ({
  readModel,
  transaction: (_key, _writesFirst, effect) =>
    Effect.flatMap(ProjectionStore.ProjectionStore, (projections) => projections.transaction(effect))
})

/** A short run of the real workload on a store, and the kinds of violation the checker reports. */
const kindsOn = (
  store: Layer.Layer<EventStore.EventStore | ProjectionStore.ProjectionStore>,
  options: {
    readonly fibers?: number
    readonly weights?: Partial<Record<Kind, number>>
    readonly readModel?: ReadModel<never>
  } = {}
) =>
  Effect.gen(function*() {
    const { history } = yield* runHistory(environment(options.readModel), {
      seed: 7,
      operations: 300,
      fibers: options.fibers ?? 4,
      subscribers: 2,
      // A broken store may keep readers from ever catching up: that is for the checker to report.
      catchUpTimeout: "2 seconds",
      ...(options.weights === undefined ? {} : { weights: options.weights })
    })
    return new Set(check(history).map((violation) => violation.kind))
  }).pipe(Effect.provide(store))

const sequence = (event: Events.RecordedEvent) => event.position.sequence

/** Keeps all but the first event for which `drop` holds, per stream. */
const dropFirst = <E>(stream: Stream.Stream<Events.RecordedEvent, E>, drop: (event: Events.RecordedEvent) => boolean) =>
  Stream.suspend(() => {
    let dropped = false
    return Stream.filter(stream, (event) => {
      if (dropped || !drop(event)) return true
      dropped = true
      return false
    })
  })

/**
 * Swaps the appends at sequences 2 and 3 everywhere the store shows them: in the order of every
 * reader and in every position it returns. The store stays consistent with itself; only the
 * order in which the appends were made tells it lied.
 */
const swapped = (store: EventStore.EventStore): EventStore.EventStore => {
  const swap = (position: Position.Position) =>
    position.sequence === 2n || position.sequence === 3n
      ? Position.make({ sequence: 5n - position.sequence })
      : position
  const relabel = (event: Events.RecordedEvent): Events.RecordedEvent => ({ ...event, position: swap(event.position) })
  const result = (result: EventStore.AppendResult): EventStore.AppendResult => ({
    ...result,
    position: swap(result.position),
    events: result.events.map(relabel)
  })
  // Holds back the append at 2 until the one at 3 has passed (each append comes in one chunk).
  const reorder = <E>(stream: Stream.Stream<Events.RecordedEvent, E>) =>
    Stream.suspend(() => {
      let held: Array<Events.RecordedEvent> = []
      let passedThree = false
      return Stream.mapChunks(stream, (chunk) => {
        const out: Array<Events.RecordedEvent> = []
        for (const event of chunk) {
          if (sequence(event) === 2n) {
            held.push(relabel(event))
            continue
          }
          if (sequence(event) !== 3n && passedThree && held.length > 0) {
            for (const event of held.splice(0)) out.push(event)
          }
          if (sequence(event) === 3n) passedThree = true
          out.push(relabel(event))
        }
        if (passedThree && held.length > 0) { for (const event of held.splice(0)) out.push(event) }
        held = [...held]
        return Chunk.unsafeFromArray(out)
      })
    })
  return {
    ...store,
    append: (request) => Effect.map(store.append(request), result),
    appendMany: (requests) => Effect.map(store.appendMany(requests), (results) => results.map(result)),
    readStream: (streamId, options) => Stream.map(store.readStream(streamId, options), relabel),
    readAll: (options) => reorder(store.readAll(options)),
    subscribe: (options) => reorder(store.subscribe(options)),
    head: Effect.map(store.head, swap)
  }
}

/** Acknowledges the tenth append that has events without storing it. */
const forgetful = (store: EventStore.EventStore): EventStore.EventStore => {
  let appends = 0
  return {
    ...store,
    append: (request) =>
      Effect.gen(function*() {
        if (request.events.length === 0 || ++appends !== 10) return yield* store.append(request)
        const version = yield* store.streamVersion(request.streamId)
        const position = Position.make({ sequence: 1_000_000n })
        return {
          streamId: request.streamId,
          version: version + request.events.length,
          position,
          events: request.events.map((event, index) => ({
            id: event.id ?? `made-up-${index}`,
            streamId: request.streamId,
            streamType: request.streamType,
            version: version + index + 1,
            position,
            type: event.type,
            data: event.data,
            actor: "system",
            timestamp: new Date(),
            metadata: {},
            schemaVersion: 1
          }))
        }
      })
  }
}

/** Refuses every fifth append expecting an exact version with the very version it expected. */
const falseConflicts = (store: EventStore.EventStore): EventStore.EventStore => {
  let exact = 0
  return {
    ...store,
    append: (request) =>
      typeof request.expectedVersion === "number" && ++exact % 5 === 0
        ? Effect.fail(
          new Errors.ConcurrencyError({
            streamId: request.streamId,
            expectedVersion: request.expectedVersion,
            actualVersion: request.expectedVersion,
            others: []
          })
        )
        : store.append(request)
  }
}

/** Appends whatever the stream's version: optimistic concurrency forgotten. */
const unchecked = (store: EventStore.EventStore): EventStore.EventStore => ({
  ...store,
  append: (request) => store.append({ ...request, expectedVersion: "any" }),
  appendMany: (requests) => store.appendMany(requests.map((request) => ({ ...request, expectedVersion: "any" })))
})

/** Stores the fifth append a second time, as a retry layer that made up new ids would. */
const doubling = (store: EventStore.EventStore): EventStore.EventStore => {
  let appends = 0
  return {
    ...store,
    append: (request) =>
      request.events.length === 0 || ++appends !== 5
        ? store.append(request)
        : Effect.tap(store.append(request), () =>
          Effect.ignore(store.append({
            ...request,
            expectedVersion: "any",
            events: request.events.map((event) => ({ ...event, id: `${event.id}-again` }))
          })))
  }
}

describe("the history checker, on broken stores", () => {
  it.live("finds nothing wrong with the in-memory store itself", () =>
    Effect.gen(function*() {
      expect([...yield* kindsOn(EventStore.layerMemory)]).toEqual([])
    }))

  it.live("reports an event that readAll drops", () =>
    Effect.gen(function*() {
      const kinds = yield* kindsOn(broken((store) => ({
        ...store,
        readAll: (options) => dropFirst(store.readAll(options), (event) => sequence(event) === 5n)
      })))
      expect(kinds).toContain("LostAppend")
      expect(kinds).toContain("ReadMismatch")
    }))

  it.live("reports an event that a subscriber receives twice", () =>
    Effect.gen(function*() {
      const kinds = yield* kindsOn(broken((store) => ({
        ...store,
        subscribe: (options) =>
          Stream.mapChunks(store.subscribe(options), (chunk) =>
            Chunk.flatMap(
              chunk,
              (event) => (sequence(event) === 3n && event.version === 1 ? Chunk.make(event, event) : Chunk.of(event))
            ))
      })))
      expect(kinds).toContain("ReaderDuplicate")
    }))

  it.live("reports an event that a subscriber never receives", () =>
    Effect.gen(function*() {
      const kinds = yield* kindsOn(broken((store) => ({
        ...store,
        subscribe: (options) => dropFirst(store.subscribe(options), (event) => sequence(event) === 4n)
      })))
      expect(kinds).toContain("ReaderSkip")
    }))

  it.live("reports an append split across two chunks of a subscription", () =>
    Effect.gen(function*() {
      const kinds = yield* kindsOn(
        broken((store) => ({ ...store, subscribe: (options) => Stream.rechunk(store.subscribe(options), 1) }))
      )
      expect(kinds).toContain("SplitChunk")
    }))

  it.live("reports two appends whose order contradicts the order they were made in", () =>
    Effect.gen(function*() {
      // One writer, no interruptions: every append is acknowledged before the next is invoked.
      const kinds = yield* kindsOn(broken(swapped), { fibers: 1, weights: { interrupted: 0 } })
      expect(kinds).toContain("RealTime")
    }))

  it.live("reports an acknowledged append that was not stored", () =>
    Effect.gen(function*() {
      expect(yield* kindsOn(broken(forgetful))).toContain("LostAppend")
    }))

  it.live("reports a ConcurrencyError whose actual version satisfies the expectation", () =>
    Effect.gen(function*() {
      expect(yield* kindsOn(broken(falseConflicts))).toContain("ImplausibleConflict")
    }))

  it.live("reports appends stored against their expected version", () =>
    Effect.gen(function*() {
      expect(yield* kindsOn(broken(unchecked))).toContain("ExpectationBroken")
    }))

  it.live("reports events stored that no operation sent", () =>
    Effect.gen(function*() {
      expect(yield* kindsOn(broken(doubling))).toContain("PhantomEvent")
    }))

  it.live("reports a projection that applies an event twice", () =>
    Effect.gen(function*() {
      const kinds = yield* kindsOn(EventStore.layerMemory, { readModel: memoryReadModel((applied) => applied === 20) })
      expect([...kinds]).toEqual(["ProjectionMismatch"])
    }))
})

// --- Hand-made histories, for what a real store rarely lets a run reach.

const event = (id: string, streamId: string, version: number, position: string): EventRecord => ({
  id,
  streamId,
  streamType: "account",
  version,
  position,
  type: "Noted",
  data: { amount: 1 }
})

const appendOf = (
  id: string,
  streamId: string,
  expectedVersion: Operation["requests"][number]["expectedVersion"],
  ids: ReadonlyArray<string>,
  times: readonly [number, number],
  outcome: Operation["outcome"],
  extra: Partial<Operation> = {}
): Operation => ({
  id,
  process: "main",
  kind: "append",
  requests: [{
    streamId,
    streamType: "account",
    expectedVersion,
    events: ids.map((eventId) => ({ id: eventId, type: "Noted", data: { amount: 1 } }))
  }],
  invokedAt: times[0],
  completedAt: times[1],
  outcome,
  ...extra
})

const acknowledged = (streamId: string, events: ReadonlyArray<EventRecord>): Operation["outcome"] => ({
  _tag: "Acknowledged",
  results: [{
    streamId,
    version: events.at(-1)!.version,
    position: events[0]!.position,
    events: events.map((event) => ({ id: event.id, version: event.version, position: event.position }))
  }]
})

/** Two appends to stream a, one after the other, and one to b: a correct history. */
const a1 = event("a.0", "a", 1, "0:1")
const a2 = event("a.1", "a", 2, "0:1")
const a3 = event("c.0", "a", 3, "0:2")
const b1 = event("b.0", "b", 1, "0:3")
const correct: History = {
  operations: [
    appendOf("a", "a", "no-stream", ["a.0", "a.1"], [0, 10], acknowledged("a", [a1, a2])),
    appendOf("c", "a", 2, ["c.0"], [20, 30], acknowledged("a", [a3])),
    appendOf("b", "b", "any", ["b.0"], [40, 50], acknowledged("b", [b1]))
  ],
  all: [a1, a2, a3, b1],
  streams: { a: [a1, a2, a3], b: [b1] },
  readers: [{ name: "reader", events: [a1, a2, a3, b1], chunkEnds: [2, 4] }]
}

const kinds = (
  history: History
): ReadonlyArray<ViolationKind> => [...new Set(check(history).map((violation) => violation.kind))]

const withOperation = (history: History, operation: Operation, extra: Partial<History> = {}): History => ({
  ...history,
  operations: [...history.operations, operation],
  ...extra
})

describe("the history checker, on hand-made histories", () => {
  it("finds nothing wrong with a correct history", () => {
    expect(check(correct)).toEqual([])
  })

  it("reports an unknown outcome that stored part of its events", () => {
    const d1 = event("d.0", "d", 1, "0:4")
    const history = withOperation(
      correct,
      appendOf("d", "d", "any", ["d.0", "d.1"], [60, 70], { _tag: "Unknown", reason: "lost" }),
      {
        all: [...correct.all, d1],
        streams: { ...correct.streams, d: [d1] },
        readers: []
      }
    )
    expect(kinds(history)).toEqual(["PartialAppend"])
  })

  it("reports a refused retry of an acknowledged append", () => {
    const retry = appendOf("a.r", "a", "no-stream", ["a.0", "a.1"], [60, 70], {
      _tag: "Failed",
      error: { _tag: "ConcurrencyError", streamId: "a", expectedVersion: "no-stream", actualVersion: 3, others: [] }
    }, { retryOf: "a" })
    expect(kinds(withOperation(correct, retry))).toEqual(["FailedButStored"])
  })

  it("reports a ConcurrencyError with a version the stream never had", () => {
    // Stream a went from 0 to 2 in one append: it was never at version 1.
    const refused = appendOf("e", "a", 0, ["e.0"], [12, 18], {
      _tag: "Failed",
      error: { _tag: "ConcurrencyError", streamId: "a", expectedVersion: 0, actualVersion: 1, others: [] }
    })
    expect(kinds(withOperation(correct, refused))).toEqual(["ImplausibleConflict"])
  })

  it("reports a ConcurrencyError with a version the stream had left before the append began", () => {
    const refused = appendOf("e", "a", 0, ["e.0"], [35, 38], {
      _tag: "Failed",
      error: { _tag: "ConcurrencyError", streamId: "a", expectedVersion: 0, actualVersion: 2, others: [] }
    })
    expect(kinds(withOperation(correct, refused))).toEqual(["ImplausibleConflict"])
  })

  it("reports an appendMany conflict that names a stream whose expectation held", () => {
    const many: Operation = {
      ...appendOf("m", "a", 1, ["m.0"], [35, 38], {
        _tag: "Failed",
        error: {
          _tag: "ConcurrencyError",
          streamId: "a",
          expectedVersion: 1,
          actualVersion: 3,
          others: [{ streamId: "b", expectedVersion: "any", actualVersion: 1 }]
        }
      }),
      kind: "appendMany",
      requests: [
        {
          streamId: "a",
          streamType: "account",
          expectedVersion: 1,
          events: [{ id: "m.0", type: "Noted", data: { amount: 1 } }]
        },
        {
          streamId: "b",
          streamType: "account",
          expectedVersion: "any",
          events: [{ id: "m.1", type: "Noted", data: { amount: 1 } }]
        }
      ]
    }
    expect(kinds(withOperation(correct, many))).toEqual(["ImplausibleConflict"])
  })

  it("reports an append with no events that read a version already left behind", () => {
    const read = appendOf("r", "a", "any", [], [35, 38], {
      _tag: "Acknowledged",
      results: [{ streamId: "a", version: 2, position: "0:1", events: [] }]
    })
    expect(kinds(withOperation(correct, read))).toEqual(["WrongResult"])
  })

  it("reports a TransactionConflictError for a transaction that wrote nothing before appending", () => {
    const refused = appendOf("t", "b", "any", ["t.0"], [60, 70], {
      _tag: "Failed",
      error: { _tag: "TransactionConflictError", streamId: "b" }
    }, {
      transaction: { writesFirst: false, outbox: true }
    })
    expect(kinds(withOperation(correct, refused, { outbox: [] }))).toEqual(["ImplausibleRefusal"])
  })

  it("reports an application transaction whose outbox row committed without its events", () => {
    const refused = appendOf("t", "b", 0, ["t.0"], [60, 70], {
      _tag: "Failed",
      error: { _tag: "ConcurrencyError", streamId: "b", expectedVersion: 0, actualVersion: 1, others: [] }
    }, { transaction: { writesFirst: true, outbox: true } })
    expect(kinds(withOperation(correct, refused, { outbox: ["t"] }))).toEqual(["OutboxMismatch"])
  })

  it("reports an append that came after one acknowledged before it was invoked", () => {
    // b was acknowledged at 50 and d invoked at 60, but d comes first in the order.
    const d1 = event("d.0", "d", 1, "0:3")
    const b1Later = event("b.0", "b", 1, "0:4")
    const history: History = {
      ...withOperation(correct, appendOf("d", "d", "any", ["d.0"], [60, 70], acknowledged("d", [d1]))),
      operations: [
        ...correct.operations.slice(0, 2),
        appendOf("b", "b", "any", ["b.0"], [40, 50], acknowledged("b", [b1Later])),
        appendOf("d", "d", "any", ["d.0"], [60, 70], acknowledged("d", [d1]))
      ],
      all: [a1, a2, a3, d1, b1Later],
      streams: { a: [a1, a2, a3], b: [b1Later], d: [d1] },
      readers: []
    }
    expect(kinds(history)).toEqual(["RealTime"])
  })
})
