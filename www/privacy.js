// The privacy facts on the screen: how many network requests this page has made since the model
// loaded (the browser's own resource timing, not the page's word for it), whether the browser
// agreed to keep this site's storage, and how many bytes the site keeps on this device.

const formatBytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`);

/** Wires the privacy panel's elements: { requestCount, persisted, storageUsed }. */
export function setupPrivacyPanel(el) {
  const state = { loadedAt: null, requests: [] };

  // Every resource the page fetched, from the start (buffered), counted from the moment the model
  // was ready. The package's worker does not fetch after loading; the tests watch it from outside.
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (state.loadedAt !== null && entry.startTime >= state.loadedAt) {
        state.requests.push(entry.name);
        show();
      }
    }
  });
  observer.observe({ type: 'resource', buffered: true });

  function show() {
    el.requestCount.textContent = state.loadedAt === null ? '— (the model is not loaded yet)' : String(state.requests.length);
    el.requestCount.dataset.count = state.loadedAt === null ? '' : String(state.requests.length);
  }

  async function refreshStorage() {
    if (!navigator.storage?.estimate) {
      el.storageUsed.textContent = 'not reported by this browser';
      return;
    }
    const { usage } = await navigator.storage.estimate();
    el.storageUsed.textContent = formatBytes(usage || 0);
    el.storageUsed.dataset.bytes = String(usage || 0);
  }

  // Asks the browser not to evict the kept model and the encrypted data under storage pressure.
  async function persist() {
    if (!navigator.storage?.persist) {
      el.persisted.textContent = 'this browser cannot be asked';
      return;
    }
    const granted = await navigator.storage.persist().catch(() => false);
    el.persisted.textContent = granted
      ? 'yes: the browser will not clear it to free space'
      : 'no: the browser may clear it when space runs low (the model would then be downloaded again)';
    el.persisted.dataset.granted = String(granted);
  }

  show();
  refreshStorage();
  return {
    state,
    refreshStorage,
    /** From now on, every request counts. */
    modelLoaded() {
      state.loadedAt = performance.now();
      state.requests = [];
      show();
      persist();
      refreshStorage();
    },
  };
}
