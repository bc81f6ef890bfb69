// The examples' own vitest configuration (the project's tests live in __test__/):
//   npx vitest run --config examples/vitest.config.mjs
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['examples/**/*.test.mjs'],
  },
})
