/**
 * The stored data of event types as JSON Schema: for each tagged member of an event Schema, its
 * encoded form without the `_tag`, which is what the protocol's `details` column holds.
 */
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import type { OlderVersion } from "../EventCatalog.js"
import { isRecord } from "./unknowns.js"

/** Why the data of one event type cannot be described. */
export interface Undescribable {
  readonly eventType: string
  readonly reason: string
}

interface Notes {
  readonly title?: string
  readonly description?: string
}

/** One tagged member: its encoded struct, and the title and description of the event. */
interface Member {
  readonly type: string
  readonly struct: AST.TypeLiteral
  readonly notes: Notes
}

/**
 * The JSON Schema of the stored data of each of `types`, the event types `Events.eventTypes`
 * read from `schema`. A type with several members (several stored forms) gets the union of them.
 */
export const storedDataSchemas = (
  schema: Schema.Schema.Any,
  types: ReadonlySet<string>
): Either.Either<ReadonlyMap<string, JSONSchema.JsonSchema7Root>, Undescribable> => {
  const members = membersOf(schema.ast, {})
  const schemas = new Map<string, JSONSchema.JsonSchema7Root>()
  for (const type of types) {
    const forms = members.filter((member) => member.type === type).map(storedForm)
    if (forms.length === 0) {
      return Either.left({ eventType: type, reason: "no member of its Schema is a struct with this _tag" })
    }
    try {
      schemas.set(
        type,
        inStableOrder(
          forStoredJson(JSONSchema.make(Schema.make(forms.length === 1 ? forms[0]! : AST.Union.make(forms))))
        )
      )
    } catch (error) {
      return Either.left({
        eventType: type,
        reason: `its data has no JSON Schema: ${error instanceof Error ? error.message : String(error)}`
      })
    }
  }
  return Either.right(schemas)
}

/**
 * The JSON Schema of the data each older version of `type` stored, read from the encoded side of
 * the upcasts `Evolution.declare` declares for it (the first reads version 1, and so on).
 */
export const olderVersionSchemas = (
  upcasts: ReadonlyArray<Schema.Schema.Any>,
  type: string
): Either.Either<ReadonlyArray<OlderVersion>, Undescribable> => {
  const versions: Array<OlderVersion> = []
  for (const [index, upcast] of upcasts.entries()) {
    try {
      const stored = Schema.encodedSchema(upcast).ast
      const form = AST.isTypeLiteral(stored) ? storedForm({ type, struct: stored, notes: {} }) : stored
      versions.push({ version: index + 1, schema: inStableOrder(forStoredJson(JSONSchema.make(Schema.make(form)))) })
    } catch (error) {
      return Either.left({
        eventType: type,
        reason: `the data of its version ${index + 1} has no JSON Schema: ${
          error instanceof Error ? error.message : String(error)
        }`
      })
    }
  }
  return Either.right(versions)
}

/** The stored forms of a type in one order whatever the order of its Schema's members. */
const inStableOrder = (schema: JSONSchema.JsonSchema7Root): JSONSchema.JsonSchema7Root => {
  if (!("anyOf" in schema) || !Array.isArray(schema.anyOf)) return schema
  const forms: Array<unknown> = [...schema.anyOf].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
  return { ...schema, anyOf: forms } as JSONSchema.JsonSchema7Root
}

/**
 * The tagged structs of an event Schema, on their encoded side, which is what is stored. The
 * title and description given closest to a struct win: a class keeps them on its type side.
 */
const membersOf = (ast: AST.AST, notes: Notes): ReadonlyArray<Member> => {
  switch (ast._tag) {
    case "Union":
      return ast.types.flatMap((member) => membersOf(member, {}))
    case "Refinement":
      return membersOf(ast.from, noted(notes, ast))
    case "Transformation":
      return membersOf(ast.from, noted(noted(notes, ast), ast.to))
    case "TypeLiteral": {
      const tag = ast.propertySignatures.find((signature) => signature.name === "_tag")
      return tag !== undefined && AST.isLiteral(tag.type) && typeof tag.type.literal === "string"
        ? [{ type: tag.type.literal, struct: ast, notes: noted(notes, ast) }]
        : []
    }
    default:
      return []
  }
}

const noted = (outer: Notes, ast: AST.Annotated): Notes => {
  const title = Option.getOrUndefined(AST.getTitleAnnotation(ast)) ?? outer.title
  const description = Option.getOrUndefined(AST.getDescriptionAnnotation(ast)) ?? outer.description
  return { ...(title === undefined ? {} : { title }), ...(description === undefined ? {} : { description }) }
}

/**
 * A member's struct without its `_tag`, annotated with only its notes (an identifier would move
 * the whole schema into its own `$defs`). Effect describes a struct without fields as any object
 * or array, but the stored data of an event without fields is always an empty object.
 */
const storedForm = ({ notes, struct }: Member): AST.TypeLiteral => {
  const fields = struct.propertySignatures.filter((signature) => signature.name !== "_tag")
  const annotations: AST.Annotations = fields.length === 0 && struct.indexSignatures.length === 0
    ? { [AST.JSONSchemaAnnotationId]: { type: "object", additionalProperties: false, ...notes } }
    : {
      ...(notes.title === undefined ? {} : { [AST.TitleAnnotationId]: notes.title }),
      ...(notes.description === undefined ? {} : { [AST.DescriptionAnnotationId]: notes.description })
    }
  return new AST.TypeLiteral(fields, struct.indexSignatures, annotations)
}

/**
 * Effect's JSON Schema made true of stored JSON, for any validator:
 * - a field that accepts any value (`Schema.Unknown`, `Schema.Any`, `Schema.Void`) is not
 *   required: when it is `undefined` JSON leaves it out, and it decodes back all the same;
 * - effect marks those schemas with an `$id` such as `/schemas/unknown`, the same in every place
 *   they appear, which a validator refuses as an ambiguous reference: the marks are left out.
 */
const forStoredJson = <S>(schema: S): S => {
  if (!isRecord(schema)) return schema
  const properties = isRecord(schema.properties) ? schema.properties : {}
  const out: Record<string, unknown> = {}
  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === "$id" && typeof value === "string" && value.startsWith("/schemas/")) continue
    out[keyword] = keyword === "required" && Array.isArray(value)
      ? value.filter((name) => !acceptsAnyValue(properties[name]))
      : withStoredSubschemas(keyword, value)
  }
  return out as S
}

/** A keyword's value with the schemas in it made true of stored JSON; a plain value as it is. */
const withStoredSubschemas = (keyword: string, value: unknown): unknown => {
  if (schemaMaps.has(keyword) && isRecord(value)) {
    return Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, forStoredJson(schema)]))
  }
  if (schemaLists.has(keyword) && Array.isArray(value)) return value.map(forStoredJson)
  return subschemas.has(keyword) ? forStoredJson(value) : value
}

const acceptsAnyValue = (schema: unknown): boolean =>
  isRecord(schema) && typeof schema.$id === "string" && anyValue.has(schema.$id)

const anyValue = new Set(["/schemas/unknown", "/schemas/any", "/schemas/void"])

/** The keywords whose values are (maps or lists of) schemas; the others hold plain values. */
const schemaMaps = new Set(["properties", "patternProperties", "$defs", "definitions"])
const schemaLists = new Set(["anyOf", "allOf", "oneOf", "prefixItems", "items"])
const subschemas = new Set([
  "items",
  "additionalItems",
  "additionalProperties",
  "propertyNames",
  "contains",
  "not",
  "if",
  "then",
  "else"
])
