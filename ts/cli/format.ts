/**
 * Text shapes the commands share: aligned tables (as bpftool's plain output), values decoded
 * through BTF printed compactly, and JSON that keeps 64-bit integers exact.
 */
import { toHex } from './io.js'

/** Rows under a header, each column padded to its widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return `${[header, ...rows].map(line).join('\n')}\n`
}

/**
 * A value as JSON-compatible data: bigints that fit a double exactly become numbers, larger ones
 * decimal strings (so that JSON readers do not round them); bytes become hex strings.
 */
export function toJsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v.toString()
  if (v instanceof Uint8Array) return toHex(v)
  if (Array.isArray(v)) return v.map(toJsonValue)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonValue(x)]))
  }
  return v
}

export function json(v: unknown): string {
  return `${JSON.stringify(toJsonValue(v), null, 2)}\n`
}

/** The same on one line (`bpftool -j`'s shape). */
export function jsonLine(v: unknown): string {
  return `${JSON.stringify(toJsonValue(v))}\n`
}

/** One-line text of a decoded value: `{ hits: 1, action: 1 }`, `[1, 2]`, bytes as hex, bigints in full. */
export function inline(v: unknown): string {
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'string') return JSON.stringify(v)
  if (v instanceof Uint8Array) return `<${toHex(v)}>`
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`
  if (v !== null && typeof v === 'object') {
    const parts = Object.entries(v).map(([k, x]) => `${k}: ${inline(x)}`)
    return parts.length === 0 ? '{}' : `{ ${parts.join(', ')} }`
  }
  return String(v)
}

/** Flags as bpftool prints them: `0x1`. */
export function hexFlags(n: number): string {
  return `0x${n.toString(16)}`
}

/**
 * `--json` of the commands that generate text (gen-types, gen skeleton, completion): one object,
 * `{ kind, language, output, bytes, text? }`; `text` is the generated text when it goes to
 * standard output (`output` '-'), left out when it was written to the file `output`.
 */
export function generatedJson(kind: string, language: string, output: string, text: string): string {
  return json({
    kind,
    language,
    output,
    bytes: Buffer.byteLength(text),
    ...(output === '-' ? { text } : {}),
  })
}
