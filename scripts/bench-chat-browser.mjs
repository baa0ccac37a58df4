#!/usr/bin/env node
// Time to first token over the turns of a chat in the browser: in one headless Chromium page,
// the package's engine (its worker, wasm, one thread, the CPU backend) holds a chat of --turns
// greedy turns, plain and with each number of preferences, once with the caches kept between
// turns and once with them released before every turn, and prints one JSON line per case
// (the same questions as `padlock bench-chat`).
//   node scripts/bench-chat-browser.mjs [--turns 5] [--max-tokens 48] [--preferences 0,1]
import os from 'node:os';
import { launchChromium, startServer } from './browser.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const turns = Number(opt('turns', 5));
const maxTokens = Number(opt('max-tokens', 48));
const counts = opt('preferences', '0,1').split(',').map(Number);
const QUESTIONS = [
  'What is the capital of France?',
  'What is it famous for?',
  'Which river runs through it?',
  'What is a good time of year to visit?',
  'Name one museum there.',
  'How do people get around the city?',
  'What food should a visitor try?',
  'Thank you. Summarize our chat in one sentence.',
];

const server = await startServer({ port: 0 });
const browser = await launchChromium([], { webgpu: false });
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}/www/bench.html?auto=0`);
  await page.evaluate(async () => {
    const { createEngine } = await import('/pkg/index.js');
    window.engine = await createEngine({ model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf', backend: 'cpu', persist: false });
  });
  for (const n of counts) {
    const personalization = n === 0 ? undefined
      : { preferences: Array.from({ length: n }, (_, i) => ({ text: `Preference ${i + 1}: be friendly.` })), method: 'pad' };
    const chat = (kept) => page.evaluate(async ({ questions, kept, maxTokens, personalization }) => {
      const engine = window.engine;
      await engine.releaseCaches();
      const messages = [];
      const ttft = [];
      for (const q of questions) {
        messages.push({ role: 'user', content: q });
        if (!kept) await engine.releaseCaches();
        const t0 = performance.now();
        let first = null;
        let text = '';
        const stream = await engine.chat.completions.create({ messages, max_tokens: maxTokens, temperature: 0, stream: true, personalization });
        for await (const chunk of stream) {
          const piece = chunk.choices[0].delta.content;
          if (piece && first === null) first = performance.now() - t0;
          text += piece ?? '';
        }
        ttft.push(Math.round(first ?? performance.now() - t0));
        messages.push({ role: 'assistant', content: text });
      }
      return ttft;
    }, { questions: QUESTIONS.slice(0, turns), kept, maxTokens, personalization });
    await chat(false); // warm-up
    const keptMs = await chat(true);
    const freshMs = await chat(false);
    console.log(JSON.stringify({ bench: 'chat-ttft-browser', preferences: n, turns, kept_ms: keptMs, fresh_ms: freshMs,
      browser: await browser.version(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) }));
  }
} finally {
  await browser.close();
  await server.close();
}
