/**
 * The checks of the SQL backends' `verify` over the in-memory store's own structures. Nothing
 * but the store writes them, so they find nothing unless it has a defect.
 */
import type { VerifyReport, Violation } from "../../EventStore.js"
import * as Position from "../../Position.js"
import type { MemoryState } from "./state.js"

export const verify = (state: MemoryState, limit: number): VerifyReport => {
  const violations: Array<Violation> = []
  for (const [streamId, stream] of state.streams) {
    if (stream.events.some((event, index) => event.version !== index + 1)) {
      violations.push({
        _tag: "VersionGap",
        streamId,
        events: stream.events.length,
        lastVersion: stream.events.at(-1)?.version ?? 0
      })
    }
    stream.events.forEach((event, index) => {
      const previous = stream.events[index - 1]
      if (previous !== undefined && Position.isAfter(previous.position, event.position)) {
        violations.push({ _tag: "OutOfOrder", streamId, version: event.version })
      }
    })
  }
  for (const event of state.log) {
    if (!state.streams.has(event.streamId)) {
      violations.push({
        _tag: "EventWithoutStream",
        streamId: event.streamId,
        version: event.version,
        position: event.position
      })
    }
  }
  return { violations: violations.slice(0, limit), complete: violations.length <= limit }
}
