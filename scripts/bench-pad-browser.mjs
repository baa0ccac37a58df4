#!/usr/bin/env node
// PAD decode cost in the browser: in ONE headless Chromium page (the demo page's worker,
// wasm, one thread), decode with 0 (plain), 1 and 4 preferences (plus the harmlessness
// context), greedy, end-of-turn ignored, alternating for a few rounds, and print one JSON
// line with each one's best decode tok/s and its cost relative to plain decoding.
//   node scripts/bench-pad-browser.mjs [--tokens 64] [--rounds 2] [--preferences 0,1,4]
import os from 'node:os';
import { launchChromium, startServer } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const tokens = Number(opt('tokens', 64));
const rounds = Number(opt('rounds', 2));
const counts = opt('preferences', '0,1,4').split(',').map(Number);

const server = await startServer({ port: 0 });
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}/www/?autoload=0`);
  await page.waitForFunction(() => !!window.padlock);
  // The CPU backend (wasm SIMD): 'auto' would pick WebGPU, which headless Chromium runs on
  // SwiftShader, i.e. on the CPU through a GPU emulator.
  const { info } = await page.evaluate(() => window.padlock.load('/models/SmolLM2-135M-Instruct.Q4_1.gguf', () => {}, { backend: 'cpu' }));
  if (info?.backend !== 'cpu') throw new Error(`expected the CPU backend, got ${info?.backend}`);
  const best = Object.fromEntries(counts.map((n) => [n, 0]));
  for (let round = 0; round < rounds; round++) {
    for (const n of counts) {
      const options = {
        maxTokens: tokens, greedy: true, repetitionPenalty: 1.0, ignoreEos: true,
        method: n === 0 ? 'base' : 'pad',
        preferences: Array.from({ length: n }, (_, i) => ({ text: `Preference number ${i + 1}: be helpful.` })),
      };
      const r = await page.evaluate((o) => window.padlock.generate('Write a long story about a dragon who learns to bake bread.', o), options);
      best[n] = Math.max(best[n], r.decodeTokensPerSecond);
    }
  }
  const results = counts.map((n) => ({
    preferences: n, contexts: n === 0 ? 1 : n + 2, decodeTokensPerSecond: best[n],
    costVsPlain: best[0] ? best[0] / best[n] : null,
  }));
  console.log(JSON.stringify({ bench: 'pad-decode-browser', backend: info.backend, kernel: info.kernel, tokens, rounds, browser: await browser.version(),
    cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100), results }));
} finally {
  await browser.close();
  await server.close();
}
