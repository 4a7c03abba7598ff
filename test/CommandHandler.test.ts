import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Either, Exit, Option, Ref, Schedule, Schema } from "effect"
import { CommandHandler, Decider, Errors, EventStore, ExpectedVersion, Metadata, Position } from "effect-eventsourcing"

const Added = Schema.TaggedStruct("Added", { amount: Schema.Int.pipe(Schema.nonNegative()) })
const Reset = Schema.TaggedStruct("Reset", {})
const CounterEvent = Schema.Union(Added, Reset)
type CounterEvent = typeof CounterEvent.Type

type Command = { readonly _tag: "Add"; readonly amount: number } | { readonly _tag: "Reset" }

class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { total: Schema.Number }) {}

const counter = Decider.make({
  streamType: "counter",
  events: CounterEvent,
  initialState: 0,
  decide: (command: Command, total: number) => {
    if (command._tag === "Reset") return total === 0 ? [] : [Reset.make({})]
    if (total + command.amount > 100) return Effect.fail(new TooLarge({ total }))
    // Added's Schema refuses negative amounts: a negative command produces an event that
    // cannot be encoded.
    return [{ _tag: "Added", amount: command.amount } as CounterEvent]
  },
  evolve: (total: number, event: CounterEvent) => event._tag === "Added" ? total + event.amount : 0
})

const counters = CommandHandler.make(counter)
const add = (amount: number): Command => ({ _tag: "Add", amount })

const withStore = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideServiceEffect(effect, EventStore.EventStore, EventStore.makeMemory)

describe("CommandHandler", () => {
  it.effect("loads, decides and appends, returning the typed events, state, version and position", () =>
    withStore(Effect.gen(function*() {
      const first = yield* counters.handle("c1", add(5))
      expect(first.version).toBe(1)
      expect(first.state).toBe(5)
      expect(first.events.map((event) => event.data)).toEqual([{ _tag: "Added", amount: 5 }])
      expect(first.events[0]).toMatchObject({ streamId: "c1", streamType: "counter", version: 1, type: "Added" })

      const second = yield* counters.handle("c1", add(7))
      expect(second).toMatchObject({ version: 2, state: 12 })
      expect(Position.isAfter(second.position, first.position)).toBe(true)

      const loaded = yield* counters.load("c1")
      expect(loaded).toEqual({ state: 12, version: 2, position: second.position })
    })))

  it.effect("loads a missing stream as the initial state at version 0", () =>
    withStore(Effect.gen(function*() {
      expect(yield* counters.load("nothing")).toEqual({ state: 0, version: 0, position: Position.start })
    })))

  it.effect("appends nothing when the decider decides nothing", () =>
    withStore(Effect.gen(function*() {
      const result = yield* counters.handle("c1", { _tag: "Reset" })
      expect(result).toEqual({ events: [], state: 0, version: 0, position: Position.start })
      const store = yield* EventStore.EventStore
      expect(yield* store.streamVersion("c1")).toBe(0)
    })))

  it.effect("fails with the domain error and appends nothing", () =>
    withStore(Effect.gen(function*() {
      yield* counters.handle("c1", add(90))
      const error = yield* Effect.flip(counters.handle("c1", add(20)))
      expect(error).toEqual(new TooLarge({ total: 90 }))
      expect((yield* counters.load("c1")).version).toBe(1)
    })))

  it.effect("fails with EventEncodeError when a decided event does not match its Schema", () =>
    withStore(Effect.gen(function*() {
      const error = yield* Effect.flip(counters.handle("c1", add(-3)))
      expect(error).toBeInstanceOf(Errors.EventEncodeError)
      expect(error).toMatchObject({ streamType: "counter", eventType: "Added" })
      expect(error.message).toContain("Added")
      expect((yield* counters.load("c1")).version).toBe(0)
    })))

  it.effect("refuses to load or change a stream of another type", () =>
    withStore(Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamId: "order-1",
        streamType: "order",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Added", data: { amount: 1 } }]
      })
      const loadError = yield* Effect.flip(counters.load("order-1"))
      expect(loadError).toEqual(
        new Errors.StreamTypeMismatchError({ streamId: "order-1", expectedType: "counter", actualType: "order" })
      )
      const handleError = yield* Effect.flip(counters.handle("order-1", add(1)))
      expect(handleError).toBeInstanceOf(Errors.StreamTypeMismatchError)
    })))

  it.effect("names the stream, version and type of a stored event that no longer decodes", () =>
    withStore(Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamId: "c1",
        streamType: "counter",
        expectedVersion: ExpectedVersion.noStream,
        events: [
          { type: "Added", data: { amount: 1 } },
          { type: "Added", data: { amount: "many" } }
        ]
      })
      yield* store.append({
        streamId: "c2",
        streamType: "counter",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Doubled", data: {} }]
      })
      yield* store.append({
        streamId: "c3",
        streamType: "counter",
        expectedVersion: ExpectedVersion.noStream,
        events: [{ type: "Added", data: [1] }]
      })

      const mismatch = yield* Effect.flip(counters.load("c1"))
      expect(mismatch).toBeInstanceOf(Errors.EventDecodeError)
      expect(mismatch).toMatchObject({ streamId: "c1", version: 2, eventType: "Added" })
      expect(mismatch.message).toMatch(/version 2 of stream "c1"/)
      expect(mismatch.message).toContain("amount")

      const unknown = yield* Effect.flip(counters.load("c2"))
      expect(unknown).toMatchObject({ _tag: "EventDecodeError", streamId: "c2", version: 1, eventType: "Doubled" })
      expect(unknown.message).toContain(`"Added", "Reset"`)

      const notAnObject = yield* Effect.flip(counters.handle("c3", add(1)))
      expect(notAnObject).toMatchObject({ _tag: "EventDecodeError", streamId: "c3", version: 1 })
      expect(yield* store.streamVersion("c3")).toBe(1)
    })))

  it.effect("records the actor and correlation id of the context", () =>
    withStore(Effect.gen(function*() {
      const result = yield* counters.handle("c1", add(1)).pipe(
        Metadata.withActor("user:7"),
        Metadata.withCorrelationId("request-3")
      )
      expect(result.events[0]).toMatchObject({ actor: "user:7", metadata: { correlationId: "request-3" } })
    })))

  describe("under concurrency", () => {
    it.live("queues the commands one handler gets for one stream, so they do not race each other", () =>
      withStore(Effect.gen(function*() {
        const decisions = yield* Ref.make(0)
        const handler = CommandHandler.make({
          ...counter,
          decide: (command: Command, total: number) =>
            Effect.gen(function*() {
              yield* Ref.update(decisions, (count) => count + 1)
              // Give every other command the chance to load the same state, were it not queued.
              yield* Effect.sleep("1 millis")
              return yield* Decider.decide(counter, command, total)
            })
        }, { retry: false })
        const results = yield* Effect.all(Array.from({ length: 20 }, () => handler.handle("queued", add(1))), {
          concurrency: "unbounded"
        })
        expect(results.map((result) => result.version).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 20 }, (_, index) => index + 1)
        )
        expect(yield* Ref.get(decisions)).toBe(20)
        // Different streams do not wait for each other.
        const parallel = yield* Effect.all(
          Array.from({ length: 5 }, (_, index) => Effect.timed(handler.handle(`parallel-${index}`, add(1)))),
          { concurrency: "unbounded" }
        )
        expect(parallel.every(([, result]) => result.version === 1)).toBe(true)
      })))

    /**
     * The tests below race commands as separate processes would (`queuePerStream: false`), with
     * a counter whose `decide` waits until `writers` commands have all loaded the same state,
     * so that every round of commands races for one version.
     */
    const racing = (writers: number) =>
      Effect.gen(function*() {
        const decisions = yield* Ref.make(0)
        const round = yield* Ref.make(yield* Deferred.make<void>())
        const waiting = yield* Ref.make(0)
        const decider = Decider.make({
          ...counter,
          decide: (command: Command, total: number) =>
            Effect.gen(function*() {
              yield* Ref.update(decisions, (count) => count + 1)
              const gate = yield* Ref.get(round)
              const arrived = yield* Ref.updateAndGet(waiting, (count) => count + 1)
              if (arrived === writers) {
                yield* Ref.set(waiting, 0)
                yield* Ref.set(round, yield* Deferred.make<void>())
                yield* Deferred.succeed(gate, undefined)
              } else {
                yield* Deferred.await(gate).pipe(Effect.timeout("50 millis"), Effect.ignore)
              }
              return yield* Decider.decide(counter, command, total)
            })
        })
        return { decider, decisions }
      })

    it.live("retries a command that lost the race until every command is applied once", () =>
      withStore(Effect.gen(function*() {
        const writers = 6
        const { decider, decisions } = yield* racing(writers)
        const handler = CommandHandler.make(decider, { retry: Schedule.recurs(writers), queuePerStream: false })
        const results = yield* Effect.all(
          Array.from({ length: writers }, () => handler.handle("hot", add(1))),
          { concurrency: "unbounded" }
        )
        expect(results.map((result) => result.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
        expect((yield* handler.load("hot")).state).toBe(writers)
        // Losers decided again on the fresh state.
        expect(yield* Ref.get(decisions)).toBeGreaterThan(writers)
      })))

    it.live("fails the losers with ConcurrencyError when retries are off", () =>
      withStore(Effect.gen(function*() {
        const writers = 5
        const { decider } = yield* racing(writers)
        const handler = CommandHandler.make(decider, { retry: false, queuePerStream: false })
        const outcomes = yield* Effect.all(
          Array.from({ length: writers }, () => Effect.either(handler.handle("hot", add(1)))),
          { concurrency: "unbounded" }
        )
        const losers = outcomes.filter(Either.isLeft).map((outcome) => outcome.left)
        expect(outcomes.filter(Either.isRight)).toHaveLength(1)
        expect(losers).toHaveLength(writers - 1)
        for (const loser of losers) {
          expect(loser).toEqual(new Errors.ConcurrencyError({ streamId: "hot", expectedVersion: 0, actualVersion: 1 }))
        }
      })))

    it.live("gives up with ConcurrencyError when the schedule is exhausted", () =>
      withStore(Effect.gen(function*() {
        const writers = 4
        const { decider } = yield* racing(writers)
        const attempts = yield* Ref.make<ReadonlyArray<Errors.ConcurrencyError>>([])
        const handler = CommandHandler.make(decider, {
          queuePerStream: false,
          retry: Schedule.recurs(1).pipe(
            Schedule.tapInput((error: Errors.ConcurrencyError) => Ref.update(attempts, (all) => [...all, error]))
          )
        })
        const exits = yield* Effect.all(
          Array.from({ length: writers }, () => Effect.exit(handler.handle("hot", add(1)))),
          { concurrency: "unbounded" }
        )
        const failures = exits.filter(Exit.isFailure).map((exit) => Cause.failureOption(exit.cause))
        expect(failures.length).toBeGreaterThan(0)
        for (const failure of failures) {
          expect(Option.getOrThrow(failure)).toBeInstanceOf(Errors.ConcurrencyError)
        }
        // Every command that lost a race was retried once, and the schedule saw the conflict.
        const seen = yield* Ref.get(attempts)
        expect(seen.length).toBeGreaterThanOrEqual(writers - 1)
        expect(seen.every((error) => error instanceof Errors.ConcurrencyError)).toBe(true)
        expect((yield* handler.load("hot")).state).toBe(exits.filter(Exit.isSuccess).length)
      })))

    it.live("applies every contending command with the backoff schedule docs/11-testing.md suggests", () =>
      withStore(Effect.gen(function*() {
        const writers = 4
        const { decider, decisions } = yield* racing(writers)
        const handler = CommandHandler.make(decider, {
          queuePerStream: false,
          retry: Schedule.exponential("10 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5)))
        })
        yield* Effect.all(Array.from({ length: writers }, () => handler.handle("hot", add(2))), {
          concurrency: "unbounded"
        })
        expect((yield* handler.load("hot")).state).toBe(writers * 2)
        expect(yield* Ref.get(decisions)).toBeGreaterThan(writers)
      })))

    it.live("does not retry domain errors", () =>
      withStore(Effect.gen(function*() {
        const decisions = yield* Ref.make(0)
        const handler = CommandHandler.make({
          ...counter,
          decide: (command: Command, total: number) =>
            Effect.zipRight(Ref.update(decisions, (count) => count + 1), Decider.decide(counter, command, total))
        })
        yield* Effect.flip(handler.handle("c1", add(1000)))
        expect(yield* Ref.get(decisions)).toBe(1)
      })))
  })
})
