// Shared set-up for the browser end-to-end tests (node:test + playwright-core + system Chromium).
// Nothing is skipped silently: a missing pkg/, model or browser fails the test with the fix.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, startServer, pipeConsole, CHROMIUM } from '../../scripts/browser.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MODEL_REL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';
export const MODEL_URL = '/' + MODEL_REL;
export const MODEL_PATH = path.join(ROOT, MODEL_REL);
// The native CLI the parity tests compare with (`make test` passes its own build's).
export const CLI_PATH = process.env.PADLOCK_CLI || path.join(ROOT, 'target/release/padlock');

// Generous: a fresh 2-core machine shared with compilers can be slow.
export const LOAD_TIMEOUT_MS = Number(process.env.PADLOCK_E2E_LOAD_TIMEOUT_MS || 300_000);
export const GEN_TIMEOUT_MS = Number(process.env.PADLOCK_E2E_GEN_TIMEOUT_MS || 300_000);

/** Throws with a clear message when something the browser tests need is missing. */
export function requireArtifacts({ cli = false } = {}) {
  const missing = [];
  if (!fs.existsSync(path.join(ROOT, 'pkg/padlock.js')) || !fs.existsSync(path.join(ROOT, 'pkg/padlock_bg.wasm'))) {
    missing.push("pkg/padlock.js + pkg/padlock_bg.wasm (build them with 'make pkg')");
  }
  if (!fs.existsSync(MODEL_PATH)) missing.push(`${MODEL_REL} (fetch it with scripts/fetch-model.sh)`);
  if (!fs.existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (install it with scripts/setup.sh)`);
  if (cli && !fs.existsSync(CLI_PATH)) missing.push(`${CLI_PATH} (build it with 'make native')`);
  if (missing.length) throw new Error(`browser tests cannot run; missing:\n  - ${missing.join('\n  - ')}`);
}

/**
 * Starts the static server (free port) and headless Chromium (with WebGPU on SwiftShader unless
 * webgpu is false). Returns
 * { server, browser, context, page, serverRequests, close }.
 * serverRequests collects every request the server saw.
 */
export async function openBrowser(name, { webgpu = true } = {}) {
  const serverRequests = [];
  const server = await startServer({ port: 0, onRequest: (r) => serverRequests.push({ t: Date.now(), ...r }) });
  let browser;
  try {
    browser = await launchChromium([], { webgpu });
  } catch (e) {
    await server.close();
    throw e;
  }
  const context = await browser.newContext();
  const page = await context.newPage();
  pipeConsole(page, name);
  page.on('worker', (w) => w.on('console', (m) => {
    if (process.env.PADLOCK_E2E_VERBOSE || m.type() === 'error') console.error(`[${name} worker ${m.type()}] ${m.text()}`);
  }));
  const close = async () => {
    await browser.close().catch(() => {});
    await server.close().catch(() => {});
  };
  return { server, browser, context, page, serverRequests, close };
}

/**
 * Loads the real model through window.padlock (the worker client) on a page without autoload.
 * options.backend: 'auto' (the page's default), 'webgpu' or 'cpu'.
 */
export async function loadModelViaClient(page, baseUrl, options = {}) {
  await page.goto(`${baseUrl}/www/?autoload=0`);
  await page.waitForFunction(() => !!window.padlock);
  return page.evaluate(async ({ url, options }) => {
    const r = await window.padlock.load(url, () => {}, options);
    return r.info;
  }, { url: MODEL_URL, options });
}

// axe-core (a devDependency), injected by evaluating its source in the page. Playwright's
// evaluate goes through the DevTools protocol, which the demo's Content-Security-Policy does not
// govern, so no bypassCSP context is needed: the page is checked under its real CSP.
const AXE_SOURCE_PATH = path.join(ROOT, 'node_modules/axe-core/axe.min.js');

/**
 * Runs axe-core on the whole page (injected once per document) and returns the violations of
 * the given impacts as { id, impact, help, nodes: ['selector: summary', ...] }.
 */
export async function axeViolations(page, { impacts = ['serious', 'critical'] } = {}) {
  if (!fs.existsSync(AXE_SOURCE_PATH)) throw new Error(`${AXE_SOURCE_PATH} is missing (run 'npm ci')`);
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(fs.readFileSync(AXE_SOURCE_PATH, 'utf8'));
  }
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ')}`) }));
  });
  return violations.filter((v) => impacts.includes(v.impact));
}

/**
 * A fresh browser profile in openBrowser's browser: a new context (its own Cache Storage,
 * IndexedDB, localStorage and service workers), with its page's console piped like openBrowser's.
 * Returns { context, page }.
 */
export async function newProfile(env, name) {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  pipeConsole(page, name);
  page.on('worker', (w) => w.on('console', (m) => {
    if (process.env.PADLOCK_E2E_VERBOSE || m.type() === 'error') console.error(`[${name} worker ${m.type()}] ${m.text()}`);
  }));
  return { context, page };
}
