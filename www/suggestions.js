// Suggestions from the conversation: after a turn, the person's message is read for preferences
// it states ("I'm vegetarian.", memory.suggest); each is shown under that message with Remember
// and Dismiss. Nothing is stored until the person chooses Remember.

/**
 * host: { engine, onRemembered() }. Returns suggestFor(messageEl, text): shows what `text`
 * suggests under `messageEl`.
 */
export function setupSuggestions(host) {
  const dismissed = new Set();

  async function suggestFor(messageEl, text) {
    let found;
    try {
      found = await host.engine.memory.suggest([{ role: 'user', content: text }]);
    } catch {
      return; // suggestions are a convenience: the chat goes on without them
    }
    for (const s of found.filter((s) => !dismissed.has(s.text))) messageEl.append(card(s));
  }

  function card(s) {
    const box = document.createElement('div');
    box.className = 'suggestion';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Suggested preference');
    const what = document.createElement('p');
    what.textContent = `Remember “${s.text}” for later answers?`;
    const status = document.createElement('p');
    status.className = 'muted';
    status.setAttribute('aria-live', 'polite');
    const remember = button('Remember', async () => {
      remember.disabled = dismiss.disabled = true;
      try {
        await host.engine.memory.add(s.text, { source: 'inferred' });
        status.textContent = 'Saved to your preferences.';
        remember.remove();
        dismiss.remove();
        host.onRemembered();
      } catch (err) {
        status.textContent = `Not saved: ${err.message}`;
        remember.disabled = dismiss.disabled = false;
      }
    });
    const dismiss = button('Dismiss', () => {
      dismissed.add(s.text);
      box.remove();
    });
    box.append(what, remember, dismiss, status);
    return box;
  }

  function button(label, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
  }

  return { suggestFor };
}
