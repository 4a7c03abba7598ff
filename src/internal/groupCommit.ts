/**
 * Group commit: work submitted while earlier work is in flight waits, and is taken as one batch
 * when a batch can start, so that many appends share one round trip and one commit.
 *
 * No timer forms a batch, and no fiber of its own runs one: a caller that finds a slot free
 * (fewer than `inFlight` batches under way) and no batch forming leads one; any other waits.
 * A leader gives the other fibers one turn of the scheduler (no timer: only fibers already able
 * to run get it; callers that come meanwhile join its batch), takes the waiting items that fit
 * in one batch, alone if there are none, runs them in its own fiber (with its services: clock,
 * tracer) and hands each its outcome. When a batch ends and items wait, the oldest of them is
 * told to lead the next. So batches grow while the database is busy, or while callers are ready
 * at the same moment: the callers of a batch that just ended, or, with a driver that runs
 * statements synchronously (better-sqlite3), every caller, since none of them can submit while a
 * statement runs.
 *
 * Items with the same key never share a batch, nor are they in flight at once: the items of one
 * key (the appends to one stream) go in consecutive batches, in the order they came, and wait
 * without holding a slot while one of them is in flight. A batch holds at most `maxItems` items and, past its
 * first, `maxWeight` of their weight. A caller interrupted before its item was taken withdraws
 * it; once taken into a batch of several, the item runs to its end (as a statement already
 * sent does), and their leader's interruption waits for the batch. An item alone is
 * interrupted as it would be without group commit.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

export interface Options<I, O> {
  /** How many batches may be in flight at once. */
  readonly inFlight: number
  readonly maxItems: number
  readonly maxWeight: number
  readonly weight: (item: I) => number
  /** Items with one key are never in one batch; items without one (`undefined`) need no order. */
  readonly key: (item: I) => string | undefined
  /** Runs a batch: one outcome per item, in their order. It cannot fail; a defect fails every item. */
  readonly run: (batch: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>>
}

export interface GroupCommit<I, O> {
  readonly submit: (item: I) => Effect.Effect<O>
}

/** What a waiting caller is told: its outcome, or that it leads the next batch. */
type Turn<O> = { readonly _tag: "Done"; readonly exit: Exit.Exit<O> } | { readonly _tag: "Lead" }

/**
 * A caller's item and its turn. The turn is a cell of its own rather than a `Deferred`: making a
 * `Deferred` costs some 6 µs (effect 3.x copies a prototype into each), as much as the rest of
 * a follower's part of a batch.
 */
interface Entry<I, O> {
  readonly item: I
  /** Waiting; leading the next batch (told, not yet started); or taken into a batch. */
  state: "waiting" | "leading" | "taken"
  /** The caller's turn, once told. */
  turn: Turn<O> | undefined
  /** Wakes the caller, while it waits for its turn. */
  wake: ((turn: Turn<O>) => void) | undefined
}

/** Tells a caller its turn: its outcome, or that it leads the next batch. */
const tell = <I, O>(entry: Entry<I, O>, turn: Turn<O>) => {
  entry.turn = turn
  const wake = entry.wake
  entry.wake = undefined
  wake?.(turn)
}

/**
 * Waits for the caller's turn. Interrupted while waiting, the wait just ends (the caller's
 * `onInterrupt` withdraws its entry), and a turn told later wakes nothing.
 */
const awaitTurn = <I, O>(entry: Entry<I, O>): Effect.Effect<Turn<O>> =>
  Effect.async<Turn<O>>((resume) => {
    if (entry.turn !== undefined) return resume(Effect.succeed(entry.turn))
    entry.wake = (turn) => resume(Effect.succeed(turn))
  })

/** How many items of each key are in flight (or lead a batch being formed); items without a key are never held. */
const keyCounts = <I>(keyOf: (item: I) => string | undefined) => {
  const counts = new Map<string, number>()
  return {
    busy: (item: I) => {
      const key = keyOf(item)
      return key !== undefined && counts.has(key)
    },
    hold: (item: I) => {
      const key = keyOf(item)
      if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1)
    },
    letGo: (item: I) => {
      const key = keyOf(item)
      if (key === undefined) return
      const count = counts.get(key)! - 1
      if (count === 0) counts.delete(key)
      else counts.set(key, count)
    }
  }
}

/**
 * The waiting entries that fit in a batch after `first`, oldest first, and the rest in their
 * order. Once one entry of a key waits for a later batch, the later entries of that key do too;
 * and an entry of a key in flight (`busy`) waits until that batch has ended.
 */
const takeBatch = <I, O>(
  options: Options<I, O>,
  first: Entry<I, O>,
  waiting: ReadonlyArray<Entry<I, O>>,
  busy: (item: I) => boolean
) => {
  const batch = [first]
  const rest: Array<Entry<I, O>> = []
  const keys = new Set<string | undefined>([options.key(first.item)])
  let weight = options.weight(first.item)
  for (const entry of waiting) {
    const key = options.key(entry.item)
    const itemWeight = options.weight(entry.item)
    const fits = (key === undefined || !keys.has(key)) && !busy(entry.item) && batch.length < options.maxItems &&
      weight + itemWeight <= options.maxWeight
    if (fits) {
      batch.push(entry)
      weight += itemWeight
    } else {
      rest.push(entry)
    }
    if (key !== undefined) keys.add(key)
  }
  return { batch, rest }
}

/** Hands each entry of a batch but its leader (the first) its outcome; the leader's is returned. */
const handOut = <I, O>(batch: ReadonlyArray<Entry<I, O>>, exit: Exit.Exit<ReadonlyArray<O>>): Exit.Exit<O> => {
  const outcome = (index: number): Exit.Exit<O> =>
    Exit.isSuccess(exit) ? Exit.succeed(exit.value[index]!) : (exit as Exit.Exit<never>)
  for (const [index, entry] of batch.entries()) {
    if (index > 0) tell(entry, { _tag: "Done", exit: outcome(index) })
  }
  return outcome(0)
}

/**
 * What a group commit knows of its items: the batches in flight, the leaders still forming
 * theirs, the waiting entries and the keys in flight; and the moves between those states.
 */
const makeSlots = <I, O>(options: Options<I, O>) => {
  /** Batches in flight, counting those whose leaders are still forming them. */
  let running = 0
  /** Leaders that have not yet taken their batch: callers that come meanwhile join it. */
  let forming = 0
  let waiting: Array<Entry<I, O>> = []
  const { busy, hold, letGo } = keyCounts(options.key)

  const startLeading = (entry: Entry<I, O>) => {
    running++
    forming++
    hold(entry.item)
    entry.state = "leading"
  }

  /**
   * Tells the oldest waiting caller whose key is not in flight to lead the next batch, if a slot
   * is free and no leader is still forming one (it will take the waiting callers itself).
   */
  const promote = () => {
    if (forming > 0 || running >= options.inFlight) return
    const index = waiting.findIndex((entry) => !busy(entry.item))
    if (index === -1) return
    const [next] = waiting.splice(index, 1)
    startLeading(next!)
    tell(next!, { _tag: "Lead" })
  }

  /** A batch ended (or a leader withdrew): its slot and its keys are free. */
  const release = (items: ReadonlyArray<I>) => {
    items.forEach(letGo)
    running--
    promote()
  }

  return {
    /** Whether an item can lead a batch at once: a slot free, nothing forming or waiting, its key free. */
    leadsAtOnce: (item: I) => running < options.inFlight && forming === 0 && waiting.length === 0 && !busy(item),
    startLeading,
    release,
    /** Queues an entry; a slot may be free while the oldest waiting items' keys are in flight. */
    wait: (entry: Entry<I, O>) => {
      waiting.push(entry)
      promote()
    },
    /** A leader takes its batch: `first` and the waiting items that fit after it. */
    take: (first: Entry<I, O>): ReadonlyArray<Entry<I, O>> => {
      forming--
      const { batch, rest } = takeBatch(options, first, waiting, busy)
      waiting = rest
      for (const entry of batch.slice(1)) {
        entry.state = "taken"
        hold(entry.item)
      }
      // What did not fit may start a batch of its own in a free slot.
      promote()
      return batch
    },
    /** A caller interrupted before its item ran: it leaves the queue, or gives up the lead it was told to take. */
    withdraw: (entry: Entry<I, O>) => {
      entry.wake = undefined
      if (entry.state === "waiting") waiting = waiting.filter((other) => other !== entry)
      // Told to lead but interrupted before it started: the next one leads instead.
      else if (entry.state === "leading") {
        forming--
        release([entry.item])
      }
    }
  }
}

export const make = <I, O>(options: Options<I, O>): GroupCommit<I, O> => {
  const slots = makeSlots(options)

  /**
   * Runs a batch led by `first` and hands out its outcomes; `first`'s own is returned. Alone,
   * the item can be interrupted as it could be without group commit (`restore`); a batch of
   * several runs to its end for every caller in it.
   */
  const lead = (first: Entry<I, O>, restore: <A>(effect: Effect.Effect<A>) => Effect.Effect<A>): Effect.Effect<O> =>
    Effect.zipRight(
      Effect.yieldNow(),
      Effect.suspend(() => {
        const batch = slots.take(first)
        const items = batch.map((entry) => entry.item)
        return Effect.exit(batch.length === 1 ? restore(options.run(items)) : options.run(items)).pipe(
          Effect.flatMap((exit) => handOut(batch, exit)),
          Effect.ensuring(Effect.sync(() => slots.release(items)))
        )
      })
    )

  const submit = (item: I): Effect.Effect<O> =>
    Effect.suspend(() => {
      const entry: Entry<I, O> = { item, state: "waiting", turn: undefined, wake: undefined }
      if (slots.leadsAtOnce(item)) {
        slots.startLeading(entry)
        return Effect.uninterruptibleMask((restore) => lead(entry, restore))
      }
      slots.wait(entry)
      // Once told its turn, the caller acts on it whatever interrupts it: a leader's slot is not lost.
      return Effect.uninterruptibleMask((restore) =>
        restore(awaitTurn(entry)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => slots.withdraw(entry))),
          Effect.flatMap((turn) => (turn._tag === "Done" ? turn.exit : lead(entry, restore)))
        )
      )
    })
  return { submit }
}
