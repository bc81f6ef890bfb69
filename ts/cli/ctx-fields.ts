/**
 * `--ctx 'field=value,...'`: a context given by the field names of `struct __sk_buff` / `struct
 * xdp_md` (the library's `ContextValue`), so that a user need not lay out the bytes. Values are
 * numbers (decimal or 0x hex), `cb=[a,b,c,d,e]`, and bigints for tc's u64 time stamps. Which names
 * a type has is checked by the library when the context is encoded.
 */
import type { ContextValue } from '../index.js'
import { UsageError } from './args.js'
import { parseValue } from './object-options.js'

/** `a=1,cb=[1,2,3,4,5],b=0x10` split at the commas outside brackets. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '[') depth++
    else if (c === ']') depth--
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts.map((p) => p.trim()).filter((p) => p !== '')
}

/** The context object `--ctx` describes; tstamp/hwtstamp become bigints (the library wants them so). */
export function parseContextFields(text: string, command: string): ContextValue {
  const out: Record<string, unknown> = {}
  for (const part of splitTopLevel(text)) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`--ctx takes FIELD=VALUE,... (e.g. mark=1,ifindex=2), got '${part}'`, command)
    const name = part.slice(0, eq).trim()
    const raw = part.slice(eq + 1).trim()
    if (name in out) throw new UsageError(`--ctx names field '${name}' twice`, command)
    const value = parseValue(raw)
    if (name === 'tstamp' || name === 'hwtstamp') {
      if (typeof value !== 'number' && typeof value !== 'bigint')
        throw new UsageError(`--ctx ${name} must be an integer, got '${raw}'`, command)
      out[name] = BigInt(value)
    } else if (name === 'cb') {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'number'))
        throw new UsageError(`--ctx cb must be five numbers as [a,b,c,d,e], got '${raw}'`, command)
      out[name] = value
    } else {
      if (typeof value !== 'number') throw new UsageError(`--ctx ${name} must be an integer, got '${raw}'`, command)
      out[name] = value
    }
  }
  return out as ContextValue
}
