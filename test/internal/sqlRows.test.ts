/**
 * How the SQL stores turn the rows their reads return into events: rows taken as values, the
 * order of a page and of a batch, and the position the events of one append share.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { inAppendOrder, streamPage } from "../../src/internal/sql/dialect.js"
import * as PgObjects from "../../src/internal/sql/pg/objects.js"
import type { EventRow } from "../../src/internal/sql/rows.js"
import { eventRowOf, readRows, toRecorded } from "../../src/internal/sql/rows.js"
import * as SqliteObjects from "../../src/internal/sql/sqlite/objects.js"
import * as Tables from "../../src/internal/sql/tables.js"

const row = (fields: Partial<EventRow>): EventRow => ({
  entity_id: "cart-1",
  type: "cart",
  ordinal: 1,
  position: 1,
  transaction_id: null,
  name: "ItemAdded",
  details: "{}",
  actor: "test",
  timestamp: 20_000,
  event_id: crypto.randomUUID(),
  metadata: "{}",
  schema_version: 1,
  stream_version: 10,
  ...fields
})

/** The name each selected column comes out as: its alias, or the column itself. */
const selectedNames = (columns: string) =>
  columns.split(",").map((column) => column.trim().split(/\s+/).at(-1)!.replace(/^[es]\./, ""))

describe("SQL rows", () => {
  it("reads rows of values in the order both dialects select their columns", () => {
    const tables = Tables.make(undefined)
    const keys = Object.keys(eventRowOf(Array.from({ length: 13 }, (_, index) => index)))
    expect(selectedNames(PgObjects.objectsOf(tables, true).columns)).toEqual(keys)
    expect(selectedNames(SqliteObjects.objectsOf(tables).columns)).toEqual(keys)
    expect(eventRowOf(Array.from({ length: 13 }, (_, index) => index))).toEqual(
      Object.fromEntries(keys.map((key, index) => [key, index]))
    )
  })

  it("puts the events of each append in stream and version order, and keeps the appends' order", () => {
    const rows = [
      row({ position: 1, entity_id: "b", ordinal: 2 }),
      row({ position: 1, entity_id: "a", ordinal: 1 }),
      row({ position: 1, entity_id: "b", ordinal: 1 }),
      row({ position: 2, entity_id: "a", ordinal: 2 }),
      row({ position: 3, entity_id: "c", ordinal: 2 }),
      row({ position: 3, entity_id: "c", ordinal: 1 })
    ]
    expect(inAppendOrder(rows).map((r) => `${r.position}:${r.entity_id}${r.ordinal}`)).toEqual([
      "1:a1",
      "1:b1",
      "1:b2",
      "2:a2",
      "3:c1",
      "3:c2"
    ])
    const ordered = rows.slice(3, 4)
    expect(inAppendOrder(ordered)).toBe(ordered)
  })

  it("gives a stream's page in version order for its direction, whatever order the rows came in", () => {
    const shuffled = [row({ ordinal: 2 }), row({ ordinal: 3 }), row({ ordinal: 1 })]
    expect(streamPage(shuffled, "forward").rows.map((r) => r.ordinal)).toEqual([1, 2, 3])
    expect(streamPage(shuffled, "backward").rows.map((r) => r.ordinal)).toEqual([3, 2, 1])
    const empty = streamPage(
      [row({ entity_id: null as unknown as string, ordinal: null as unknown as number, stream_version: 4 })],
      "forward"
    )
    expect(empty).toEqual({ rows: [], streamVersion: 4 })
  })

  it("makes one position for the events of one append, and another for the next", () => {
    const { events } = readRows([
      row({ ordinal: 1, position: "7", transaction_id: "900" }),
      row({ ordinal: 2, position: "7", transaction_id: "900" }),
      row({ ordinal: 3, position: "7", transaction_id: "901" }),
      row({ ordinal: 4, position: "8", transaction_id: "901" })
    ])
    expect(events[0]!.position).toBe(events[1]!.position)
    expect(events.map((event) => [event.position.transaction, event.position.sequence])).toEqual([
      [900n, 7n],
      [900n, 7n],
      [901n, 7n],
      [901n, 8n]
    ])
    const alone = toRecorded(row({ position: "7", transaction_id: "900" }))
    expect(Either.isRight(alone) && alone.right.position).toEqual(events[0]!.position)
  })
})
