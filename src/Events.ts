/**
 * Events as the store sees them: the event to append and the recorded envelope a reader gets
 * back, and the Schema codec between an application's typed events and their stored form.
 *
 * An application's events are a union of tagged schemas (`Schema.TaggedStruct` or
 * `Schema.TaggedClass`); the `_tag` is the stored event type (the protocol's `name`) and the
 * rest of the encoded event is its data (the protocol's `details`).
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { EventDecodeError, EventEncodeError } from "./Errors.js"
import * as Evolution from "./Evolution.js"
import * as PrepareAppend from "./internal/prepareAppend.js"
import { toJson } from "./internal/prepareAppend.js"
import { messageOf } from "./internal/unknowns.js"
import type { EventMetadata } from "./Metadata.js"
import type { Position } from "./Position.js"

/**
 * An event to append, in its stored form.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEvent {
  /** The event type, the protocol's `name`. */
  readonly type: string
  /** The event's data: any JSON value (the protocol's `details`). */
  readonly data: unknown
  /**
   * The event's id, unique in the store; one is generated when absent. Sending an append again
   * with the same ids returns the original result instead of storing it twice.
   */
  readonly id?: string
  /** Metadata of this event, laid over the actor and metadata from the context. */
  readonly metadata?: EventMetadata
  /** Overrides the actor from the context for this event. */
  readonly actor?: string
  /**
   * The version of the event type's schema its data was written in, a positive integer
   * (default 1). {@link encoder} sets it from the evolution declared on the event type (see `Evolution.declare`).
   */
  readonly schemaVersion?: number
}

/**
 * An event as stored, with everything the store recorded about it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedEvent<A = unknown> {
  /** The event's unique id. */
  readonly id: string
  /** The stream (the protocol's entity) the event belongs to. */
  readonly streamId: string
  /** The stream's type, checked on every append and load. */
  readonly streamType: string
  /** The event's 1-based place in its stream (the protocol's `ordinal`). */
  readonly version: number
  /** The event's place in the global order, shared by all events of one append. */
  readonly position: Position
  /** The event type (the protocol's `name`). */
  readonly type: string
  /** The data: stored JSON when read from the store, the typed event after {@link decode}. */
  readonly data: A
  /** Who caused the event. */
  readonly actor: string
  /** When the event was stored (the protocol keeps it to about 10 ms). */
  readonly timestamp: Date
  /** Correlation and causation ids and free-form entries. */
  readonly metadata: EventMetadata
  /**
   * The version of the event type's schema the data was written in (1 for rows written before
   * the store recorded versions, or by a writer that does not know them).
   */
  readonly schemaVersion: number
}

/**
 * The Schema of an application's events: a tagged schema or a union of them, with no
 * requirements, whose encoded form is JSON.
 *
 * @since 0.1.0
 * @category models
 */
export type EventSchema<Event extends { readonly _tag: string }> = Schema.Schema<Event, any>

/**
 * The deepest nesting of objects and arrays that an event's data or metadata may have (1,000):
 * an append with deeper data is refused with `InvalidAppendError`. Writing and reading JSON
 * recurse, and fail at a depth that depends on how much of the stack is in use; a fixed limit
 * gives every append the same answer wherever it runs.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDepth: number = PrepareAppend.maxDepth

/**
 * The event types a Schema accepts, read from its tags, or `undefined` when they cannot be
 * told from its structure (a declared or suspended schema).
 *
 * @since 0.1.0
 * @category introspection
 */
export const eventTypes = (schema: Schema.Schema.Any): ReadonlySet<string> | undefined => {
  const tags = tagsOf(AST.encodedAST(schema.ast))
  return tags === undefined ? undefined : new Set(tags)
}

/** The members of a union of tagged schemas, by the one event type each accepts. */
const membersByType = (ast: AST.AST): ReadonlyMap<string, AST.AST> => {
  const members = new Map<string, AST.AST>()
  const visit = (member: AST.AST) => {
    if (member._tag === "Union") return member.types.forEach(visit)
    const tags = tagsOf(AST.encodedAST(member))
    if (tags?.length === 1) members.set(tags[0]!, member)
  }
  visit(ast)
  return members
}

const tagsOf = (ast: AST.AST): ReadonlyArray<string> | undefined => {
  switch (ast._tag) {
    case "Union": {
      const tags: Array<string> = []
      for (const member of ast.types) {
        const memberTags = tagsOf(member)
        if (memberTags === undefined) return undefined
        for (const tag of memberTags) tags.push(tag)
      }
      return tags
    }
    case "TypeLiteral": {
      const tag = ast.propertySignatures.find((signature) => signature.name === "_tag")
      return tag !== undefined && AST.isLiteral(tag.type) && typeof tag.type.literal === "string"
        ? [tag.type.literal]
        : undefined
    }
    case "Refinement":
    case "Transformation":
      return tagsOf(ast.from)
    default:
      return undefined
  }
}

/**
 * The event type names a Schema reads from the store: its event types and their former names.
 * Stored events under other names are not its events.
 *
 * @since 0.1.0
 * @category introspection
 */
export const storedTypes = (schema: Schema.Schema.Any): ReadonlySet<string> | undefined => {
  const types = eventTypes(schema)
  return types === undefined ? undefined : new Set([...types, ...Evolution.of(schema).renamed.keys()])
}

/**
 * Builds the encoder of one event Schema: a typed event becomes a {@link NewEvent} whose type
 * is its tag and whose data is the rest of its encoded form.
 *
 * @since 0.1.0
 * @category codec
 */
export const encoder = <Event extends { readonly _tag: string }>(
  schema: EventSchema<Event>,
  streamType: string
) => {
  const encode = Schema.encodeEither(schema)
  const decode = Schema.decodeUnknownEither(schema)
  const { versions } = Evolution.of(schema)
  return (event: Event): Either.Either<NewEvent, EventEncodeError> => {
    const fail = (reason: string) =>
      Either.left(new EventEncodeError({ streamType, eventType: String(event._tag), reason }))
    const encoded = encode(event)
    if (Either.isLeft(encoded)) return fail(formatParseError(encoded.left))
    if (typeof encoded.right !== "object" || encoded.right === null || typeof encoded.right._tag !== "string") {
      return fail("the Schema does not encode it to an object with a string _tag")
    }
    const { _tag, ...data } = encoded.right
    // What is stored is JSON: an event that would not read back as itself is refused now,
    // rather than stored and found undecodable on every later load.
    const json = toJson(data)
    if (json === undefined) {
      return fail("its encoded form is not JSON (a bigint, a non-finite number, a Date or another object JSON changes)")
    }
    const readBack = decode({ ...JSON.parse(json), _tag })
    if (Either.isLeft(readBack)) {
      return fail(`it does not decode from its stored JSON ${json}: ${formatParseError(readBack.left)}`)
    }
    const version = versions.get(_tag)
    return Either.right(version === undefined ? { type: _tag, data } : { type: _tag, data, schemaVersion: version })
  }
}

/**
 * Builds the decoder of one event Schema: a recorded event's stored data becomes the typed
 * event, or an {@link EventDecodeError} naming the stream, version and event type. An event
 * stored under a former name or in an older version of its schema is read through the
 * evolutions declared on its event types (see `Evolution.declare`); the decoded envelope carries the current type and
 * the schema version the event was stored in.
 *
 * @since 0.1.0
 * @category codec
 */
export const decoder = <Event extends { readonly _tag: string }>(schema: EventSchema<Event>) => {
  const decodeAny = Schema.decodeUnknownEither(schema)
  // Each event type decoded with its own member of the union, so that a failure shows only
  // that type's own problem, not every member's.
  const members = new Map(
    [...membersByType(schema.ast)].map((
      [type, member]
    ) => [type, Schema.decodeUnknownEither(Schema.make<Event, any, never>(member))])
  )
  const decode = (data: { readonly _tag: string }) => (members.get(data._tag) ?? decodeAny)(data)
  const known = storedTypes(schema)
  const unknownType = known === undefined
    ? ""
    : `the event type is not one of ${[...known].map((type) => JSON.stringify(type)).join(", ")}`
  const { renamed, upcasts } = Evolution.of(schema)
  const steps = new Map(
    [...upcasts].map(([type, upcasts]) => [type, upcasts.map((step) => Schema.decodeUnknownEither(step))])
  )
  const fail = (recorded: RecordedEvent, reason: string) =>
    Either.left(
      new EventDecodeError({
        streamId: recorded.streamId,
        version: recorded.version,
        eventType: recorded.type,
        reason
      })
    )
  const isObject = (data: unknown) =>
    data === null || data === undefined || (typeof data === "object" && !Array.isArray(data))
  return (recorded: RecordedEvent): Either.Either<RecordedEvent<Event>, EventDecodeError> => {
    if (known !== undefined && !known.has(recorded.type)) return fail(recorded, unknownType)
    const type = renamed.get(recorded.type) ?? recorded.type
    const upcastsOfType = steps.get(type) ?? []
    const current = upcastsOfType.length + 1
    const stored = recorded.schemaVersion
    if (!Number.isSafeInteger(stored) || stored < 1) {
      return fail(recorded, `its schema version ${String(stored)} is not a positive integer`)
    }
    if (stored > current) {
      return fail(
        recorded,
        `it was stored in version ${stored} of the schema of ${
          JSON.stringify(type)
        }, and this program knows versions up to ${current}`
      )
    }
    try {
      let data = recorded.data
      for (let version = stored; version < current; version++) {
        const upcasted = upcastsOfType[version - 1]!(data)
        if (Either.isLeft(upcasted)) {
          return fail(
            recorded,
            `reading version ${version} as version ${version + 1}: ${formatParseError(upcasted.left)}`
          )
        }
        data = upcasted.right
      }
      if (!isObject(data)) return fail(recorded, `the stored data is not a JSON object: ${JSON.stringify(data)}`)
      // The tag first, then set again: V8 copies into a literal that starts with the tag more
      // than ten times faster than it adds the tag after a copy, and a stored `_tag` must not win.
      const tagged: { _tag: string; [key: string]: unknown } = { _tag: type, ...(data as object) }
      tagged._tag = type
      const decoded = decode(tagged)
      return Either.isLeft(decoded)
        ? fail(recorded, formatParseError(decoded.left))
        : Either.right({ ...recorded, type, data: decoded.right })
    } catch (error) {
      // A Schema transformation that throws instead of failing: the row still gets its error.
      return fail(recorded, `reading it threw: ${messageOf(error)}`)
    }
  }
}

const formatParseError = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)
