// PAD's per-token explanation: one button per generated token, marked where the preferences
// changed the base model's choice. A click, a tap or Enter/Space opens the token's explanation
// (the base model's choice and each preference's pull β·w·r) in a region screen readers announce:
// no hover tooltip, which touch screens, keyboards and screen readers never reach.

const short = (t) => (t.length > 40 ? t.slice(0, 39) + '…' : t);
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;

/** Whether PAD chose another token than the base model would have. */
export const changed = (t) => t.chosen !== t.baseTop1;

/**
 * Fills `container` with the token buttons of `tokens` ([{ piece, chosen, baseTop1, baseTop1Text,
 * contributions }]) and shows a token's explanation in `detail` when it is pressed. `labels` names
 * each contribution (the completion's personalization.labels).
 */
export function renderTokens(container, detail, tokens, labels) {
  container.replaceChildren();
  detail.hidden = true;
  detail.replaceChildren();
  let open = null;
  tokens.forEach((t, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'tok' + (changed(t) ? ' moved' : '');
    button.textContent = t.piece || '·';
    button.dataset.index = String(i);
    button.dataset.contributions = JSON.stringify(t.contributions);
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-controls', detail.id);
    button.setAttribute('aria-label', `${JSON.stringify(t.piece)}${changed(t) ? ', changed by your preferences' : ''}: show why`);
    button.addEventListener('click', () => {
      if (open === button) {
        close();
        return;
      }
      open?.setAttribute('aria-expanded', 'false');
      open = button;
      button.setAttribute('aria-expanded', 'true');
      describe(detail, t, labels);
      detail.hidden = false;
    });
    container.append(button);
  });
  function close() {
    open?.setAttribute('aria-expanded', 'false');
    open = null;
    detail.hidden = true;
  }
  detail.onkeydown = (e) => {
    if (e.key === 'Escape') close();
  };
}

function describe(detail, t, labels) {
  const title = document.createElement('p');
  title.className = 'token-title';
  title.textContent = changed(t)
    ? `Your preferences chose ${JSON.stringify(t.piece)}; the base model's choice was ${JSON.stringify(t.baseTop1Text)}.`
    : `${JSON.stringify(t.piece)} is the same as the base model's choice.`;
  const list = document.createElement('ul');
  t.contributions.forEach((c, i) => {
    const li = document.createElement('li');
    li.textContent = `${short(labels[i] || `preference ${i + 1}`)}: ${signed(c)}`;
    list.append(li);
  });
  const note = document.createElement('p');
  note.className = 'muted';
  note.textContent = `Each line is that preference's pull on this token (β · weight · reward), among ${t.candidates ?? '?'} candidate tokens.`;
  detail.replaceChildren(title, list, note);
}
