/**
 * `ebpf`: a userspace eBPF runtime for Node.js. See README.md for the tour.
 */

export * as asm from './asm/index.js'
export { assemble, disassemble } from './asm/index.js'
export * as btf from './btf/index.js'
export * as cbpf from './cbpf/index.js'
export { Collection, type CollectionMaps, type CollectionOptions, type MapTypes } from './collection.js'
export type { ContextValue, SkbContext, XdpContext } from './context.js'
export {
  type BranchCoverage,
  Coverage,
  type LcovOptions,
  type LineCoverage,
  type ProgramCoverage,
} from './coverage.js'
export * from './errors.js'
export { type CompiledFilter, type CompileFilterOptions, compileFilter, FilterError } from './filter/index.js'
export { type HelperPrototype, helperPrototypes } from './helpers.js'
export type { MapArrayView, MapCodecs, MapDefinition, MapTypeName, UpdateFlag } from './map.js'
export { BpfMap, MAP_TYPES, possibleCpus } from './map.js'
export type { ClonedPacket, Network, NetworkInterface, NetworkRoute, TunnelMetadata } from './network.js'
export * as pcap from './pcap/index.js'
export type { FilterPcapOptions, FilterPcapSummary } from './pcap-filter.js'
export {
  actionName,
  normalizeVerdict,
  type RunPcapOptions,
  type RunPcapSummary,
  runPcap,
  TC_ACTIONS,
  verdictName,
  XDP_ACTIONS,
} from './pcap-run.js'
export { PerfBuffer, type PerfBufferOptions, type PerfEvent } from './perf-buffer.js'
export type {
  AttachTypeName,
  BatchEntry,
  EngineName,
  HelperDeclaration,
  MemoryImage,
  PackedPackets,
  ProcessIdentity,
  ProgramOptions,
  ProgramType,
  Redirect,
  RunOptions,
  RunResult,
  SafetyMode,
  SentSignal,
  SocketIdentity,
  VerifierStats,
} from './program.js'
export { Program } from './program.js'
export type {
  CollectionSpec,
  FuncInfo,
  LineInfo,
  LoadOptions,
  MapSlot,
  MapSpec,
  ProgramSpec,
  Relocation,
} from './spec.js'
export { loadCollectionSpec, loadCollectionSpecSync, VariableSpec } from './spec.js'
export { formatTrace, type Trace, type TraceAccess, type TraceStep, type TraceValue } from './trace.js'
