/**
 * The event catalog as a Markdown page, laid out for GitHub: an overview, then a section per
 * event type with its fields and its JSON Schema.
 */
import type { EventCatalog, EventEntry } from "../EventCatalog.js"
import { isRecord } from "./unknowns.js"

export const render = (catalog: EventCatalog, title: string): string => {
  // GitHub numbers a repeated anchor in the order of the headings, so they are all counted.
  const anchor = anchors()
  for (const fixed of [title, "Stream types", "Projections", "Events"]) anchor(fixed)
  const links = new Map(
    catalog.events.map((event) => [event.type, `[${code(event.type)}](#${anchor(heading(event))})`])
  )
  const linked = (types: ReadonlyArray<string>) => types.map((type) => links.get(type)!).join(", ")
  const described = catalog.events.some((event) => event.description !== undefined || event.title !== undefined)

  const lines = [
    `# ${title}`,
    "",
    `${count(catalog.events.length, "event type")}, emitted into ${count(catalog.streamTypes.length, "stream type")} ` +
    `and consumed by ${count(catalog.projections.length, "projection")}. An event is stored with its type as its ` +
    "`name` and its data, a JSON object that validates against the event's JSON Schema, as its `details`.",
    "",
    ...table(
      ["event type", "stream types", "projections", ...(described ? ["description"] : [])],
      catalog.events.map((event) => [
        linked([event.type]),
        codes(event.streamTypes),
        codes(event.projections),
        ...(described ? [cell(event.description ?? event.title ?? "")] : [])
      ])
    ),
    "",
    "## Stream types",
    "",
    ...table(
      ["stream type", "emits"],
      catalog.streamTypes.map((entry) => [code(entry.streamType), linked(entry.events)])
    ),
    "",
    "## Projections",
    "",
    ...table(["projection", "consumes"], catalog.projections.map((entry) => [code(entry.name), linked(entry.events)])),
    "",
    "## Events"
  ]
  for (const event of catalog.events) extend(lines, ["", `### ${heading(event)}`, "", ...section(event)])
  return `${lines.join("\n")}\n`
}

const heading = (event: EventEntry): string => `\`${event.type}\``

const section = (event: EventEntry): Array<string> => {
  const lines: Array<string> = []
  if (event.title !== undefined) lines.push(`**${event.title}**`, "")
  if (event.description !== undefined) lines.push(event.description, "")
  lines.push(
    `Emitted into: ${event.streamTypes.length === 0 ? "no stream type of this catalog" : codes(event.streamTypes)}.`,
    `Consumed by: ${event.projections.length === 0 ? "no projection of this catalog" : codes(event.projections)}.`
  )
  if (event.schemaVersion > 1) lines.push(`Stored in schema version ${event.schemaVersion}.`)
  if (event.formerNames.length > 0) lines.push(`Formerly stored as: ${codes(event.formerNames)}.`)
  extend(lines, ["", ...described({ ...event.schema })])
  for (const older of event.olderVersions) {
    extend(lines, ["", `Schema version ${older.version} stored:`, "", ...described({ ...older.schema })])
  }
  return lines
}

/** Adds lines at the end (spreading them into `push` would be bounded by the stack). */
const extend = (lines: Array<string>, more: ReadonlyArray<string>): void => {
  for (const line of more) lines.push(line)
}

/** A schema's fields (of each of its stored forms), then the schema itself. */
const described = (schema: JsonSchema): Array<string> => {
  const lines: Array<string> = []
  const forms = Array.isArray(schema.anyOf) && schema.properties === undefined
    ? schema.anyOf.filter(isRecord)
    : [schema]
  for (const [index, form] of forms.entries()) {
    if (forms.length > 1) lines.push(`Stored form ${index + 1}:`, "")
    extend(lines, [...fields(form), ""])
  }
  lines.push("```json", JSON.stringify(schema, null, 2), "```")
  return lines
}

/** The fields of an object schema as a table, or a sentence when it has none. */
const fields = (schema: JsonSchema): Array<string> => {
  const properties = isRecord(schema.properties) ? Object.entries(schema.properties).filter(isField) : []
  if (properties.length === 0) return ["No fields."]
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  return table(
    ["field", "type", "required", "description"],
    properties.map(([name, property]) => [
      code(name),
      cell(typeName(property)),
      required.has(name) ? "yes" : "no",
      cell(typeof property.description === "string" ? property.description : "")
    ])
  )
}

type JsonSchema = { readonly [keyword: string]: unknown }

/** A short name of what a schema accepts: its type, its values, or its definition's name. */
const typeName = (schema: JsonSchema): string => {
  if (typeof schema.$ref === "string") {
    return schema.$ref.split("/").at(-1)!.replace(/~1/g, "/").replace(/~0/g, "~")
  }
  if ("const" in schema) return JSON.stringify(schema.const)
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => JSON.stringify(value)).join(" | ")
  if (Array.isArray(schema.anyOf)) return schema.anyOf.map(typeName).join(" | ")
  if (Array.isArray(schema.allOf)) return schema.allOf.map(typeName).join(" & ")
  if (schema.type === "array") return isRecord(schema.items) ? `array of ${typeName(schema.items)}` : "array"
  if (Array.isArray(schema.type)) return schema.type.join(" | ")
  return typeof schema.type === "string" ? schema.type : "any"
}

const isField = (entry: [string, unknown]): entry is [string, JsonSchema] => isRecord(entry[1])

/** A table of the rows, or "None." when there are none. */
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> =>
  rows.length === 0 ? ["None."] : [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ]

/** Text that stays in one table cell. */
const cell = (text: string): string => text.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|")

const code = (text: string): string => cell(`\`${text}\``)

const codes = (texts: ReadonlyArray<string>): string => texts.map(code).join(", ")

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`

/**
 * GitHub's anchors for the page's headings, in the order they appear: the heading in lower case
 * without punctuation, spaces as hyphens, and a number after a repeated one.
 */
const anchors = () => {
  const seen = new Map<string, number>()
  return (heading: string): string => {
    const slug = heading.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-")
    const times = seen.get(slug) ?? 0
    seen.set(slug, times + 1)
    return times === 0 ? slug : `${slug}-${times}`
  }
}
