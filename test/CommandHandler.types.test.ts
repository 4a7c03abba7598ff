/**
 * What a command handler needs follows from its options: checked by the type checker (CI runs
 * it over the tests), so a handler with snapshots cannot be run without a SnapshotStore, nor one
 * with inline projections without a ProjectionStore and what the projections need.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { EventStore, ProjectionStore, SnapshotStore } from "effect-eventsourcing"
import { CommandHandler, Decider, Projection, Snapshot } from "effect-eventsourcing"

const Added = Schema.TaggedStruct("Added", { n: Schema.Number })
const counter = Decider.make({
  streamType: "counter",
  events: Added,
  initialState: 0,
  decide: (command: number) => [Added.make({ n: command })],
  evolve: (state: number, event: typeof Added.Type) => state + event.n
})

class Mailer extends Effect.Service<Mailer>()("Mailer", { succeed: {} }) {}
const mailed = Projection.make({
  name: "mailed",
  events: Added,
  handle: () => Effect.flatMap(Mailer, () => Effect.fail("mail bounced" as const))
})

type Requirements<H> = H extends { readonly handle: (...args: any) => Effect.Effect<any, any, infer R> } ? R : never
type Errors<H> = H extends { readonly handle: (...args: any) => Effect.Effect<any, infer E, any> } ? E : never

describe("CommandHandler.make's requirements", () => {
  it("follow from its options", () => {
    const plain = CommandHandler.make(counter)
    const snapshotting = CommandHandler.make(counter, {
      snapshots: Snapshot.make({ state: Schema.Number, policy: Snapshot.everyEvents(10) })
    })
    const inline = CommandHandler.make(counter, { inline: [mailed] })
    expectTypeOf<Requirements<typeof plain>>().toEqualTypeOf<EventStore.EventStore>()
    expectTypeOf<Requirements<typeof snapshotting>>().toEqualTypeOf<
      EventStore.EventStore | SnapshotStore.SnapshotStore
    >()
    expectTypeOf<Requirements<typeof inline>>().toEqualTypeOf<
      EventStore.EventStore | ProjectionStore.ProjectionStore | Mailer
    >()
    expectTypeOf<"mail bounced">().toMatchTypeOf<Errors<typeof inline>>()
    expect([plain, snapshotting, inline].map((handler) => handler.decider.streamType)).toEqual([
      "counter",
      "counter",
      "counter"
    ])
  })
})
