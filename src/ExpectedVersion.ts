/**
 * What an append expects of its stream: the optimistic-concurrency check.
 *
 * A stream's version is the number of events in it, so a stream that does not exist has
 * version `0`, and `exact(0)` means the same as `noStream`.
 *
 * | expected        | the append succeeds when the stream's version is |
 * | --------------- | ------------------------------------------------ |
 * | `any`           | anything (no check)                              |
 * | `noStream`      | `0`: the stream does not exist yet               |
 * | `streamExists`  | `1` or more                                      |
 * | `n` (a number)  | exactly `n`                                      |
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = "any" | "no-stream" | "stream-exists" | number

/**
 * No check: append whatever the stream's version is.
 *
 * @since 0.1.0
 * @category constructors
 */
export const any: ExpectedVersion = "any"

/**
 * The stream must not exist yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const noStream: ExpectedVersion = "no-stream"

/**
 * The stream must already hold at least one event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const streamExists: ExpectedVersion = "stream-exists"

/**
 * The stream must be at exactly this version (`0`: it must not exist).
 *
 * @since 0.1.0
 * @category constructors
 */
export const exact = (version: number): ExpectedVersion => version

/**
 * @since 0.1.0
 * @category schemas
 */
export const ExpectedVersion: Schema.Schema<ExpectedVersion> = Schema.Union(
  Schema.Literal("any", "no-stream", "stream-exists"),
  Schema.NonNegativeInt
)

/**
 * Whether a stream at `actual` satisfies `expected`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSatisfiedBy = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected) {
    case "any":
      return true
    case "no-stream":
      return actual === 0
    case "stream-exists":
      return actual > 0
    default:
      return actual === expected
  }
}

/**
 * The largest version a stream can have: the SQL backends keep versions in a 32-bit column.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxVersion = 2_147_483_647

/**
 * `true` for one of the three named expectations or an integer from 0 to {@link maxVersion}.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isValid = (expected: ExpectedVersion): boolean =>
  expected === "any" || expected === "no-stream" || expected === "stream-exists" ||
  (Number.isSafeInteger(expected) && expected >= 0 && expected <= maxVersion)

/**
 * A phrase for messages: "version 3", "no stream", "an existing stream", "any version".
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (expected: ExpectedVersion): string => {
  switch (expected) {
    case "any":
      return "any version"
    case "no-stream":
      return "no stream"
    case "stream-exists":
      return "an existing stream"
    default:
      return `version ${expected}`
  }
}
