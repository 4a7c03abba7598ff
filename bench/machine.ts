/**
 * The machine and database settings a run's figures depend on, recorded with them.
 */
import Database from "better-sqlite3"
import { cpus, totalmem } from "node:os"
import pg from "pg"
import { databaseUrl } from "./support.js"

export interface Machine {
  readonly cores: number
  readonly cpu: string
  readonly memoryGiB: number
  readonly node: string
  readonly postgres: Readonly<Record<string, string>>
  readonly sqlite: Readonly<Record<string, string>>
}

export const describe = async (): Promise<Machine> => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const setting = async (name: string) =>
    (await client.query(`SELECT current_setting($1) AS value`, [name])).rows[0].value
  const postgres = {
    version: (await client.query(`SHOW server_version`)).rows[0].server_version,
    synchronous_commit: await setting("synchronous_commit"),
    fsync: await setting("fsync"),
    shared_buffers: await setting("shared_buffers"),
    default_transaction_isolation: await setting("default_transaction_isolation")
  }
  await client.end()
  const database = new Database(":memory:")
  const sqlite = {
    version: String(database.prepare(`SELECT sqlite_version()`).pluck().get()),
    journal_mode: "wal (files)",
    synchronous: String(database.pragma("synchronous", { simple: true })) + " (2 = FULL, the default)"
  }
  database.close()
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres,
    sqlite
  }
}
