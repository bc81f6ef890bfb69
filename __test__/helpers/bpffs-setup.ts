/**
 * vitest's global setup: one bpf filesystem for the whole run where none is mounted (a fresh
 * machine mounts none), handed to the test processes through `EBPF_TEST_BPFFS` and unmounted when
 * the run ends. A test process mounting its own could only unmount it on its `exit` event, which
 * vitest's workers do not always reach, and the mounts were left behind.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mountedBpfFs } from './kernel'

export default function setup(): (() => void) | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined
  if (mountedBpfFs()) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-bpffs-'))
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', dir], { stdio: 'ignore' })
  } catch {
    // The tests say why the kernel is not there (kernel.ts).
    rmSync(dir, { recursive: true, force: true })
    return undefined
  }
  process.env.EBPF_TEST_BPFFS = dir
  return () => {
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // Best effort: a pin still open keeps it busy.
    }
  }
}
