// The demo on WebGPU. In headless Chromium with --enable-unsafe-webgpu (SwiftShader: WebGPU on
// the CPU, no GPU needed) the worker picks WebGPU by itself; it answers with the same greedy
// tokens as the CPU backend (plain, and PAD with a value head), its logits are the CPU's within
// the 0.05, nothing goes to the network while it generates, and the page's own control
// forces the CPU. In a browser without WebGPU the page falls back to the CPU and says so, once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireArtifacts, openBrowser, MODEL_URL, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

const PROMPT = 'What is the capital of Germany?';
const GREEDY = { maxTokens: 16, greedy: true, repetitionPenalty: 1.0 };
const LOGIT_TOLERANCE = 0.05; // the bound for GPU against CPU logits

const opened = [];
after(async () => {
  for (const env of opened) await env.close();
});

async function waitLoaded(page) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state),
    null, { timeout: LOAD_TIMEOUT_MS, polling: 250 });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    info: window.padlockApp.info,
    error: window.padlockApp.lastError,
    backendText: document.getElementById('backend').textContent,
    notice: document.getElementById('notice').hidden ? null : document.getElementById('notice').textContent,
    notices: window.padlockApp.notices,
  }));
}

/** Greedy answer and the logits at its first positions, through the page's worker client. */
function answer(page) {
  return page.evaluate(async ({ prompt, options }) => {
    const r = await window.padlock.generate(prompt, options);
    const logits = [];
    for (let j = 0; j < 3; j++) {
      const ids = [...r.promptIds, ...r.generatedIds.slice(0, j)];
      logits.push(Array.from(await window.padlock.logits(ids)));
    }
    return { r, logits };
  }, { prompt: PROMPT, options: GREEDY });
}

// PAD on the page's backend: one preference with the shipped concise head (so the batched step
// holds base, preference and harmlessness contexts, one through a value head), on the
// guideline contexts it was trained on. Short: SwiftShader prefills the three contexts at
// about 2 tok/s.
const PAD = { maxTokens: 4, greedy: true, repetitionPenalty: 1.0, method: 'pad', beta: 1.5, persrmContext: 'guideline',
  preferences: [{ text: 'Be concise: answer in one or two short sentences.', head: 'concise' }] };

function pad(page) {
  return page.evaluate(async ({ prompt, options }) => {
    await window.padlock.loadHead('concise', '/heads/concise.safetensors');
    return window.padlock.generate(prompt, options);
  }, { prompt: PROMPT, options: PAD });
}

function argmax(v) {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

test('the worker picks WebGPU on SwiftShader and answers as the CPU backend does', { timeout: 2 * LOAD_TIMEOUT_MS + 6 * GEN_TIMEOUT_MS }, async () => {
  requireArtifacts();
  const env = await openBrowser('webgpu');
  opened.push(env);
  const { page, server, context } = env;
  await page.goto(`${server.url}/www/?autoload=1`); // autoload=1: no consent step
  const loaded = await waitLoaded(page);
  assert.equal(loaded.state, 'ready', JSON.stringify(loaded.error));
  assert.equal(loaded.info.backend, 'webgpu', `the page chose ${loaded.info.backend}: ${loaded.info.backendNotice}`);
  assert.equal(loaded.info.backendNotice, null);
  assert.equal(loaded.notice, null, 'no notice when WebGPU is in use');
  assert.match(loaded.backendText, /webgpu/);

  // Nothing leaves the page while the GPU generates.
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const cdp = await context.newCDPSession(page);
  const cdpRequests = [];
  cdp.on('Network.requestWillBeSent', (e) => cdpRequests.push(e.request.url));
  await cdp.send('Network.enable');
  const t0 = Date.now();
  const gpu = await answer(page);
  console.error(`[webgpu] ${gpu.r.generatedIds.length} tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
    `(decode ${gpu.r.decodeTokensPerSecond.toFixed(2)} tok/s, prefill ${gpu.r.prefillTokensPerSecond.toFixed(2)} tok/s): ${JSON.stringify(gpu.r.text)}`);
  await cdp.detach();
  assert.deepEqual(requests, [], 'requests while generating on WebGPU');
  assert.deepEqual(cdpRequests, [], 'requests while generating on WebGPU (CDP)');
  assert.match(gpu.r.text, /Berlin/);
  const t1 = Date.now();
  const gpuPad = await pad(page);
  console.error(`[webgpu] PAD, 3 contexts, ${gpuPad.generatedIds.length} tokens in ${((Date.now() - t1) / 1000).toFixed(1)} s: ${JSON.stringify(gpuPad.text)}`);

  // The page's control forces the CPU: the model reloads there, with the same answer.
  await page.click('#model-source summary');
  await page.selectOption('#backend-choice', 'cpu');
  await page.waitForFunction(() => window.padlockApp.info?.backend === 'cpu' && document.body.dataset.state === 'ready',
    null, { timeout: LOAD_TIMEOUT_MS, polling: 250 });
  const cpu = await answer(page);
  const cpuPad = await pad(page);
  assert.deepEqual(gpuPad.generatedIds, cpuPad.generatedIds, `PAD on WebGPU: ${gpuPad.text}\nPAD on the CPU: ${cpuPad.text}`);
  assert.deepEqual(gpuPad.rewardLabels, cpuPad.rewardLabels);
  for (let i = 0; i < cpuPad.sequenceRewards.length; i++) {
    assert.ok(Math.abs(gpuPad.sequenceRewards[i] - cpuPad.sequenceRewards[i]) <= LOGIT_TOLERANCE * PAD.maxTokens,
      `sequence reward ${i}: ${gpuPad.sequenceRewards[i]} vs ${cpuPad.sequenceRewards[i]}`);
  }
  assert.deepEqual(gpu.r.promptIds, cpu.r.promptIds);
  assert.deepEqual(gpu.r.generatedIds, cpu.r.generatedIds, `WebGPU: ${gpu.r.text}\nCPU: ${cpu.r.text}`);
  let maxDiff = 0;
  for (let j = 0; j < gpu.logits.length; j++) {
    assert.equal(argmax(gpu.logits[j]), argmax(cpu.logits[j]), `top-1 at position ${j}`);
    for (let i = 0; i < cpu.logits[j].length; i++) maxDiff = Math.max(maxDiff, Math.abs(gpu.logits[j][i] - cpu.logits[j][i]));
  }
  console.error(`[webgpu] against the CPU in the same page: same ${gpu.r.generatedIds.length} greedy tokens, max |Δlogit| ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff <= LOGIT_TOLERANCE, `max |Δlogit| ${maxDiff}`);
});

test('without WebGPU the page falls back to the CPU and says so once', { timeout: 2 * LOAD_TIMEOUT_MS + GEN_TIMEOUT_MS }, async () => {
  requireArtifacts();
  const env = await openBrowser('no-webgpu', { webgpu: false });
  opened.push(env);
  const { page, server } = env;
  await page.goto(`${server.url}/www/?autoload=1`); // autoload=1: no consent step
  const loaded = await waitLoaded(page);
  assert.equal(loaded.state, 'ready', JSON.stringify(loaded.error));
  assert.equal(loaded.info.backend, 'cpu');
  assert.ok(loaded.info.backendNotice, 'the runtime says why it runs on the CPU');
  assert.match(loaded.notice, /WebGPU is not available/);
  assert.deepEqual(loaded.notices, [loaded.info.backendNotice]);
  console.error(`[no-webgpu] notice: ${loaded.notice}`);

  // Asking for WebGPU explicitly is a typed error, not a silent fallback.
  const forced = await page.evaluate(async (url) => {
    try {
      await window.padlock.load(url, () => {}, { backend: 'webgpu' });
      return { loaded: true };
    } catch (e) {
      return { code: e.code, message: e.message };
    }
  }, MODEL_URL);
  assert.equal(forced.code, 'GPU_UNAVAILABLE', JSON.stringify(forced));

  // Forcing the CPU needs no notice; back on 'auto' it falls back again, and the page does not
  // repeat the notice.
  await page.click('#model-source summary');
  await page.selectOption('#backend-choice', 'cpu');
  const cpu = await waitLoaded(page);
  assert.equal(cpu.info.backend, 'cpu');
  assert.equal(cpu.notice, null);
  await page.selectOption('#backend-choice', 'auto');
  const again = await waitLoaded(page);
  assert.equal(again.info.backend, 'cpu');
  assert.match(again.notice, /WebGPU is not available/);
  assert.equal(again.notices.length, 1, `notices: ${JSON.stringify(again.notices)}`);
  const r = await page.evaluate((p) => window.padlock.generate(p, { maxTokens: 8, greedy: true }), PROMPT);
  assert.ok(r.generatedIds.length > 0);
});
