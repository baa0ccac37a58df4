#!/usr/bin/env node
// In-browser benchmark: padlock vs @wllama/wllama 3.8.1 in ONE headless Chromium run, on
// www/bench.html served with COOP/COEP. Prints one JSON line:
//   {"bench":"browser","padlock":{...},"wllama":{...},"ratio":padlock/wllama decode tok/s,...}
//
//   node scripts/bench-browser.mjs [--tokens 128] [--only padlock|wllama] [--prompt "..."] [--warmup 8]
//                                  [--order wllama,padlock] [--no-webgpu] [--backends cpu,webgpu]
//                                  [--model /models/quant/SmolLM2-135M-Instruct.Q4_K_M.gguf]
// --backends: padlock's backends to run, in order (default cpu); webgpu runs on SwiftShader here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, startServer, pipeConsole } from './browser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const tokens = Number(opt('tokens', process.env.BENCH_TOKENS || 128));
const only = opt('only', 'both');
const timeoutS = Number(opt('timeout', 1200));

const need = [['models/SmolLM2-135M-Instruct.Q4_1.gguf', 'run scripts/setup.sh'],
  ['node_modules/@wllama/wllama/esm/wasm/wllama.wasm', 'run npm ci']];
if (only !== 'wllama') need.push(['pkg/padlock.js', "run 'make pkg'"]);
for (const [f, fix] of need) {
  if (!fs.existsSync(path.join(ROOT, f))) {
    console.error(`bench-browser: ${f} is missing: ${fix}`);
    process.exit(2);
  }
}

const server = await startServer({ port: 0 });
const browser = await launchChromium([], { webgpu: !args.includes('--no-webgpu') });
let code = 0;
try {
  const page = await browser.newPage();
  pipeConsole(page, 'bench');
  const params = new URLSearchParams({ tokens: String(tokens), only });
  if (opt('prompt')) params.set('prompt', opt('prompt'));
  if (opt('warmup')) params.set('warmup', opt('warmup'));
  if (opt('order')) params.set('order', opt('order'));
  if (opt('backends')) params.set('backends', opt('backends'));
  if (opt('model')) params.set('model', opt('model'));
  if (args.includes('--wllama-log')) params.set('wllama_log', '1');
  await page.goto(`${server.url}/www/bench.html?${params}`);
  await page.waitForFunction(() => window.benchResult || window.benchError, null, { timeout: timeoutS * 1000, polling: 500 });
  const { benchResult, benchError } = await page.evaluate(() => ({ benchResult: window.benchResult, benchError: window.benchError }));
  if (benchError) {
    console.error(`bench-browser: the page failed: [${benchError.code}] ${benchError.message}\n${benchError.stack}`);
    code = 1;
  } else {
    const r = benchResult;
    for (const k of Object.keys(r)) if (r[k]?.text) r[k].text = r[k].text.slice(0, 200);
    const line = {
      bench: 'browser',
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, browser: (await browser.version()),
        loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100), webgpuFlag: !args.includes('--no-webgpu') },
      ...r,
    };
    console.log(JSON.stringify(line));
  }
} finally {
  await browser.close();
  await server.close();
}
process.exit(code);
