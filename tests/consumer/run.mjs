#!/usr/bin/env node
// The package as a web developer meets it: a new Vite + TypeScript app (tests/consumer/app) in a
// temporary folder installs dist/padlock-llm-*.tgz, type-checks (a typed usage passes, a string
// as max_tokens fails), builds with `vite build`, and the build, served with COOP/COEP, loads
// the default model in headless Chromium and chats: two turns plain and streamed, a
// personalized turn, one steered by the stored preferences (engine.memory), an abort then a
// request that succeeds, a wrong SHA-256, and a reload that
// takes the model from the device without a network request; then the kept model is deleted, and
// a site whose quota is smaller than the model is refused with QUOTA_EXCEEDED.
//
//   node tests/consumer/run.mjs        (after `make package`; `make consumer` runs it)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, pipeConsole, startServer } from '../../scripts/browser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODEL = path.join(ROOT, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const tarball = fs.readdirSync(path.join(ROOT, 'dist')).find((f) => /^padlock-llm-.*\.tgz$/.test(f));
assert.ok(tarball, "dist/padlock-llm-*.tgz is missing: run 'make package'");
assert.ok(fs.existsSync(MODEL), `${MODEL} is missing: run scripts/fetch-model.sh`);

const t0 = Date.now();
const step = (what) => console.log(`[consumer ${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'padlock-consumer-'));
fs.cpSync(path.join(ROOT, 'tests/consumer/app'), app, { recursive: true });
const run = (cmd, args) => execFileSync(cmd, args, { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

step(`npm install ${tarball} (in ${app})`);
run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', path.join(ROOT, 'dist', tarball)]);

step('tsc --noEmit --strict: the typed usage passes');
run('npx', ['tsc', '--noEmit', '--strict', '-p', 'tsconfig.json']);
step('tsc: a string as max_tokens fails');
let typeError = '';
try {
  run('npx', ['tsc', '--noEmit', '--strict', '-p', 'tsconfig.bad.json']);
} catch (e) {
  typeError = String(e.stdout) + String(e.stderr);
}
assert.match(typeError, /bad-options\.ts\(5,\d+\): error TS\d+/, `tsc accepted a string as max_tokens:\n${typeError}`);
assert.match(typeError, /Type 'string' is not assignable to type 'number'/, typeError);
assert.equal(typeError.match(/error TS/g).length, 1, `one error, the max_tokens one:\n${typeError}`);

step('vite build');
run('npx', ['vite', 'build', '--logLevel', 'warn']);
const dist = path.join(app, 'dist');
fs.mkdirSync(path.join(dist, 'models'));
fs.symlinkSync(MODEL, path.join(dist, 'models', path.basename(MODEL)));

const requests = [];
const server = await startServer({ port: 0, root: dist, onRequest: (r) => requests.push(r) });
const browser = await launchChromium([], { webgpu: false });
try {
  const page = await (await browser.newContext()).newPage();
  pipeConsole(page, 'consumer');
  const call = async (name) => {
    step(name);
    return page.evaluate((n) => window.consumer[n](), name);
  };
  await page.goto(`${server.url}/index.html`);
  await page.waitForFunction(() => !!window.consumer, null, { timeout: 60_000 });
  assert.equal(
    (await fetch(`${server.url}/index.html`)).headers.get('cross-origin-embedder-policy'),
    'require-corp',
    'served with COOP/COEP',
  );

  const first = await call('load');
  assert.equal(first.backend, 'cpu');
  assert.deepEqual(first.phases, ['download', 'load'], `load phases ${first.phases}`);

  const chat = await call('chat');
  console.log(`[consumer] turn 1: ${JSON.stringify(chat.first)}; turn 2: ${JSON.stringify(chat.second)}`);
  assert.ok(chat.first.length > 0 && chat.second.length > 0);
  assert.equal(chat.streamed.text, chat.second, 'the streamed text is the non-streamed text of the same greedy request');
  assert.ok(chat.streamed.chunks >= 3, 'a role chunk, content chunks, a finishing chunk');
  assert.ok(['stop', 'length'].includes(chat.streamed.finish), `finish_reason ${chat.streamed.finish}`);
  assert.ok(chat.secondPrefilled[0] < chat.secondPromptTokens / 2,
    `turn 2 prefilled ${chat.secondPrefilled} of ${chat.secondPromptTokens} tokens: turn 1's caches were kept`);

  const pers = await call('personalized');
  assert.equal(pers.method, 'pad');
  assert.deepEqual(pers.labels.length, 2, 'the preference and the harmlessness principle');
  assert.ok(pers.text.length > 0);
  assert.equal(pers.streamedText, pers.text);
  assert.equal(pers.explained, pers.tokens, 'every streamed token carries its explanation (β·w·r per context)');

  const mem = await call('memoryChat');
  assert.ok(mem.stored.some(([text, w]) => text === 'Answer like a pirate.' && w === 1.5), JSON.stringify(mem.stored));
  assert.equal(mem.method, 'pad');
  assert.ok(mem.steeredBy.includes(mem.added), `the stored preference steered the answer: ${JSON.stringify(mem)}`);
  assert.equal(mem.rewards, mem.labels.length, 'the response feedback takes has a reward per context');

  const aborted = await call('abort');
  assert.equal(aborted.error, 'AbortError');
  assert.ok(aborted.chunks >= 3 && aborted.chunks < 20, `stopped within a token of the abort (${aborted.chunks} chunks)`);
  assert.ok(aborted.after.length > 0, 'the next request succeeds');

  const unknown = await call('unknownKey');
  assert.equal(unknown.code, 'INVALID_ARGUMENT');
  assert.match(unknown.message, /max_token/);

  const before = requests.length;
  const wrong = await call('wrongSha256');
  assert.equal(wrong.code, 'MODEL_INTEGRITY');
  const kept = await call('models');
  assert.equal(kept.length, 1, `only the verified model is kept: ${JSON.stringify(kept)}`);
  assert.ok(requests.slice(before).some((r) => r.url.includes('/models/')), 'the wrong-hash load downloaded the file');

  step('reload: the model comes from the device');
  await page.reload();
  await page.waitForFunction(() => !!window.consumer, null, { timeout: 60_000 });
  const afterReload = requests.length;
  const again = await call('load');
  assert.deepEqual(again.phases, ['cache', 'load']);
  const modelRequests = requests.slice(afterReload).filter((r) => r.url.includes('/models/'));
  assert.deepEqual(modelRequests, [], 'no network request for the model after the reload');
  const deleted = await call('deleteModels');
  assert.deepEqual(deleted, { deleted: [true], left: 0 }, 'kept models can be deleted');

  step('a site whose quota cannot hold the model');
  const small = await browser.newContext();
  const smallPage = await small.newPage();
  const cdp = await small.newCDPSession(smallPage);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: 32 << 20 });
  await smallPage.goto(`${server.url}/index.html`);
  await smallPage.waitForFunction(() => !!window.consumer, null, { timeout: 60_000 });
  const full = await smallPage.evaluate(() => window.consumer.loadCode());
  assert.equal(full.code, 'QUOTA_EXCEEDED', JSON.stringify(full));
  assert.deepEqual(await smallPage.evaluate(() => window.consumer.models()), [], 'nothing half-kept');
  await small.close();
  step('all consumer checks passed');
} finally {
  await browser.close().catch(() => {});
  await server.close().catch(() => {});
  fs.rmSync(app, { recursive: true, force: true });
}
