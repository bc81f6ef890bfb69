/**
 * The N-API addon, through the loader that `napi build` generates into `native/`. Only this file
 * touches it; everything else uses the typed wrappers.
 *
 * The addon is loaded on first use, not on import: the assembler, the object loader, BTF and
 * `ebpf help` are TypeScript and work on a platform without a binary. Where none is found, the
 * error names the platform, the package that would hold its binary and how to build one.
 */
import type * as Binding from '../native/index.js'
import { NativeBindingError } from './errors.js'

let binding: typeof Binding | undefined

function load(): typeof Binding {
  if (binding === undefined) {
    try {
      // The generated loader (CommonJS) tries the local build (`native/ebpf.<platform>.node`, a dev
      // checkout) and then the platform's package (`ebpf-<platform>`, an installed release).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      binding = require('../native/index.js') as typeof Binding
    } catch (e) {
      throw missingBinding(e)
    }
  }
  return binding
}

/** The addon's exports, loaded when first read. */
export const native: typeof Binding = new Proxy({} as typeof Binding, {
  get: (_target, key) => Reflect.get(load(), key),
})

/**
 * The values of a string enum the binding declares (`ProgramTypeName`, `EngineName`,
 * `SafetyMode`), in declaration order: the one list of the names, which the TypeScript types
 * are generated from too. (`index.d.ts` declares such an enum as a type only.)
 */
export function nativeNames<T extends string>(
  name: 'ProgramTypeName' | 'EngineName' | 'SafetyMode' | 'AttachTypeName',
): readonly T[] {
  return Object.values(Reflect.get(load(), name) as Record<string, T>)
}

/** napi-rs's name for this host, as in the platform packages' names (`linux-x64-gnu`). */
export function platformName(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    // As napi-rs's loader tells them apart: glibc reports its version, musl does not.
    // (excludeNetwork: Node 20.13+, not in @types/node 20; it keeps getReport off the network.)
    if (process.report) (process.report as { excludeNetwork?: boolean }).excludeNetwork = true
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    const libc = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The messages of the loader's error and its causes (it chains one per place it tried). */
function loaderErrors(e: unknown): string[] {
  const out: string[] = []
  for (let c = e; c instanceof Error && out.length < 8; c = c.cause) out.push(c.message.split('\n')[0]!)
  // The head is napi-rs's generic advice (reinstall without the lock file), not a place tried.
  return out.filter((m) => !/^(Cannot find|Failed to load) native binding/.test(m))
}

/** Whether `specifier` resolves from here (the loader resolves packages the same way). */
function resolves(specifier: string): boolean {
  try {
    require.resolve(specifier)
    return true
  } catch {
    return false
  }
}

function missingBinding(cause: unknown): NativeBindingError {
  const platform = platformName()
  const packageName = `ebpf-${platform}`
  // The published platforms are the platform packages the main package depends on.
  let published: string[] = []
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('../package.json') as { optionalDependencies?: Record<string, string> }
    published = Object.keys(pkg.optionalDependencies ?? {}).map((name) => name.replace(/^ebpf-/, ''))
  } catch {
    // No package.json next to us: say nothing about what is published.
  }
  const why = resolves(packageName)
    ? `the package '${packageName}' is installed but its binary failed to load`
    : resolves(`${packageName}/package.json`)
      ? `the package '${packageName}' is installed without its binary`
      : published.includes(platform)
        ? `the package '${packageName}' is not installed (npm leaves optional dependencies out with --omit=optional)`
        : `there is no prebuilt package '${packageName}' (prebuilt: ${published.join(', ') || 'none'})`
  return new NativeBindingError(
    `no native binary for ${platform}: ${why}. To build it from source: install Rust (https://rustup.rs), ` +
      'then in a checkout of the ebpf repository run `npm ci && npm run build` (it writes ' +
      `native/ebpf.${platform}.node) and use that checkout, or set NAPI_RS_NATIVE_LIBRARY_PATH to the ` +
      `.node file. The loader tried: ${loaderErrors(cause).join('; ')}`,
    { platform, packageName, cause },
  )
}

export type NativeError = Binding.NativeError
export type NativeProgram = Binding.NativeProgram
export type NativeRunResult = Binding.NativeRunResult
export type NativeRunInput = Binding.NativeRunInput
export type NativeNetwork = Binding.NativeNetwork
export type NativeRoute = Binding.NativeRoute
export type NativeTunnel = Binding.NativeTunnel
export type NativeBatch = Binding.NativeBatch
export type NativeRecordsOutcome = Binding.NativeRecordsOutcome
export type RecordsLayout = Binding.RecordsLayout
export type NativeTrace = Binding.NativeTrace
export type NativeCoverage = Binding.NativeCoverage
export type NativeTraceValue = Binding.NativeTraceValue
export type NativeCancelToken = Binding.NativeCancelToken
export type ProgramTypeName = Binding.ProgramTypeName
export type EngineName = Binding.EngineName
export type SafetyMode = Binding.SafetyMode
export type AttachTypeName = Binding.AttachTypeName
