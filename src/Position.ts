/**
 * A place in the global order of events, the order every reader of "all events" sees.
 *
 * The protocol's `position` column is the `sequence`: every event of one append shares it.
 * On PostgreSQL a sequence value is drawn when a row is inserted but becomes visible when its
 * transaction commits, so the global order there is `(transaction, sequence)`, where
 * `transaction` is the writing transaction's id; readers only move past a transaction once no
 * older one can still commit. Backends whose order is already commit order (memory, SQLite)
 * record `transaction` as `0n`.
 *
 * A position is comparable and serialisable, so it can be stored as a checkpoint.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Either from "effect/Either"
import * as Ord from "effect/Order"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category models
 */
export interface Position {
  readonly transaction: bigint
  readonly sequence: bigint
}

/**
 * A position; `transaction` defaults to `0n`, as on backends whose order is commit order.
 * Positions have structural equality (`Equal.equals`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (position: { readonly sequence: bigint; readonly transaction?: bigint }): Position =>
  Data.struct({ transaction: position.transaction ?? 0n, sequence: position.sequence })

/**
 * The position before the first event: reading "after `start`" reads everything.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: Position = make({ sequence: 0n })

/**
 * Orders positions as the global order does: by transaction, then by sequence.
 *
 * @since 0.1.0
 * @category instances
 */
export const Order: Ord.Order<Position> = Ord.combine(
  Ord.mapInput(Ord.bigint, (position: Position) => position.transaction),
  Ord.mapInput(Ord.bigint, (position: Position) => position.sequence)
)

/**
 * @since 0.1.0
 * @category predicates
 */
export const equals = (self: Position, that: Position): boolean =>
  self.transaction === that.transaction && self.sequence === that.sequence

/**
 * `true` when `self` comes after `that` in the global order.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isAfter: {
  (that: Position): (self: Position) => boolean
  (self: Position, that: Position): boolean
} = Ord.greaterThan(Order)

/**
 * @since 0.1.0
 * @category combinators
 */
export const max: {
  (that: Position): (self: Position) => Position
  (self: Position, that: Position): Position
} = Ord.max(Order)

/**
 * The text form `"<transaction>:<sequence>"`, for storing a checkpoint outside the event store.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toString = (position: Position): string => `${position.transaction}:${position.sequence}`

const textForm = /^(\d+):(\d+)$/

/**
 * A position, stored as its text form `"<transaction>:<sequence>"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FromString: Schema.Schema<Position, string> = Schema.transformOrFail(
  Schema.String,
  Schema.Struct({ transaction: Schema.BigIntFromSelf, sequence: Schema.BigIntFromSelf }),
  {
    strict: true,
    decode: (text, _, ast) => {
      const match = textForm.exec(text)
      return match === null
        ? ParseResult.fail(
          new ParseResult.Type(ast, text, `expected "<transaction>:<sequence>", got ${JSON.stringify(text)}`)
        )
        : ParseResult.succeed(make({ transaction: BigInt(match[1]!), sequence: BigInt(match[2]!) }))
    },
    encode: (position) => ParseResult.succeed(toString(position))
  }
)

/**
 * Parses the text form written by {@link toString}.
 *
 * @since 0.1.0
 * @category conversions
 */
export const fromString: (text: string) => Either.Either<Position, ParseResult.ParseError> = Schema.decodeEither(
  FromString
)
