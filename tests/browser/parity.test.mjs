// Same prompt, seed and sampling settings give the same tokens in the browser (wasm, worker)
// as in the native command line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { requireArtifacts, openBrowser, loadModelViaClient, MODEL_PATH, CLI_PATH, ROOT, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

const PROMPT = 'What is the capital of Germany?';
const SETTINGS = { maxTokens: 48, temperature: 0.7, topP: 0.9, topK: 40, repetitionPenalty: 1.1, seed: 7 };

let env;

before(async () => {
  requireArtifacts({ cli: true });
  env = await openBrowser('parity');
});

after(async () => {
  await env?.close();
});

function native(extra) {
  const out = execFileSync(CLI_PATH, ['generate', '--model', MODEL_PATH, '--prompt', PROMPT, ...extra, '--json'],
    { cwd: ROOT, encoding: 'utf8', timeout: GEN_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  assert.ok(line, `padlock generate --json printed no JSON object:\n${out}`);
  return JSON.parse(line);
}

test('browser and native CLI generate the same tokens', { timeout: LOAD_TIMEOUT_MS + 4 * GEN_TIMEOUT_MS }, async (t) => {
  // The CPU backend on both sides (WebGPU against the CPU is webgpu.test.mjs).
  const info = await loadModelViaClient(env.page, env.server.url, { backend: 'cpu' });
  assert.equal(info.backend, 'cpu');

  await t.test('sampled: temperature 0.7, top-p 0.9, top-k 40, repetition penalty 1.1, seed 7, 48 tokens', async () => {
    const cli = native(['--max-tokens', '48', '--temperature', '0.7', '--top-p', '0.9', '--top-k', '40',
      '--repetition-penalty', '1.1', '--seed', '7']);
    const web = await env.page.evaluate(({ p, o }) => window.padlock.generate(p, o), { p: PROMPT, o: SETTINGS });
    assert.deepEqual(web.promptIds, cli.prompt_ids, 'prompt ids differ');
    assert.deepEqual(web.generatedIds, cli.generated_ids, `generated ids differ\n web: ${web.text}\n cli: ${cli.text}`);
    assert.equal(web.text, cli.text);
    assert.ok(web.generatedIds.length > 0);
  });

  await t.test('greedy, 32 tokens', async () => {
    const cli = native(['--max-tokens', '32', '--greedy']);
    const web = await env.page.evaluate((p) => window.padlock.generate(p, { maxTokens: 32, greedy: true, repetitionPenalty: 1.0 }), PROMPT);
    assert.deepEqual(web.generatedIds, cli.generated_ids, `generated ids differ\n web: ${web.text}\n cli: ${cli.text}`);
    assert.match(web.text, /Berlin/);
  });
});
