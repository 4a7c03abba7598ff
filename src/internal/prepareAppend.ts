/**
 * Validation and serialisation of appends, shared by every backend so they reject the same
 * input with the same errors before touching storage.
 */
import * as Either from "effect/Either"
import { InvalidAppendError } from "../Errors.js"
import type { AppendRequest } from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { EventMetadata } from "../Metadata.js"

/** One event ready to store: ids resolved, data and metadata as JSON text (and as values). */
export interface PreparedEvent {
  readonly id: string
  readonly type: string
  readonly data: string
  readonly actor: string
  readonly metadata: string
  readonly schemaVersion: number
  /** The data as given: what a store that keeps its own copy in JSON returns for it. */
  readonly dataValue: unknown
  readonly metadataValue: EventMetadata
}

export interface PreparedAppend {
  readonly streamId: string
  readonly streamType: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
}

/** The actor and metadata the context gives to every event of an append. */
export interface AppendContext {
  readonly actor: string
  readonly metadata: EventMetadata
}

export const prepareAppends = (
  requests: ReadonlyArray<AppendRequest>,
  context: AppendContext,
  makeId: () => string
): Either.Either<ReadonlyArray<PreparedAppend>, InvalidAppendError> => {
  const seen = new Set<string>()
  const prepared: Array<PreparedAppend> = []
  for (const request of requests) {
    const invalid = (reason: string) => Either.left(new InvalidAppendError({ streamId: String(request.streamId), reason }))
    if (typeof request.streamId !== "string" || request.streamId.length === 0) {
      return invalid("the stream id must be a non-empty string")
    }
    if (seen.has(request.streamId)) return invalid("the stream appears more than once in one append")
    seen.add(request.streamId)
    if (typeof request.streamType !== "string" || request.streamType.length === 0) {
      return invalid("the stream type must be a non-empty string")
    }
    if (!ExpectedVersion.isValid(request.expectedVersion)) {
      return invalid(`the expected version ${String(request.expectedVersion)} is not a non-negative integer`)
    }
    const events: Array<PreparedEvent> = []
    const ids = new Set<string>()
    for (const [index, event] of request.events.entries()) {
      const where = `event ${index + 1} (${JSON.stringify(event.type)})`
      if (typeof event.type !== "string" || event.type.length === 0) {
        return invalid(`event ${index + 1} has no type`)
      }
      const data = toJson(event.data)
      if (data === undefined) return invalid(`${where} has data that is not JSON`)
      const metadataValue = event.metadata === undefined ? context.metadata : { ...context.metadata, ...event.metadata }
      const metadata = toJson(metadataValue)
      if (metadata === undefined) return invalid(`${where} has metadata that is not JSON`)
      const id = event.id ?? makeId()
      if (typeof id !== "string" || id.length === 0) return invalid(`${where} has an empty id`)
      if (ids.has(id)) return invalid(`${where} repeats the id ${JSON.stringify(id)}`)
      ids.add(id)
      const actor = event.actor ?? context.actor
      if (typeof actor !== "string" || actor.length === 0) return invalid(`${where} has an empty actor`)
      const schemaVersion = event.schemaVersion ?? 1
      // The SQL backends keep it in a 32-bit integer column.
      if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 2_147_483_647) {
        return invalid(`${where} has the schema version ${String(schemaVersion)}, not an integer from 1 to 2147483647`)
      }
      events.push({ id, type: event.type, data, actor, metadata, schemaVersion, dataValue: event.data, metadataValue })
    }
    prepared.push({
      streamId: request.streamId,
      streamType: request.streamType,
      expectedVersion: request.expectedVersion,
      events
    })
  }
  return Either.right(prepared)
}

/**
 * The JSON text of a value, or `undefined` when JSON cannot represent it faithfully: a value
 * that `JSON.stringify` would silently change (a non-finite number, a `Date`, a `Map`, a class
 * instance, `undefined` in an array) or cannot write at all (a bigint, a function, a cycle).
 * Object properties whose value is `undefined` are left out, as JSON leaves them out.
 */
export const toJson = (value: unknown): string | undefined => isJson(value, new Set()) ? JSON.stringify(value) : undefined

const isJson = (value: unknown, ancestors: Set<object>): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "object": {
      if (value === null) return true
      if (ancestors.has(value)) return false
      ancestors.add(value)
      const valid = Array.isArray(value)
        ? value.every((item) => isJson(item, ancestors))
        : isPlainObject(value) &&
          Object.values(value).every((item) => item === undefined || isJson(item, ancestors))
      ancestors.delete(value)
      return valid
    }
    default:
      return false
  }
}

const isPlainObject = (value: object): boolean => {
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}
