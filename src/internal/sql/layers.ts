/**
 * The failures of building a SQL store layer, as one typed error.
 */
import * as Cause from "effect/Cause"
import * as Layer from "effect/Layer"
import { EventStoreError } from "../../Errors.js"

/**
 * Turns every failure of a layer (a typed error, or a defect such as the driver throwing when a
 * file cannot be opened) into an `EventStoreError` naming what was being done. Interruption stays
 * interruption.
 */
export const failingAs = (operation: string) => <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, EventStoreError, R> =>
  Layer.catchAllCause(layer, (cause) => {
    if (Cause.isInterruptedOnly(cause)) return Layer.failCause(cause as Cause.Cause<never>)
    const error = Cause.squash(cause)
    return Layer.fail(error instanceof EventStoreError ? error : new EventStoreError({ operation, cause: error }))
  })
