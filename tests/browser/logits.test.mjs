// The wasm build's logits (simd128 kernels, in a real browser, through the worker) against two
// independent references for the same file, teacher-forced, with the same bounds as the native
// tests (tests/model.rs):
// - tests/fixtures/...f64.json: an exact float64 forward pass (scripts/reference_logits.py):
//   the recorded top-20 logits within 0.01 and the same argmax;
// - tests/fixtures/...llamacpp.json: llama.cpp (8-bit activations, so itself up to ~0.75 off
//   the exact values): the recorded top-20 logits within 0.76.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requireArtifacts, openBrowser, loadModelViaClient, ROOT, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

const FIXTURES = path.join(ROOT, 'tests/fixtures');
const EXACT = path.join(FIXTURES, 'smollm2-135m-instruct-q4_1.f64.json');
const LLAMA_CPP = path.join(FIXTURES, 'smollm2-135m-instruct-q4_1.llamacpp.json');
// Keep in step with tests/model.rs.
const EXACT_TOLERANCE = 0.01;
const LLAMA_CPP_TOLERANCE = 0.76;

let env;
let cases; // { user, ids, position j, exact: chat of EXACT, llama: chat of LLAMA_CPP }

before(async () => {
  requireArtifacts();
  for (const f of [EXACT, LLAMA_CPP]) assert.ok(fs.existsSync(f), `missing ${f}`);
  const exact = JSON.parse(fs.readFileSync(EXACT, 'utf8')).chat;
  const llama = JSON.parse(fs.readFileSync(LLAMA_CPP, 'utf8')).chat;
  assert.equal(exact.length, llama.length);
  // Every chat at its first position; the first two chats at every recorded position.
  cases = [];
  llama.forEach((c, i) => {
    assert.equal(exact[i].user, c.user);
    const positions = i < 2 ? c.top20_logits_first_positions.length : 1;
    for (let j = 0; j < positions; j++) {
      cases.push({ user: c.user, j, ids: [...c.prompt_ids, ...c.greedy_ids.slice(0, j)], exact: exact[i], llama: c });
    }
  });
  env = await openBrowser('logits');
});

after(async () => {
  await env?.close();
});

function compare(logits, top, tolerance, what, failures) {
  let maxDiff = 0;
  for (const [id, want] of top) {
    const diff = Math.abs(logits[id] - want);
    maxDiff = Math.max(maxDiff, diff);
    if (diff > tolerance) failures.push(`${what} token ${id}: ours ${logits[id].toFixed(4)}, reference ${want.toFixed(4)}`);
  }
  return maxDiff;
}

test('browser logits match the exact f64 reference and llama.cpp (teacher-forced)', { timeout: LOAD_TIMEOUT_MS + GEN_TIMEOUT_MS }, async () => {
  // The CPU path (simd128); the WebGPU path's logits are checked in webgpu.test.mjs.
  const info = await loadModelViaClient(env.page, env.server.url, { backend: 'cpu' });
  let maxExact = 0;
  let maxLlama = 0;
  let agree = 0;
  const failures = [];
  for (const c of cases) {
    const logits = await env.page.evaluate(async (ids) => Array.from(await window.padlock.logits(ids)), c.ids);
    assert.equal(logits.length, info.vocabSize);
    let best = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
    const what = `${JSON.stringify(c.user)} position ${c.j}`;
    if (best !== c.exact.argmax[c.j]) failures.push(`${what}: argmax ${best}, exact reference ${c.exact.argmax[c.j]}`);
    agree += best === c.llama.greedy_ids[c.j] ? 1 : 0;
    maxExact = Math.max(maxExact, compare(logits, c.exact.top20_logits_first_positions[c.j], EXACT_TOLERANCE, `${what} (exact)`, failures));
    maxLlama = Math.max(maxLlama, compare(logits, c.llama.top20_logits_first_positions[c.j], LLAMA_CPP_TOLERANCE, `${what} (llama.cpp)`, failures));
  }
  console.error(`[logits] ${cases.length} positions: max |Δlogit| vs exact f64 ${maxExact.toExponential(2)}, ` +
    `vs llama.cpp ${maxLlama.toFixed(3)}; argmax = llama.cpp's greedy token at ${agree}/${cases.length}`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
});
