/**
 * Who caused an event and why: the actor and the correlation and causation ids written with
 * every event.
 *
 * They come from the Effect context of the fiber that appends, so an HTTP middleware can set
 * them once per request and every append made while handling it carries them:
 *
 * ```ts
 * import { Metadata } from "effect-eventsourcing"
 *
 * const handled = handleRequest.pipe(
 *   Metadata.withActor(`user:${session.userId}`),
 *   Metadata.withCorrelationId(request.headers["x-request-id"])
 * )
 * ```
 *
 * Without them, events are written with the actor `"system"` and no correlation or causation id.
 * An event can also carry its own metadata, which takes precedence over the context.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/**
 * The metadata stored with an event: its correlation and causation ids and free-form entries
 * (any JSON values).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventMetadata {
  readonly correlationId?: string
  readonly causationId?: string
  readonly [entry: string]: unknown
}

/**
 * The actor used when the context sets none.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultActor = "system"

/**
 * The actor written with each event (the protocol's required `actor` column): a user id, a
 * service name, whoever caused the change. Defaults to {@link defaultActor}.
 *
 * @since 0.1.0
 * @category context
 */
export class Actor extends Context.Reference<Actor>()("effect-eventsourcing/Actor", {
  defaultValue: (): string => defaultActor
}) {}

/**
 * The correlation id written with each event: the id shared by everything done for one
 * request or workflow. None by default.
 *
 * @since 0.1.0
 * @category context
 */
export class CorrelationId extends Context.Reference<CorrelationId>()("effect-eventsourcing/CorrelationId", {
  defaultValue: (): string | undefined => undefined
}) {}

/**
 * The causation id written with each event: the id of the message (command or event) that
 * caused it. None by default.
 *
 * @since 0.1.0
 * @category context
 */
export class CausationId extends Context.Reference<CausationId>()("effect-eventsourcing/CausationId", {
  defaultValue: (): string | undefined => undefined
}) {}

/**
 * Free-form metadata entries written with each event (a tenant id, a client version...).
 * Empty by default.
 *
 * @since 0.1.0
 * @category context
 */
export class Entries extends Context.Reference<Entries>()("effect-eventsourcing/MetadataEntries", {
  defaultValue: (): Readonly<Record<string, unknown>> => ({})
}) {}

/**
 * Runs an effect with the actor that its appends record.
 *
 * @since 0.1.0
 * @category context
 */
export const withActor = (actor: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, Actor, actor)

/**
 * Runs an effect with the correlation id that its appends record.
 *
 * @since 0.1.0
 * @category context
 */
export const withCorrelationId =
  (correlationId: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provideService(self, CorrelationId, correlationId)

/**
 * Runs an effect with the causation id that its appends record.
 *
 * @since 0.1.0
 * @category context
 */
export const withCausationId =
  (causationId: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provideService(self, CausationId, causationId)

/**
 * Runs an effect with extra metadata entries, added to those already in its context.
 *
 * @since 0.1.0
 * @category context
 */
export const withEntries =
  (entries: Readonly<Record<string, unknown>>) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(Entries, (current) => Effect.provideService(self, Entries, { ...current, ...entries }))

/**
 * What the context says an appended event records: its actor and metadata. An event's own
 * metadata is laid over this by the store.
 *
 * @since 0.1.0
 * @category context
 */
export const current: Effect.Effect<{ readonly actor: string; readonly metadata: EventMetadata }> = Effect
  .contextWith((context) => {
    const correlationId = Context.get(context, CorrelationId)
    const causationId = Context.get(context, CausationId)
    return {
      actor: Context.get(context, Actor),
      metadata: {
        ...Context.get(context, Entries),
        ...(correlationId === undefined ? {} : { correlationId }),
        ...(causationId === undefined ? {} : { causationId })
      }
    }
  })
