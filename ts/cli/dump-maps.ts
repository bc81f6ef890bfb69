/**
 * `ebpf run --dump-maps`: every map of a collection after the run, as text or JSON. Keyed maps list
 * their entries (typed through BTF), global data sections their variables; queues and stacks are
 * emptied in pop order and ring buffers drained, since nothing runs after the dump.
 */
import { type BpfMap, type Collection, type CollectionSpec, EbpfError } from '../index.js'
import { inline } from './format.js'

export interface MapDump {
  name: string
  type: string
  /** Global data sections: their variables by name. */
  variables?: Record<string, unknown>
  entries?: [unknown, unknown][]
  /** Queue and stack values in pop order; ring buffer records in order. */
  values?: unknown[]
  /** Why the map's contents cannot be listed. */
  note?: string
}

function contents(map: BpfMap, type: string): Omit<MapDump, 'name' | 'type'> {
  try {
    if (type === 'queue' || type === 'stack') {
      const values: unknown[] = []
      for (let v = map.pop(); v !== undefined; v = map.pop()) values.push(v)
      return { values }
    }
    if (type === 'ringbuf') return { values: map.drainRecords() }
    if (type === 'bloom_filter') return { note: 'a bloom filter only answers membership queries' }
    if (type === 'perf_event_array')
      return { note: 'perf event array samples are read with a PerfBuffer while programs run' }
    return { entries: [...map.entries()] }
  } catch (e) {
    if (e instanceof EbpfError) return { note: e.message }
    throw e
  }
}

export function dumpMaps(collection: Collection, spec: CollectionSpec): MapDump[] {
  const out: MapDump[] = []
  for (const [name, map] of collection.maps) {
    const ms = spec.maps.get(name)
    const type = ms?.typeName ?? String(map.type)
    if (ms?.value?.kind === 'DATASEC') {
      const variables: Record<string, unknown> = {}
      for (const v of spec.variables.values()) if (v.section === name) variables[v.name] = collection.variable(v.name)
      out.push({ name, type, variables })
      continue
    }
    out.push({ name, type, ...contents(map, type) })
  }
  return out
}

/** A map in JSON output: entries as `{ key, value }` objects, which read better than pairs. */
export function mapJson(d: MapDump): [string, unknown] {
  const { name, entries, ...rest } = d
  return [name, { ...rest, ...(entries ? { entries: entries.map(([key, value]) => ({ key, value })) } : {}) }]
}

export function mapsText(dumps: readonly MapDump[]): string {
  const lines: string[] = []
  for (const d of dumps) {
    lines.push(`map ${d.name} (${d.type}):`)
    if (d.variables) {
      for (const [k, v] of Object.entries(d.variables)) lines.push(`  ${k} = ${inline(v)}`)
    } else if (d.entries) {
      if (d.entries.length === 0) lines.push('  (empty)')
      for (const [k, v] of d.entries) lines.push(`  ${inline(k)}: ${inline(v)}`)
    } else if (d.values) {
      if (d.values.length === 0) lines.push('  (empty)')
      d.values.forEach((v, i) => {
        lines.push(`  [${i}] ${inline(v)}`)
      })
    } else {
      lines.push(`  (${d.note})`)
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}
