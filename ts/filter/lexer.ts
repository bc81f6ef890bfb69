/**
 * The tokens of the pcap-filter(7) language, read as libpcap's scanner reads them: the longest
 * match wins (`20-100` is one word, as `portrange` wants it), Ethernet and IPv6 addresses are words
 * of their own, numbers are decimal, `0x` hex or `0` octal, the named constants (`tcpflags`,
 * `tcp-syn`, `icmp-echo`...) are numbers, and `\word` is a word that is never a keyword (`ether
 * proto \ip`). Every token keeps its 1-based column for error messages.
 */
import { FilterError } from './error.js'

export type TokenKind =
  | 'num' // a number (value)
  | 'hid' // dotted IPv4 address or prefix: 10, 10.0, 10.0.0.1 (text)
  | 'hid6' // IPv6 address (text)
  | 'eid' // Ethernet address (text)
  | 'word' // a keyword or name (text)
  | 'escaped' // \word: a name, never a keyword
  | 'op' // punctuation and operators (text)
  | 'end'

export interface Token {
  kind: TokenKind
  text: string
  /** The value of a `num`. */
  value: number
  /** 1-based column of the token's first character. */
  column: number
}

/** The named constants of pcap-filter(7): header field offsets, ICMP types and TCP flags. */
export const NAMED_CONSTANTS: Record<string, number> = {
  icmptype: 0,
  icmpcode: 1,
  'icmp-echoreply': 0,
  'icmp-unreach': 3,
  'icmp-sourcequench': 4,
  'icmp-redirect': 5,
  'icmp-echo': 8,
  'icmp-routeradvert': 9,
  'icmp-routersolicit': 10,
  'icmp-timxceed': 11,
  'icmp-paramprob': 12,
  'icmp-tstamp': 13,
  'icmp-tstampreply': 14,
  'icmp-ireq': 15,
  'icmp-ireqreply': 16,
  'icmp-maskreq': 17,
  'icmp-maskreply': 18,
  icmp6type: 0,
  icmp6code: 1,
  'icmp6-destinationunreach': 1,
  'icmp6-packettoobig': 2,
  'icmp6-timeexceeded': 3,
  'icmp6-parameterproblem': 4,
  'icmp6-echo': 128,
  'icmp6-echoreply': 129,
  'icmp6-multicastlistenerquery': 130,
  'icmp6-multicastlistenerreportv1': 131,
  'icmp6-multicastlistenerdone': 132,
  'icmp6-routersolicit': 133,
  'icmp6-routeradvert': 134,
  'icmp6-neighborsolicit': 135,
  'icmp6-neighboradvert': 136,
  'icmp6-redirect': 137,
  tcpflags: 13,
  'tcp-fin': 0x01,
  'tcp-syn': 0x02,
  'tcp-rst': 0x04,
  'tcp-push': 0x08,
  'tcp-ack': 0x10,
  'tcp-urg': 0x20,
  'tcp-ece': 0x40,
  'tcp-cwr': 0x80,
}

/** Operators, longest first so that `<<` is not read as `<`. */
const OPERATORS = [
  '&&',
  '||',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '(',
  ')',
  '[',
  ']',
  ':',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '=',
  '<',
  '>',
  '!',
]

const HEX = '[0-9A-Fa-f]'
/** `aa:bb:cc:dd:ee:ff`, `aa-bb-...`, `aa.bb...` (1 or 2 digits each) and `aabb.ccdd.eeff`. */
const MAC = new RegExp(
  `^(?:${HEX}{1,2}(?::${HEX}{1,2}){5}|${HEX}{1,2}(?:-${HEX}{1,2}){5}|${HEX}{1,2}(?:\\.${HEX}{1,2}){5}|${HEX}{4}\\.${HEX}{4}\\.${HEX}{4})`,
)
/** An IPv6 address: groups of hex digits and colons (with `::` or all eight groups), maybe an IPv4 tail. */
const V6 = new RegExp(`^(?:${HEX}{0,4}:){2,7}(?:\\d+\\.\\d+\\.\\d+\\.\\d+|${HEX}{1,4})?`)
const HID = /^\d+(?:\.\d+){1,3}/
const NUM = /^(?:0[xX][0-9A-Fa-f]+|\d+)/
/** libpcap's ID: starts and ends with a letter, digit or dot; `-`, `_` and `.` inside. */
const WORD = /^[A-Za-z0-9_](?:[-_.A-Za-z0-9]*[._A-Za-z0-9])?/

/** A number in C's notation (`0x` hex, `0` octal), or undefined past 2^32 - 1. */
export function parseNumber(text: string): number | undefined {
  let v: number
  if (/^0[xX]/.test(text)) v = Number.parseInt(text.slice(2), 16)
  else if (/^0[0-7]+$/.test(text)) v = Number.parseInt(text.slice(1), 8)
  else if (/^\d+$/.test(text)) v = Number(text)
  else return undefined
  return Number.isSafeInteger(v) && v <= 0xffffffff ? v : undefined
}

function isV6(text: string): boolean {
  const colons = text.split(':').length - 1
  return text.includes('::') ? text.indexOf('::') === text.lastIndexOf('::') : colons === 7
}

export function tokenize(expr: string): Token[] {
  const out: Token[] = []
  let at = 0
  while (at < expr.length) {
    const c = expr[at]!
    if (/\s/.test(c)) {
      at++
      continue
    }
    const rest = expr.slice(at)
    const column = at + 1
    if (c === '\\') {
      const m = WORD.exec(rest.slice(1))
      if (!m) throw new FilterError("'\\' must be followed by a name", column)
      out.push({ kind: 'escaped', text: m[0], value: 0, column })
      at += 1 + m[0].length
      continue
    }
    // The longest of the word-like matches; on equal length the earlier kind wins, as in libpcap's scanner.
    const candidates: Array<[TokenKind, string]> = []
    const mac = MAC.exec(rest)?.[0]
    if (mac) candidates.push(['eid', mac])
    const v6 = V6.exec(rest)?.[0]
    if (v6 && isV6(v6)) candidates.push(['hid6', v6])
    const hid = HID.exec(rest)?.[0]
    if (hid) candidates.push(['hid', hid])
    const num = NUM.exec(rest)?.[0]
    if (num) candidates.push(['num', num])
    const word = WORD.exec(rest)?.[0]
    if (word) candidates.push(['word', word])
    if (candidates.length > 0) {
      let [kind, text] = candidates[0]!
      for (const [k, t] of candidates) if (t.length > text.length) [kind, text] = [k, t]
      // A letter or digit right after a match means a word the scanner cannot read (`1.2.3.4x`).
      if (/[A-Za-z0-9_]/.test(expr[at + text.length] ?? '') && kind !== 'word') {
        throw new FilterError(`'${text}${expr[at + text.length]}' is not a number, address or name`, column)
      }
      if (kind === 'num') {
        const value = parseNumber(text)
        if (value === undefined) throw new FilterError(`number '${text}' is past 2^32 - 1`, column)
        out.push({ kind, text, value, column })
      } else if (kind === 'word' && NAMED_CONSTANTS[text] !== undefined) {
        out.push({ kind: 'num', text, value: NAMED_CONSTANTS[text]!, column })
      } else {
        out.push({ kind, text, value: 0, column })
      }
      at += text.length
      continue
    }
    const op = OPERATORS.find((o) => rest.startsWith(o))
    if (op === undefined) throw new FilterError(`unexpected character '${c}'`, column)
    out.push({ kind: 'op', text: op, value: 0, column })
    at += op.length
  }
  out.push({ kind: 'end', text: '', value: 0, column: expr.length + 1 })
  return out
}
