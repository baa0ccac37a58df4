// The privacy facts on the screen: how many network requests this page has made since the model
// loaded (the browser's own resource timing, not the page's word for it) and how many the
// service worker saw (the page's and the model worker's), whether the browser agreed to keep this
// site's storage, and how many bytes the site keeps on this device.

const formatBytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`);

/** Wires the privacy panel's elements: { requestCount, workerRequestCount, persisted, storageUsed }. */
export function setupPrivacyPanel(el) {
  const state = { loadedAt: null, requests: [], workerRequests: [] };

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
    const loaded = state.loadedAt !== null;
    el.requestCount.textContent = loaded ? String(state.requests.length) : '— (the model is not loaded yet)';
    el.requestCount.dataset.count = loaded ? String(state.requests.length) : '';
    el.workerRequestCount.textContent = loaded ? String(state.workerRequests.length) : '—';
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
    /** A request the service worker saw (it counts from the moment the model was ready, as the page does). */
    serviceWorkerRequest(url) {
      if (state.loadedAt === null) return;
      state.workerRequests.push(url);
      show();
    },
    /** From now on, every request counts. */
    modelLoaded() {
      state.loadedAt = performance.now();
      state.requests = [];
      state.workerRequests = [];
      show();
      persist();
      refreshStorage();
    },
  };
}
