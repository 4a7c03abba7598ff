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
  /**
   * The version of the event type's schema its data was written in, a positive integer
   * (default 1). {@link encoder} sets it from the event Schema's {@link evolve} declaration.
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
 * One step in the history of an event type's stored data: a Schema that decodes the data as an
 * older version of the type stored it into the data of the next version (its encoded form).
 * Build one with {@link upcast}, or write any Schema with that meaning.
 *
 * @since 0.1.0
 * @category evolution
 */
export type Upcast = Schema.Schema<unknown, any>

/**
 * How an application's events changed since they were first stored. Stored events are never
 * rewritten: they are read through this.
 *
 * @since 0.1.0
 * @category evolution
 */
export interface Evolution {
  /**
   * Event types stored under a former name: each former name to the current type. A row stored
   * under a former name reads as the current type, through the current type's upcasts.
   */
  readonly renamed?: Readonly<Record<string, string>>
  /**
   * For each event type whose data changed shape, the steps from each former version to the
   * next: the first reads version 1 into version 2, the second version 2 into 3, and so on.
   * The current version of a type is one more than its number of steps; new events of the type
   * are stored with it.
   */
  readonly upcasts?: Readonly<Record<string, ReadonlyArray<Upcast>>>
}

/**
 * An event Schema's evolution as {@link versioned} recorded it, checked and resolved.
 *
 * @since 0.1.0
 * @category evolution
 */
export interface ResolvedEvolution {
  /** Former names, each to the current type. */
  readonly renamed: ReadonlyMap<string, string>
  /** The current schema version of each event type that has more than one. */
  readonly versions: ReadonlyMap<string, number>
  readonly upcasts: ReadonlyMap<string, ReadonlyArray<Upcast>>
}

const EvolutionId: unique symbol = Symbol.for("effect-eventsourcing/Events/Evolution")

/**
 * Declares how an event Schema's stored forms evolved: renamed event types and the upcasts of
 * older versions of each type's data. Apply it to the whole union of an application's events;
 * the result is the same Schema, which the store's encoder and decoder read through.
 *
 * ```ts
 * import { Events } from "effect-eventsourcing"
 * import { Schema } from "effect"
 *
 * // Version 1 of ItemAdded stored a price in euros; version 2 stores cents.
 * const CartEvent = Events.versioned(Schema.Union(ItemAdded, ItemRemoved), {
 *   renamed: { CartItemAdded: "ItemAdded" },
 *   upcasts: {
 *     ItemAdded: [
 *       Events.upcast(Schema.Struct({ sku: Schema.String, price: Schema.Number }), (v1) => ({
 *         sku: v1.sku,
 *         priceCents: Math.round(v1.price * 100)
 *       }))
 *     ]
 *   }
 * })
 * ```
 *
 * Throws when the declaration contradicts the Schema (an upcast or rename to a type the Schema
 * does not have, a former name that is still a current type): a mistake in the program, found
 * when it starts rather than when an old event is read.
 *
 * @since 0.1.0
 * @category evolution
 */
export const versioned = <Event extends { readonly _tag: string }>(
  schema: EventSchema<Event>,
  evolution: Evolution
): EventSchema<Event> => {
  const types = eventTypes(schema)
  if (types === undefined) {
    throw new Error("Events.versioned: the event Schema must be a union of tagged schemas")
  }
  const current = (type: string, role: string) => {
    if (!types.has(type)) {
      throw new Error(`Events.versioned: ${role} ${JSON.stringify(type)} is not an event type of the Schema`)
    }
  }
  const renamed = new Map(Object.entries(evolution.renamed ?? {}))
  for (const [former, type] of renamed) {
    current(type, `the new name of ${JSON.stringify(former)},`)
    if (types.has(former)) {
      throw new Error(`Events.versioned: ${JSON.stringify(former)} is renamed, but is still an event type of the Schema`)
    }
  }
  const upcasts = new Map(Object.entries(evolution.upcasts ?? {}).filter(([, steps]) => steps.length > 0))
  for (const type of upcasts.keys()) current(type, "the upcasts of")
  const resolved: ResolvedEvolution = {
    renamed,
    upcasts,
    versions: new Map([...upcasts].map(([type, steps]) => [type, steps.length + 1]))
  }
  return schema.annotations({ [EvolutionId]: resolved })
}

/**
 * One upcast: reads data stored in an older version with its Schema, and turns it into the
 * next version's data with a function. Old versions are only ever read, never written.
 *
 * @since 0.1.0
 * @category evolution
 */
export const upcast = <A, I>(from: Schema.Schema<A, I>, to: (data: A) => unknown): Upcast =>
  Schema.transformOrFail(from, Schema.Unknown, {
    strict: true,
    decode: (data) => ParseResult.succeed(to(data)),
    encode: (data, _, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, data, "an older version is never written"))
  })

/**
 * The evolution {@link versioned} declared on an event Schema; none for a Schema declared
 * without one.
 *
 * @since 0.1.0
 * @category evolution
 */
export const evolutionOf = (schema: Schema.Schema.Any): ResolvedEvolution => {
  const declared = schema.ast.annotations[EvolutionId] as ResolvedEvolution | undefined
  return declared ?? { renamed: new Map(), versions: new Map(), upcasts: new Map() }
}

/**
 * The current schema version of an event type of a Schema: 1 unless {@link versioned} gave it
 * upcasts.
 *
 * @since 0.1.0
 * @category evolution
 */
export const schemaVersion = (schema: Schema.Schema.Any, type: string): number =>
  evolutionOf(schema).versions.get(type) ?? 1

/**
 * The event type names a Schema reads from the store: its event types and their former names.
 * Stored events under other names are not its events.
 *
 * @since 0.1.0
 * @category introspection
 */
export const storedTypes = (schema: Schema.Schema.Any): ReadonlySet<string> | undefined => {
  const types = eventTypes(schema)
  return types === undefined ? undefined : new Set([...types, ...evolutionOf(schema).renamed.keys()])
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
  const { versions } = evolutionOf(schema)
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
 * Schema's {@link versioned} declaration; the decoded envelope carries the current type and
 * the schema version the event was stored in.
 *
 * @since 0.1.0
 * @category codec
 */
export const decoder = <Event extends { readonly _tag: string }>(schema: EventSchema<Event>) => {
  const decode = Schema.decodeUnknownEither(schema)
  const known = storedTypes(schema)
  const unknownType = known === undefined
    ? ""
    : `the event type is not one of ${[...known].map((type) => JSON.stringify(type)).join(", ")}`
  const { renamed, upcasts } = evolutionOf(schema)
  const steps = new Map([...upcasts].map(([type, upcasts]) => [type, upcasts.map((step) => Schema.decodeUnknownEither(step))]))
  const fail = (recorded: RecordedEvent, reason: string) =>
    Either.left(
      new EventDecodeError({
        streamId: recorded.streamId,
        version: recorded.version,
        eventType: recorded.type,
        reason
      })
    )
  const isObject = (data: unknown) => data === null || data === undefined || (typeof data === "object" && !Array.isArray(data))
  return (recorded: RecordedEvent): Either.Either<RecordedEvent<Event>, EventDecodeError> => {
    if (known !== undefined && !known.has(recorded.type)) return fail(recorded, unknownType)
    const type = renamed.get(recorded.type) ?? recorded.type
    const upcastsOfType = steps.get(type) ?? []
    const current = upcastsOfType.length + 1
    // Rows written before versions were recorded have none: they are version 1.
    const stored = recorded.schemaVersion ?? 1
    if (stored > current) {
      return fail(
        recorded,
        `it was stored in version ${stored} of the schema of ${JSON.stringify(type)}, and this program knows versions up to ${current}`
      )
    }
    let data = recorded.data
    for (let version = stored; version < current; version++) {
      const upcasted = upcastsOfType[version - 1]!(data)
      if (Either.isLeft(upcasted)) {
        return fail(recorded, `reading version ${version} as version ${version + 1}: ${formatParseError(upcasted.left)}`)
      }
      data = upcasted.right
    }
    if (!isObject(data)) return fail(recorded, `the stored data is not a JSON object: ${JSON.stringify(data)}`)
    const decoded = decode({ ...(data as object), _tag: type })
    return Either.isLeft(decoded)
      ? fail(recorded, formatParseError(decoded.left))
      : Either.right({ ...recorded, type, data: decoded.right })
  }
}

const formatParseError = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)
