// Shared by the browser tests and the benchmark driver: headless Chromium via playwright-core,
// using the system's /usr/bin/chromium (never a downloaded browser), plus the static server.
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// The network here is closed: without the background-networking flags Chromium keeps trying to
// reach the outside. --enable-unsafe-webgpu gives a (SwiftShader) WebGPU adapter without a GPU.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--enable-unsafe-webgpu',
];

export async function launchChromium(extraArgs = [], { webgpu = true } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run scripts/setup.sh (apt-get install chromium)`);
  }
  const args = CHROMIUM_ARGS.filter((a) => webgpu || a !== '--enable-unsafe-webgpu');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...args, ...extraArgs] });
}

export { startServer };

/** Forwards the page's console and errors to stderr, prefixed (when PADLOCK_E2E_VERBOSE is set, all of it). */
export function pipeConsole(page, prefix = 'page') {
  const verbose = !!process.env.PADLOCK_E2E_VERBOSE;
  page.on('console', (m) => {
    if (verbose || m.type() === 'error' || m.type() === 'warning') console.error(`[${prefix} ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`[${prefix} pageerror] ${e.stack || e.message}`));
  page.on('crash', () => console.error(`[${prefix}] the page crashed`));
}
