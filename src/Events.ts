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
import type { EventMetadata } from "./Metadata.js"
import { toJson } from "./internal/prepareAppend.js"
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

const tagsOf = (ast: AST.AST): ReadonlyArray<string> | undefined => {
  switch (ast._tag) {
    case "Union": {
      const tags: Array<string> = []
      for (const member of ast.types) {
        const memberTags = tagsOf(member)
        if (memberTags === undefined) return undefined
        tags.push(...memberTags)
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
    return Either.right({ type: _tag, data })
  }
}

/**
 * Builds the decoder of one event Schema: a recorded event's stored data becomes the typed
 * event, or an {@link EventDecodeError} naming the stream, version and event type.
 *
 * @since 0.1.0
 * @category codec
 */
export const decoder = <Event extends { readonly _tag: string }>(schema: EventSchema<Event>) => {
  const decode = Schema.decodeUnknownEither(schema)
  const known = eventTypes(schema)
  const unknownType = known === undefined
    ? ""
    : `the event type is not one of ${[...known].map((type) => JSON.stringify(type)).join(", ")}`
  const fail = (recorded: RecordedEvent, reason: string) =>
    Either.left(
      new EventDecodeError({
        streamId: recorded.streamId,
        version: recorded.version,
        eventType: recorded.type,
        reason
      })
    )
  return (recorded: RecordedEvent): Either.Either<RecordedEvent<Event>, EventDecodeError> => {
    if (known !== undefined && !known.has(recorded.type)) return fail(recorded, unknownType)
    const data = recorded.data
    if (data !== null && data !== undefined && (typeof data !== "object" || Array.isArray(data))) {
      return fail(recorded, `the stored data is not a JSON object: ${JSON.stringify(data)}`)
    }
    const decoded = decode({ ...data, _tag: recorded.type })
    return Either.isLeft(decoded)
      ? fail(recorded, formatParseError(decoded.left))
      : Either.right({ ...recorded, data: decoded.right })
  }
}

const formatParseError = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)
