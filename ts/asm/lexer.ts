/**
 * Line tokenizer of the assembler, shared by both dialects, and the cursor the dialect parsers read
 * tokens through. Every token keeps its 1-based column so that errors can point at it.
 */
import { AssembleError } from '../errors.js'

export type TokenKind = 'ident' | 'number' | 'reg' | 'punct'

export interface Token {
  kind: TokenKind
  text: string
  /** 1-based column in the source line. */
  col: number
}

// Longest first, so that `<<=` is not read as `<`, `<=`.
const PUNCTUATION = [
  '<<=',
  '>>=',
  '==',
  '!=',
  '>=',
  '<=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '|=',
  '&=',
  '^=',
  '=',
  '<',
  '>',
  '&',
  '(',
  ')',
  '[',
  ']',
  '*',
  '+',
  '-',
  ',',
  ':',
]

// The kernel dialect writes signed operations as `s` glued to the operator (`s>>=`, `s<`).
// Longest first, as above.
const SIGNED_OPERATORS = ['>>=', '/=', '%=', '<=', '>=', '<', '>']

const IDENT_START = /[A-Za-z_.$]/
const IDENT_CHAR = /[A-Za-z0-9_.$]/

// `bpf_map_lookup_elem#1`: how the kernel's verifier log names a helper call. That `#` is part of
// the name, not a comment.
const HELPER_SUFFIX = /[A-Za-z_]#[0-9]/y

/** Index where a comment (`#`, `//`, `;`) starts, or the line length. */
export function commentStart(line: string): number {
  let end = line.length
  for (const marker of ['#', '//', ';']) {
    let at = line.indexOf(marker)
    while (marker === '#' && at > 0 && isHelperSuffix(line, at)) at = line.indexOf(marker, at + 1)
    if (at >= 0 && at < end) end = at
  }
  return end
}

function isHelperSuffix(line: string, hash: number): boolean {
  HELPER_SUFFIX.lastIndex = hash - 1
  return HELPER_SUFFIX.test(line)
}

/** Tokenizes `line` from index `start` (comments must already be cut off). */
export function tokenize(line: string, lineNo: number, start = 0): Token[] {
  const tokens: Token[] = []
  let i = start
  while (i < line.length) {
    const c = line[i]!
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++
      continue
    }
    const col = i + 1
    if (IDENT_START.test(c)) {
      let j = i + 1
      while (j < line.length && IDENT_CHAR.test(line[j]!)) j++
      if (line[j] === '#' && isHelperSuffix(line, j)) {
        j++
        while (j < line.length && /[0-9]/.test(line[j]!)) j++
      }
      const text = line.slice(i, j)
      if (text === 's') {
        const op = SIGNED_OPERATORS.find((p) => line.startsWith(p, j))
        if (op !== undefined) {
          tokens.push({ kind: 'punct', text: `s${op}`, col })
          i = j + op.length
          continue
        }
      }
      tokens.push({ kind: 'ident', text, col })
      i = j
      continue
    }
    if (c >= '0' && c <= '9') {
      let j = i + 1
      while (j < line.length && /[0-9A-Za-z_]/.test(line[j]!)) j++
      const text = line.slice(i, j)
      if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) {
        throw new AssembleError(`malformed number '${text}'`, lineNo, col)
      }
      tokens.push({ kind: 'number', text, col })
      i = j
      continue
    }
    if (c === '%' && i + 1 < line.length && IDENT_START.test(line[i + 1]!)) {
      let j = i + 1
      while (j < line.length && IDENT_CHAR.test(line[j]!)) j++
      tokens.push({ kind: 'reg', text: line.slice(i, j), col })
      i = j
      continue
    }
    const p = PUNCTUATION.find((q) => line.startsWith(q, i))
    if (p === undefined) throw new AssembleError(`unexpected character '${c}'`, lineNo, col)
    tokens.push({ kind: 'punct', text: p, col })
    i += p.length
  }
  return tokens
}

/** Reads tokens of one line; errors carry the line and the column of the token at fault. */
export class Cursor {
  #i = 0
  constructor(
    readonly tokens: readonly Token[],
    readonly line: number,
    /** Column just past the last character, for errors at the end of the line. */
    readonly endCol: number,
  ) {}

  get done(): boolean {
    return this.#i >= this.tokens.length
  }

  peek(ahead = 0): Token | undefined {
    return this.tokens[this.#i + ahead]
  }

  /** The next token; at the end of the line, an error that says what was expected. */
  next(expected: string): Token {
    const t = this.tokens[this.#i]
    if (t === undefined) this.fail(`expected ${expected} at end of line`)
    this.#i++
    return t
  }

  /** Consumes the next token if its text is `text`. */
  accept(text: string): Token | undefined {
    const t = this.tokens[this.#i]
    if (t !== undefined && t.kind !== 'number' && t.text === text) {
      this.#i++
      return t
    }
    return undefined
  }

  expect(text: string, what = `'${text}'`): Token {
    const t = this.next(what)
    if (t.kind === 'number' || t.text !== text) this.fail(`expected ${what}, found '${t.text}'`, t)
    return t
  }

  /** Throws an AssembleError at `token` (or at the end of the line). */
  fail(message: string, token?: Token): never {
    throw new AssembleError(message, this.line, token?.col ?? this.endCol)
  }

  /** Checks that nothing follows. */
  end(): void {
    const t = this.tokens[this.#i]
    if (t !== undefined) this.fail(`unexpected '${t.text}' after the instruction`, t)
  }
}
