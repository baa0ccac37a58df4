// The demo as a private chat, end to end with the real model in headless Chromium (CPU backend,
// greedy, short answers, so the file stays within a few minutes on two cores): the first visit
// asks before downloading, a two-turn chat sends its history and the second answer depends on
// it, Stop and New chat, conversations kept encrypted across a reload (the raw IndexedDB records
// hold no plaintext) and deleted one by one or all at once, the request counter stays at 0 after
// loading, Compare with marked tokens whose explanation opens from the keyboard, and feedback that
// shows which weights moved.
//
// Each journey runs on a fresh browser profile (a new Playwright context: its own Cache Storage,
// IndexedDB, localStorage and service worker), so none leans on what another left behind: the
// first visit and the conversations; Compare; feedback, then the views checked (axe-core, light and
// dark, 1280 and 390 px, screenshots) on that profile, where the chat, Compare and the memory
// inspector all have content; offline after a first visit; export → forget → import. A fresh
// profile downloads the 98 MB model again from the local test server and loads it, about 10 s here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requireArtifacts, openBrowser, newProfile, axeViolations, ROOT, MODEL_URL, LOAD_TIMEOUT_MS, GEN_TIMEOUT_MS } from './helpers.mjs';

let env;
const requests = []; // every request the first profile made (page and worker), from the start
let profile; // the profile of the journey under way after the first ({ context, page })

before(async () => {
  requireArtifacts();
  env = await openBrowser('demo-chat', { webgpu: false });
  env.context.on('request', (r) => requests.push(r.url()));
  env.page.on('dialog', (d) => d.accept());
});

after(async () => {
  await env?.close();
});

/** Closes the last journey's profile and opens a fresh one with the model loaded (consent given by ?autoload=1). */
async function freshProfileReady(name) {
  await (profile?.context ?? env.context).close();
  profile = await newProfile(env, `demo-chat ${name}`);
  profile.page.on('dialog', (d) => d.accept());
  await profile.page.goto(`${env.server.url}/www/?backend=cpu&autoload=1`);
  await waitReady(profile.page);
  return profile;
}

async function waitReady(page) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null,
    { timeout: LOAD_TIMEOUT_MS, polling: 250 });
  const s = await page.evaluate(() => ({ state: document.body.dataset.state, error: window.padlockApp.lastError }));
  assert.equal(s.state, 'ready', `the model did not load: ${JSON.stringify(s.error)}`);
}

/** Types `text` into the message box, presses Send and waits for the answer. */
async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.evaluate(() => { window.padlockApp.lastResult = null; window.padlockApp.lastError = null; });
  await page.getByRole('button', { name: 'Send' }).click();
  await page.waitForFunction(() => document.body.dataset.state === 'ready' &&
    (window.padlockApp.lastResult || window.padlockApp.lastError), null, { timeout: GEN_TIMEOUT_MS, polling: 100 });
  const r = await page.evaluate(() => ({ result: window.padlockApp.lastResult, error: window.padlockApp.lastError }));
  assert.equal(r.error, null, `the answer failed: ${JSON.stringify(r.error)}`);
  return r.result;
}

/** Adds a preference in the panel; when the panel says it relates to a saved one (matching `related`), saves anyway. */
async function addPreference(page, text, related) {
  await page.fill('#preference-text', text);
  await page.click('#add-preference button[type=submit]');
  if (related) {
    await page.waitForFunction(() => !document.getElementById('preference-relations').hidden);
    assert.match(await page.textContent('#preference-relations'), related);
    await page.getByRole('button', { name: 'Save anyway' }).click();
  }
  await page.waitForFunction((t) => [...document.querySelectorAll('#preferences .pref-text')].some((e) => e.textContent === t), text);
}

const openSettings = (page) => page.evaluate(() => { document.getElementById('settings').open = true; });

const shownMessages = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => ({
  role: li.classList.contains('user') ? 'user' : 'assistant', text: li.querySelector('.text').textContent })));

// Records each request the page passes to engine.chat.completions.create (observed, not replaced).
function recordRequests(page) {
  return page.evaluate(() => {
    const completions = window.padlock.chat.completions;
    const create = completions.create;
    window.padlockApp.requests = [];
    completions.create = (request) => {
      const { signal, ...body } = request;
      window.padlockApp.requests.push(structuredClone(body));
      return create(request);
    };
  });
}

test('a first visit asks before downloading the model, then remembers the consent', { timeout: LOAD_TIMEOUT_MS + 60_000 }, async () => {
  const { page, server } = env;
  await page.goto(`${server.url}/www/?backend=cpu`);
  await page.getByRole('button', { name: /Download the model/ }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'idle');
  assert.ok(!requests.some((u) => u.endsWith(MODEL_URL)), 'the model was requested before the consent');
  assert.match(await page.textContent('#consent'), /MB/);
  await page.getByRole('button', { name: /Download the model/ }).click();
  await waitReady(page);
  assert.ok(requests.some((u) => u.endsWith(MODEL_URL)), 'the model request was not observed');
  const s = await page.evaluate(() => ({
    consent: localStorage.getItem('padlock-demo-model-consent'),
    consentHidden: document.getElementById('consent').hidden,
    count: document.getElementById('request-count').textContent,
    persisted: document.getElementById('persisted').textContent,
    used: document.getElementById('storage-used').dataset.bytes,
    phases: [...new Set(window.padlockApp.progressLog.map((p) => p.phase))],
  }));
  // Progress was shown for the download and the loading.
  assert.ok(s.phases.includes('download') && s.phases.includes('load'), `progress phases: ${s.phases}`);
  assert.equal(s.consent, 'yes');
  assert.equal(s.consentHidden, true);
  assert.equal(s.count, '0');
  await page.waitForFunction(() => /^(yes|no)/.test(document.getElementById('persisted').textContent));
  assert.ok(Number(s.used) > 0, `storage used: ${s.used}`);
});

test('a two-turn chat sends the history, and the second answer depends on it', { timeout: 4 * GEN_TIMEOUT_MS }, async () => {
  const { page } = env;
  await page.check('#steer-base'); // the plain model: one context, the cheapest answers
  await openSettings(page);
  await page.check('#greedy');
  await page.fill('#max-tokens', '24');
  await recordRequests(page);
  const requestsBefore = requests.length;

  const first = await send(page, 'What is the capital of France?');
  const second = await send(page, 'And what is its population?');
  console.error(`[demo-chat] turn 1: ${JSON.stringify(first.text)} | turn 2: ${JSON.stringify(second.text)}`);
  const sent = await page.evaluate(() => window.padlockApp.requests);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1].messages, [
    { role: 'user', content: 'What is the capital of France?' },
    { role: 'assistant', content: first.text },
    { role: 'user', content: 'And what is its population?' },
  ]);
  assert.equal(sent[1].temperature, 0, 'greedy');
  // A screen reader hears the finished answer once.
  assert.equal(await page.textContent('#answer-announcer'), `padlock answered: ${second.text}`);
  // The history renders, in order.
  assert.deepEqual(await shownMessages(page), [
    { role: 'user', text: 'What is the capital of France?' },
    { role: 'assistant', text: first.text },
    { role: 'user', text: 'And what is its population?' },
    { role: 'assistant', text: second.text },
  ]);
  // Without the first turn the same greedy question gets another answer.
  const alone = await page.evaluate((max) => window.padlock.chat.completions.create({
    messages: [{ role: 'user', content: 'And what is its population?' }], temperature: 0, max_tokens: max }), 24);
  assert.notEqual(alone.choices[0].message.content, second.text, 'the second answer ignored the history');
  // "its" is Paris only through the first turn (alone, the model answers about something else).
  assert.match(first.text, /Paris/);
  assert.match(second.text, /Paris/, 'the second answer should know "its" from the first turn');
  assert.doesNotMatch(alone.choices[0].message.content, /Paris/);
  // The second turn prefilled only its new tokens.
  assert.ok(second.usage.prefilled_tokens[0] < second.usage.prompt_tokens, JSON.stringify(second.usage));
  // Privacy: nothing left the page while chatting, and the page's own counter says so.
  assert.deepEqual(requests.slice(requestsBefore), []);
  assert.equal(await page.textContent('#request-count'), '0');
});

test('Stop ends a running answer and New chat starts an empty conversation', { timeout: 2 * GEN_TIMEOUT_MS }, async () => {
  const { page } = env;
  await page.fill('#max-tokens', '200');
  await page.getByLabel('Message', { exact: true }).fill('Write a very long story about a dragon who learns to bake bread.');
  await page.evaluate(() => { window.padlockApp.lastResult = null; window.padlockApp.lastError = null; });
  await page.getByRole('button', { name: 'Send' }).click();
  await page.waitForFunction(() => document.querySelector('#messages li.assistant.streaming .text')?.textContent.length > 0,
    null, { timeout: GEN_TIMEOUT_MS });
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.waitForFunction(() => document.body.dataset.state === 'ready' &&
    (window.padlockApp.lastResult || window.padlockApp.lastError), null, { timeout: GEN_TIMEOUT_MS });
  const r = await page.evaluate(() => ({ result: window.padlockApp.lastResult, error: window.padlockApp.lastError,
    stats: document.getElementById('stats').textContent, meta: document.querySelector('#messages li.assistant:last-child .meta').textContent }));
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.result.finishReason, 'cancelled');
  assert.ok(r.result.count > 0 && r.result.count < 200, `tokens: ${r.result.count}`);
  assert.match(r.stats, /stopped/);
  assert.match(r.meta, /Stopped/);
  assert.equal((await shownMessages(page)).length, 6);

  await page.getByRole('button', { name: 'New chat' }).click();
  assert.deepEqual(await shownMessages(page), []);
  await send(page, 'Name a fruit.');
  assert.equal((await shownMessages(page)).length, 2);
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 2);
  assert.equal(await page.textContent('#request-count'), '0');
  // The counters do count: one request from the page shows in both (the page's resource timing,
  // and the service worker, which controls the page since the first load).
  await page.evaluate(async () => (await fetch('/www/style.css?probe')).text());
  await page.waitForFunction(() => document.getElementById('request-count').textContent === '1' &&
    document.getElementById('worker-request-count').textContent === '1', null, { timeout: 10_000 });
});

test('conversations survive a reload, are stored encrypted, and can be deleted one by one or all', { timeout: LOAD_TIMEOUT_MS + 60_000 }, async () => {
  const { page } = env;
  await page.reload();
  // The list is read from IndexedDB (no model needed), and the most recent conversation is open.
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 2);
  const titles = await page.$$eval('#conversation-list .open-conversation', (b) => b.map((x) => x.textContent));
  assert.deepEqual(titles, ['Name a fruit.', 'What is the capital of France?']);
  await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 2);
  await page.click('#conversation-list li:nth-child(2) .open-conversation');
  assert.equal((await shownMessages(page))[0].text, 'What is the capital of France?');

  // The raw records: an id, an IV and ciphertext; the key is a non-extractable CryptoKey.
  const raw = await page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('padlock-conversations');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = (name) => new Promise((resolve, reject) => {
      const r = db.transaction(name).objectStore(name).getAll();
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const records = await all('conversations');
    const keys = await all('keys');
    db.close();
    const latin1 = (buf) => Array.from(new Uint8Array(buf), (b) => String.fromCharCode(b)).join('');
    return {
      fields: records.map((r) => Object.keys(r).sort()),
      dump: records.map((r) => JSON.stringify(r) + latin1(r.ciphertext) + latin1(r.iv)).join('\n'),
      keys: keys.map((k) => ({ type: k.constructor.name, extractable: k.extractable, algorithm: k.algorithm.name })),
    };
  });
  assert.deepEqual(raw.fields, [['ciphertext', 'id', 'iv'], ['ciphertext', 'id', 'iv']]);
  for (const plain of ['capital of France', 'Paris', 'population', 'Name a fruit', 'dragon', 'assistant']) {
    assert.ok(!raw.dump.includes(plain), `the stored records contain ${JSON.stringify(plain)}`);
  }
  assert.deepEqual(raw.keys, [{ type: 'CryptoKey', extractable: false, algorithm: 'AES-GCM' }]);

  // Delete one, then all (the page asks first; the test's dialog handler accepts).
  await page.getByRole('button', { name: /Delete the conversation “Name a fruit\.”/ }).click();
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 1);
  await page.getByRole('button', { name: 'Delete all conversations' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 0);
  assert.deepEqual(await shownMessages(page), []);
  await page.reload();
  await page.waitForFunction(() => /^0 conversations/.test(document.getElementById('conversations-status').textContent));
  // Consent was remembered: the model loads without asking (from this device).
  await waitReady(page);
  assert.equal(await page.evaluate(() => document.getElementById('consent').hidden), true);
});

test('Compare shows the base and the personalized answer side by side, with marked tokens explained from the keyboard', { timeout: LOAD_TIMEOUT_MS + 3 * GEN_TIMEOUT_MS }, async () => {
  const { page } = await freshProfileReady('compare');
  await page.check('#steer-try');
  await page.fill('#pref-1', 'Be concise: answer in one or two short sentences.');
  await page.fill('#beta', '2');
  await openSettings(page);
  await page.check('#greedy');
  await page.fill('#max-tokens', '32');
  await page.getByLabel('Message', { exact: true }).fill('How do I make a good cup of coffee?');
  await page.getByRole('button', { name: 'Compare' }).click();
  await page.waitForFunction(() => /Words:/.test(document.getElementById('compare-summary').textContent) ||
    window.padlockApp.lastError, null, { timeout: 2 * GEN_TIMEOUT_MS, polling: 250 });
  const c = await page.evaluate(() => ({
    error: window.padlockApp.lastError,
    summary: document.getElementById('compare-summary').textContent,
    base: document.getElementById('compare-base-text').textContent,
    personal: document.getElementById('compare-tokens').textContent,
    moved: document.querySelectorAll('#compare-tokens button.tok.moved').length,
    meta: document.getElementById('compare-personal-meta').textContent,
    last: window.padlockApp.compare.state.last.summary,
  }));
  console.error(`[demo-chat] compare: base ${JSON.stringify(c.base)} | personalized ${JSON.stringify(c.personal)} | ${c.summary}`);
  assert.equal(c.error, null);
  assert.notEqual(c.base, c.personal, 'the preference changed nothing');
  assert.ok(c.moved > 0 && c.moved === c.last.changedTokens, `${c.moved} marked, summary says ${c.last.changedTokens}`);
  assert.match(c.summary, /Reading grade/);
  assert.match(c.summary, new RegExp(`changed ${c.moved} of`));
  assert.match(c.meta, /Be concise/);
  // Compare does not add to the conversation.
  assert.deepEqual(await shownMessages(page), []);
  // Keyboard: focus the first marked token, press Enter, the explanation opens and names the base model's choice.
  await page.focus('#compare-tokens button.tok.moved');
  await page.keyboard.press('Enter');
  const detail = await page.evaluate(() => ({
    hidden: document.getElementById('compare-detail').hidden,
    text: document.getElementById('compare-detail').textContent,
    expanded: document.querySelector('#compare-tokens button.tok.moved').getAttribute('aria-expanded'),
  }));
  assert.equal(detail.hidden, false);
  assert.equal(detail.expanded, 'true');
  assert.match(detail.text, /base model's choice/);
  assert.match(detail.text, /Be concise/);
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.getElementById('compare-detail').hidden), true);
});

test('thumbs down shows which saved weights moved and by how much', { timeout: LOAD_TIMEOUT_MS + 2 * GEN_TIMEOUT_MS }, async () => {
  const { page } = await freshProfileReady('feedback');
  // The second contradicts the first on length: the panel says so and the person chooses.
  await addPreference(page, 'Keep answers short and concise.');
  await page.fill('#preference-text', 'Keep it brief.');
  await page.click('#add-preference button[type=submit]');
  await page.waitForFunction(() => !document.getElementById('preference-relations').hidden);
  assert.match(await page.textContent('#preference-relations'), /says the same as your saved “Keep answers short and concise\.”/);
  await page.getByRole('button', { name: "Don't save" }).click();
  await addPreference(page, 'Explain in detail, with examples.', /contradicts your saved “Keep answers short and concise\.” \(length\)/);
  assert.ok(!(await page.evaluate(async () => (await window.padlock.memory.list()).preferences.map((p) => p.text))).includes('Keep it brief.'));
  await page.check('#steer-memory');
  await openSettings(page);
  await page.check('#greedy');
  await page.fill('#max-tokens', '24');
  const r = await send(page, 'What is a black hole?');
  assert.ok(r.personalization.response, 'a memory-steered answer carries the response feedback takes');
  assert.match(await page.textContent('#messages li.assistant:last-child .meta'), /saved preferences.*Keep answers short/);
  await page.getByRole('button', { name: 'Bad answer' }).click();
  await page.waitForFunction(() => !document.getElementById('feedback-changes').hidden);
  const changes = await page.$$eval('#feedback-changes li', (lis) => lis.map((li) => li.textContent));
  console.error(`[demo-chat] feedback: ${JSON.stringify(changes)}`);
  assert.ok(changes.some((t) => /“Keep answers short and concise\.”: \d\.\d\d → \d\.\d\d \([+-]\d\.\d\d\)/.test(t) ||
    /“Explain in detail, with examples\.”: \d\.\d\d → \d\.\d\d/.test(t)), JSON.stringify(changes));
  // The preferences list shows the learned weight beside the one set, the log shows the event.
  await page.waitForFunction(() => /from feedback/.test(document.getElementById('preferences').textContent));
  await page.waitForFunction(() => /bad answer — “What is a black hole\?”/.test(document.getElementById('events').textContent));
  // The export says what it will hold before it is made.
  assert.match(await page.textContent('#export-note'), /plain text/);
  await page.click('#memory-data summary');
  await page.fill('#export-passphrase', 'correct horse');
  assert.match(await page.textContent('#export-note'), /sealed with this passphrase/);
  // A saved preference's text is edited in place, from the keyboard.
  await page.getByRole('button', { name: 'Edit “Explain in detail, with examples.”' }).click();
  await page.getByLabel('Preference text').fill('Explain in detail, with two examples.');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('#preferences .pref-text')].some((e) => e.textContent === 'Explain in detail, with two examples.'));
  const stored = await page.evaluate(async () => (await window.padlock.memory.list()).preferences.map((p) => p.text));
  assert.ok(stored.includes('Explain in detail, with two examples.'), JSON.stringify(stored));

  // A preference stated in a message is suggested under it; nothing is stored until Remember,
  // and then it is stored encrypted like the others. Dismiss stores nothing.
  const listed = () => page.evaluate(async () => (await window.padlock.memory.list()).preferences);
  await send(page, "I'm vegetarian. What can I cook tonight?");
  const card = page.locator('#messages li.user').last().locator('.suggestion');
  await card.waitFor();
  assert.match(await card.textContent(), /Remember “I'm vegetarian\.”/);
  assert.ok(!(await listed()).some((p) => /vegetarian/.test(p.text)), 'stored before the person confirmed');
  await card.getByRole('button', { name: 'Remember' }).click();
  await page.waitForFunction(() => /Saved to your preferences/.test([...document.querySelectorAll('#messages li.user')].at(-1).textContent));
  const saved = (await listed()).find((p) => p.text === "I'm vegetarian.");
  assert.equal(saved?.source, 'inferred', JSON.stringify(saved));
  await page.waitForFunction(() => [...document.querySelectorAll('#preferences .pref-text')].some((e) => e.textContent === "I'm vegetarian."));
  const dump = await page.evaluate(async () => {
    const db = await new Promise((resolve) => { const r = indexedDB.open('padlock-memory'); r.onsuccess = () => resolve(r.result); });
    const rows = await new Promise((resolve) => { const r = db.transaction('preferences').objectStore('preferences').getAll(); r.onsuccess = () => resolve(r.result); });
    db.close();
    const latin1 = (buf) => Array.from(new Uint8Array(buf), (b) => String.fromCharCode(b)).join('');
    return { n: rows.length, text: rows.map((r) => JSON.stringify(r) + latin1(r.data)).join('\n') };
  });
  assert.ok(dump.n >= 3 && !dump.text.includes('vegetarian'), 'the confirmed suggestion is stored in the clear');
  await send(page, 'Please always use metric units.');
  const second = page.locator('#messages li.user').last().locator('.suggestion');
  await second.waitFor();
  await second.getByRole('button', { name: 'Dismiss' }).click();
  await second.waitFor({ state: 'detached' });
  assert.ok(!(await listed()).some((p) => /metric/.test(p.text)), 'a dismissed suggestion was stored');

  // Only the preferences relevant to a request steer it, and the answer says which were left
  // out; ticked "everywhere", a preference steers every request (a stored field). A new chat,
  // so that the dinner question above is not this conversation's topic.
  await page.getByRole('button', { name: 'New chat' }).click();
  const code = await send(page, 'How do I reverse a string in Python?');
  const veg = code.personalization.considered.find((c) => c.text === "I'm vegetarian.");
  assert.deepEqual([veg?.relevance, veg?.active], [0, false], JSON.stringify(code.personalization.considered));
  assert.ok(code.personalization.considered.some((c) => c.text === 'Keep answers short and concise.' && c.active));
  assert.match(await page.textContent('#messages li.assistant:last-child .meta'), /Not relevant here: “I'm vegetarian\.”/);
  await page.getByRole('checkbox', { name: "Apply “I'm vegetarian.” to every request" }).check();
  await page.waitForFunction(async () => (await window.padlock.memory.list()).preferences.some((p) => p.text === "I'm vegetarian." && p.always));
  const everywhere = await send(page, 'How do I reverse a string in Python?');
  assert.ok(everywhere.personalization.considered.some((c) => c.text === "I'm vegetarian." && c.active));
  assert.doesNotMatch(await page.textContent('#messages li.assistant:last-child .meta'), /Not relevant here/);
});

// Where the screenshots go (target/ is not versioned); `make test` and CI may point it elsewhere.
const ARTIFACTS = process.env.PADLOCK_ARTIFACTS || path.join(ROOT, 'target/demo-screenshots');

test('every control has an accessible name, axe-core finds nothing serious or critical in light and dark, at 1280 and 390 px wide, and the views are kept as screenshots', { timeout: 2 * GEN_TIMEOUT_MS + 180_000 }, async () => {
  const { page } = profile; // the feedback journey's: a chat with an answer, saved preferences, a feedback log
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // A comparison on it too (a preference tried without saving, greedy).
  await page.check('#steer-try');
  await page.fill('#pref-1', 'Be concise: answer in one or two short sentences.');
  await page.fill('#beta', '2');
  await page.fill('#max-tokens', '32');
  await page.getByLabel('Message', { exact: true }).fill('How do I make a good cup of coffee?');
  await page.getByRole('button', { name: 'Compare' }).click();
  await page.waitForFunction(() => /Words:/.test(document.getElementById('compare-summary').textContent) ||
    window.padlockApp.lastError, null, { timeout: 2 * GEN_TIMEOUT_MS, polling: 250 });
  assert.equal(await page.evaluate(() => window.padlockApp.lastError), null);
  // The three main views are all on the page now: the chat with an answer and the weights its
  // feedback moved, Compare with its two answers (one marked token's explanation opened), and the
  // preferences panel with the memory inspector (the feedback log and export/import/forget opened).
  assert.ok((await page.$$eval('#messages li.assistant', (l) => l.length)) > 0, 'the chat shows an answer');
  assert.equal(await page.evaluate(() => document.getElementById('compare').hidden), false, 'Compare is shown');
  await page.click('#compare-tokens button.tok.moved');
  assert.equal(await page.evaluate(() => document.getElementById('compare-detail').hidden), false);
  // The README's picture (docs/demo.png is a copy of it): the conversations, the chat and
  // Compare at 1280 px, light, with the settings closed.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.evaluate(() => { for (const d of document.querySelectorAll('details')) d.open = false; });
  const clip = await page.evaluate(() => {
    const top = document.querySelector('.layout').getBoundingClientRect().top + window.scrollY;
    const bottom = document.getElementById('compare').getBoundingClientRect().bottom + window.scrollY;
    return { x: 0, y: Math.max(0, top - 16), width: window.innerWidth, height: bottom - top + 32 };
  });
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-readme.png'), fullPage: true, clip });
  await page.evaluate(() => { for (const d of document.querySelectorAll('details')) d.open = true; });
  // The names the browser itself computes (Chromium's accessibility tree), not the markup's.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Accessibility.enable');
  const CONTROLS = new Set(['button', 'textbox', 'combobox', 'checkbox', 'radio', 'spinbutton', 'link', 'region']);
  try {
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
      const { nodes } = await cdp.send('Accessibility.getFullAXTree');
      const unnamed = nodes.filter((n) => !n.ignored && CONTROLS.has(n.role?.value) && !String(n.name?.value ?? '').trim())
        .map((n) => n.role.value);
      assert.deepEqual(unnamed, [], `controls without an accessible name at ${width} px`);
      const named = (role, name) => nodes.some((n) => n.role?.value === role && n.name?.value === name);
      for (const name of ['Send', 'Stop', 'New chat', 'Compare']) assert.ok(named('button', name), `a button named ${name}`);
      assert.ok(named('textbox', 'Message'), 'the message box is named "Message"');
      // Nothing wider than the screen (a phone scrolls down, never sideways).
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than ${width} px`);
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        // Every axe-core rule, none disabled; minor and moderate findings are not part of the bar.
        const violations = await axeViolations(page);
        assert.deepEqual(violations, [], `axe-core at ${width} px, ${colorScheme}:\n${JSON.stringify(violations, null, 1)}`);
        const suffix = `${width}${colorScheme === 'dark' ? '-dark' : ''}`;
        await page.screenshot({ path: path.join(ARTIFACTS, `demo-${suffix}.png`), fullPage: true });
        for (const view of ['chat', 'compare', 'memory']) {
          await page.locator(`#${view}`).screenshot({ path: path.join(ARTIFACTS, `demo-${view}-${suffix}.png`) });
        }
      }
      await page.emulateMedia({ colorScheme: null });
    }
  } finally {
    await cdp.detach();
    await page.emulateMedia({ colorScheme: null });
    await page.setViewportSize({ width: 1280, height: 720 });
  }
  console.error(`[demo-chat] screenshots in ${ARTIFACTS}`);
});

test('after a first visit the site opens and answers with the network off (service worker)', { timeout: 2 * LOAD_TIMEOUT_MS + GEN_TIMEOUT_MS }, async () => {
  // The service worker keeps a list of the page's modules: a module left off it breaks the
  // offline load (say so plainly, before waiting for a page that cannot load).
  const shell = fs.readFileSync(path.join(ROOT, 'www/sw.js'), 'utf8');
  const modules = fs.readdirSync(path.join(ROOT, 'www')).filter((f) => f.endsWith('.js') && !['sw.js', 'bench.js'].includes(f));
  for (const f of modules) assert.ok(shell.includes(`'${f}'`), `www/sw.js does not keep ${f} for offline use`);
  const { page, context } = await freshProfileReady('offline');
  const { serverRequests } = env;
  await page.waitForFunction(() => document.getElementById('offline').dataset.ready === 'true' && !!navigator.serviceWorker.controller);
  const seen = serverRequests.length;
  await context.setOffline(true);
  try {
    await page.reload();
    await waitReady(page);
    const served = await page.evaluate(() => ({
      byWorker: performance.getEntriesByType('navigation')[0].workerStart > 0,
      isolated: self.crossOriginIsolated,
      online: navigator.onLine,
    }));
    assert.deepEqual(served, { byWorker: true, isolated: true, online: false });
    await page.check('#steer-base');
    const r = await send(page, 'Name a colour.');
    assert.ok(r.text.length > 0);
    // Except the browser's own update check of the service worker script after a navigation: it
    // bypasses Playwright's offline emulation (in a real outage it fails and changes nothing).
    const reached = serverRequests.slice(seen).map((x) => x.url).filter((u) => u !== '/www/sw.js');
    assert.deepEqual(reached, [], 'the server was reached while offline');
    assert.equal(await page.textContent('#request-count'), '0');
    assert.equal(await page.textContent('#worker-request-count'), '0');
  } finally {
    await context.setOffline(false);
  }
});

test('export with a passphrase → forget everything → import gives back the same preferences and conversations', { timeout: LOAD_TIMEOUT_MS + GEN_TIMEOUT_MS + 120_000 }, async () => {
  const { page } = await freshProfileReady('export');
  await addPreference(page, 'Keep answers short and concise.');
  await addPreference(page, 'Explain in detail, with examples.', /contradicts/);
  await page.check('#steer-base');
  await openSettings(page);
  await page.check('#greedy');
  await page.fill('#max-tokens', '8');
  await send(page, 'Name a colour.');
  const snapshot = () => page.evaluate(async () => ({
    preferences: (await window.padlock.memory.list()).preferences.map((p) => [p.text, p.weight, p.enabled]),
    conversations: [...document.querySelectorAll('#conversation-list .open-conversation')].map((b) => b.textContent),
  }));
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length > 0);
  const before = await snapshot();
  assert.ok(before.preferences.length >= 2 && before.conversations.length >= 1, JSON.stringify(before));
  await page.evaluate(() => { document.getElementById('memory-data').open = true; });
  await page.fill('#export-passphrase', 'correct horse');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const file = await download.path();
  const text = fs.readFileSync(file, 'utf8');
  for (const plain of ['Keep answers short', 'Explain in detail', 'Name a colour']) {
    assert.ok(!text.includes(plain), `the sealed export contains ${JSON.stringify(plain)}`);
  }

  await page.getByRole('button', { name: 'Forget everything' }).click(); // the dialog is accepted
  await page.waitForFunction(() => document.querySelectorAll('#preferences li').length === 1 &&
    document.querySelectorAll('#conversation-list li').length === 0);

  await page.setInputFiles('#import-file', file);
  await page.fill('#import-passphrase', 'wrong');
  await page.click('#import');
  await page.waitForFunction(() => document.getElementById('memory-error').dataset.code === 'DECRYPT_FAILED');
  await page.fill('#import-passphrase', 'correct horse');
  await page.click('#import');
  await page.waitForFunction((n) => document.querySelectorAll('#conversation-list li').length === n, before.conversations.length);
  assert.deepEqual(await snapshot(), before);
});
