/**
 * `ebpf map dump|lookup|update OBJ.o --map M ...`: bpftool's map verbs on an object's maps, offline.
 * Each call creates the object's maps as a Collection would (global data initialised, prog arrays
 * filled), applies `--map-update` entries, optionally runs one program (`--run PROG` with the data
 * and context options of `ebpf run`), and then prints: the map(s) (`dump`), one value (`lookup`),
 * or the map after writing the entry (`update`). Keys and values are typed through BTF as JSON.
 */
import {
  Collection,
  type CollectionSpec,
  EbpfError,
  type EngineName,
  loadCollectionSpecSync,
  TrapError,
} from '../index.js'
import {
  expectPositionals,
  type OptionSpec,
  optFlag,
  optList,
  optPositiveInt,
  optString,
  type Parsed,
  UsageError,
} from './args.js'
import type { Command } from './command.js'
import { dumpMaps, mapJson, mapsText } from './dump-maps.js'
import { inline, json } from './format.js'
import { about, CliError, displayName, readInput } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS, parseValue } from './object-options.js'
import { applyMapUpdates, applySets, contextFrom, dataFrom } from './run.js'

const SHARED: Record<string, OptionSpec> = {
  set: { value: true, repeat: true, arg: 'VAR=VALUE', help: 'set a global variable of the object before load' },
  'map-update': {
    value: true,
    repeat: true,
    arg: 'MAP=[KEY,VALUE]',
    help: 'write a map entry (JSON, typed through BTF) first',
  },
  run: { value: true, arg: 'PROG', help: 'run this program of the object (once, or --repeat times) before reading' },
  data: { value: true, arg: 'FILE', help: 'with --run: input data (packet) from a file' },
  hex: { value: true, arg: 'HEX', help: 'with --run: input data as hex' },
  'ctx-hex': { value: true, arg: 'HEX', help: 'with --run: context bytes' },
  'ctx-in': { value: true, arg: 'FILE', help: 'with --run: context bytes from a file' },
  ctx: { value: true, arg: 'FIELD=VALUE,...', help: 'with --run: context by field names' },
  repeat: { value: true, arg: 'N', help: 'with --run: run N times' },
  engine: { value: true, arg: 'ENGINE', choices: ['jit', 'interpreter', 'auto'], help: 'with --run: default auto' },
  json: { short: 'j', help: 'JSON output' },
  ...OBJECT_OPTIONS,
}

/** The object's maps, filled and (with --run) after a run: the collection and its spec. */
function prepare(file: string, args: Parsed, command: string, mapName: string | undefined): Collection {
  const bytes = readInput(file)
  const spec: CollectionSpec = about(file, () => loadCollectionSpecSync(bytes, loadOptionsFrom(args, command)))
  if (mapName !== undefined && !spec.maps.has(mapName)) {
    throw new CliError(`${displayName(file)}: no map '${mapName}'; the object has: ${[...spec.maps.keys()].join(', ')}`)
  }
  applySets(spec, optList(args, 'set'), file)
  const run = optString(args, 'run')
  if (run !== undefined && !spec.programs.has(run)) {
    throw new CliError(
      `${displayName(file)}: no program '${run}'; the object has: ${[...spec.programs.keys()].join(', ')}`,
    )
  }
  for (const o of ['data', 'hex', 'ctx-hex', 'ctx-in', 'ctx', 'repeat', 'engine']) {
    if (run === undefined && args.options.has(o)) throw new UsageError(`--${o} goes with --run PROG`, command)
  }
  // The named map, or every map the object can have here (those it cannot are named in map list).
  const maps =
    mapName !== undefined
      ? [mapName]
      : [...spec.maps.values()].filter((m) => m.unsupported === undefined).map((m) => m.name)
  const engine = optString(args, 'engine') as EngineName | undefined
  const collection = about(file, () => new Collection(spec, { programs: run === undefined ? [] : [run], maps, engine }))
  applyMapUpdates(collection, optList(args, 'map-update'), file)
  if (run !== undefined) {
    const data = dataFrom(args, command)
    const ctx = contextFrom(args, command)
    const repeat = optPositiveInt(args, 'repeat', command, 0xffffffff)
    try {
      collection.programs.get(run)!.run({ data, ctx, repeat })
    } catch (e) {
      if (e instanceof TrapError) throw new CliError(`${displayName(file)}: --run ${run}: trap ${e.kind}: ${e.message}`)
      if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: --run ${run}: ${e.message}`)
      throw e
    }
  }
  return collection
}

function mapOf(collection: Collection, name: string) {
  return collection.maps.get(name)!
}

function typed(text: string | undefined, what: string, command: string): unknown {
  if (text === undefined) throw new UsageError(`missing --${what}`, command)
  return parseValue(text)
}

function wrap<T>(file: string, what: string, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: ${what}: ${e.message}`)
    throw e
  }
}

export const mapDumpCommand: Command = {
  name: 'map dump',
  usage:
    'ebpf map dump OBJ.o [--map M] [--map-update MAP=[KEY,VALUE] ...] [--set VAR=VALUE ...]\n' +
    '              [--run PROG [--data FILE | --hex HEX] [--ctx FIELD=VALUE,...] [--repeat N]] [--json]',
  summary: "print an object's maps as created (and filled, and after a run)",
  description:
    "Creates the object's maps as a Collection does (global data sections with their initial values, prog and\n" +
    'map-of-map slots filled), writes the --map-update entries, runs --run PROG if given, and prints every map (or\n' +
    'only --map M): keyed maps entry by entry through BTF, global data sections variable by variable, queues and\n' +
    'stacks in pop order, ring buffers record by record.',
  options: { map: { value: true, arg: 'M', help: 'only this map' }, ...SHARED },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'map dump') as [string]
    const only = optString(args, 'map')
    const collection = prepare(file, args, 'map dump', only)
    const dumps = dumpMaps(collection, collection.spec).filter((d) => only === undefined || d.name === only)
    process.stdout.write(optFlag(args, 'json') ? json(Object.fromEntries(dumps.map(mapJson))) : mapsText(dumps))
    return 0
  },
}

export const mapLookupCommand: Command = {
  name: 'map lookup',
  usage: 'ebpf map lookup OBJ.o --map M --key KEY [--map-update ...] [--run PROG ...] [--json]',
  summary: "look up one key of an object's map",
  description:
    'As map dump, then prints the value under --key (JSON typed through BTF, or an integer). Exit code 1 when the\n' +
    'key is not there.',
  options: {
    map: { value: true, arg: 'M', help: 'the map' },
    key: { value: true, arg: 'KEY', help: 'the key (JSON or an integer)' },
    ...SHARED,
  },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'map lookup') as [string]
    const name = optString(args, 'map')
    if (name === undefined) throw new UsageError('missing --map M', 'map lookup')
    const key = typed(optString(args, 'key'), 'key', 'map lookup')
    const collection = prepare(file, args, 'map lookup', name)
    const value = wrap(file, `lookup in '${name}'`, () => mapOf(collection, name).lookup(key))
    if (value === undefined) throw new CliError(`${displayName(file)}: map '${name}' has no key ${inline(key)}`)
    process.stdout.write(
      optFlag(args, 'json') ? json({ key, value }) : `key: ${inline(key)}  value: ${inline(value)}\n`,
    )
    return 0
  },
}

export const mapUpdateCommand: Command = {
  name: 'map update',
  usage: 'ebpf map update OBJ.o --map M --key KEY --value VALUE [--run PROG ...] [--json]',
  summary: "write one entry of an object's map and print the map",
  description:
    'As map dump, with the entry --key/--value written before --run (if any): prints the map afterwards, so that\n' +
    'what a program made of the entry shows. Keys and values are JSON typed through BTF (or integers); a wrong size\n' +
    'or type is refused with the map error.',
  options: {
    map: { value: true, arg: 'M', help: 'the map' },
    key: { value: true, arg: 'KEY', help: 'the key (JSON or an integer)' },
    value: { value: true, arg: 'VALUE', help: 'the value (JSON or an integer)' },
    ...SHARED,
  },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'map update') as [string]
    const name = optString(args, 'map')
    if (name === undefined) throw new UsageError('missing --map M', 'map update')
    const key = typed(optString(args, 'key'), 'key', 'map update')
    const value = typed(optString(args, 'value'), 'value', 'map update')
    // The entry goes in first, with the other --map-update entries, so that --run sees it.
    const entry = `${name}=${JSON.stringify([key, value], (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`
    const withEntry: Parsed = {
      positionals: args.positionals,
      options: new Map(args.options).set('map-update', [entry, ...optList(args, 'map-update')]),
    }
    const collection = prepare(file, withEntry, 'map update', name)
    const dumps = dumpMaps(collection, collection.spec).filter((d) => d.name === name)
    process.stdout.write(optFlag(args, 'json') ? json(Object.fromEntries(dumps.map(mapJson))) : mapsText(dumps))
    return 0
  },
}
