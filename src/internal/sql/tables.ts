/**
 * The names of the tables a SQL event store uses, and their quoted forms.
 */
import type { TableNames } from "../../SqlEventStore.js"

export type { TableNames }

export const defaultTableNames: TableNames = {
  entities: "entities",
  events: "events",
  projections: "projections",
  snapshots: "snapshots",
  migrations: "effect_eventsourcing_migrations"
}

/** A quoted identifier; a dot separates a schema from a name (`"app"."events"`). */
export const quote = (name: string): string =>
  name.split(".").map((part) => `"${part.replace(/"/g, "\"\"")}"`).join(".")

/** The name without its schema, for naming the indexes and sequences of a table. */
export const baseName = (name: string): string => name.slice(name.lastIndexOf(".") + 1)

/** The schema part of a qualified name, if it has one. */
export const schemaOf = (name: string): string | undefined =>
  name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : undefined

export interface Tables {
  readonly names: TableNames
  /** The PostgreSQL notification channel appends to the events table announce themselves on. */
  readonly channel: string
  readonly entities: string
  readonly events: string
  readonly projections: string
  /** The table of events projections set aside, named after the projections table. */
  readonly deadLetters: string
  /** Its name, unquoted. */
  readonly deadLettersName: string
  readonly snapshots: string
  /** The quoted name of an object (index, sequence, trigger) named after the events table. */
  readonly eventsObject: (suffix: string) => string
}

/** The most bytes of a name PostgreSQL keeps (it cuts longer ones silently). */
export const pgIdentifierBytes = 63

const bytes = (text: string) => new TextEncoder().encode(text).length

/**
 * A name derived from another (`<base>_<suffix>`) that fits in `limit` bytes: as it is when it
 * fits, otherwise the base cut short and followed by a hash of the whole base, so that names
 * derived from one long base stay apart instead of being cut to one.
 */
const derived = (base: string, suffix: string, limit: number): string => {
  const name = `${base}_${suffix}`
  if (bytes(name) <= limit) return name
  const tail = `_${hash(base)}_${suffix}`
  let kept = base
  while (bytes(kept) + bytes(tail) > limit) kept = kept.slice(0, -1)
  return `${kept}${tail}`
}

/**
 * The name of a table that belongs with the events table, unless told otherwise: beside it, in
 * its schema, named after it (`app.orders_events` gives `app.orders_events_<suffix>`) or, for an
 * events table named `events`, the default name. So stores with different tables in one database
 * keep their own migration records and snapshots.
 */
const namedAfterEvents = (events: string, defaultName: string, suffix: string, limit: number): string => {
  const schema = schemaOf(events)
  const base = baseName(events)
  const name = base === "events" ? defaultName : derived(base, suffix, limit)
  return schema === undefined ? name : `${schema}.${name}`
}

/**
 * The tables of a store. `identifierBytes` is the database's limit on a name's length (none on
 * SQLite): names derived from a long table name are kept under it (see `problems` for the names
 * given).
 */
export const make = (names: Partial<TableNames> | undefined, identifierBytes = Infinity): Tables => {
  const events = names?.events ?? defaultTableNames.events
  const resolved = {
    ...defaultTableNames,
    migrations: namedAfterEvents(events, defaultTableNames.migrations, "migrations", identifierBytes).toLowerCase(),
    snapshots: namedAfterEvents(events, defaultTableNames.snapshots, "snapshots", identifierBytes),
    ...names
  }
  const projectionsSchema = schemaOf(resolved.projections)
  const deadLettersBase = derived(baseName(resolved.projections), "dead_letters", identifierBytes)
  const deadLetters = projectionsSchema === undefined ? deadLettersBase : `${projectionsSchema}.${deadLettersBase}`
  return {
    names: resolved,
    channel: `effect_eventsourcing_${hash(resolved.events)}`,
    entities: quote(resolved.entities),
    events: quote(resolved.events),
    projections: quote(resolved.projections),
    deadLetters: quote(deadLetters),
    deadLettersName: deadLetters,
    snapshots: quote(resolved.snapshots),
    eventsObject: (suffix) => quote(derived(baseName(resolved.events), suffix, identifierBytes))
  }
}

/**
 * What is wrong with the names given, on a database that keeps `identifierBytes` of a name: a
 * name it would cut short (two tables could become one), an empty one.
 */
export const problems = (tables: Tables, identifierBytes: number): ReadonlyArray<string> =>
  Object.entries(tables.names).flatMap(([role, name]) =>
    name.split(".").flatMap((part: string) =>
      part.length === 0
        ? [`the ${role} table name ${JSON.stringify(name)} has an empty part`]
        : bytes(part) > identifierBytes
        ? [
          `the ${role} table name ${
            JSON.stringify(name)
          } is longer than the ${identifierBytes} bytes the database keeps of a name`
        ]
        : []
    )
  )

/** A short, stable hash (32-bit FNV-1a, in hex) to name things after a longer name. */
const hash = (text: string): string => {
  let value = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    value ^= text.charCodeAt(index)
    value = Math.imul(value, 0x01000193)
  }
  return (value >>> 0).toString(16).padStart(8, "0")
}
