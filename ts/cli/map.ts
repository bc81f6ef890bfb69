/** `ebpf map list OBJ.o [--json]`: the maps of an object (global data sections included), as libbpf creates them. */
import { expectPositionals, optFlag } from './args.js'
import type { Command } from './command.js'
import { hexFlags, json, table } from './format.js'
import { readObject } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'

export const mapListCommand: Command = {
  name: 'map list',
  usage: 'ebpf map list OBJ.o [--json]',
  summary: 'list the maps of an object',
  description:
    'One row per map: name, type, key and value size in bytes, max_entries and map_flags (hex). Global data\n' +
    'sections (.data, .rodata, .bss, ...) are one-entry array maps named after the section, as libbpf makes\n' +
    "them. Then where each pinned map is pinned (under a collection's pinPath, default /sys/fs/bpf) and why\n" +
    'each map that cannot be created here cannot. --json prints an array of objects with pinName and\n' +
    'unsupported where they apply.',
  options: { json: { short: 'j', help: 'JSON output' }, ...OBJECT_OPTIONS },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'map list') as [string]
    const spec = readObject(file, loadOptionsFrom(args, 'map list'))
    const maps = [...spec.maps.values()]
    if (optFlag(args, 'json')) {
      process.stdout.write(
        json(
          maps.map((m) => ({
            name: m.name,
            type: m.typeName,
            typeId: m.type,
            keySize: m.keySize,
            valueSize: m.valueSize,
            maxEntries: m.maxEntries,
            flags: m.flags,
            section: m.section,
            pinning: m.pinning,
            ...(m.pinName === undefined ? {} : { pinName: m.pinName }),
            ...(m.unsupported === undefined ? {} : { unsupported: m.unsupported }),
          })),
        ),
      )
      return 0
    }
    const rows = maps.map((m) => [
      m.name,
      m.typeName,
      String(m.keySize),
      String(m.valueSize),
      String(m.maxEntries),
      hexFlags(m.flags),
    ])
    process.stdout.write(table(['NAME', 'TYPE', 'KEY', 'VALUE', 'MAX_ENTRIES', 'FLAGS'], rows))
    for (const m of maps) {
      if (m.pinName !== undefined)
        process.stdout.write(`${m.name}: pinned as ${m.pinName}${m.pinReplace ? ' (never reused)' : ''}\n`)
      if (m.unsupported !== undefined) process.stdout.write(`${m.name}: cannot be created here: ${m.unsupported}\n`)
    }
    return 0
  },
}
