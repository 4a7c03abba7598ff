/**
 * The names of the tables a SQL event store uses, and their quoted forms.
 */
export interface TableNames {
  readonly entities: string
  readonly events: string
  readonly projections: string
  readonly snapshots: string
  readonly migrations: string
}

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
  readonly snapshots: string
  /** The quoted name of an object (index, sequence, trigger) named after the events table. */
  readonly eventsObject: (suffix: string) => string
}

/**
 * The name of a table that belongs with the events table, unless told otherwise: beside it, in
 * its schema, named after it (`app.orders_events` gives `app.orders_events_<suffix>`) or, for an
 * events table named `events`, the default name. So stores with different tables in one database
 * keep their own migration records and snapshots.
 */
const besideEvents = (events: string, defaultName: string, suffix: string): string => {
  const schema = schemaOf(events)
  const base = baseName(events)
  const name = base === "events" ? defaultName : `${base}_${suffix}`
  return schema === undefined ? name : `${schema}.${name}`
}

export const make = (names: Partial<TableNames> | undefined): Tables => {
  const events = names?.events ?? defaultTableNames.events
  const resolved = {
    ...defaultTableNames,
    migrations: besideEvents(events, defaultTableNames.migrations, "migrations").toLowerCase(),
    snapshots: besideEvents(events, defaultTableNames.snapshots, "snapshots"),
    ...names
  }
  return {
    names: resolved,
    channel: `effect_eventsourcing_${hash(resolved.events)}`,
    entities: quote(resolved.entities),
    events: quote(resolved.events),
    projections: quote(resolved.projections),
    deadLetters: quote(`${resolved.projections}_dead_letters`),
    snapshots: quote(resolved.snapshots),
    eventsObject: (suffix) => quote(`${baseName(resolved.events)}_${suffix}`)
  }
}

/** A short, stable hash (32-bit FNV-1a, in hex) to name things after a longer name. */
const hash = (text: string): string => {
  let value = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    value ^= text.charCodeAt(index)
    value = Math.imul(value, 0x01000193)
  }
  return (value >>> 0).toString(16).padStart(8, "0")
}
