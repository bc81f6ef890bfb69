/**
 * Bytes as `bpftool prog run ... data_out -` prints them (seen from bpftool on Linux 6.18): per 16
 * bytes, the offset as 7 hex digits and a tab, the bytes in 2-byte groups padded to the width of a
 * full line, then ` | ` and the printable characters with a space after the eighth.
 */
const GROUPS_WIDTH = 39

export function bpftoolHexDump(bytes: Uint8Array): string {
  let out = ''
  for (let off = 0; off < bytes.length; off += 16) {
    const line = bytes.subarray(off, off + 16)
    const groups: string[] = []
    for (let i = 0; i < line.length; i += 2) {
      groups.push([...line.subarray(i, i + 2)].map((b) => b.toString(16).padStart(2, '0')).join(''))
    }
    const chars = [...line].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'))
    const text = chars.length > 8 ? `${chars.slice(0, 8).join('')} ${chars.slice(8).join('')}` : chars.join('')
    out += `${off.toString(16).padStart(7, '0')}\t${groups.join(' ').padEnd(GROUPS_WIDTH)} | ${text}\n`
  }
  return out
}
