/**
 * The order of the events of one append in the global order: by stream id, then version.
 *
 * Stream ids compare by Unicode code points, which is how SQLite's BINARY collation and
 * PostgreSQL's "C" collation compare UTF-8 text, so every backend agrees. (JavaScript's `<`
 * compares UTF-16 code units, which differs for characters beyond U+FFFF.)
 */
export const compareStreamIds = (a: string, b: string): number => {
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(j)!
    if (x !== y) return x < y ? -1 : 1
    i += x > 0xffff ? 2 : 1
    j += y > 0xffff ? 2 : 1
  }
  return (a.length - i) - (b.length - j) === 0 ? 0 : i < a.length ? 1 : -1
}
