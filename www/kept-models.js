// The models kept on this device (the package's model cache), under "Use another model": each
// can be loaded again without a download, or deleted.
import { listModels, deleteModel } from 'padlock-llm';

/** `load(url, name)` loads a kept model; `busy()` says whether the page cannot start one now. */
export function setupKeptModels({ list, status, load, busy }) {
  const button = (text, label, onClick) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', () => { if (!busy()) onClick(); });
    return b;
  };

  function item(model) {
    const name = decodeURIComponent(new URL(model.url).pathname.split('/').pop() || model.url);
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.textContent = `${name} (${Math.round(model.bytes / 1e6)} MB)`;
    li.append(label, ' ',
      button('Use', `Use ${name}`, () => load(model.url, name)),
      button('Delete', `Delete ${name} from this device`, async () => {
        await deleteModel(model.key);
        await refresh();
      }));
    return li;
  }

  async function refresh() {
    const models = await listModels().catch(() => []);
    list.replaceChildren(...models.map(item));
    status.textContent = models.length ? '' : 'No model is kept on this device yet.';
  }

  return { refresh };
}
