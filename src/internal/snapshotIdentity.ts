/**
 * What identifies the schema of a decider's snapshots: the state Schema's settings, and a
 * fingerprint of everything folding depends on.
 */
import type * as SchemaAST from "effect/SchemaAST"
import type * as Decider from "../Decider.js"
import * as Evolution from "../Evolution.js"
import type { Snapshots } from "../Snapshot.js"
import * as EvolutionInternal from "./evolution.js"

/**
 * A 64-bit FNV-1a hash of an AST's JSON form, in hex. The JSON form holds the AST's structure
 * and annotations, not the code of its transformations; bigint values in annotations (bounds,
 * examples) are written as text rather than refused.
 */
export const fingerprint = (ast: SchemaAST.AST): string => hashText(jsonOf(ast))

/** JSON text of a value, with bigints as text rather than refused. */
const jsonOf = (value: unknown): string =>
  JSON.stringify(value, (_, item) => (typeof item === "bigint" ? `${item}n` : item))

const hashText = (text: string): string => {
  let hash = 0xcbf29ce484222325n
  for (let index = 0; index < text.length; index++) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(text.charCodeAt(index))) * 0x100000001b3n)
  }
  return hash.toString(16).padStart(16, "0")
}

/**
 * A fingerprint of what folding a decider's events depends on besides the state Schema: its
 * event types and their Schemas, how they evolved (each type's versions, former names, and each
 * upcast's old shape, code and stated identity), its initial state and the code of its `evolve`.
 * A snapshot folded when any of these differed may describe another state than folding the same
 * events now would, so it is not used: snapshots stay a cache that no result depends on.
 */
export const foldFingerprint = (decider: Decider.Decider<any, any, any, any, any>): string => {
  const evolution = Evolution.of(decider.events)
  let initialState: string
  try {
    initialState = jsonOf(decider.initialState)
  } catch {
    initialState = String(decider.initialState)
  }
  return hashText(jsonOf({
    events: decider.events.ast,
    renamed: [...evolution.renamed].sort(),
    upcasts: [...evolution.upcasts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([type, steps]) => [
      type,
      steps.map((step) => ({ shape: step.ast, ...EvolutionInternal.upcastIdentity(step) }))
    ]),
    initialState,
    evolve: String(decider.evolve)
  }))
}

/** The identity a decider's snapshots are stored under: the settings' and the fold's. */
export const identity = (decider: Decider.Decider<any, any, any, any, any>, snapshots: Snapshots<any>): string =>
  `${snapshots.schemaId}+${foldFingerprint(decider)}`
