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
    'them. --json prints an array of objects.',
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
    return 0
  },
}
