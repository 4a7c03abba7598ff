/**
 * A store's streams read a page at a time as plain effects. Loading a stream (the hot path of
 * every command) needs no more than that, and building and running an Effect `Stream` for a read
 * that often finds one event or none costs more than the read itself on a fast database. The
 * SQL event store carries a page reader; loading uses it where the store has one and the store's
 * `readStream` everywhere else.
 */
import type * as Effect from "effect/Effect"
import type { EventDecodeError, EventStoreError } from "../Errors.js"
import type { RecordedEvent } from "../Events.js"

const pagesKey: unique symbol = Symbol.for("effect-eventsourcing/StreamPages")

/**
 * Up to `size` events of a stream forward from version `from`. `broken`: the read stopped at a
 * row it cannot read, after `events`; `more`: more events follow. `last`: the reader wants no
 * more than this page (its limit ends here), so the page is not checked against the stream's end
 * past what it asked for.
 */
export interface Page {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly broken?: EventDecodeError | undefined
  readonly more: boolean
}

export type ReadPage = (
  streamId: string,
  from: number,
  size: number,
  last: boolean
) => Effect.Effect<Page, EventStoreError>

/** Events read per page. */
export const pageSize = 500

interface WithPages {
  readonly [pagesKey]: { readonly readPage: ReadPage; readonly standsFor: unknown }
}

/**
 * The service, with a page reader of its streams that stands for its `readStream`: a copy of the
 * service whose `readStream` is another function (a wrapper that counts or traces reads) is read
 * through that function, not around it.
 */
export const attach = <S extends { readonly readStream: unknown }>(service: S, readPage: ReadPage): S =>
  Object.assign(service, { [pagesKey]: { readPage, standsFor: service.readStream } })

/** The page reader of a service, if it has one that stands for its `readStream`. */
export const of = (service: { readonly readStream: unknown }): ReadPage | undefined => {
  const pages = pagesKey in service ? (service as unknown as WithPages)[pagesKey] : undefined
  return pages !== undefined && pages.standsFor === service.readStream ? pages.readPage : undefined
}
