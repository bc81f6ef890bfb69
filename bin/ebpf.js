#!/usr/bin/env node
'use strict'
// The `ebpf` command: everything lives in dist/cli/main.js (built from ts/cli/ by `npm run build`).
require('../dist/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
