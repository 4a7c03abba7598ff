/**
 * Validation and serialisation of appends, shared by every backend so they reject the same
 * input with the same errors before touching storage.
 */
import * as Either from "effect/Either"
import { ConcurrencyError, InvalidAppendError, StreamTypeMismatchError } from "../Errors.js"
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

/**
 * Whether every database can store a string as text and give it back: it is well-formed Unicode
 * (no lone surrogate) and holds no NUL character. A database stores text as UTF-8, which cannot
 * hold a lone surrogate: PostgreSQL would turn it into U+FFFD, so two different ids would name
 * one stream; and PostgreSQL refuses NUL in text, where SQLite would store it.
 */
export const isStorable = (text: string): boolean => !text.includes("\u0000") && !loneSurrogate.test(text)

const loneSurrogate = /\p{Cs}/u

/** The text of an append's name-like field, or why it cannot be stored. */
const nameProblem = (value: unknown, what: string): string | undefined =>
  typeof value !== "string" || value.length === 0
    ? `${what} must be a non-empty string`
    : isStorable(value)
    ? undefined
    : value.includes("\u0000")
    ? `${what} holds a NUL character, which a database's text cannot hold`
    : `${what} is not well-formed Unicode (it holds a lone surrogate)`

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/**
 * Checks and serialises appends. Callers may be untyped JavaScript: anything that is not an
 * append is refused with `InvalidAppendError`, never a defect.
 */
export const prepareAppends = (
  requests: ReadonlyArray<AppendRequest>,
  context: AppendContext,
  makeId: () => string
): Either.Either<ReadonlyArray<PreparedAppend>, InvalidAppendError> => {
  if (!Array.isArray(requests)) {
    return Either.left(new InvalidAppendError({ streamId: "", reason: "the appends must be an array" }))
  }
  const seen = new Set<string>()
  const prepared: Array<PreparedAppend> = []
  let contextMetadata: string | undefined
  for (const request of requests as ReadonlyArray<unknown>) {
    const streamId = isObject(request) && typeof request.streamId === "string" ? request.streamId : ""
    const invalid = (reason: string) => Either.left(new InvalidAppendError({ streamId, reason }))
    if (!isObject(request)) return invalid("an append must be an object")
    const problem = nameProblem(request.streamId, "the stream id") ?? nameProblem(request.streamType, "the stream type")
    if (problem !== undefined) return invalid(problem)
    if (seen.has(streamId)) return invalid("the stream appears more than once in one append")
    seen.add(streamId)
    const expectedVersion = request.expectedVersion as ExpectedVersion.ExpectedVersion
    if (!ExpectedVersion.isValid(expectedVersion)) {
      return invalid(
        `the expected version ${
          String(expectedVersion)
        } is not "any", "no-stream", "stream-exists" or an integer from 0 to ${ExpectedVersion.maxVersion}`
      )
    }
    if (!Array.isArray(request.events)) return invalid("events must be an array")
    const events: Array<PreparedEvent> = []
    const ids = new Set<string>()
    for (const [index, event] of (request.events as ReadonlyArray<unknown>).entries()) {
      if (!isObject(event)) return invalid(`event ${index + 1} is not an object`)
      const typeProblem = nameProblem(event.type, `the type of event ${index + 1}`)
      if (typeProblem !== undefined) return invalid(typeProblem)
      const type = event.type as string
      const where = `event ${index + 1} (${JSON.stringify(type)})`
      const data = toJson(event.data)
      if (data === undefined) return invalid(`${where} has data that JSON cannot hold faithfully`)
      if (event.metadata !== undefined && !isObject(event.metadata)) {
        return invalid(`${where} has metadata that is not an object`)
      }
      const metadataValue = event.metadata === undefined
        ? context.metadata
        : { ...context.metadata, ...(event.metadata as EventMetadata) }
      // Most events carry the context's metadata alone: its text is written once per call.
      const metadata = event.metadata === undefined
        ? (contextMetadata ??= toJson(context.metadata))
        : toJson(metadataValue)
      if (metadata === undefined) return invalid(`${where} has metadata that JSON cannot hold faithfully`)
      const id = event.id ?? makeId()
      const idProblem = nameProblem(id, `the id of ${where}`)
      if (idProblem !== undefined) return invalid(idProblem)
      if (ids.has(id as string)) return invalid(`${where} repeats the id ${JSON.stringify(id)}`)
      ids.add(id as string)
      const actor = event.actor ?? context.actor
      const actorProblem = nameProblem(actor, `the actor of ${where}`)
      if (actorProblem !== undefined) return invalid(actorProblem)
      const schemaVersion = event.schemaVersion ?? 1
      // The SQL backends keep it in a 32-bit integer column.
      if (
        typeof schemaVersion !== "number" || !Number.isSafeInteger(schemaVersion) || schemaVersion < 1 ||
        schemaVersion > 2_147_483_647
      ) {
        return invalid(`${where} has the schema version ${String(schemaVersion)}, not an integer from 1 to 2147483647`)
      }
      events.push({
        id: id as string,
        type,
        data,
        actor: actor as string,
        metadata,
        schemaVersion,
        dataValue: event.data,
        metadataValue
      })
    }
    prepared.push({ streamId, streamType: request.streamType as string, expectedVersion, events })
  }
  return Either.right(prepared)
}

/**
 * The deepest nesting of arrays and objects an event's data or metadata may have. JSON itself
 * sets none, but writing and reading a value recurse (`JSON.stringify`, a Schema's decoder, a
 * test's deep equality), and fail at a depth that depends on how much of the stack is already in
 * use: a fixed limit gives the same answer wherever the append runs.
 */
export const maxDepth = 1_000

/**
 * The JSON text of a value, or `undefined` when JSON cannot represent it faithfully: a value
 * that `JSON.stringify` would silently change (a non-finite number, a `Date`, a `Map`, a class
 * instance, `undefined` or a hole in an array) or cannot write at all (a bigint, a function, a
 * cycle), or nesting deeper than {@link maxDepth}. Object properties whose value is `undefined`
 * are left out, as JSON leaves them out.
 */
export const toJson = (value: unknown): string | undefined => (isJson(value) ? JSON.stringify(value) : undefined)

/** Leaving an object or array: it is no longer an ancestor of what is checked next. */
class Leave {
  constructor(readonly value: object) {}
}

/** Checks a value without recursion, so that no depth of nesting overflows the stack here. */
const isJson = (root: unknown): boolean => {
  const ancestors = new Set<object>()
  const pending: Array<unknown> = [root]
  while (pending.length > 0) {
    const value = pending.pop()
    if (value instanceof Leave) {
      ancestors.delete(value.value)
      continue
    }
    switch (typeof value) {
      case "string":
      case "boolean":
        continue
      case "number":
        if (!Number.isFinite(value)) return false
        continue
      case "object": {
        if (value === null) continue
        if (ancestors.has(value)) return false
        // The objects and arrays under way are this one's ancestors: it would be one deeper.
        if (ancestors.size >= maxDepth) return false
        ancestors.add(value)
        pending.push(new Leave(value))
        if (Array.isArray(value)) {
          // Indexes, not `every`: a hole would be written as null.
          for (let index = 0; index < value.length; index++) {
            if (!(index in value)) return false
            pending.push(value[index])
          }
        } else {
          if (!isPlainObject(value)) return false
          for (const item of Object.values(value)) if (item !== undefined) pending.push(item)
        }
        continue
      }
      default:
        return false
    }
  }
  return true
}

const isPlainObject = (value: object): boolean => {
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** A stream as an append found it. */
export interface FoundStream {
  readonly type: string
  readonly version: number
}

/**
 * Why appends cannot all be stored on their streams as `found` gives them (`undefined` for a
 * stream with no events): a stream of another type first, then every expectation that fails;
 * `undefined` when they can. Every backend explains a refusal by these rules.
 */
export const refusal = (
  appends: ReadonlyArray<PreparedAppend>,
  found: (streamId: string) => FoundStream | undefined
): ConcurrencyError | StreamTypeMismatchError | undefined => {
  for (const append of appends) {
    const stream = found(append.streamId)
    if (stream !== undefined && stream.type !== append.streamType) {
      return new StreamTypeMismatchError({
        streamId: append.streamId,
        expectedType: append.streamType,
        actualType: stream.type
      })
    }
  }
  return concurrencyError(appends, (append) => found(append.streamId)?.version ?? 0)
}

/**
 * The conflict of appends whose streams are at the versions `versionOf` gives, naming every
 * stream whose expectation fails; `undefined` when every expectation holds.
 */
export const concurrencyError = (
  appends: ReadonlyArray<PreparedAppend>,
  versionOf: (append: PreparedAppend) => number
): ConcurrencyError | undefined => {
  const [first, ...others] = appends.flatMap((append) => {
    const actualVersion = versionOf(append)
    return ExpectedVersion.isSatisfiedBy(append.expectedVersion, actualVersion)
      ? []
      : [{ streamId: append.streamId, expectedVersion: append.expectedVersion, actualVersion }]
  })
  return first === undefined ? undefined : new ConcurrencyError({ ...first, others })
}
