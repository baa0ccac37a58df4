#!/usr/bin/env node
// Soak test: one headless Chromium page runs the package's engine (its worker, wasm, the CPU
// backend) through at least --generations answers and at least --minutes minutes of mixed work —
// plain and personalized chats with their history, streamed and not, cancelled halfway, with
// the preference memory and feedback, a prompt past the context, caches released — and fails
// on any unexpected error, on a network request after the model has loaded, or when the wasm
// memory keeps growing after the warm-up. Not part of `make test` (it runs 10 minutes or more):
//   make soak            # node scripts/soak-browser.mjs --generations 200 --minutes 10
import { launchChromium, startServer } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const generations = Number(opt('generations', 200));
const minutes = Number(opt('minutes', 10));
// The wasm memory may grow during the warm-up (caches, the largest prompt); after it, by at
// most this much (a leak of even a few KB an answer shows over hundreds of answers).
const GROWTH_LIMIT_MB = Number(opt('growth-limit-mb', 64));
const WARMUP = 20;

const server = await startServer({ port: 0 });
const browser = await launchChromium([], { webgpu: false });
const requests = [];
let loaded = false;
const failures = [];
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  context.on('request', (r) => { if (loaded) requests.push(r.url()); });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/www/bench.html?auto=0`);
  await page.evaluate(async () => {
    const { createEngine } = await import('/pkg/index.js');
    window.engine = await createEngine({ model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf', backend: 'cpu', persist: false });
    // A fresh memory for this run, with two preferences to steer by.
    await window.engine.forget().catch(() => {});
    await window.engine.load('/models/SmolLM2-135M-Instruct.Q4_1.gguf', () => {}, { backend: 'cpu' });
    await window.engine.memory.add('Keep answers short.', { weight: 1 });
    await window.engine.memory.add('I am vegetarian.', { weight: 1 });
  });
  loaded = true;
  const worker = page.workers().find((w) => w.url().endsWith('/worker.js'));
  const wasmBytes = () => worker.evaluate(async () => {
    const wasm = await (await import(new URL('padlock.js', self.location.href).href)).default();
    return wasm.memory.buffer.byteLength;
  });

  const started = Date.now();
  const samples = [];
  let baseline = null;
  let done = 0;
  const kinds = {};
  while (done < generations || Date.now() - started < minutes * 60_000) {
    const kind = ['plain', 'pad', 'stream', 'memory', 'cancel', 'chat', 'feedback', 'too-long', 'release'][done % 9];
    const r = await page.evaluate(async ({ kind, n }) => {
      const e = window.engine;
      const ask = (content) => [{ role: 'user', content }];
      const base = { max_tokens: 24, temperature: 0.7, seed: n };
      try {
        switch (kind) {
          case 'plain':
            return { ok: !!(await e.chat.completions.create({ ...base, messages: ask(`Name a fruit. (${n})`) })).choices[0] };
          case 'pad':
            await e.chat.completions.create({ ...base, messages: ask('Suggest a dinner.'),
              personalization: { preferences: [{ text: 'Answer like a pirate.', weight: 1 }], method: 'pad', explain: true } });
            return { ok: true };
          case 'stream': {
            let pieces = 0;
            for await (const c of await e.chat.completions.create({ ...base, messages: ask('Count to five.'), stream: true })) {
              if (c.choices[0].delta.content) pieces += 1;
            }
            return { ok: pieces > 0 };
          }
          case 'memory':
            await e.chat.completions.create({ ...base, messages: ask('What should I cook?'), personalization: { memory: true } });
            return { ok: true };
          case 'cancel': {
            const ac = new AbortController();
            const s = await e.chat.completions.create({ ...base, max_tokens: 64, messages: ask('Tell a long story.'), stream: true, signal: ac.signal });
            let k = 0;
            try {
              for await (const c of s) if (c.choices[0].delta.content && ++k === 3) ac.abort();
            } catch (err) {
              if (err.name !== 'AbortError') throw err;
            }
            return { ok: true };
          }
          case 'chat': {
            const messages = ask('What is the capital of France?');
            const a = await e.chat.completions.create({ ...base, messages });
            messages.push(a.choices[0].message, { role: 'user', content: 'And its river?' });
            await e.chat.completions.create({ ...base, messages });
            return { ok: true, answers: 2 };
          }
          case 'feedback': {
            const g = await e.generateWithMemory('Give me a lunch idea.', { maxTokens: 16, seed: n });
            await e.memory.feedback({ kind: n % 2 ? 'thumbs_up' : 'thumbs_down', prompt: 'Give me a lunch idea.', responses: [g.response] });
            return { ok: true };
          }
          case 'too-long':
            try {
              await e.chat.completions.create({ ...base, messages: ask('hello world '.repeat(5000)) });
              return { ok: false, error: 'a prompt past the context was answered' };
            } catch (err) {
              return { ok: err.code === 'PROMPT_TOO_LONG', error: `${err.code}: ${err.message}` };
            }
          case 'release':
            await e.releaseCaches();
            await e.chat.completions.create({ ...base, messages: ask('Say hi.') });
            return { ok: true };
          default:
            return { ok: false, error: `unknown kind ${kind}` };
        }
      } catch (err) {
        return { ok: false, error: `${err.code || err.name}: ${err.message}` };
      }
    }, { kind, n: done });
    kinds[kind] = (kinds[kind] || 0) + (r.answers || 1);
    if (!r.ok) failures.push(`${kind} #${done}: ${r.error}`);
    done += 1;
    if (done === WARMUP) baseline = await wasmBytes();
    if (done % 25 === 0) {
      const bytes = await wasmBytes();
      samples.push({ generations: done, seconds: Math.round((Date.now() - started) / 1000), wasmMB: Math.round(bytes / 2 ** 20) });
      console.error(`[soak] ${JSON.stringify(samples.at(-1))}`);
    }
  }
  const end = await wasmBytes();
  const growthMB = baseline === null ? 0 : (end - baseline) / 2 ** 20;
  if (growthMB > GROWTH_LIMIT_MB) failures.push(`the wasm memory grew ${growthMB.toFixed(1)} MB after the warm-up`);
  if (requests.length) failures.push(`network requests after the model loaded: ${requests.slice(0, 5).join(', ')}`);
  const answers = Object.values(kinds).reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    generations: done, answers, kinds, minutes: +((Date.now() - started) / 60_000).toFixed(1),
    wasmMB: { afterWarmup: Math.round(baseline / 2 ** 20), end: Math.round(end / 2 ** 20) },
    requestsAfterLoad: requests.length, failures,
  }));
} finally {
  await browser.close().catch(() => {});
  await server.close().catch(() => {});
}
if (failures.length) {
  console.error(`soak: FAILED\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.error('soak: ok');
