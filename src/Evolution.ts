/**
 * Changing events safely: how an event type changed since its events were first stored (former
 * names, upcasts from older versions of its data), declared on its Schema. Stored events are
 * never rewritten: they are read through these declarations.
 *
 * @since 0.1.0
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as internal from "./internal/evolution.js"
import { messageOf } from "./internal/unknowns.js"

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
 * How one event type changed since its events were first stored. Stored events are never
 * rewritten: they are read through this.
 *
 * @since 0.1.0
 * @category evolution
 */
export interface Evolution {
  /**
   * Names events of this type were stored under before it was renamed. A row stored under a
   * former name reads as this type, through this type's upcasts.
   */
  readonly formerNames?: ReadonlyArray<string>
  /**
   * The steps from each former version of the type's data to the next: the first reads version
   * 1 into version 2, the second version 2 into 3, and so on. The current version is one more
   * than the number of steps; new events of the type are stored in it.
   */
  readonly upcasts?: ReadonlyArray<Upcast>
}

/**
 * The annotation that declares how an event type evolved: give it to the event's Schema, so
 * that every Schema built from it (the decider's union of events, a projection's union of the
 * events it consumes) reads old rows the same way.
 *
 * ```ts
 * import { Evolution } from "effect-eventsourcing"
 * import { Schema } from "effect"
 *
 * // Version 1, stored as "CartItemAdded", held a price in euros; version 2 holds cents.
 * const ItemAdded = Schema.TaggedStruct("ItemAdded", { sku: Schema.String, priceCents: Schema.Int }).annotations(
 *   Evolution.declare({
 *     formerNames: ["CartItemAdded"],
 *     upcasts: [
 *       Evolution.upcast(Schema.Struct({ sku: Schema.String, price: Schema.Number }), (v1) => ({
 *         sku: v1.sku,
 *         priceCents: Math.round(v1.price * 100)
 *       }))
 *     ]
 *   })
 * )
 * ```
 *
 * A `Schema.TaggedClass` takes it as its annotations. Contradictions (a former name that is
 * still an event type, or that two types claim) are mistakes in the program and throw when a
 * decoder, encoder or catalog is built from the Schema.
 *
 * @since 0.1.0
 * @category evolution
 */
export const declare = (declared: Evolution): Schema.Annotations.Schema<any> => {
  const formerNames = declared.formerNames ?? []
  for (const name of formerNames) {
    if (typeof name !== "string" || name.length === 0) {
      throw new Error("Evolution.declare: a former name must be a non-empty string")
    }
  }
  if (new Set(formerNames).size !== formerNames.length) {
    throw new Error("Evolution.declare: a former name is given twice")
  }
  const evolution: internal.Declared = { formerNames, upcasts: declared.upcasts ?? [] }
  return { [internal.EvolutionId]: evolution }
}

/**
 * One upcast: reads data stored in an older version with its Schema, and turns it into the
 * next version's data with a function. Old versions are only ever read, never written; a
 * function that throws fails the read like data that does not match.
 *
 * @since 0.1.0
 * @category evolution
 */
export const upcast = <A, I>(
  from: Schema.Schema<A, I>,
  to: (data: A) => unknown,
  options?: {
    /**
     * Names what the upcast means. Snapshots of a decider whose events have upcasts are only
     * used by a program with the same upcasts: the same old shapes, the same code of `to` and
     * the same identity. Change it when the upcast gives other data without its code changing
     * (it calls a function that changed, say).
     */
    readonly identity?: string
  }
): Upcast =>
  Schema.transformOrFail(from, Schema.Unknown, {
    strict: true,
    decode: (data, _, ast) => {
      try {
        return ParseResult.succeed(to(data))
      } catch (error) {
        return ParseResult.fail(new ParseResult.Type(ast, data, `the upcast threw: ${messageOf(error)}`))
      }
    },
    encode: (data, _, ast) =>
      ParseResult.fail(new ParseResult.Forbidden(ast, data, "an older version is never written"))
  }).annotations({
    [internal.UpcastId]: {
      code: String(to),
      ...(options?.identity === undefined ? {} : { identity: options.identity })
    }
  })

/**
 * The evolutions declared on the event types of a Schema (see {@link declare}): former names,
 * and the current version and upcasts of each type that has older versions.
 *
 * @since 0.1.0
 * @category evolution
 */
export interface Evolutions {
  /** Former names, each to the current type. */
  readonly renamed: ReadonlyMap<string, string>
  /** The current schema version of each event type that has more than one. */
  readonly versions: ReadonlyMap<string, number>
  /** The upcasts of each event type that has older versions, oldest first. */
  readonly upcasts: ReadonlyMap<string, ReadonlyArray<Upcast>>
}

/**
 * The evolutions declared on the event types of a Schema.
 *
 * @since 0.1.0
 * @category evolution
 */
export const of = (schema: Schema.Schema.Any): Evolutions => internal.resolve<Upcast>(schema.ast)

/**
 * The current schema version of an event type of a Schema: 1 unless its {@link declare} has
 * upcasts.
 *
 * @since 0.1.0
 * @category evolution
 */
export const schemaVersion = (schema: Schema.Schema.Any, type: string): number => of(schema).versions.get(type) ?? 1
