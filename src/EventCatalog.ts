/**
 * The event catalog: every event type of an application, with the JSON Schema of its stored
 * data, the stream types that emit it and the projections that consume it. It is built from the
 * deciders and projections themselves, so it cannot drift from the code, and published as JSON
 * (for tools, other implementations of the protocol, agents) and as a Markdown page (for people).
 *
 * ```ts
 * import { EventCatalog } from "effect-eventsourcing"
 * import { Either } from "effect"
 *
 * const catalog = Either.getOrThrow(
 *   EventCatalog.make({ deciders: [Cart.decider], projections: [CartsReadModel.projection] })
 * )
 * writeFileSync("catalog.json", EventCatalog.toJson(catalog))
 * writeFileSync("CATALOG.md", EventCatalog.toMarkdown(catalog, { title: "Shopping cart events" }))
 * ```
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import type * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import type * as Decider from "./Decider.js"
import * as Events from "./Events.js"
import * as Evolution from "./Evolution.js"
import * as Markdown from "./internal/catalogMarkdown.js"
import { olderVersionSchemas, storedDataSchemas } from "./internal/catalogSchema.js"
import type * as Projection from "./Projection.js"

/**
 * A catalog of event types: plain data, serialisable as it is (see {@link toJson}).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventCatalog {
  /** Every event type, sorted by type. */
  readonly events: ReadonlyArray<EventEntry>
  /** Each stream type with the event types its decider emits, sorted by stream type. */
  readonly streamTypes: ReadonlyArray<StreamTypeEntry>
  /** Each projection with the event types it consumes, sorted by name. */
  readonly projections: ReadonlyArray<ProjectionEntry>
}

/**
 * One event type of a catalog.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventEntry {
  /** The stored event type: the protocol's `name`, the Schema's `_tag`. */
  readonly type: string
  /** The title annotation of the event's Schema, when it has one. */
  readonly title?: string
  /** The description annotation of the event's Schema, when it has one. */
  readonly description?: string
  /** The stream types whose deciders emit it, sorted; empty when it is only consumed. */
  readonly streamTypes: ReadonlyArray<string>
  /** The projections that consume it, sorted. */
  readonly projections: ReadonlyArray<string>
  /**
   * The JSON Schema (draft-07) of its stored data, the protocol's `details`: the encoded event
   * without its `_tag`. Every event of this type stored in its current schema version validates
   * against it.
   */
  readonly schema: JSONSchema.JsonSchema7Root
  /** The schema version new events of this type are stored in (the protocol's `schema_version`). */
  readonly schemaVersion: number
  /** The JSON Schema of the data each older schema version stored, oldest first (see `Evolution.declare`). */
  readonly olderVersions: ReadonlyArray<OlderVersion>
  /** Names events of this type were stored under before it was renamed, sorted. */
  readonly formerNames: ReadonlyArray<string>
}

/**
 * The stored data of one older schema version of an event type.
 *
 * @since 0.1.0
 * @category models
 */
export interface OlderVersion {
  readonly version: number
  readonly schema: JSONSchema.JsonSchema7Root
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StreamTypeEntry {
  readonly streamType: string
  /** The event types emitted into streams of this type, sorted. */
  readonly events: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionEntry {
  readonly name: string
  /** The event types the projection consumes, sorted. */
  readonly events: ReadonlyArray<string>
}

/**
 * What a catalog is made from: deciders (the emitters, named by their stream type) and
 * projections (the consumers, named by their name). Only their event Schemas are read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sources {
  readonly deciders?: ReadonlyArray<Pick<Decider.Any, "streamType" | "events">>
  readonly projections?: ReadonlyArray<Pick<Projection.Any, "name" | "events">>
}

/**
 * A catalog cannot be made from these sources: an event Schema whose types cannot be read (not a
 * union of tagged schemas), an event whose data has no JSON Schema, or one event type defined
 * with different schemas. `sources` names the deciders (`decider "cart"`) and projections
 * (`projection "carts"`) involved.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventCatalogError extends Schema.TaggedError<EventCatalogError>()("EventCatalogError", {
  eventType: Schema.optional(Schema.String),
  sources: Schema.Array(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const event = this.eventType === undefined ? "" : `event type ${JSON.stringify(this.eventType)} of `
    return `Cannot catalog ${event}${this.sources.join(" and ")}: ${this.reason}`
  }
}

/**
 * Builds the catalog of the event types that the deciders emit and the projections consume.
 *
 * An event type's schema is its emitters' (a projection may read less of an event than is
 * stored), or its consumers' when no decider emits it. Two definitions of one type with
 * different schemas fail: an event type has one meaning, and the catalog does not pick one
 * silently. The same Schema shared, or equal ones, are one definition. A type with several
 * members in one Schema (several stored forms) is described as any of them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sources: Sources): Either.Either<EventCatalog, EventCatalogError> =>
  Either.gen(function*() {
    const found = new Map<string, Found>()
    const at = (type: string): Found => {
      const entry = found.get(type) ?? { streamTypes: new Set(), projections: new Set(), emitted: [], consumed: [] }
      found.set(type, entry)
      return entry
    }
    for (const decider of sources.deciders ?? []) {
      const source = `decider ${JSON.stringify(decider.streamType)}`
      for (const [type, stored] of yield* storedData(source, decider.events)) {
        const entry = at(type)
        entry.streamTypes.add(decider.streamType)
        entry.emitted.push({ source, stored })
      }
    }
    for (const projection of sources.projections ?? []) {
      const source = `projection ${JSON.stringify(projection.name)}`
      for (const [type, stored] of yield* storedData(source, projection.events)) {
        const entry = at(type)
        entry.projections.add(projection.name)
        entry.consumed.push({ source, stored })
      }
    }
    const events: Array<EventEntry> = []
    for (const type of sorted(found.keys())) {
      const entry = found.get(type)!
      const { schema, ...history } = yield* definedSchema(
        type,
        entry.emitted.length > 0 ? entry.emitted : entry.consumed
      )
      events.push({
        type,
        ...(typeof schema.title === "string" ? { title: schema.title } : {}),
        ...(typeof schema.description === "string" ? { description: schema.description } : {}),
        streamTypes: sorted(entry.streamTypes),
        projections: sorted(entry.projections),
        schema,
        ...history
      })
    }
    return {
      events,
      streamTypes: index(events, (event) => event.streamTypes).map(([streamType, events]) => ({ streamType, events })),
      projections: index(events, (event) => event.projections).map(([name, events]) => ({ name, events }))
    }
  })

/**
 * The catalog as JSON text: two-space indented, with a final newline, and the same for the same
 * sources, so a generated file changes only when the events do.
 *
 * @since 0.1.0
 * @category rendering
 */
export const toJson = (catalog: EventCatalog): string => `${JSON.stringify(catalog, null, 2)}\n`

/**
 * The catalog as a Markdown page: an overview table of the event types with the stream types
 * that emit them and the projections that consume them, the stream types and projections, then a
 * section per event type with its description, its fields and its JSON Schema.
 *
 * @since 0.1.0
 * @category rendering
 */
export const toMarkdown = (catalog: EventCatalog, options?: {
  /** The page's heading (default "Event catalog"). */
  readonly title?: string
}): string => Markdown.render(catalog, options?.title ?? "Event catalog")

/** What one source says of an event type's stored data, in every version. */
interface Stored {
  readonly schema: JSONSchema.JsonSchema7Root
  readonly schemaVersion: number
  readonly olderVersions: ReadonlyArray<OlderVersion>
  readonly formerNames: ReadonlyArray<string>
}

interface Definition {
  readonly source: string
  readonly stored: Stored
}

interface Found {
  readonly streamTypes: Set<string>
  readonly projections: Set<string>
  readonly emitted: Array<Definition>
  readonly consumed: Array<Definition>
}

const storedData = (source: string, schema: Schema.Schema.Any) => {
  const types = Events.eventTypes(schema)
  if (types === undefined) {
    return Either.left(
      new EventCatalogError({
        sources: [source],
        reason:
          "its event Schema is not a union of tagged schemas (Schema.TaggedStruct, Schema.TaggedClass), so its event types cannot be read from it"
      })
    )
  }
  const evolution = Either.try({
    try: () => Evolution.of(schema),
    catch: (error) =>
      new EventCatalogError({ sources: [source], reason: error instanceof Error ? error.message : String(error) })
  })
  if (Either.isLeft(evolution)) return Either.left(evolution.left)
  return describeStored(source, schema, types, evolution.right)
}

const describeStored = (
  source: string,
  schema: Schema.Schema.Any,
  types: ReadonlySet<string>,
  evolution: Evolution.Evolutions
) => {
  const formerNames = (type: string) =>
    sorted([...evolution.renamed].filter(([, current]) => current === type).map(([former]) => former))
  return Either.mapLeft(
    Either.gen(function*() {
      const stored = new Map<string, Stored>()
      for (const [type, data] of yield* storedDataSchemas(schema, types)) {
        stored.set(type, {
          schema: data,
          schemaVersion: evolution.versions.get(type) ?? 1,
          olderVersions: yield* olderVersionSchemas(evolution.upcasts.get(type) ?? [], type),
          formerNames: formerNames(type)
        })
      }
      return stored
    }),
    ({ eventType, reason }) => new EventCatalogError({ eventType, sources: [source], reason })
  )
}

const definedSchema = (type: string, definitions: ReadonlyArray<Definition>) => {
  const distinct = new Set(definitions.map(({ stored }) => JSON.stringify(stored)))
  return distinct.size === 1
    ? Either.right(definitions[0]!.stored)
    : Either.left(
      new EventCatalogError({
        eventType: type,
        sources: definitions.map(({ source }) => source),
        reason:
          "they define its data with different schemas (or schema versions); give one of them another event type, or share one Schema"
      })
    )
}

/** Code-unit order: the same on every machine, whatever its locale. */
const sorted = (values: Iterable<string>): Array<string> => [...values].sort()

/** The event types of each stream type (or projection), from the event entries. */
const index = (
  events: ReadonlyArray<EventEntry>,
  keys: (event: EventEntry) => ReadonlyArray<string>
): Array<readonly [string, ReadonlyArray<string>]> => {
  const types = new Map<string, Array<string>>()
  for (const event of events) {
    for (const key of keys(event)) types.set(key, [...(types.get(key) ?? []), event.type])
  }
  return sorted(types.keys()).map((key) => [key, types.get(key)!] as const)
}
