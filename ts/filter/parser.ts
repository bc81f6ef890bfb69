/**
 * The pcap-filter(7) grammar, with libpcap's precedences:
 * - `and` and `or` have the same precedence and group left to right; `not` binds tighter.
 * - After `and`/`or` a bare id repeats the qualifiers of the primitive before it
 *   (`tcp port 80 or 443` is `tcp port 80 or tcp port 443`).
 * - Arithmetic: `|` < `&` < `<<` `>>` < `+` `-` < `*` `/` < unary `-`. libpcap's grammar gives `^`
 *   and `%` no precedence, so its parser always shifts them: `a * b % c` is `a * (b % c)` and
 *   `a ^ b | c` is `a ^ (b | c)`; the same is done here (tcpdump -d confirms both readings).
 * - A parenthesis opens either an expression or an arithmetic operand; the parser tries the
 *   relation first and backs up when no relational operator follows.
 */
import type { AddressKind, Arith, Direction, Expr, Id, ProtoName, Qualifiers, Relop } from './ast.js'
import { FilterError } from './error.js'
import { type Token, tokenize } from './lexer.js'

const PROTO_NAMES = new Set<string>([
  'ether',
  'link',
  'ip',
  'ip6',
  'arp',
  'rarp',
  'tcp',
  'udp',
  'sctp',
  'icmp',
  'icmp6',
  'igmp',
  'pim',
  'vrrp',
  'ah',
  'esp',
])
const KINDS = new Set<string>(['host', 'net', 'port', 'portrange', 'proto', 'protochain', 'gateway'])
const KEYWORDS = new Set<string>([
  ...PROTO_NAMES,
  ...KINDS,
  'and',
  'or',
  'not',
  'src',
  'dst',
  'mask',
  'less',
  'greater',
  'len',
  'vlan',
  'mpls',
  'broadcast',
  'multicast',
])
const BINARY_PRECEDENCE: Record<string, number> = { '|': 1, '&': 2, '<<': 3, '>>': 3, '+': 4, '-': 4, '*': 5, '/': 5 }
/** Operators libpcap's grammar leaves without a precedence: their parser always shifts them. */
const ALWAYS_SHIFTED = new Set(['^', '%'])
const UNARY_PRECEDENCE = 6
const RELOPS: Record<string, Relop> = { '=': '=', '==': '=', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' }

class Parser {
  private pos = 0
  /** The qualifiers of the last qualified primitive, which a bare id after `and`/`or` repeats. */
  private last: Qualifiers | undefined

  constructor(private readonly tokens: Token[]) {}

  private peek(n = 0): Token {
    return this.tokens[Math.min(this.pos + n, this.tokens.length - 1)]!
  }

  private next(): Token {
    const t = this.peek()
    if (t.kind !== 'end') this.pos++
    return t
  }

  private isWord(t: Token, ...words: string[]): boolean {
    return t.kind === 'word' && words.includes(t.text)
  }

  private isOp(t: Token, ...ops: string[]): boolean {
    return t.kind === 'op' && ops.includes(t.text)
  }

  private fail(t: Token, expected: string): never {
    const got = t.kind === 'end' ? 'the end of the expression' : `'${t.text}'`
    throw new FilterError(`syntax error: expected ${expected}, got ${got}`, t.column)
  }

  private expectOp(op: string, what = `'${op}'`): Token {
    const t = this.next()
    if (!this.isOp(t, op)) this.fail(t, what)
    return t
  }

  parse(): Expr {
    if (this.peek().kind === 'end') this.fail(this.peek(), 'a filter expression')
    const e = this.expr()
    if (this.peek().kind !== 'end') this.fail(this.peek(), "'and', 'or' or the end of the expression")
    return e
  }

  private isAnd(t: Token): boolean {
    return this.isWord(t, 'and') || this.isOp(t, '&&')
  }

  private isOr(t: Token): boolean {
    return this.isWord(t, 'or') || this.isOp(t, '||')
  }

  private isNot(t: Token): boolean {
    return this.isWord(t, 'not') || this.isOp(t, '!')
  }

  private expr(): Expr {
    let left = this.term()
    for (;;) {
      const t = this.peek()
      const kind = this.isAnd(t) ? 'and' : this.isOr(t) ? 'or' : undefined
      if (kind === undefined) return left
      this.next()
      const right = this.bareId() ?? this.term()
      left = { kind, left, right }
    }
  }

  /** Whether a token can be an id (address, number or name) rather than the start of something else. */
  private isIdToken(t: Token): boolean {
    return (
      t.kind === 'num' ||
      t.kind === 'hid' ||
      t.kind === 'hid6' ||
      t.kind === 'eid' ||
      t.kind === 'escaped' ||
      (t.kind === 'word' && !KEYWORDS.has(t.text))
    )
  }

  /** `... or 443`: an id (maybe negated) that repeats the last qualifiers; undefined when it is not one. */
  private bareId(): Expr | undefined {
    if (this.last === undefined) return undefined
    let n = 0
    while (this.isNot(this.peek(n))) n++
    const t = this.peek(n)
    if (!this.isIdToken(t)) return undefined
    const after = this.peek(n + 1)
    if (
      after.kind === 'op' &&
      (RELOPS[after.text] || BINARY_PRECEDENCE[after.text] || ALWAYS_SHIFTED.has(after.text))
    ) {
      if (!(after.text === '/' && (t.kind === 'hid' || t.kind === 'hid6'))) return undefined
    }
    for (let i = 0; i < n; i++) this.next()
    let e: Expr = { kind: 'primitive', qualifiers: this.last, id: this.id() }
    for (let i = 0; i < n; i++) e = { kind: 'not', operand: e }
    return e
  }

  private term(): Expr {
    if (this.isNot(this.peek())) {
      this.next()
      return { kind: 'not', operand: this.term() }
    }
    return this.rterm()
  }

  /** Whether the tokens from here can start an arithmetic expression. */
  private startsArith(): boolean {
    const t = this.peek()
    if (t.kind === 'num' || this.isWord(t, 'len') || this.isOp(t, '(', '-')) return true
    return t.kind === 'word' && PROTO_NAMES.has(t.text) && this.isOp(this.peek(1), '[')
  }

  private rterm(): Expr {
    const t = this.peek()
    if (this.startsArith() && !(t.kind === 'num' && this.isIdEnd(this.peek(1)))) {
      const start = this.pos
      try {
        return this.relation()
      } catch (e) {
        // `(` may open an expression instead: back up and read it as one; report the error that
        // got further when both fail.
        if (!this.isOp(t, '(') || !(e instanceof FilterError)) throw e
        this.pos = start
        try {
          return this.parenthesized()
        } catch (e2) {
          throw e2 instanceof FilterError && e2.column >= e.column ? e2 : e
        }
      }
    }
    if (this.isOp(t, '(')) return this.parenthesized()
    if (t.kind === 'word') {
      switch (t.text) {
        case 'vlan':
        case 'mpls': {
          this.next()
          const n = this.peek()
          if (n.kind === 'num') {
            this.next()
            return { kind: t.text, id: n.value, column: t.column }
          }
          return { kind: t.text, column: t.column }
        }
        case 'less':
        case 'greater': {
          this.next()
          const n = this.next()
          if (n.kind !== 'num') this.fail(n, `a length after '${t.text}'`)
          return {
            kind: 'relation',
            op: t.text === 'less' ? '<=' : '>=',
            left: { kind: 'len', column: t.column },
            right: { kind: 'num', value: n.value, column: n.column },
            column: t.column,
          }
        }
        case 'broadcast':
        case 'multicast':
          this.next()
          return { kind: t.text, column: t.column }
      }
      if (PROTO_NAMES.has(t.text)) {
        this.next()
        const n = this.peek()
        if (this.isWord(n, 'broadcast', 'multicast')) {
          this.next()
          return { kind: n.text as 'broadcast' | 'multicast', proto: t.text as ProtoName, column: t.column }
        }
        if (this.isWord(n, 'src', 'dst') || (n.kind === 'word' && KINDS.has(n.text))) {
          return this.qualified(t.text as ProtoName, t.column)
        }
        if (t.text === 'ether' || t.text === 'link')
          this.fail(n, `a qualifier after '${t.text}' (host, src, dst, proto, broadcast, multicast)`)
        return { kind: 'protocol', proto: t.text as ProtoName, column: t.column }
      }
      if (this.isWord(t, 'src', 'dst') || KINDS.has(t.text)) return this.qualified(undefined, t.column)
    }
    if (this.isIdToken(t)) {
      // libpcap's grammar takes a bare id only after `and`/`or`, repeating the qualifiers before it.
      throw new FilterError(`syntax error: '${t.text}' needs a qualifier before it (host, net, port...)`, t.column)
    }
    this.fail(t, 'a primitive')
  }

  /** Whether `t` cannot continue an arithmetic expression after a number (so the number is an id). */
  private isIdEnd(t: Token): boolean {
    return !(t.kind === 'op' && (RELOPS[t.text] || BINARY_PRECEDENCE[t.text] || ALWAYS_SHIFTED.has(t.text)))
  }

  private parenthesized(): Expr {
    this.expectOp('(')
    const e = this.expr()
    this.expectOp(')', "')'")
    return e
  }

  /** `[proto] [src|dst|src or dst|src and dst] [host|net|port|...] id`. */
  private qualified(proto: ProtoName | undefined, column: number): Expr {
    const q: Qualifiers = { column }
    if (proto) q.proto = proto
    const d = this.peek()
    if (this.isWord(d, 'src', 'dst')) {
      this.next()
      let dir: Direction = d.text as 'src' | 'dst'
      const c = this.peek()
      const other = d.text === 'src' ? 'dst' : 'src'
      if ((this.isAnd(c) || this.isOr(c)) && this.isWord(this.peek(1), other)) {
        this.next()
        this.next()
        dir = this.isAnd(c) ? 'src and dst' : 'src or dst'
      }
      q.dir = dir
    }
    const k = this.peek()
    if (k.kind === 'word' && KINDS.has(k.text)) {
      this.next()
      q.kind = k.text as AddressKind
    }
    this.last = q
    return { kind: 'primitive', qualifiers: q, id: this.id() }
  }

  private id(): Id {
    const t = this.next()
    switch (t.kind) {
      case 'num':
      case 'eid':
        return { kind: t.kind, text: t.text, value: t.value, column: t.column }
      case 'hid':
      case 'hid6': {
        const id: Id = { kind: t.kind, text: t.text, value: 0, column: t.column }
        if (this.isOp(this.peek(), '/')) {
          this.next()
          const n = this.next()
          if (n.kind !== 'num') this.fail(n, 'a prefix length after /')
          id.prefix = { kind: 'len', bits: n.value }
        } else if (t.kind === 'hid' && this.isWord(this.peek(), 'mask')) {
          this.next()
          const m = this.next()
          if (m.kind !== 'hid') this.fail(m, "a dotted mask after 'mask'")
          id.prefix = { kind: 'mask', text: m.text }
        }
        return id
      }
      case 'escaped':
        return { kind: 'name', text: t.text, value: 0, column: t.column }
      case 'word':
        if (!KEYWORDS.has(t.text)) return { kind: 'name', text: t.text, value: 0, column: t.column }
    }
    this.fail(t, 'an address, number or name')
  }

  private relation(): Expr {
    const left = this.arith(0)
    const r = this.next()
    const op = r.kind === 'op' ? RELOPS[r.text] : undefined
    if (op === undefined) this.fail(r, 'a relational operator (=, !=, <, <=, >, >=)')
    return { kind: 'relation', op, left, right: this.arith(0), column: left.column }
  }

  private arith(minPrecedence: number): Arith {
    let left = this.unary()
    for (;;) {
      const t = this.peek()
      if (t.kind !== 'op') return left
      if (ALWAYS_SHIFTED.has(t.text)) {
        this.next()
        left = { kind: 'binary', op: t.text, left, right: this.arith(0), column: t.column }
        continue
      }
      const p = BINARY_PRECEDENCE[t.text]
      if (p === undefined || p < minPrecedence) return left
      this.next()
      left = { kind: 'binary', op: t.text, left, right: this.arith(p + 1), column: t.column }
    }
  }

  private unary(): Arith {
    const t = this.peek()
    if (this.isOp(t, '-')) {
      this.next()
      return { kind: 'neg', operand: this.arith(UNARY_PRECEDENCE), column: t.column }
    }
    return this.primary()
  }

  private primary(): Arith {
    const t = this.next()
    if (t.kind === 'num') return { kind: 'num', value: t.value, column: t.column }
    if (this.isWord(t, 'len')) return { kind: 'len', column: t.column }
    if (this.isOp(t, '(')) {
      const inner = this.arith(0)
      this.expectOp(')', "')'")
      return inner
    }
    if (t.kind === 'word' && PROTO_NAMES.has(t.text) && this.isOp(this.peek(), '[')) {
      this.next()
      const index = this.arith(0)
      let size: 1 | 2 | 4 = 1
      if (this.isOp(this.peek(), ':')) {
        this.next()
        const s = this.next()
        if (s.kind !== 'num') this.fail(s, 'a size (1, 2 or 4)')
        if (s.value !== 1 && s.value !== 2 && s.value !== 4) {
          throw new FilterError(`data size must be 1, 2 or 4, got ${s.value}`, s.column)
        }
        size = s.value
      }
      this.expectOp(']', "']'")
      return { kind: 'load', proto: t.text as ProtoName, index, size, column: t.column }
    }
    this.fail(t, 'a number, len, a packet access such as ip[2:2], or (')
  }
}

/** The syntax tree of a filter expression; a `FilterError` (EINVAL) naming the column otherwise. */
export function parseFilter(expr: string): Expr {
  return new Parser(tokenize(expr)).parse()
}
