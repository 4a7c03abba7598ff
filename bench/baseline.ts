/**
 * The baselines: the same work as the library, written directly against the drivers it uses
 * (`pg`, `better-sqlite3`), with no library code. They write the same tables and rows, in the
 * fewest round trips a careful hand-written store would need, and check versions as strictly:
 * they are what the database and driver cost by themselves.
 */
import type Database from "better-sqlite3"
import type pg from "pg"

export interface NewRow {
  readonly type: string
  readonly data: string
}

const now = "(EXTRACT(EPOCH FROM statement_timestamp()) / 86400)::numeric(12,7)"

/** PostgreSQL: one statement checks the stream's version, draws the position and inserts the events. */
export const pgAppend = (pool: pg.Pool | pg.PoolClient, schema: string) => {
  const insert = (stream: string, streamId: string, rows: ReadonlyArray<NewRow>, values: ReadonlyArray<unknown>) => {
    const n = rows.length
    return pool.query(
      `WITH stream AS (${stream}),
      position AS (SELECT nextval('${schema}.events_position_seq') AS value FROM stream)
      INSERT INTO ${schema}.events (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata)
      SELECT $1, e.name, e.details, 'bench', ${now}, stream.version - $2 + e.ordinality, position.value,
        gen_random_uuid()::text, '{}'
      FROM stream, position, unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(name, details, ordinality)`,
      [streamId, n, rows.map((row) => row.type), rows.map((row) => row.data), ...values]
    ).then((result) => {
      if (result.rowCount !== n) throw new Error(`conflict on ${streamId}`)
    })
  }
  return {
    /** An append that creates the stream. */
    create: (streamId: string, rows: ReadonlyArray<NewRow>) =>
      insert(
        `INSERT INTO ${schema}.entities (id, type, version, transaction_id)
        VALUES ($1, 'bench', $2, pg_current_xact_id()) ON CONFLICT (id) DO NOTHING RETURNING version`,
        streamId,
        rows,
        []
      ),
    /** An append expecting the stream at `version`. */
    exact: (streamId: string, version: number, rows: ReadonlyArray<NewRow>) =>
      insert(
        `UPDATE ${schema}.entities SET version = version + $2, transaction_id = pg_current_xact_id()
        WHERE id = $1 AND type = 'bench' AND version = $5 RETURNING version`,
        streamId,
        rows,
        [version]
      ),
    version: (streamId: string) =>
      pool.query(`SELECT version FROM ${schema}.entities WHERE id = $1`, [streamId]).then((result) =>
        result.rows[0]?.version ?? 0
      ) as Promise<number>
  }
}

/**
 * PostgreSQL, appends batched by hand: what a careful application could do with the driver
 * alone when it has many appends to new or existing streams at once. One statement stores a
 * batch over arrays: it creates (or moves, at the versions given) every stream, draws a position
 * for each, and inserts all their events; it fails, storing nothing, if any stream's check fails.
 */
export const pgBatchedAppend = (pool: pg.Pool, schema: string) => {
  const write = async (
    stream: string,
    batch: ReadonlyArray<{ readonly streamId: string; readonly version?: number; readonly rows: ReadonlyArray<NewRow> }>
  ) => {
    const events = batch.flatMap((append) => append.rows.map((row, index) => ({ append, row, k: index + 1 })))
    const result = await pool.query(
      `WITH input AS (SELECT * FROM unnest($1::text[], $2::int[], $3::int[]) AS a(id, count, expected)),
      stream AS (${stream}),
      positioned AS (SELECT id, version, nextval('${schema}.events_position_seq') AS position FROM stream)
      INSERT INTO ${schema}.events (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata)
      SELECT e.id, e.name, e.details, 'bench', ${now}, p.version - i.count + e.k, p.position, gen_random_uuid()::text, '{}'
      FROM unnest($4::text[], $5::int[], $6::text[], $7::text[]) AS e(id, k, name, details)
        JOIN positioned p ON p.id = e.id JOIN input i ON i.id = e.id
      -- A stream whose check failed fails the whole statement (division by zero), storing nothing.
      WHERE 1 / (CASE WHEN (SELECT count(*) FROM stream) = cardinality($1::text[]) THEN 1 ELSE 0 END) = 1`,
      [
        batch.map((append) => append.streamId),
        batch.map((append) => append.rows.length),
        batch.map((append) => append.version ?? 0),
        events.map(({ append }) => append.streamId),
        events.map(({ k }) => k),
        events.map(({ row }) => row.type),
        events.map(({ row }) => row.data)
      ]
    )
    if (result.rowCount !== events.length) throw new Error(`a conflict in a batch of ${batch.length}`)
  }
  return {
    /** Appends that create their streams. */
    create: (batch: ReadonlyArray<{ readonly streamId: string; readonly rows: ReadonlyArray<NewRow> }>) =>
      write(
        `INSERT INTO ${schema}.entities (id, type, version, transaction_id)
        SELECT id, 'bench', count, pg_current_xact_id() FROM input ON CONFLICT (id) DO NOTHING RETURNING id, version`,
        batch
      ),
    /** Appends expecting their streams at the versions given. */
    exact: (
      batch: ReadonlyArray<
        { readonly streamId: string; readonly version: number; readonly rows: ReadonlyArray<NewRow> }
      >
    ) =>
      write(
        `UPDATE ${schema}.entities AS s SET version = s.version + i.count, transaction_id = pg_current_xact_id()
        FROM input i WHERE s.id = i.id AND s.type = 'bench' AND s.version = i.expected RETURNING s.id, s.version`,
        batch
      ),
    /** The versions of several streams in one query. */
    versions: async (streamIds: ReadonlyArray<string>) => {
      const result = await pool.query(`SELECT id, version FROM ${schema}.entities WHERE id = ANY($1::text[])`, [
        streamIds
      ])
      const versions = new Map<string, number>(result.rows.map((row) => [row.id, row.version]))
      return streamIds.map((id) => versions.get(id) ?? 0)
    }
  }
}

/**
 * Group commit by hand over `write`: writers call `submit` and wait for their own append;
 * appends that come while a batch is in flight go together in the next one, one batch in flight
 * at a time (the batch starts after a microtask, so that writers ready at once share it).
 */
export const handGroupCommit = <A>(write: (batch: ReadonlyArray<A>) => Promise<void>) => {
  let queue: Array<{ readonly item: A; readonly done: (error?: unknown) => void }> = []
  let inFlight = false
  const flush = async () => {
    inFlight = true
    await Promise.resolve()
    while (queue.length > 0) {
      const batch = queue
      queue = []
      try {
        await write(batch.map((entry) => entry.item))
        batch.forEach((entry) => entry.done())
      } catch (error) {
        batch.forEach((entry) => entry.done(error))
      }
    }
    inFlight = false
  }
  return (item: A) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ item, done: (error) => (error === undefined ? resolve() : reject(error)) })
      if (!inFlight) void flush()
    })
}

/** SQLite, appends batched by hand: one immediate transaction for a batch, prepared statements. */
export const sqliteBatchedAppend = (database: Database.Database) => {
  const one = sqliteAppend(database)
  const inTransaction = <A>(batch: ReadonlyArray<A>, write: (append: A) => void) =>
    database.transaction(() => batch.forEach(write)).immediate()
  return {
    create: (batch: ReadonlyArray<{ readonly streamId: string; readonly rows: ReadonlyArray<NewRow> }>) =>
      inTransaction(batch, ({ rows, streamId }) => one.createIn(streamId, rows)),
    exact: (
      batch: ReadonlyArray<
        { readonly streamId: string; readonly version: number; readonly rows: ReadonlyArray<NewRow> }
      >
    ) => inTransaction(batch, ({ rows, streamId, version }) => one.exactIn(streamId, version, rows)),
    version: one.version
  }
}

/** SQLite: one immediate transaction checks the version, numbers the position and inserts. */
export const sqliteAppend = (database: Database.Database) => {
  const create = database.prepare(
    `INSERT INTO entities (id, type, version) VALUES (?, 'bench', ?) ON CONFLICT (id) DO NOTHING RETURNING version`
  )
  const move = database.prepare(
    `UPDATE entities SET version = version + ? WHERE id = ? AND type = 'bench' AND version = ? RETURNING version`
  )
  const next = database.prepare(
    `SELECT COALESCE(MAX(position), 0) + 1 AS position, julianday('now') - 2440587.5 AS timestamp FROM events`
  )
  const insert = database.prepare(
    `INSERT INTO events (entity_id, name, details, actor, timestamp, ordinal, position, event_id, metadata)
    VALUES (?, ?, ?, 'bench', ?, ?, ?, lower(hex(randomblob(16))), '{}')`
  )
  const version = database.prepare(`SELECT version FROM entities WHERE id = ?`).pluck()
  const write = (streamId: string, moved: { version: number } | undefined, rows: ReadonlyArray<NewRow>) => {
    if (moved === undefined) throw new Error(`conflict on ${streamId}`)
    const { position, timestamp } = next.get() as { position: number; timestamp: number }
    rows.forEach((row, index) =>
      insert.run(streamId, row.type, row.data, timestamp, moved.version - rows.length + index + 1, position)
    )
  }
  /** Inside a transaction already begun. */
  const createIn = (streamId: string, rows: ReadonlyArray<NewRow>) =>
    write(streamId, create.get(streamId, rows.length) as { version: number } | undefined, rows)
  const exactIn = (streamId: string, expected: number, rows: ReadonlyArray<NewRow>) =>
    write(streamId, move.get(rows.length, streamId, expected) as { version: number } | undefined, rows)
  return {
    create: database.transaction(createIn).immediate,
    exact: database.transaction(exactIn).immediate,
    createIn,
    exactIn,
    version: (streamId: string) => (version.get(streamId) as number | undefined) ?? 0
  }
}

/** PostgreSQL: one batch of the global order after a position, as a careful reader reads it. */
export const pgReadBatch = async (
  client: pg.Client | pg.Pool,
  schema: string,
  after: { readonly transaction: string; readonly position: string },
  size: number
) =>
  (await client.query(
    `SELECT e.entity_id, s.type, e.ordinal, e.position::text AS position, e.transaction_id::text AS transaction_id,
      e.name, e.details, e.actor, e.timestamp::text AS timestamp, e.event_id, e.metadata
    FROM ${schema}.events e JOIN ${schema}.entities s ON s.id = e.entity_id
    WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint)
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position LIMIT $3`,
    [after.transaction, after.position, size]
  )).rows as Array<
    { readonly transaction_id: string; readonly position: string; readonly name: string; readonly details: string }
  >

/** SQLite: the statement that reads one batch of the global order after a position. */
export const sqliteReadBatch = (database: Database.Database) =>
  database.prepare(
    `SELECT e.entity_id, s.type, e.ordinal, e.position, e.name, e.details, e.actor, e.timestamp, e.event_id, e.metadata
    FROM events e JOIN entities s ON s.id = e.entity_id WHERE e.position > ? ORDER BY e.position LIMIT ?`
  )
