/**
 * A command handler's warm state cache (as Equinox keeps one): the state, version and position
 * of the streams it handled last, so that a command reads only the events after the cached
 * version instead of the stream's whole history. Bounded; the least recently used stream goes
 * first. Entries are only ever a committed prefix of their stream, kept after a command that
 * appended outside any transaction: a load reads on from the event at the cached version (which
 * must still be the one cached), so it brings in what other writers appended, and an entry that
 * turns out wrong (a conflict, any failure) is dropped.
 */
import type { Loaded } from "./loading.js"

export interface Entry<State> {
  readonly loaded: Loaded<State>
  /**
   * The id of the event at the cached version: the entry is used only while the stream still
   * holds it there (a stream deleted and written again is loaded afresh).
   */
  readonly eventId: string
  /** The version of the stream's latest snapshot as the handler knows it (0 for none). */
  readonly snapshotVersion: number
}

export interface StateCache<State> {
  /** The entry of a stream, which becomes the most recently used. */
  readonly get: (streamId: string) => Entry<State> | undefined
  readonly set: (streamId: string, entry: Entry<State>) => void
  readonly drop: (streamId: string) => void
}

/** A cache of at most `capacity` streams. */
export const make = <State>(capacity: number): StateCache<State> => {
  // A Map iterates in insertion order: re-inserting an entry on use keeps the least recently
  // used first.
  const entries = new Map<string, Entry<State>>()
  return {
    get: (streamId) => {
      const entry = entries.get(streamId)
      if (entry !== undefined) {
        entries.delete(streamId)
        entries.set(streamId, entry)
      }
      return entry
    },
    set: (streamId, entry) => {
      entries.delete(streamId)
      entries.set(streamId, entry)
      if (entries.size > capacity) entries.delete(entries.keys().next().value!)
    },
    drop: (streamId) => void entries.delete(streamId)
  }
}

/** No cache: every command loads its stream afresh. */
export const none = <State>(): StateCache<State> => ({
  get: () => undefined,
  set: () => {},
  drop: () => {}
})
