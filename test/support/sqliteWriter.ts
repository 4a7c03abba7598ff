/**
 * A writer process for the SQLite multi-process tests: opens the store on the file it is given
 * (running the migrations, as every process of an application does when it starts), then
 * appends to a shared hot stream at the version it read, retrying conflicts, and to streams of
 * its own. Prints what it did as one line of JSON.
 */
import { Effect, Either } from "effect"
import { Errors, EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"

const [filename, name, count] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  let conflicts = 0
  const acknowledged: Array<string> = []
  for (let n = 0; n < Number(count); n++) {
    for (;;) {
      const version = yield* store.streamVersion("hot")
      const outcome = yield* Effect.either(store.append({
        streamId: "hot",
        streamType: "counter",
        expectedVersion: ExpectedVersion.exact(version),
        events: [{ type: "Incremented", data: { by: name, n } }]
      }))
      if (Either.isRight(outcome)) {
        acknowledged.push(outcome.right.events[0]!.id)
        break
      }
      if (!(outcome.left instanceof Errors.ConcurrencyError)) return yield* outcome.left
      conflicts++
    }
    const own = yield* store.append({
      streamId: `${name}-${n % 10}`,
      streamType: "thing",
      expectedVersion: ExpectedVersion.any,
      events: [{ type: "Happened", data: { n } }]
    })
    acknowledged.push(own.events[0]!.id)
  }
  console.log(JSON.stringify({ name, conflicts, acknowledged }))
})

Effect.runPromise(program.pipe(Effect.provide(SqliteEventStore.layer({ filename })))).catch((error) => {
  console.error(error)
  process.exit(1)
})
