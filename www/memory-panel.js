// The demo's one preferences panel: what steers the answers (the saved preferences, preferences
// tried without saving, or nothing), the saved preferences and the profile (method, β, k, how
// many are active), thumbs and "which answer is better" feedback with the weights it moved, and
// export / import / forget. Everything goes through the worker's Memory (IndexedDB, encrypted
// with a key that never leaves this browser); nothing here makes a network request.
import { streamCompletion } from './completion.js';
import { makeExport, readExport } from './export-file.js';

const $ = (id) => document.getElementById(id);

const EXPLAIN = {
  UNSAFE_PREFERENCE: 'A preference may change tone, length, level or focus — not switch safety off.',
  QUOTA_EXCEEDED: 'This browser has no storage left for this site; nothing was saved.',
  DECRYPT_FAILED: 'Something could not be decrypted (wrong passphrase, or the data was altered).',
  INVALID_IMPORT: 'That file is not a valid padlock memory export; nothing was changed.',
  STORAGE_CLOSED: 'Your memory was cleared in another tab.',
  STORAGE_BLOCKED: 'Another tab with an older version of this page keeps your memory open: close or reload it, then try again.',
  MEMORY_KEY_MISSING: 'Your memory’s key is gone, so its records cannot be read; nothing was changed. Forget the memory and import an export to start again.',
  NOT_FOUND: 'That preference no longer exists.',
};

/**
 * Wires the panel. `host` gives what the page already has: { client, setState, getState }.
 * Returns { personalization(), onAnswer(turn), refresh(), state }.
 */
export function setupMemoryPanel(host) {
  const { client } = host;
  const el = {
    list: $('preferences'),
    status: $('memory-status'),
    error: $('memory-error'),
    steer: [...document.querySelectorAll('input[name="steer"]')],
    method: $('method'),
    beta: $('beta'),
    candidates: $('candidates'),
    maxActive: $('max-active'),
    tried: [[$('pref-1'), $('weight-1')], [$('pref-2'), $('weight-2')]],
    explain: $('explain'),
    feedbackChanges: $('feedback-changes'),
    addForm: $('add-preference'),
    text: $('preference-text'),
    weight: $('preference-weight'),
    feedback: $('feedback'),
    feedbackStatus: $('feedback-status'),
    up: $('thumbs-up'),
    down: $('thumbs-down'),
    another: $('another'),
    choice: $('choice'),
    answerB: $('answer-b'),
    preferA: $('prefer-a'),
    preferB: $('prefer-b'),
    exportButton: $('export'),
    exportPass: $('export-passphrase'),
    exportNote: $('export-note'),
    events: $('events'),
    importFile: $('import-file'),
    importPass: $('import-passphrase'),
    importButton: $('import'),
    forget: $('forget'),
  };
  // steerChosen: the person picked what steers answers; until then it follows whether there are
  // saved preferences.
  const state = { prompt: null, request: null, first: null, second: null, preferences: [], profile: null,
    steerChosen: false, lastExport: null, log: [] };

  function fail(err) {
    const code = err?.code || 'INTERNAL';
    el.error.textContent = `${EXPLAIN[code] ? EXPLAIN[code] + ' ' : ''}[${code}] ${err?.message ?? err}`;
    el.error.dataset.code = code;
    el.error.hidden = false;
    state.log.push({ error: code });
  }
  function ok(message) {
    el.error.hidden = true;
    delete el.error.dataset.code;
    if (message) el.status.textContent = message;
  }

  function row(p) {
    const li = document.createElement('li');
    li.dataset.id = p.id;
    const universal = p.source === 'universal';
    const text = document.createElement('span');
    text.className = 'pref-text';
    text.textContent = p.text;
    const named = `“${p.text.length > 40 ? p.text.slice(0, 39) + '…' : p.text}”`;
    const weight = document.createElement('input');
    Object.assign(weight, { type: 'number', min: universal ? '0.5' : '0', max: '3', step: '0.1', value: String(p.weight) });
    weight.setAttribute('aria-label', `Weight of ${named}`);
    weight.addEventListener('change', () => act(() => client.memory.update(p.id, { weight: Number(weight.value) }), 'Saved.'));
    const learned = document.createElement('span');
    learned.className = 'muted learned';
    learned.textContent = p.learned ? `→ ${p.effectiveWeight.toFixed(2)} (${p.learned > 0 ? '+' : ''}${p.learned.toFixed(2)} from feedback)` : '';
    li.append(text, weight, learned);
    if (universal) {
      const note = document.createElement('span');
      note.className = 'muted';
      note.textContent = 'always on';
      li.append(note);
    } else {
      const on = document.createElement('input');
      Object.assign(on, { type: 'checkbox', checked: p.enabled });
      on.setAttribute('aria-label', `Use ${named}`);
      on.addEventListener('change', () => act(() => client.memory.update(p.id, { enabled: on.checked }), 'Saved.'));
      // Unticked, a preference steers only the requests it is relevant to (the runtime's relevance gating).
      const label = document.createElement('label');
      label.className = 'muted always';
      const always = document.createElement('input');
      Object.assign(always, { type: 'checkbox', checked: Boolean(p.always) });
      always.setAttribute('aria-label', `Apply ${named} to every request`);
      always.addEventListener('change', () => act(() => client.memory.update(p.id, { always: always.checked }), 'Saved.'));
      label.append(always, ' everywhere');
      const remove = document.createElement('button');
      Object.assign(remove, { type: 'button', textContent: 'Remove', className: 'secondary remove' });
      remove.setAttribute('aria-label', `Remove ${named}`);
      remove.addEventListener('click', () => act(() => client.memory.remove(p.id), 'Removed.'));
      const edit = document.createElement('button');
      Object.assign(edit, { type: 'button', textContent: 'Edit', className: 'secondary edit' });
      edit.setAttribute('aria-label', `Edit ${named}`);
      edit.addEventListener('click', () => editText(li, text, p));
      li.prepend(on);
      li.append(label, edit, remove);
    }
    return li;
  }

  // Edits a preference's text in place; Enter or Save stores it (screened again), Escape cancels.
  function editText(li, text, p) {
    const form = document.createElement('form');
    form.className = 'row edit-preference';
    const input = document.createElement('input');
    Object.assign(input, { type: 'text', value: p.text, maxLength: 500 });
    input.setAttribute('aria-label', 'Preference text');
    const save = document.createElement('button');
    Object.assign(save, { type: 'submit', textContent: 'Save' });
    const cancel = document.createElement('button');
    Object.assign(cancel, { type: 'button', textContent: 'Cancel', className: 'secondary' });
    form.append(input, save, cancel);
    text.replaceWith(form);
    input.focus();
    const close = () => form.replaceWith(text);
    cancel.addEventListener('click', close);
    input.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value || value === p.text) return close();
      act(() => client.memory.update(p.id, { text: value }), 'Saved.');
    });
  }

  async function refresh() {
    try {
      const { preferences, unreadable } = await client.memory.list();
      state.preferences = preferences;
      el.list.replaceChildren(...preferences.map(row));
      for (const u of unreadable) {
        const li = document.createElement('li');
        li.dataset.id = u.id;
        li.className = 'unreadable';
        li.textContent = `A preference could not be read (${u.error.code}). `;
        const remove = document.createElement('button');
        Object.assign(remove, { type: 'button', textContent: 'Remove it', className: 'secondary remove' });
        remove.addEventListener('click', () => act(() => client.memory.remove(u.id), 'Removed.'));
        li.append(remove);
        el.list.append(li);
      }
      const own = preferences.filter((p) => p.source !== 'universal').length;
      el.status.textContent = `${own} preference${own === 1 ? '' : 's'}, encrypted on this device`;
      if (!state.profileShown) showProfile(await client.memory.profile());
      showEvents((await client.memory.events()).events);
      if (!state.steerChosen) setSteer(hasSavedPreferences() ? 'memory' : 'try');
    } catch (err) {
      fail(err);
    }
  }

  async function act(op, message) {
    try {
      const r = await op();
      ok(message);
      await refresh();
      return r;
    } catch (err) {
      fail(err);
      await refresh();
      return null;
    }
  }

  // --- the feedback log, the newest first
  const KIND_NAMES = { thumbs_up: '👍 good answer', thumbs_down: '👎 bad answer', choice: 'preferred one of two answers', edit: 'edited the answer' };
  function showEvents(events) {
    const items = [...events].sort((a, b) => b.time - a.time).map((e) => {
      const li = document.createElement('li');
      const prompt = e.prompt.length > 80 ? e.prompt.slice(0, 79) + '…' : e.prompt;
      li.textContent = `${new Date(e.time).toLocaleString()}: ${KIND_NAMES[e.kind] ?? e.kind} — “${prompt}”`;
      return li;
    });
    if (!items.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'No feedback yet.';
      items.push(li);
    }
    el.events.replaceChildren(...items);
  }

  // --- what the export holds, said before it is made
  function showExportNote() {
    el.exportNote.textContent = el.exportPass.value
      ? 'Your preferences and conversations will be sealed with this passphrase (PBKDF2 and AES-256-GCM); keep it, it cannot be recovered.'
      : 'Without a passphrase the file holds every preference, every conversation, and every prompt and answer you gave feedback on, in plain text.';
    el.exportNote.classList.toggle('warning', !el.exportPass.value);
  }
  el.exportPass.addEventListener('input', showExportNote);
  showExportNote();

  // --- what steers the answers, and the profile
  const hasSavedPreferences = () => state.preferences.some((p) => p.source !== 'universal' && p.enabled);
  const steering = () => el.steer.find((r) => r.checked)?.value ?? 'try';
  function setSteer(value) {
    for (const r of el.steer) r.checked = r.value === value;
    document.body.dataset.steer = value;
  }
  for (const r of el.steer) {
    r.addEventListener('change', () => {
      state.steerChosen = true;
      setSteer(steering());
    });
  }

  // The profile is saved as soon as it changes: the same method, β and k steer saved and tried
  // preferences alike, so nothing on the screen is silently overridden. The inputs are read from
  // the memory once (and after an import or forget); afterwards they are what was saved.
  const profileInputs = [[el.method, 'method', String], [el.beta, 'beta', Number], [el.candidates, 'candidates', Number],
    [el.maxActive, 'maxActive', Number]];
  function showProfile(profile) {
    state.profile = profile;
    state.profileShown = true;
    for (const [input, key] of profileInputs) input.value = String(profile[key]);
  }
  let profileSaves = Promise.resolve(); // in the order they were made
  for (const [input, key, parse] of profileInputs) {
    input.addEventListener('change', () => {
      profileSaves = profileSaves.then(() => act(async () => {
        state.profile = await client.memory.setProfile({ [key]: parse(input.value) });
      }, 'Profile saved.'));
    });
  }

  /** The request's `personalization`, as the panel shows it. */
  function personalization() {
    const explain = el.explain.checked;
    const steer = steering();
    if (steer === 'base') return { method: 'base' };
    if (steer === 'memory') return { memory: true, explain };
    const preferences = el.tried
      .map(([text, weight]) => ({ text: text.value.trim(), weight: weight.value === '' ? 1 : Number(weight.value) }))
      .filter((p) => p.text);
    return { preferences, method: el.method.value, beta: Number(el.beta.value), candidates: Number(el.candidates.value), explain };
  }

  el.addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = el.text.value.trim();
    if (!text) return;
    // A new preference that repeats or contradicts a saved one: the person chooses first.
    const related = await client.memory.related(text).catch(() => []);
    if (related.length && !(await chooseDespite(related))) return;
    act(async () => {
      const p = await client.memory.add(text, { weight: Number(el.weight.value) || 1 });
      el.text.value = '';
      return p;
    }, 'Remembered.');
  });

  /** Shows what the new text repeats or contradicts; resolves true for "Save anyway". */
  function chooseDespite(related) {
    const box = $('preference-relations');
    const lines = related.map((r) => r.relation === 'same'
      ? `It says the same as your saved “${r.text}” (${r.dimension}).`
      : `It contradicts your saved “${r.text}” (${r.dimension}): answers cannot follow both.`);
    box.querySelector('p').textContent = lines.join(' ');
    box.hidden = false;
    return new Promise((resolve) => {
      const done = (answer) => {
        box.hidden = true;
        save.removeEventListener('click', yes);
        cancel.removeEventListener('click', no);
        resolve(answer);
      };
      const [save, cancel] = box.querySelectorAll('button');
      const yes = () => done(true);
      const no = () => done(false);
      save.addEventListener('click', yes);
      cancel.addEventListener('click', no);
      cancel.focus();
    });
  }

  // --- feedback on answers
  function showFeedback(visible) {
    el.feedback.hidden = !visible;
    for (const b of [el.up, el.down, el.another]) b.disabled = !visible;
  }

  async function give(input, message) {
    const r = await act(() => client.memory.feedback(input), message);
    if (r) {
      state.log.push({ feedback: input.kind, changes: r.changes });
      el.feedbackStatus.textContent = message;
      showChanges(r.changes);
    }
    return r;
  }

  // Which weights the feedback moved, and by how much.
  function showChanges(changes) {
    const text = (id) => state.preferences.find((p) => p.id === id)?.text ?? id;
    const moved = changes.filter((c) => Math.abs(c.after - c.before) >= 0.005);
    const items = moved.map((c) => {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      const delta = c.after - c.before;
      li.textContent = `“${text(c.id)}”: ${c.before.toFixed(2)} → ${c.after.toFixed(2)} (${delta >= 0 ? '+' : ''}${delta.toFixed(2)})`;
      return li;
    });
    if (!items.length) {
      const li = document.createElement('li');
      li.textContent = 'No weight moved noticeably this time.';
      items.push(li);
    }
    el.feedbackChanges.replaceChildren(...items);
    el.feedbackChanges.hidden = false;
  }

  el.up.addEventListener('click', () => {
    if (!state.first?.response) return;
    showFeedback(false);
    give({ kind: 'thumbs_up', prompt: state.prompt, responses: [state.first.response] }, 'Thanks — noted. Weights moved:');
  });
  el.down.addEventListener('click', () => {
    if (!state.first?.response) return;
    showFeedback(false);
    give({ kind: 'thumbs_down', prompt: state.prompt, responses: [state.first.response] }, 'Thanks — noted. Weights moved:');
  });
  el.another.addEventListener('click', async () => {
    if (!state.first?.response || host.getState() !== 'ready') return;
    showFeedback(false);
    el.choice.hidden = false;
    el.answerB.textContent = '';
    el.preferA.disabled = el.preferB.disabled = true;
    host.setState('generating');
    try {
      // Another sample of the same turn: the next seed, and sampling even if the page asks for greedy answers.
      const request = { ...state.request, temperature: Math.max(0.7, state.request.temperature || 0), seed: (state.request.seed ?? 42) + 1 };
      const r = await streamCompletion(client, request, { onToken: (piece) => { el.answerB.textContent += piece; } });
      state.second = { text: r.text, response: r.personalization?.response };
      el.answerB.textContent = r.text;
      el.preferA.disabled = el.preferB.disabled = !state.second.response;
    } catch (err) {
      fail(err);
    } finally {
      host.setState(client.loaded ? 'ready' : 'error');
    }
  });
  const prefer = (first) => {
    if (!state.second?.response) return;
    el.preferA.disabled = el.preferB.disabled = true;
    const [chosen, rejected] = first ? [state.first, state.second] : [state.second, state.first];
    give({ kind: 'choice', prompt: state.prompt, responses: [chosen.response, rejected.response] }, 'Thanks — the next answers will lean that way.');
  };
  el.preferA.addEventListener('click', () => prefer(true));
  el.preferB.addEventListener('click', () => prefer(false));

  // --- export, import, forget
  // The file holds the memory (the package's export) and the conversations (host.conversations).
  el.exportButton.addEventListener('click', () => act(async () => {
    const passphrase = el.exportPass.value || undefined;
    const memory = await client.memory.export(passphrase ? { passphrase } : {});
    const text = await makeExport({ memory, conversations: await host.conversations.all(), passphrase });
    state.lastExport = text;
    // A blob: URL is made and read inside this tab; nothing is sent anywhere.
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: 'padlock-export.json' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }, 'Exported.'));
  el.importButton.addEventListener('click', () => act(async () => {
    const file = el.importFile.files?.[0];
    if (!file) throw Object.assign(new Error('pick an export file first'), { code: 'INVALID_IMPORT' });
    const passphrase = el.importPass.value || undefined;
    // Everything is read and decrypted before anything is replaced.
    const { memory, conversations } = await readExport(await file.text(), passphrase);
    const r = await client.memory.import(memory, passphrase ? { passphrase } : {});
    if (conversations) await host.conversations.replace(conversations);
    state.profileShown = false;
    return r;
  }, 'Imported.'));
  el.forget.addEventListener('click', () => {
    if (!window.confirm('Forget everything? This deletes your preferences, your feedback, your conversations and the cached model from this browser.')) return;
    act(async () => {
      const r = await client.forget();
      await host.onForget?.();
      state.profileShown = false;
      return r;
    }, 'Everything was deleted from this browser.');
  });
  client.onMemoryClosed = () => {
    state.profileShown = false;
    el.status.textContent = 'Your memory was cleared in another tab.';
    refresh();
  };

  refresh();
  return {
    state,
    refresh,
    personalization,
    /** After each turn ({ messages, request, result }, or null when another conversation opens). */
    onAnswer(turn) {
      state.prompt = turn?.messages.at(-1).content ?? null;
      state.request = turn?.request ?? null;
      state.first = turn?.result ? { text: turn.result.text, response: turn.result.personalization?.response } : null;
      state.second = null;
      el.choice.hidden = true;
      el.feedbackStatus.textContent = '';
      el.feedbackChanges.hidden = true;
      showFeedback(!!state.first?.response);
    },
  };
}
