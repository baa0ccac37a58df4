#!/usr/bin/env node
// Turns pkg/ (wasm-pack's build of the crate) into the npm package padlock-llm: the package's
// own modules from js/ beside the wasm-bindgen output, and a package.json whose version is
// Cargo.toml's. `make package` then packs it with `npm pack` into dist/.
//
//   node scripts/package.mjs        (after `wasm-pack build ... --out-dir pkg`)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PKG = path.join(ROOT, 'pkg');
export const NAME = 'padlock-llm';

function cargoField(field) {
  const toml = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const pkg = toml.split(/^\[/m).find((s) => s.startsWith('package]'));
  const m = pkg && pkg.match(new RegExp(`^${field}\\s*=\\s*"([^"]*)"`, 'm'));
  if (!m) throw new Error(`Cargo.toml has no package.${field}`);
  return m[1];
}

const built = ['padlock.js', 'padlock_bg.wasm', 'padlock.d.ts'];
const missing = built.filter((f) => !fs.existsSync(path.join(PKG, f)));
if (missing.length) {
  console.error(`pkg/ lacks ${missing.join(', ')}: build it first ('make pkg')`);
  process.exit(1);
}
const own = ['index.js', 'index.d.ts', 'worker.js', 'models.js', 'README.md'];
for (const f of own) fs.copyFileSync(path.join(ROOT, 'js', f), path.join(PKG, f));
// wasm-pack writes a .gitignore of "*" and its own package.json; the package is ours.
fs.rmSync(path.join(PKG, '.gitignore'), { force: true });
const manifest = {
  name: NAME,
  version: cargoField('version'),
  description: cargoField('description'),
  license: cargoField('license'),
  type: 'module',
  main: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', default: './index.js' },
    './worker.js': './worker.js',
    './padlock_bg.wasm': './padlock_bg.wasm',
    './package.json': './package.json',
  },
  files: [...own, ...built],
  // The worker is a module the engine starts with `new Worker(new URL('./worker.js', import.meta.url))`.
  sideEffects: ['./worker.js'],
  keywords: ['llm', 'webassembly', 'webgpu', 'personalization', 'on-device', 'privacy', 'chat'],
  engines: { node: '>=18' },
};
fs.writeFileSync(path.join(PKG, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(`pkg/: ${NAME}@${manifest.version} (${manifest.files.length} files)`);
