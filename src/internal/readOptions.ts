/**
 * Validation of read options, shared by every backend so they refuse the same arguments the
 * same way. Bad options are a programming error, so they are a defect
 * (`IllegalArgumentException`), not a typed failure a caller could handle.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Stream from "effect/Stream"
import type { CountOptions, ReadAllOptions, ReadStreamOptions, SubscribeOptions, VerifyOptions } from "../EventStore.js"

/** Events fetched per round trip when a read names no batch size. */
export const defaultBatchSize = 500

const isCount = (value: unknown, minimum: number): boolean =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= minimum

type AnyReadOptions = ReadStreamOptions & ReadAllOptions & SubscribeOptions

const problemOf = (options: AnyReadOptions | undefined): string | undefined => {
  if (options === undefined) return undefined
  if (options.direction !== undefined && options.direction !== "forward" && options.direction !== "backward") {
    return `direction must be "forward" or "backward", got ${JSON.stringify(options.direction)}`
  }
  if (options.from !== undefined && !isCount(options.from, 0)) {
    return `from must be a non-negative integer, got ${String(options.from)}`
  }
  if (options.limit !== undefined && !isCount(options.limit, 0)) {
    return `limit must be a non-negative integer, got ${String(options.limit)}`
  }
  if (options.batchSize !== undefined && !isCount(options.batchSize, 1)) {
    return `batchSize must be a positive integer, got ${String(options.batchSize)}`
  }
  if (options.pollInterval !== undefined) {
    const interval = Duration.decodeUnknown(options.pollInterval)
    if (interval._tag === "None" || !Duration.isFinite(interval.value) || Duration.toMillis(interval.value) <= 0) {
      return `pollInterval must be a positive, finite duration, got ${String(options.pollInterval)}`
    }
  }
  return undefined
}

/** The read, or a stream that dies with `IllegalArgumentException` when the options are invalid. */
export const validated = <A, E, R>(
  operation: string,
  options: AnyReadOptions | undefined,
  read: () => Stream.Stream<A, E, R>
): Stream.Stream<A, E, R> => {
  const problem = problemOf(options)
  return problem === undefined
    ? Stream.suspend(read)
    : Stream.die(new Cause.IllegalArgumentException(`${operation}: ${problem}`))
}

/** The most violations each check of `verify` lists; a bad limit is a defect, as bad read options are. */
export const verifyLimit = (options: VerifyOptions | undefined): number => {
  const limit = options?.limit ?? 100
  if (!isCount(limit, 1)) {
    throw new Cause.IllegalArgumentException(`verify: limit must be a positive integer, got ${String(limit)}`)
  }
  return limit
}

/** The most events `countAfter` counts (`Infinity` for all); a bad bound is a defect. */
export const countLimit = (options: CountOptions | undefined): number => {
  const upTo = options?.upTo
  if (upTo === undefined) return Infinity
  if (!isCount(upTo, 1)) {
    throw new Cause.IllegalArgumentException(`countAfter: upTo must be a positive integer, got ${String(upTo)}`)
  }
  return upTo
}
