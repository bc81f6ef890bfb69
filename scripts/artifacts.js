#!/usr/bin/env node
'use strict'
/*
 * `npm run artifacts`: copies each built `.node` file from native/ (where `npm run build:native`
 * writes it; in a release, the per-platform CI builds' outputs gathered there) into its platform
 * package under npm/, ready for `npm publish -w <package>`. (`napi artifacts` does this too, but
 * also writes the loader and the binary into the root package.)
 */
const { copyFileSync, existsSync, readdirSync, readFileSync } = require('node:fs')
const { join } = require('node:path')

const root = join(__dirname, '..')
const from = join(root, process.argv[2] ?? 'native')
let copied = 0
for (const dir of readdirSync(join(root, 'npm'))) {
  const pkg = JSON.parse(readFileSync(join(root, 'npm', dir, 'package.json'), 'utf8'))
  const binary = join(from, pkg.main)
  if (!existsSync(binary)) {
    process.stdout.write(`${pkg.name}: no ${pkg.main} in ${from}, skipped\n`)
    continue
  }
  copyFileSync(binary, join(root, 'npm', dir, pkg.main))
  process.stdout.write(`${pkg.name}: ${pkg.main} copied\n`)
  copied++
}
if (copied === 0) {
  process.stderr.write(`no platform binary found in ${from}: build one first (npm run build:native)\n`)
  process.exit(1)
}
