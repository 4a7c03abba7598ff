import { Schema } from "effect"
import { CommandHandler, Decider } from "effect-eventsourcing"

/** A counter stream: each command is the amount to add, stored as one `Counted` event. */
export const Counted = Schema.TaggedStruct("Counted", { by: Schema.Int })

export const counterDecider = Decider.make({
  streamType: "counter",
  events: Counted,
  initialState: 0,
  decide: (by: number) => [Counted.make({ by })],
  evolve: (total: number, event) => total + event.by
})

export const counter = CommandHandler.make(counterDecider)
