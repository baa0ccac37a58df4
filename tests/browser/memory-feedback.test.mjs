// Feedback-based alignment with the real default model in headless Chromium: the demo's thumbs
// and "which answer is better" buttons log events, a scripted person who always prefers the more
// concise answer raises the 'concise' weight and gets shorter answers (the scenario of
// tests/feedback.rs, fewer rounds), and after the model has loaded nothing — generating, storing,
// giving feedback — makes a network request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireArtifacts, openBrowser, MODEL_URL, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

// Kept equal to tests/feedback.rs, but for the rounds: the browser runs the first 6 of its 10
// (natively, 6 rounds take 'concise' from 0.5 to 1.86 and the mean answer from 60.5 to 55.7
// tokens; 10 rounds cost this stage five minutes on two cores, and the native test runs them all).
const SCENARIO = {
  train: ['How do I boil an egg?', 'What is photosynthesis?', 'How do I learn to play guitar?', 'What is a black hole?',
    'How can I save money?', 'What is the internet?', 'How do plants grow?', 'Why do we dream?'],
  evaluate: ['Why is the sky blue?', 'How can I sleep better?', 'What is gravity?', 'How do vaccines work?',
    'What is a computer?', 'How do birds fly?'],
  rounds: 6,
  maxTokens: 80,
  beta: 2.0,
  concise: 0.5,
  detailed: 1.5,
};
const SCENARIO_TIMEOUT_MS = Number(process.env.PADLOCK_E2E_SCENARIO_TIMEOUT_MS || 1_500_000);

let env;
const requests = []; // every request from the page and its worker, and every one the server saw

before(async () => {
  requireArtifacts();
  env = await openBrowser('memory-feedback', { webgpu: false }); // the CPU backend: WebGPU here is SwiftShader, ~40× slower (webgpu.test.mjs covers it)
  env.context.on('request', (r) => requests.push({ url: r.url(), by: 'browser' }));
  await env.page.goto(`${env.server.url}/www/?autoload=0`);
  await env.page.waitForFunction(() => !!window.padlock && document.getElementById('memory-status').textContent !== '');
  await env.page.evaluate((url) => window.padlock.load(url), MODEL_URL);
});

after(async () => {
  await env?.close();
});

function call(op, ...args) {
  return env.page.evaluate(async ([op, args]) => window.padlock.memory[op](...args), [op, args]);
}

test('after the model has loaded, generating, storing and feedback make no network request', { timeout: GEN_TIMEOUT_MS * 2 }, async () => {
  const page = env.page;
  const seenBefore = env.serverRequests.length;
  requests.length = 0;
  const summary = await page.evaluate(async () => {
    const c = window.padlock;
    await c.forget().catch(() => {});
    const p = await c.memory.add('Keep answers short and concise.', { weight: 1.5 });
    const a = await c.generateWithMemory('What is the capital of France?', { maxTokens: 24, seed: 1 });
    const b = await c.generateWithMemory('What is the capital of France?', { maxTokens: 24, seed: 2 });
    const up = await c.memory.feedback({ kind: 'thumbs_up', prompt: 'What is the capital of France?', responses: [a.response] });
    const pick = await c.memory.feedback({ kind: 'choice', prompt: 'What is the capital of France?', responses: [b.response, a.response] });
    const file = await c.memory.export({ passphrase: 'pw' });
    await c.memory.import(file, { passphrase: 'pw' });
    await c.memory.update(p.id, { weight: 2 });
    return { a, up, pick, events: (await c.memory.events()).events.length };
  });
  assert.equal(summary.events, 2);
  assert.equal(summary.a.method, 'pad');
  assert.deepEqual(summary.a.preferences, [summary.a.preferences[0], 'harmless'], 'the person\'s preference, then harmlessness (reward_contexts order)');
  assert.equal(summary.a.response.rewards.length, 2);
  assert.ok(summary.a.response.rewards.every((r) => Number.isFinite(r.value)));
  assert.deepEqual(requests, [], 'the page or its worker made requests');
  assert.deepEqual(env.serverRequests.slice(seenBefore), [], 'the server saw requests');
});

test('the thumbs and "which is better" buttons log feedback events', { timeout: GEN_TIMEOUT_MS * 3 }, async () => {
  const page = env.page;
  await page.evaluate(() => window.padlock.forget());
  // The demo page itself, loading the model through its UI (from this device's cache: forget
  // deleted it, and the first load of this page stored it again).
  await page.goto(`${env.server.url}/www/?autoload=1`); // autoload=1: no consent step (demo-chat.test.mjs tests it)
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: LOAD_TIMEOUT_MS });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
  await page.evaluate(() => window.padlock.memory.add('Keep answers short and concise.'));
  await page.evaluate(() => window.padlockApp.memory.refresh());
  await page.click('#settings summary');
  await page.fill('#max-tokens', '24');
  await page.fill('#seed', '3');
  const ask = async (prompt) => {
    await page.fill('#prompt', prompt);
    await page.evaluate(() => { window.padlockApp.lastResult = null; });
    await page.click('#send');
    await page.waitForFunction(() => window.padlockApp.lastResult && document.body.dataset.state === 'ready', null, { timeout: GEN_TIMEOUT_MS });
  };
  await ask('Name a fruit.');
  await page.waitForFunction(() => !document.getElementById('feedback').hidden);
  await page.click('#thumbs-up');
  await page.waitForFunction(() => /noted/.test(document.getElementById('feedback-status').textContent));
  await ask('Name a colour.');
  await page.click('#another');
  await page.waitForFunction(() => !document.getElementById('prefer-b').disabled, null, { timeout: GEN_TIMEOUT_MS });
  await page.click('#prefer-b');
  await page.waitForFunction(() => /lean/.test(document.getElementById('feedback-status').textContent));
  const { events } = await call('events');
  assert.deepEqual(events.map((e) => [e.kind, e.prompt, e.responses.length]), [
    ['thumbs_up', 'Name a fruit.', 1],
    ['choice', 'Name a colour.', 2],
  ]);
  assert.ok(events.every((e) => e.responses.every((r) => r.rewards.length === 2)), 'the responses carry their rewards');
});

test('always choosing the more concise answer raises "concise" and shortens the next answers', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
  const page = env.page;
  const t0 = Date.now();
  const r = await page.evaluate(async (s) => {
    const c = window.padlock;
    await c.forget();
    const concise = (await c.memory.add('Keep answers short and concise.', { weight: s.concise })).id;
    const detailed = (await c.memory.add('Explain in detail, with examples.', { weight: s.detailed })).id;
    await c.memory.setProfile({ beta: s.beta });
    const meanLength = async () => {
      const lengths = [];
      for (const prompt of s.evaluate) {
        const a = await c.generateWithMemory(prompt, { maxTokens: s.maxTokens, greedy: true, repetitionPenalty: 1 });
        lengths.push(a.response.tokens);
      }
      return { mean: lengths.reduce((x, y) => x + y, 0) / lengths.length, lengths };
    };
    const before = await meanLength();
    const rounds = [];
    for (let round = 0; round < s.rounds; round++) {
      const prompt = s.train[round % s.train.length];
      const sample = (seed) => c.generateWithMemory(prompt, { maxTokens: s.maxTokens, temperature: 0.8, seed });
      const a = await sample(2 * round + 1);
      const b = await sample(2 * round + 2);
      if (a.response.tokens === b.response.tokens) { rounds.push({ round, skipped: a.response.tokens }); continue; }
      const [chosen, rejected] = a.response.tokens < b.response.tokens ? [a, b] : [b, a];
      const out = await c.memory.feedback({ kind: 'choice', prompt, responses: [chosen.response, rejected.response] });
      rounds.push({ round, chosen: chosen.response.tokens, rejected: rejected.response.tokens, changes: out.changes });
    }
    const weights = Object.fromEntries((await c.memory.list()).preferences.map((p) => [p.id, p.effectiveWeight]));
    const afterLengths = await meanLength();
    return { before, after: afterLengths, rounds, concise: weights[concise], detailed: weights[detailed] };
  }, SCENARIO);
  console.error(`[scenario] ${((Date.now() - t0) / 1000).toFixed(0)} s; concise ${r.concise.toFixed(3)}, detailed ${r.detailed.toFixed(3)}; ` +
    `mean length ${r.before.mean} ${JSON.stringify(r.before.lengths)} -> ${r.after.mean} ${JSON.stringify(r.after.lengths)}`);
  assert.ok(r.concise > SCENARIO.concise, `the concise weight did not rise: ${JSON.stringify(r.rounds)}`);
  assert.ok(r.after.mean < r.before.mean, `answers did not get shorter on average: ${r.before.mean} -> ${r.after.mean}`);
});
