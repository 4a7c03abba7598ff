/**
 * A writer process for the SQLite multi-process tests: appends to streams of its own for the
 * given number of milliseconds, printing "started" after its first append, then the number of
 * appends it made as one line of JSON.
 */
import { Effect } from "effect"
import { EventStore, ExpectedVersion } from "effect-eventsourcing"
import * as SqliteEventStore from "effect-eventsourcing/SqliteEventStore"

const [filename, name, milliseconds] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const until = Date.now() + Number(milliseconds)
  let appends = 0
  while (Date.now() < until) {
    yield* store.append({
      streamId: `${name}-${appends % 10}`,
      streamType: "thing",
      expectedVersion: ExpectedVersion.any,
      events: [{ type: "Happened", data: { appends } }]
    })
    if (appends++ === 0) console.log("started")
  }
  console.log(JSON.stringify({ appends }))
})

Effect.runPromise(program.pipe(Effect.provide(SqliteEventStore.layer({ filename })))).catch((error) => {
  console.error(error)
  process.exit(1)
})
