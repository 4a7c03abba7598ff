/**
 * Holds SQLite's write lock on a file for a while, as another process of the application would
 * in a long write: takes it (`BEGIN IMMEDIATE`), prints "locked", keeps it for the given number of
 * milliseconds (sleeping synchronously, as a busy process would), then commits and prints "done".
 */
import Database from "better-sqlite3"

const [filename, milliseconds] = process.argv.slice(2) as [string, string]
const database = new Database(filename, { timeout: 60_000 })
database.exec("BEGIN IMMEDIATE")
console.log("locked")
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(milliseconds))
database.exec("COMMIT")
database.close()
console.log("done")
