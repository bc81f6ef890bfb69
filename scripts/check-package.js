#!/usr/bin/env node
'use strict'
/*
 * `prepack` of the packages: refuses to pack one that would install broken.
 *   node scripts/check-package.js                  the main package (from the root, after `tsc`)
 *   node ../../scripts/check-package.js platform   a platform package under npm/ (from its folder)
 * The main package needs the TypeScript output and the loader that `napi build` generates, and
 * must depend on every platform package at exactly its own version (the loader refuses others);
 * a platform package needs its `.node` file, which `npm run artifacts` copies in.
 */
const { existsSync, readdirSync, readFileSync } = require('node:fs')
const { join } = require('node:path')

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))
const problems = []

function checkPlatformPackage(dir) {
  const pkg = readJson(join(dir, 'package.json'))
  if (!existsSync(join(dir, pkg.main))) {
    problems.push(
      `${pkg.name}: ${pkg.main} is missing; build it (npm run build) and copy it in (npm run artifacts) first`,
    )
  }
  return pkg
}

function checkMainPackage(root) {
  const pkg = readJson(join(root, 'package.json'))
  for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js']) {
    if (!existsSync(join(root, file))) problems.push(`${file} is missing; npm run build:ts writes it`)
  }
  for (const file of ['native/index.js', 'native/index.d.ts']) {
    if (!existsSync(join(root, file))) problems.push(`${file} is missing; npm run build:native generates it`)
  }
  const optional = pkg.optionalDependencies ?? {}
  const platforms = readdirSync(join(root, 'npm')).map((d) => readJson(join(root, 'npm', d, 'package.json')))
  for (const p of platforms) {
    if (p.version !== pkg.version) problems.push(`npm/: ${p.name} is version ${p.version}, the package ${pkg.version}`)
    if (optional[p.name] !== pkg.version) {
      problems.push(`optionalDependencies must list ${p.name} at exactly ${pkg.version} (has ${optional[p.name]})`)
    }
  }
  for (const name of Object.keys(optional)) {
    if (!platforms.some((p) => p.name === name)) problems.push(`optionalDependencies: ${name} has no folder under npm/`)
  }
  return pkg
}

const pkg = process.argv[2] === 'platform' ? checkPlatformPackage(process.cwd()) : checkMainPackage(process.cwd())
if (problems.length > 0) {
  process.stderr.write(`refusing to pack ${pkg.name}@${pkg.version}:\n${problems.map((p) => `  ${p}\n`).join('')}`)
  process.exit(1)
}
