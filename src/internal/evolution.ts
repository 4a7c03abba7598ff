/**
 * Reading the evolutions declared on the event types of an event Schema: each tagged member
 * may carry one (`Evolution.declare`), and a Schema built from the same members (a projection's
 * union of the events it consumes, a union of unions) carries the same ones.
 */
import * as AST from "effect/SchemaAST"

/** What `Evolution.declare` declares on one event type. */
export interface Declared {
  readonly formerNames: ReadonlyArray<string>
  readonly upcasts: ReadonlyArray<unknown>
}

export const EvolutionId: unique symbol = Symbol.for("effect-eventsourcing/Events/Evolution")

/** The evolutions of an event Schema, by event type, with its former names resolved. */
export interface Resolved<Upcast> {
  /** Former names, each to the current type. */
  readonly renamed: ReadonlyMap<string, string>
  /** The current schema version of each event type that has more than one. */
  readonly versions: ReadonlyMap<string, number>
  /** The upcasts of each event type that has some, oldest first. */
  readonly upcasts: ReadonlyMap<string, ReadonlyArray<Upcast>>
}

const declaredOn = (ast: AST.AST): Declared | undefined =>
  (ast.annotations[EvolutionId] ??
    (ast._tag === "Transformation" ? ast.to.annotations[EvolutionId] : undefined)) as Declared | undefined

/** Each tagged member of a Schema's AST, with the evolution declared on it or around it. */
const members = (ast: AST.AST, around: Declared | undefined, found: Array<readonly [string, Declared | undefined]>) => {
  const declared = declaredOn(ast) ?? around
  switch (ast._tag) {
    case "Union":
      if (declaredOn(ast) !== undefined) {
        throw new Error("Evolution.declare: declare an evolution on one event type's Schema, not on a union of them")
      }
      for (const member of ast.types) members(member, undefined, found)
      return
    case "Refinement":
    case "Transformation":
      return members(ast.from, declared, found)
    case "TypeLiteral": {
      const tag = ast.propertySignatures.find((signature) => signature.name === "_tag")
      if (tag !== undefined && AST.isLiteral(tag.type) && typeof tag.type.literal === "string") {
        found.push([tag.type.literal, declared])
      }
      return
    }
  }
}

const cache = new WeakMap<AST.AST, Resolved<unknown>>()

/**
 * Resolves the evolutions of an event Schema. Throws on contradictions, which are mistakes in
 * the program: two declarations for one type, a former name that is still a current type or
 * that two types claim.
 */
export const resolve = <Upcast>(ast: AST.AST): Resolved<Upcast> => {
  const cached = cache.get(ast)
  if (cached !== undefined) return cached as Resolved<Upcast>
  const found: Array<readonly [string, Declared | undefined]> = []
  members(ast, undefined, found)
  const types = new Set(found.map(([type]) => type))
  const declarations = new Map<string, Declared>()
  for (const [type, declared] of found) {
    if (declared === undefined) continue
    const other = declarations.get(type)
    if (other !== undefined && other !== declared) {
      throw new Error(
        `Evolution.declare: the event type ${JSON.stringify(type)} has two different evolutions in one Schema`
      )
    }
    declarations.set(type, declared)
  }
  const renamed = new Map<string, string>()
  for (const [type, declared] of declarations) {
    for (const former of declared.formerNames) {
      if (types.has(former)) {
        throw new Error(
          `Evolution.declare: ${JSON.stringify(former)}, a former name of ${
            JSON.stringify(type)
          }, is still an event type of the Schema`
        )
      }
      const claimed = renamed.get(former)
      if (claimed !== undefined && claimed !== type) {
        throw new Error(
          `Evolution.declare: ${JSON.stringify(former)} is a former name of both ${JSON.stringify(claimed)} and ${
            JSON.stringify(type)
          }`
        )
      }
      renamed.set(former, type)
    }
  }
  const upcasts = new Map(
    [...declarations].filter(([, declared]) => declared.upcasts.length > 0).map((
      [type, declared]
    ) => [type, declared.upcasts])
  )
  const resolved: Resolved<unknown> = {
    renamed,
    upcasts,
    versions: new Map([...upcasts].map(([type, steps]) => [type, steps.length + 1]))
  }
  cache.set(ast, resolved)
  return resolved as Resolved<Upcast>
}

export const UpcastId: unique symbol = Symbol.for("effect-eventsourcing/Events/Upcast")

/** What identifies an upcast beyond its old shape: the code of its function and its stated identity. */
export const upcastIdentity = (
  step: { readonly ast: AST.AST }
): { readonly code?: string; readonly identity?: string } =>
  (step.ast.annotations[UpcastId] as { readonly code?: string; readonly identity?: string } | undefined) ?? {}
