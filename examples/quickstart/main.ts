import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Schema } from "effect"
import { CommandHandler, Decider, EventStore } from "effect-eventsourcing"

// Events are tagged schemas: the tag is the stored event type, the rest its data.
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Positive })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Positive })

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Number
}) {}

type Command = { readonly _tag: "Deposit" | "Withdraw"; readonly amount: number }

const account = Decider.make({
  streamType: "account",
  events: Schema.Union(Deposited, Withdrawn),
  initialState: 0,
  decide: (command: Command, balance: number) =>
    command._tag === "Deposit"
      ? [Deposited.make({ amount: command.amount })]
      : command.amount > balance
      ? Effect.fail(new InsufficientFunds({ balance }))
      : [Withdrawn.make({ amount: command.amount })],
  evolve: (balance, event) => event._tag === "Deposited" ? balance + event.amount : balance - event.amount
})

const accounts = CommandHandler.make(account)

const program = Effect.gen(function*() {
  yield* accounts.handle("account-1", { _tag: "Deposit", amount: 100 })
  const { state, version } = yield* accounts.handle("account-1", { _tag: "Withdraw", amount: 30 })
  yield* Console.log(`balance ${state} at version ${version}`) // balance 70 at version 2
  const refused = yield* Effect.flip(accounts.handle("account-1", { _tag: "Withdraw", amount: 500 }))
  yield* Console.log(`refused: ${refused._tag}`) // refused: InsufficientFunds
})

NodeRuntime.runMain(program.pipe(Effect.provide(EventStore.layerMemory)))
