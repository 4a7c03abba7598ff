import { expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { CommandHandler, Decider, EventStore, Snapshot, SnapshotStore } from "effect-eventsourcing"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Positive })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Positive })

// The state, and the Schema that stores it as JSON in a snapshot.
const Account = Schema.Struct({ balance: Schema.Number, operations: Schema.Int })
type Account = typeof Account.Type

type Command = { readonly _tag: "Deposit" | "Withdraw"; readonly amount: number }

const account = Decider.make({
  streamType: "account",
  events: Schema.Union(Deposited, Withdrawn),
  initialState: { balance: 0, operations: 0 } as Account,
  decide: (command: Command, _state: Account) =>
    command._tag === "Deposit"
      ? [Deposited.make({ amount: command.amount })]
      : [Withdrawn.make({ amount: command.amount })],
  evolve: (state: Account, event): Account => ({
    balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount,
    operations: state.operations + 1
  })
})

const accounts = CommandHandler.make(account, {
  snapshots: Snapshot.make({ state: Account, policy: Snapshot.everyEvents(100) })
})

it.effect("loads a long stream from its latest snapshot", () =>
  Effect.gen(function*() {
    for (let day = 0; day < 250; day++) yield* accounts.handle("account-1", { _tag: "Deposit", amount: 10 })
    // Snapshots are written in the background; wait for them here only to look at one.
    yield* Snapshot.awaitWrites
    const latest = yield* Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.read("account-1"))
    // About every 100 events: one asked for while another is being written waits for the next command.
    expect(Option.getOrThrow(latest).version).toBeGreaterThanOrEqual(200)
    // This load reads that snapshot and the events after it, not all 250.
    const { state, version } = yield* accounts.load("account-1")
    expect([state.balance, version]).toEqual([2500, 250])
  }).pipe(Effect.provide(EventStore.layerMemory)))
