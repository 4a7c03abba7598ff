/**
 * The group commit primitive on its own, with a batch runner the test holds open: which items
 * share a batch, in what order, and what interruption and defects do.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as GroupCommit from "../../src/internal/groupCommit.js"

interface Item {
  readonly key: string
  readonly weight?: number
}

/** A group commit whose batches are recorded, and each held until the test lets it go. */
const recorded = (
  options: {
    readonly inFlight: number
    readonly maxItems?: number
    readonly maxWeight?: number
    /** Items without keys: no order among them. */
    readonly keyless?: boolean
  }
) =>
  Effect.gen(function*() {
    const batches: Array<ReadonlyArray<string>> = []
    const gates: Array<Deferred.Deferred<void>> = []
    const commit = GroupCommit.make<Item, string>({
      inFlight: options.inFlight,
      maxItems: options.maxItems ?? 100,
      maxWeight: options.maxWeight ?? 1_000,
      weight: (item) => item.weight ?? 1,
      key: (item) => (options.keyless === true ? undefined : item.key),
      run: (batch) =>
        Effect.gen(function*() {
          batches.push(batch.map((item) => item.key))
          const gate = yield* Deferred.make<void>()
          gates.push(gate)
          yield* Deferred.await(gate)
          return batch.map((item) => `done ${item.key}`)
        })
    })
    /** Lets the oldest batch still held go. */
    const releaseNext = Effect.suspend(() => Deferred.succeed(gates.shift()!, undefined))
    const settle = Effect.repeatN(Effect.yieldNow(), 20)
    return { batches, commit, releaseNext, settle }
  })

describe("group commit", () => {
  it.effect("runs an item alone at once when nothing is in flight", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      const fiber = yield* Effect.fork(commit.submit({ key: "a" }))
      yield* settle
      expect(batches).toEqual([["a"]])
      yield* releaseNext
      expect(yield* Fiber.join(fiber)).toBe("done a")
    }))

  it.effect("puts items without keys in one batch and in flight at once, whatever they hold", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 2, keyless: true })
      const first = yield* Effect.fork(commit.submit({ key: "a" }))
      yield* settle
      const more = yield* Effect.forEach(["a", "a"], (key) => Effect.fork(commit.submit({ key })))
      yield* settle
      // With keys, the two would wait for the first "a" and then go one batch each.
      expect(batches).toEqual([["a"], ["a", "a"]])
      yield* releaseNext
      yield* releaseNext
      expect(yield* Fiber.join(first)).toBe("done a")
      expect(yield* Effect.forEach(more, Fiber.join)).toEqual(["done a", "done a"])
    }))

  it.effect("takes the items that came while a batch was in flight as the next batch, in their order", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      const first = yield* Effect.fork(commit.submit({ key: "a" }))
      yield* settle
      const waiting = yield* Effect.forEach(["b", "c", "d"], (key) => Effect.fork(commit.submit({ key })))
      yield* settle
      expect(batches).toEqual([["a"]])
      yield* releaseNext
      yield* settle
      expect(batches).toEqual([["a"], ["b", "c", "d"]])
      yield* releaseNext
      expect(yield* Fiber.join(first)).toBe("done a")
      expect(yield* Effect.forEach(waiting, Fiber.join)).toEqual(["done b", "done c", "done d"])
    }))

  it.effect("joins callers that come while a leader forms its batch, even with slots free", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 4 })
      const fibers = yield* Effect.forEach(
        ["a", "b", "c"],
        (key) => Effect.fork(commit.submit({ key })),
        { concurrency: "unbounded" }
      )
      yield* settle
      expect(batches).toEqual([["a", "b", "c"]])
      yield* releaseNext
      expect(yield* Effect.forEach(fibers, Fiber.join)).toEqual(["done a", "done b", "done c"])
    }))

  it.effect("never puts two items of one key in a batch, and keeps each key's order", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* settle
      const fibers = yield* Effect.forEach(
        ["s", "t", "s", "u", "s"],
        (key) => Effect.fork(commit.submit({ key }))
      )
      yield* settle
      for (let batch = 0; batch < 4; batch++) {
        yield* releaseNext
        yield* settle
      }
      expect(batches).toEqual([["held"], ["s", "t", "u"], ["s"], ["s"]])
      yield* Effect.forEach(fibers, Fiber.join)
    }))

  it.effect("keeps an item whose key is in flight waiting, without holding up other keys", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 2 })
      const first = yield* Effect.fork(commit.submit({ key: "s" }))
      yield* settle
      const again = yield* Effect.fork(commit.submit({ key: "s" }))
      yield* settle
      const other = yield* Effect.fork(commit.submit({ key: "t" }))
      yield* settle
      // "t" takes the free slot; the second "s" waits for the first.
      expect(batches).toEqual([["s"], ["t"]])
      yield* releaseNext
      yield* settle
      expect(batches).toEqual([["s"], ["t"], ["s"]])
      yield* releaseNext
      yield* releaseNext
      expect(yield* Effect.forEach([first, again, other], Fiber.join)).toEqual(["done s", "done s", "done t"])
    }))

  it.effect("limits a batch by items and by weight, but always takes its first item", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1, maxItems: 2, maxWeight: 10 })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* settle
      yield* Effect.forEach(
        [{ key: "a" }, { key: "b" }, { key: "c" }, { key: "heavy", weight: 50 }, { key: "d", weight: 10 }],
        (item) => Effect.fork(commit.submit(item))
      )
      yield* settle
      for (let batch = 0; batch < 4; batch++) {
        yield* releaseNext
        yield* settle
      }
      expect(batches).toEqual([["held"], ["a", "b"], ["c"], ["heavy"], ["d"]])
    }))

  it.effect("withdraws an item whose caller is interrupted while it waits", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* settle
      const withdrawn = yield* Effect.fork(commit.submit({ key: "gone" }))
      const kept = yield* Effect.fork(commit.submit({ key: "kept" }))
      yield* settle
      yield* Fiber.interrupt(withdrawn)
      yield* releaseNext
      yield* settle
      expect(batches).toEqual([["held"], ["kept"]])
      yield* releaseNext
      expect(yield* Fiber.join(kept)).toBe("done kept")
    }))

  it.effect("runs a batch of several to its end when its leader is interrupted", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* settle
      const leader = yield* Effect.fork(commit.submit({ key: "leader" }))
      const follower = yield* Effect.fork(commit.submit({ key: "follower" }))
      yield* settle
      yield* releaseNext
      yield* settle
      expect(batches).toEqual([["held"], ["leader", "follower"]])
      const interrupting = yield* Effect.fork(Fiber.interrupt(leader))
      yield* settle
      // The leader waits for its batch; the follower gets its outcome.
      yield* releaseNext
      expect(yield* Fiber.join(follower)).toBe("done follower")
      expect(Exit.isInterrupted(yield* Fiber.join(interrupting))).toBe(true)
    }))

  it.effect("hands the slot on when a caller told to lead is interrupted before it starts", () =>
    Effect.gen(function*() {
      const { batches, commit, releaseNext, settle } = yield* recorded({ inFlight: 1 })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* settle
      const next = yield* Effect.fork(commit.submit({ key: "next" }))
      yield* settle
      // The batch ends and tells it to lead (one turn: the ending leader runs before it does),
      // and it is interrupted before it starts.
      yield* releaseNext
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(next)
      const later = yield* Effect.fork(commit.submit({ key: "later" }))
      yield* settle
      expect(batches).toEqual([["held"], ["later"]])
      yield* releaseNext
      expect(yield* Fiber.join(later)).toBe("done later")
    }))

  it.effect("fails every item of a batch whose runner dies", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const commit = GroupCommit.make<Item, string>({
        inFlight: 1,
        maxItems: 10,
        maxWeight: 10,
        weight: () => 1,
        key: (item) => item.key,
        run: (batch) => batch[0]!.key === "held" ? Effect.as(Deferred.await(gate), ["ok"]) : Effect.dieMessage("broken")
      })
      yield* Effect.fork(commit.submit({ key: "held" }))
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      const fibers = yield* Effect.forEach(["a", "b"], (key) => Effect.fork(commit.submit({ key })))
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      yield* Deferred.succeed(gate, undefined)
      for (const fiber of fibers) {
        const exit = yield* Fiber.await(fiber)
        expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
      }
      // The slot is free again.
      expect(yield* commit.submit({ key: "held" })).toBe("ok")
    }))
})
