/**
 * The N-API addon, through the loader that `napi build` generates into `native/`. Only this file
 * touches it; everything else uses the typed wrappers.
 */
import type * as Binding from '../native/index.js'

// The generated loader is CommonJS and picks the right `.node` file (local build or the
// platform's prebuilt package) for this host.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: typeof Binding = require('../native/index.js')

export type NativeError = Binding.NativeError
export type NativeProgram = Binding.NativeProgram
export type NativeRunResult = Binding.NativeRunResult
export type NativeRunInput = Binding.NativeRunInput
export type NativeBatch = Binding.NativeBatch
