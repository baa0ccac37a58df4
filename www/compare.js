// "Compare": the same question answered by the base model and with the preferences, side by
// side, with a summary (words, reading grade, how many tokens the preferences changed) and the
// changed tokens marked; each token opens its explanation. The comparison is not added to the
// conversation: it answers the message in the box after the conversation so far.
import { streamCompletion } from './completion.js';
import { renderTokens, changed } from './explanation.js';
import { steeredBy } from './chat.js';

const words = (text) => text.split(/\s+/).filter((w) => /\w/.test(w));

// Flesch–Kincaid grade level, with syllables estimated as vowel groups (English only; a rough guide).
export function readingGrade(text) {
  const w = words(text);
  if (!w.length) return null;
  const sentences = Math.max(1, (text.match(/[.!?]+(\s|$)/g) || []).length);
  const syllables = w.reduce((n, word) => {
    const groups = word.toLowerCase().replace(/[^a-z]/g, '').replace(/e$/, '').match(/[aeiouy]+/g);
    return n + Math.max(1, groups ? groups.length : 0);
  }, 0);
  return 0.39 * (w.length / sentences) + 11.8 * (syllables / w.length) - 15.59;
}

/**
 * host: { engine, el: { button, section, baseText, personalText, personalMeta, tokens, detail,
 * summary }, prompt (the message box), conversation(), buildRequest(messages, { explain }),
 * steering(), getState(), setState(), showError(), clearError() }.
 */
export function setupCompare(host) {
  const { el } = host;
  const state = { last: null };

  async function compare() {
    const question = host.prompt.value.trim();
    if (!question || host.getState() !== 'ready') return;
    if (host.steering() === 'base') {
      host.showError({ code: 'NOTHING_TO_COMPARE', message: 'Nothing steers the answers now: choose your saved preferences or preferences to try, then compare.' });
      return;
    }
    host.clearError();
    host.setState('generating');
    const messages = [...host.conversation().messages.map(({ role, content }) => ({ role, content })), { role: 'user', content: question }];
    const personalRequest = host.buildRequest(messages, { explain: true });
    // The same sampling for both, only the personalization differs.
    const baseRequest = { ...personalRequest, personalization: { method: 'base' } };
    el.section.hidden = false;
    el.summary.textContent = 'Answering with the base model…';
    el.baseText.textContent = '';
    el.tokens.replaceChildren();
    el.personalMeta.textContent = '';
    el.detail.hidden = true;
    try {
      const base = await streamCompletion(host.engine, baseRequest, { onToken: (piece) => { el.baseText.textContent += piece; } });
      el.summary.textContent = 'Answering with your preferences…';
      const personal = await streamCompletion(host.engine, personalRequest, {
        onToken: (piece) => { el.tokens.append(document.createTextNode(piece)); },
      });
      const labels = personal.personalization?.labels ?? [];
      renderTokens(el.tokens, el.detail, personal.tokens, labels);
      el.personalMeta.textContent = steeredBy(personal.personalization);
      state.last = { question, base, personal, summary: summarize(base, personal) };
      el.summary.textContent = state.last.summary.text;
    } catch (err) {
      el.summary.textContent = '';
      host.showError(err);
    } finally {
      host.setState(host.engine.loaded ? 'ready' : 'error');
    }
  }

  function summarize(base, personal) {
    const explained = personal.tokens.filter((t) => t.contributions);
    const moved = explained.filter(changed).length;
    const grade = (t) => {
      const g = readingGrade(t);
      return g === null ? '—' : Math.max(0, g).toFixed(1);
    };
    const summary = {
      baseWords: words(base.text).length,
      personalWords: words(personal.text).length,
      baseGrade: grade(base.text),
      personalGrade: grade(personal.text),
      changedTokens: moved,
      tokens: personal.tokens.length,
    };
    summary.text = `Words: ${summary.baseWords} (base) → ${summary.personalWords} (personalized). ` +
      `Reading grade: ${summary.baseGrade} → ${summary.personalGrade}. ` +
      `Your preferences changed ${moved} of ${summary.tokens} tokens (marked; press a token to see why).`;
    return summary;
  }

  el.button.addEventListener('click', compare);
  return { compare, state };
}
