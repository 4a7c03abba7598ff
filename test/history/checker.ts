/**
 * The history checker: a pure function from what a randomized concurrent run recorded (every
 * operation with its invocation and completion times and its outcome, what readers saw, and
 * the store's final state) to the list of guarantees the run broke.
 *
 * It knows nothing of how the history was produced, so it can be fed a deliberately broken
 * history (see checker.test.ts) as well as a real one. Times are microseconds on one clock that
 * every recorded process shares; only strict comparisons are used, so equal times order
 * nothing.
 *
 * An operation is one call of `append` or `appendMany` (possibly inside an application
 * transaction). Operations that send the same event ids form a *group*: the first one and its
 * retries. Event ids are unique per group, so the checker finds each group's events in the
 * store by id, and the group's fate is all of its events stored once, or none.
 */
import { ExpectedVersion } from "effect-eventsourcing"

/** An event as a reader or the final read returned it. */
export interface EventRecord {
  readonly id: string
  readonly streamId: string
  readonly streamType: string
  readonly version: number
  /** `Position.toString`: `"<transaction>:<sequence>"`. */
  readonly position: string
  readonly type: string
  readonly data: unknown
}

export interface RequestRecord {
  readonly streamId: string
  readonly streamType: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<{ readonly id: string; readonly type: string; readonly data: unknown }>
}

export interface ResultRecord {
  readonly streamId: string
  readonly version: number
  readonly position: string
  readonly events: ReadonlyArray<{ readonly id: string; readonly version: number; readonly position: string }>
}

export interface ConflictRecord {
  readonly streamId: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly actualVersion: number
}

export type ErrorRecord =
  | ({ readonly _tag: "ConcurrencyError"; readonly others: ReadonlyArray<ConflictRecord> } & ConflictRecord)
  | {
    readonly _tag: "StreamTypeMismatchError"
    readonly streamId: string
    readonly expectedType: string
    readonly actualType: string
  }
  | { readonly _tag: "InvalidAppendError"; readonly streamId: string; readonly reason: string }
  | { readonly _tag: "TransactionConflictError"; readonly streamId: string }

export type Outcome =
  | { readonly _tag: "Acknowledged"; readonly results: ReadonlyArray<ResultRecord> }
  /** A typed refusal that promises nothing was stored. */
  | { readonly _tag: "Failed"; readonly error: ErrorRecord }
  /** EventStoreError, interruption, a failed commit: stored all of it or nothing. */
  | { readonly _tag: "Unknown"; readonly reason: string }
  /** A failure no append should have (a defect): counted as unknown, and reported. */
  | { readonly _tag: "Unexpected"; readonly cause: string }

export interface Operation {
  readonly id: string
  /** Which process ran it, for messages. */
  readonly process: string
  readonly kind: "append" | "appendMany"
  readonly requests: ReadonlyArray<RequestRecord>
  /** The operation whose request this one sends again, with the same event ids. */
  readonly retryOf?: string
  /** Ids of other operations' stored events that this one reuses on purpose: it must be refused. */
  readonly reusedIds?: ReadonlyArray<string>
  /** Malformed on purpose (one stream twice in an appendMany): it must be refused. */
  readonly malformed?: boolean
  /** Run inside an application transaction that also wrote an outbox row keyed by the group. */
  readonly transaction?: { readonly writesFirst: boolean; readonly outbox: boolean }
  readonly invokedAt: number
  readonly completedAt: number
  readonly outcome: Outcome
}

export interface Reader {
  readonly name: string
  readonly events: ReadonlyArray<EventRecord>
  /** Where each chunk the reader received ended (an index into `events`), when it records chunks. */
  readonly chunkEnds?: ReadonlyArray<number>
}

export interface ReadModelRow {
  readonly applied: number
  readonly total: number
  /** The versions of the stream's consumed events, comma-separated, in the order applied. */
  readonly versions: string
}

export interface History {
  readonly operations: ReadonlyArray<Operation>
  /** The final `readAll`. */
  readonly all: ReadonlyArray<EventRecord>
  /** The final `readStream` of every stream any request named. */
  readonly streams: Readonly<Record<string, ReadonlyArray<EventRecord>>>
  /** Subscribers and other readers of the global order, each expected to have read all of it. */
  readonly readers: ReadonlyArray<Reader>
  readonly projection?: {
    readonly consumes: ReadonlyArray<string>
    readonly readModel: Readonly<Record<string, ReadModelRow>>
  }
  /** The outbox rows committed by application transactions (absent where there is no outbox). */
  readonly outbox?: ReadonlyArray<string>
  /** What `EventStore.verify` reported at the end. */
  readonly verify?: ReadonlyArray<unknown>
}

export type ViolationKind =
  | "DuplicateEvent"
  | "PhantomEvent"
  | "StoredWrongly"
  | "LostAppend"
  | "PartialAppend"
  | "WrongResult"
  | "FailedButStored"
  | "ExpectationBroken"
  | "ImplausibleConflict"
  | "ImplausibleRefusal"
  | "AcceptedInvalid"
  | "UnexpectedFailure"
  | "VersionGap"
  | "ReadMismatch"
  | "GlobalOrder"
  | "RealTime"
  | "ReaderDuplicate"
  | "ReaderSkip"
  | "ReaderReorder"
  | "ReaderIncomplete"
  | "SplitChunk"
  | "ProjectionMismatch"
  | "OutboxMismatch"
  | "VerifyReported"

export interface Violation {
  readonly kind: ViolationKind
  readonly message: string
}

/** The position before the first event, as append results report it for an empty stream. */
const startPosition = "0:0"

const parsePosition = (text: string): readonly [bigint, bigint] => {
  const [transaction, sequence] = text.split(":")
  return [BigInt(transaction!), BigInt(sequence!)]
}

const comparePositions = (a: string, b: string): number => {
  const [at, as] = parsePosition(a)
  const [bt, bs] = parsePosition(b)
  return at !== bt ? (at < bt ? -1 : 1) : as !== bs ? (as < bs ? -1 : 1) : 0
}

/** A stream id order that agrees with the store's (code points) for the ASCII ids used here. */
const compareStreamIds = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const json = (value: unknown) => JSON.stringify(value)

/** Records in one key order, so that equal records print equal whoever built them. */
const canonicalEvent = (event: EventRecord) =>
  json([event.id, event.streamId, event.streamType, event.version, event.position, event.type, event.data])

const canonicalResults = (results: ReadonlyArray<ResultRecord>) =>
  json(results.map((result) => [
    result.streamId,
    result.version,
    result.position,
    result.events.map((event) => [event.id, event.version, event.position])
  ]))

interface Group {
  readonly root: Operation
  readonly operations: Array<Operation>
  readonly ids: ReadonlyArray<string>
  /** Stored: all of its events are in the final readAll. */
  stored: boolean
  /** The first time an operation of the group was acknowledged: its events were stored by then. */
  ackTime: number
  /** The first time an operation of the group that may have stored it was invoked: its events were stored after. */
  invokeTime: number
  /** The index of its position among the final order's positions, when stored. */
  positionIndex: number
  position: string
}

/** One append's part in one stream, as stored: the versions it moved the stream between. */
interface Segment {
  readonly group: Group
  readonly from: number
  readonly to: number
  readonly position: string
}

const isCandidate = (operation: Operation) => operation.outcome._tag !== "Failed"

/** Checks a history; returns every violation found (empty when the run kept every guarantee). */
export const check = (history: History): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  const report = (kind: ViolationKind, message: string) => violations.push({ kind, message })

  // --- The final global order: each event once, positions ascending, an append's events together.
  const all = history.all
  const byId = new Map<string, EventRecord>()
  for (const event of all) {
    if (byId.has(event.id)) report("DuplicateEvent", `readAll returned event ${event.id} twice`)
    byId.set(event.id, event)
  }
  const positions: Array<string> = []
  const positionIndex = new Map<string, number>()
  all.forEach((event, index) => {
    const previous = all[index - 1]
    if (previous === undefined || previous.position !== event.position) {
      if (previous !== undefined && comparePositions(previous.position, event.position) >= 0) {
        report(
          "GlobalOrder",
          `readAll returned position ${event.position} (event ${event.id}) after ${previous.position} (event ${previous.id})`
        )
      }
      if (positionIndex.has(event.position)) {
        report("GlobalOrder", `the events at position ${event.position} are not together in readAll`)
      }
      positionIndex.set(event.position, positions.length)
      positions.push(event.position)
    } else {
      const order = compareStreamIds(previous.streamId, event.streamId) || previous.version - event.version
      if (order >= 0) {
        report(
          "GlobalOrder",
          `within position ${event.position}, ${previous.streamId}@${previous.version} comes before ${event.streamId}@${event.version}`
        )
      }
    }
  })
  // Each stream's events in version order, 1 to n, in the global order.
  const globalVersions = new Map<string, number>()
  for (const event of all) {
    const expected = (globalVersions.get(event.streamId) ?? 0) + 1
    if (event.version !== expected) {
      report(
        "GlobalOrder",
        `readAll has ${event.streamId}@${event.version} (event ${event.id}) where version ${expected} was due`
      )
    }
    globalVersions.set(event.streamId, Math.max(expected, event.version))
  }

  // --- Each stream as readStream returns it: gapless 1..n, one type, the same events as readAll.
  for (const [streamId, events] of Object.entries(history.streams)) {
    events.forEach((event, index) => {
      if (event.version !== index + 1) {
        report("VersionGap", `stream ${streamId} holds version ${event.version} at place ${index + 1}`)
      }
      if (event.streamType !== events[0]!.streamType) {
        report(
          "StoredWrongly",
          `stream ${streamId} has events of types ${events[0]!.streamType} and ${event.streamType}`
        )
      }
    })
    const inAll = all.filter((event) => event.streamId === streamId)
    const length = Math.max(inAll.length, events.length)
    for (let index = 0; index < length; index++) {
      const [a, b] = [events[index], inAll[index]]
      if (a === undefined || b === undefined || canonicalEvent(a) !== canonicalEvent(b)) {
        report(
          "ReadMismatch",
          `stream ${streamId} at place ${index + 1}: readStream has ${
            a === undefined ? "nothing" : `${a.id}@${a.version} ${a.position}`
          }, readAll has ${b === undefined ? "nothing" : `${b.id}@${b.version} ${b.position}`}`
        )
        break
      }
    }
  }
  for (const streamId of new Set(all.map((event) => event.streamId))) {
    if (history.streams[streamId] === undefined) {
      report("PhantomEvent", `readAll has events of stream ${streamId}, which no request named`)
    }
  }
  const streamType = (streamId: string) => history.streams[streamId]?.[0]?.streamType

  // --- Groups: an operation and its retries, which send the same event ids.
  const operationsById = new Map(history.operations.map((operation) => [operation.id, operation]))
  const groups = new Map<string, Group>()
  const owner = new Map<string, Group>()
  const rootOf = (operation: Operation): Operation => {
    let current = operation
    while (current.retryOf !== undefined) {
      const next = operationsById.get(current.retryOf)
      if (next === undefined) {
        throw new Error(`operation ${current.id} retries the unknown operation ${current.retryOf}`)
      }
      current = next
    }
    return current
  }
  const groupOf = new Map<Operation, Group>()
  for (const operation of history.operations) {
    const root = rootOf(operation)
    let group = groups.get(root.id)
    if (group === undefined) {
      const reused = new Set(root.reusedIds ?? [])
      const ids = root.requests.flatMap((request) => request.events.map((event) => event.id)).filter((id) =>
        !reused.has(id)
      )
      group = {
        root,
        operations: [],
        ids,
        stored: false,
        ackTime: Infinity,
        invokeTime: Infinity,
        positionIndex: -1,
        position: ""
      }
      groups.set(root.id, group)
      for (const id of ids) {
        // The workload, not the store, would be wrong: two operations made up one id.
        if (owner.has(id) && owner.get(id) !== group) {
          throw new Error(`event id ${id} is sent by two operations (${owner.get(id)!.root.id}, ${root.id})`)
        }
        owner.set(id, group)
      }
    }
    group.operations.push(operation)
    groupOf.set(operation, group)
  }

  for (const event of all) {
    if (!owner.has(event.id)) {
      report("PhantomEvent", `stored event ${event.id} (${event.streamId}@${event.version}) was sent by no operation`)
    }
  }

  for (const group of groups.values()) {
    const requestOf = new Map<string, { readonly request: RequestRecord; readonly index: number }>()
    for (const request of group.root.requests) {
      request.events.forEach((event, index) => requestOf.set(event.id, { request, index }))
    }
    const stored = group.ids.filter((id) => byId.has(id))
    const acknowledged = group.operations.filter((operation) => operation.outcome._tag === "Acknowledged")
    group.ackTime = Math.min(...acknowledged.map((operation) => operation.completedAt))
    group.invokeTime = Math.min(...group.operations.filter(isCandidate).map((operation) => operation.invokedAt))
    if (stored.length > 0 && stored.length < group.ids.length) {
      report(
        "PartialAppend",
        `operation ${group.root.id}: ${stored.length} of its ${group.ids.length} events are stored`
      )
    }
    if (stored.length === 0 || stored.length < group.ids.length) {
      if (acknowledged.length > 0 && group.ids.length > 0) {
        report(
          "LostAppend",
          `operation ${acknowledged[0]!.id} was acknowledged, but ${
            group.ids.length - stored.length
          } of its events are not stored`
        )
      }
      continue
    }
    if (group.ids.length === 0) continue
    group.stored = true
    const storedEvents = group.ids.map((id) => byId.get(id)!)
    group.position = storedEvents[0]!.position
    group.positionIndex = positionIndex.get(group.position)!
    if (storedEvents.some((event) => event.position !== group.position)) {
      report(
        "PartialAppend",
        `operation ${group.root.id} is stored at several positions: ${
          [...new Set(storedEvents.map((event) => event.position))].join(", ")
        }`
      )
    }
    // Stored as sent, at consecutive versions that the request's expectation allowed.
    for (const request of group.root.requests) {
      const events = request.events.map((event) => byId.get(event.id)!)
      events.forEach((event, index) => {
        const sent = request.events[index]!
        if (
          event.streamId !== request.streamId || event.type !== sent.type || json(event.data) !== json(sent.data) ||
          event.streamType !== request.streamType || event.version !== events[0]!.version + index
        ) {
          report(
            "StoredWrongly",
            `event ${event.id} is stored as ${json(event)}, but was sent as ${
              json({ ...sent, streamId: request.streamId })
            }`
          )
        }
      })
      const before = events[0] === undefined ? undefined : events[0].version - 1
      if (before !== undefined && !ExpectedVersion.isSatisfiedBy(request.expectedVersion, before)) {
        report(
          "ExpectationBroken",
          `operation ${group.root.id} expected ${
            json(request.expectedVersion)
          } of ${request.streamId}, but is stored after version ${before}`
        )
      }
    }
    for (const operation of acknowledged) {
      if (operation.outcome._tag !== "Acknowledged") continue
      const results = operation.outcome.results
      const expected = group.root.requests.map((request): ResultRecord => {
        const events = request.events.map((event) => byId.get(event.id)!)
        return {
          streamId: request.streamId,
          version: events.at(-1)!.version,
          position: group.position,
          events: events.map((event) => ({ id: event.id, version: event.version, position: event.position }))
        }
      })
      if (canonicalResults(results) !== canonicalResults(expected)) {
        report(
          "WrongResult",
          `operation ${operation.id}${
            operation.retryOf === undefined ? "" : ` (a retry of ${operation.retryOf})`
          } returned ${json(results)}, but the store holds ${json(expected)}`
        )
      }
    }
  }

  // --- Each stream's history as segments (which append moved it from which version to which).
  const segments = new Map<string, Array<Segment>>()
  for (const [streamId, events] of Object.entries(history.streams)) {
    const list: Array<Segment> = []
    for (const event of events) {
      const group = owner.get(event.id)
      if (group === undefined) continue
      const last = list.at(-1)
      if (last !== undefined && last.group === group) {
        list[list.length - 1] = { ...last, to: event.version }
      } else {
        list.push({ group, from: event.version - 1, to: event.version, position: event.position })
      }
    }
    segments.set(streamId, list)
  }

  /**
   * Whether an operation could have seen `streamId` at `version` at some moment between its
   * invocation and its completion: the version must be one the stream really had (0, or the
   * end of an append), not reached only after the operation completed, and not left behind
   * before it began.
   */
  const versionSeen = (operation: Operation, streamId: string, version: number): string | undefined => {
    const list = segments.get(streamId) ?? []
    const index = version === 0 ? -1 : list.findIndex((segment) => segment.to === version)
    if (version !== 0 && index === -1) {
      return `${streamId} never was at version ${version} (its appends end at ${
        [0, ...list.map((segment) => segment.to)].join(", ")
      })`
    }
    const producer = index === -1 ? undefined : list[index]!
    const next = list[index + 1]
    if (producer !== undefined && producer.group.invokeTime > operation.completedAt) {
      return `${streamId} reached version ${version} only through ${producer.group.root.id}, invoked after this operation completed`
    }
    if (next !== undefined && next.group.ackTime < operation.invokedAt) {
      return `${streamId} had moved past version ${version} (${next.group.root.id} was acknowledged) before this operation was invoked`
    }
    return undefined
  }

  // --- Each operation's outcome, judged against the store.
  for (const operation of history.operations) {
    const group = groupOf.get(operation)!
    const outcome = operation.outcome
    const where = `operation ${operation.id} (${operation.process})`
    // A retry sends its group's request again, invalid on purpose or not.
    const deliberatelyInvalid = group.root.malformed === true || (group.root.reusedIds?.length ?? 0) > 0
    if (outcome._tag === "Unexpected") report("UnexpectedFailure", `${where} failed unexpectedly: ${outcome.cause}`)
    if (outcome._tag === "Acknowledged") {
      if (deliberatelyInvalid) {
        report("AcceptedInvalid", `${where} should have been refused as invalid, but was acknowledged`)
      }
      // An append with no events reads the stream: its result must be a state the stream had.
      operation.requests.forEach((request, index) => {
        if (request.events.length > 0) return
        const result = outcome.results[index]
        if (result === undefined || result.streamId !== request.streamId) {
          return report("WrongResult", `${where} returned no result for ${request.streamId}`)
        }
        const problem = versionSeen(operation, request.streamId, result.version)
        if (problem !== undefined) {
          return report("WrongResult", `${where} (no events) returned version ${result.version}: ${problem}`)
        }
        const producer = (segments.get(request.streamId) ?? []).find((segment) => segment.to === result.version)
        const position = producer?.position ?? startPosition
        if (result.position !== position) {
          report(
            "WrongResult",
            `${where} (no events) returned position ${result.position} for ${request.streamId}@${result.version}, where ${position} is due`
          )
        }
        if (!ExpectedVersion.isSatisfiedBy(request.expectedVersion, result.version)) {
          report(
            "ExpectationBroken",
            `${where} (no events) expected ${json(request.expectedVersion)} and succeeded at version ${result.version}`
          )
        }
      })
    }
    if (outcome._tag !== "Failed") continue
    const error = outcome.error
    // A refusal promises nothing was stored; of a group stored by then, it should have been a retry.
    const candidates = group.operations.filter((other) => other !== operation && isCandidate(other))
    if (group.stored && candidates.every((other) => other.completedAt < operation.invokedAt)) {
      report(
        "FailedButStored",
        `${where} failed with ${error._tag}, but its events are stored${
          candidates.length === 0
            ? " and no operation of its group could have stored them"
            : `, by ${candidates.map((other) => other.id).join(", ")}, which completed before it began`
        }`
      )
    }
    const requestFor = (streamId: string) => operation.requests.find((request) => request.streamId === streamId)
    switch (error._tag) {
      case "ConcurrencyError": {
        const named = [error, ...error.others]
        if (new Set(named.map((conflict) => conflict.streamId)).size !== named.length) {
          report("ImplausibleConflict", `${where}: the ConcurrencyError names a stream twice: ${json(named)}`)
        }
        for (const conflict of named) {
          const request = requestFor(conflict.streamId)
          if (request === undefined) {
            report(
              "ImplausibleConflict",
              `${where}: the ConcurrencyError names ${conflict.streamId}, which the operation did not append to`
            )
            continue
          }
          if (json(request.expectedVersion) !== json(conflict.expectedVersion)) {
            report(
              "ImplausibleConflict",
              `${where}: the ConcurrencyError says ${conflict.streamId} was expected at ${
                json(conflict.expectedVersion)
              }, but the request expected ${json(request.expectedVersion)}`
            )
          }
          if (ExpectedVersion.isSatisfiedBy(request.expectedVersion, conflict.actualVersion)) {
            report(
              "ImplausibleConflict",
              `${where}: ${conflict.streamId} at version ${conflict.actualVersion} satisfies the expected ${
                json(request.expectedVersion)
              }, yet the append was refused`
            )
          }
          const problem = versionSeen(operation, conflict.streamId, conflict.actualVersion)
          if (problem !== undefined) {
            report(
              "ImplausibleConflict",
              `${where}: the ConcurrencyError reports version ${conflict.actualVersion}, but ${problem}`
            )
          }
          const type = streamType(conflict.streamId)
          if (conflict.actualVersion > 0 && type !== undefined && type !== request.streamType) {
            report(
              "ImplausibleConflict",
              `${where}: ${conflict.streamId} has type ${type}, not ${request.streamType}: the refusal should be a StreamTypeMismatchError`
            )
          }
        }
        break
      }
      case "StreamTypeMismatchError": {
        const request = requestFor(error.streamId)
        const type = streamType(error.streamId)
        if (
          request === undefined || error.expectedType !== request.streamType || type === undefined ||
          error.actualType !== type || type === request.streamType
        ) {
          report(
            "ImplausibleRefusal",
            `${where}: ${json(error)} does not match the request ${json(request)} or the stored type ${json(type)}`
          )
        }
        break
      }
      case "InvalidAppendError": {
        if (!deliberatelyInvalid) {
          report("ImplausibleRefusal", `${where} was well formed, but was refused as invalid: ${error.reason}`)
        }
        break
      }
      case "TransactionConflictError": {
        // Only a transaction that wrote before appending can come too late for a stream.
        if (operation.transaction?.writesFirst !== true) {
          report(
            "ImplausibleRefusal",
            `${where} got a TransactionConflictError for ${error.streamId}, but no transaction of it wrote before appending`
          )
        }
        break
      }
    }
  }

  // --- Real time: an append acknowledged before another was invoked comes first in the order.
  const stored = [...groups.values()].filter((group) => group.stored)
  const byAck = stored.filter((group) => group.ackTime < Infinity).sort((a, b) => a.ackTime - b.ackTime)
  const byInvoke = [...stored].sort((a, b) => a.invokeTime - b.invokeTime)
  let latest: Group | undefined
  let next = 0
  for (const group of byInvoke) {
    while (next < byAck.length && byAck[next]!.ackTime < group.invokeTime) {
      const candidate = byAck[next++]!
      if (latest === undefined || candidate.positionIndex > latest.positionIndex) latest = candidate
    }
    if (latest !== undefined && latest.positionIndex > group.positionIndex) {
      report(
        "RealTime",
        `${latest.root.id} was acknowledged before ${group.root.id} was invoked, but comes after it in the global order (${latest.position} > ${group.position})`
      )
    }
  }

  // --- Readers: each saw exactly the final order, in whole appends per chunk.
  for (const reader of history.readers) {
    const seen = new Set<string>()
    for (let index = 0; index < reader.events.length; index++) {
      const event = reader.events[index]!
      const due = all[index]
      if (due !== undefined && event.id === due.id && canonicalEvent(event) === canonicalEvent(due)) {
        seen.add(event.id)
        continue
      }
      if (seen.has(event.id)) {
        report("ReaderDuplicate", `${reader.name} received event ${event.id} a second time, at place ${index + 1}`)
      } else if (due !== undefined && !byId.has(event.id)) {
        report(
          "ReaderReorder",
          `${reader.name} received event ${event.id} at place ${index + 1}, which the final readAll does not hold`
        )
      } else if (due !== undefined && reader.events.slice(index).every((later) => later.id !== due.id)) {
        report(
          "ReaderSkip",
          `${reader.name} never received event ${due.id} (${due.streamId}@${due.version}, place ${index + 1})`
        )
      } else {
        report(
          "ReaderReorder",
          `${reader.name} received ${event.id} at place ${index + 1}, where the final order has ${due?.id ?? "nothing"}`
        )
      }
      break
    }
    if (reader.events.length < all.length && reader.events.every((event, index) => event.id === all[index]!.id)) {
      report("ReaderIncomplete", `${reader.name} stopped after ${reader.events.length} of ${all.length} events`)
    }
    for (const end of reader.chunkEnds ?? []) {
      const [last, first] = [reader.events[end - 1], reader.events[end]]
      if (last !== undefined && first !== undefined && last.position === first.position) {
        report("SplitChunk", `${reader.name} received the append at ${last.position} split across two chunks`)
      }
    }
  }

  // --- The projection: its read model is the fold of every consumed event, each applied once.
  if (history.projection !== undefined) {
    const consumes = new Set(history.projection.consumes)
    const fold: Record<string, ReadModelRow> = {}
    for (const event of all) {
      if (!consumes.has(event.type)) continue
      const row = fold[event.streamId] ?? { applied: 0, total: 0, versions: "" }
      const amount = (event.data as { readonly amount: number }).amount
      fold[event.streamId] = {
        applied: row.applied + 1,
        total: row.total + (event.type === "Withdrawn" ? -amount : amount),
        versions: row.versions === "" ? String(event.version) : `${row.versions},${event.version}`
      }
    }
    const model = history.projection.readModel
    for (const streamId of new Set([...Object.keys(fold), ...Object.keys(model)])) {
      if (json(fold[streamId]) !== json(model[streamId])) {
        report(
          "ProjectionMismatch",
          `the read model of ${streamId} is ${json(model[streamId])}, the fold of its events ${json(fold[streamId])}`
        )
      }
    }
  }

  // --- Application transactions: their outbox row commits with their events, or neither does.
  if (history.outbox !== undefined) {
    const outbox = new Set(history.outbox)
    for (const group of groups.values()) {
      if (group.root.transaction?.outbox !== true) continue
      if (outbox.has(group.root.id) !== group.stored) {
        report(
          "OutboxMismatch",
          `the transaction of ${group.root.id} committed ${
            group.stored ? "its events but not its outbox row" : "its outbox row but not its events"
          }`
        )
      }
    }
  }

  for (const violation of history.verify ?? []) report("VerifyReported", `verify reported ${json(violation)}`)
  return violations
}
