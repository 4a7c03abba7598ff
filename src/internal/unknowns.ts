/**
 * Looking into values of unknown type: a thrown value's message, a JSON object.
 */

/** The message of something thrown: an `Error`'s, or the value as text. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** A plain object (as JSON has them): not null, not an array. */
export const isRecord = (value: unknown): value is { readonly [key: string]: unknown } =>
  typeof value === "object" && value !== null && !Array.isArray(value)
