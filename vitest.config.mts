import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['__test__/helpers/bpffs-setup.ts'],
  },
})
