#!/usr/bin/env node
// Minimal static file server for the padlock demo, tests and benchmarks.
//
// Serves the repository root, so /www/, /pkg/, /models/ and /node_modules/ are all reachable,
// with the cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer and multi-threaded
// wasm need, correct MIME types (application/wasm included) and no caching.
// Binds to 127.0.0.1 only. Port from $PORT (default 8080); PORT=0 picks a free port.
//
//   node scripts/serve.mjs            # prints "padlock demo: http://127.0.0.1:8080/www/"
//   import { startServer } from './scripts/serve.mjs'; const s = await startServer({ port: 0 });
import crypto from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

function securityHeaders() {
  return {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
  };
}

// The demo page's one inline script: the import map that names the package (its hash lets it run).
function importMapHash() {
  const html = fs.readFileSync(path.join(ROOT, 'www/index.html'), 'utf8');
  const m = html.match(/<script type="importmap">([\s\S]*?)<\/script>/);
  return m ? ` 'sha256-${crypto.createHash('sha256').update(m[1]).digest('base64')}'` : '';
}

// The demo page and its worker may talk to this origin only (bench pages load wllama, which
// starts its worker from a blob: URL, so they are left without it).
const DEMO_CSP = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval'${importMapHash()}`,
  "connect-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

// The demo's pages and the package's worker (whose own response sets the worker's policy).
function wantsCsp(pathname) {
  if (pathname === '/pkg/worker.js') return true;
  return pathname.startsWith('/www/') && !path.posix.basename(pathname).startsWith('bench');
}

function handler(root, log, onRequest) {
  return (req, res) => {
    if (onRequest) onRequest({ method: req.method, url: req.url, headers: req.headers });
    const send = (status, body, extra = {}) => {
      res.writeHead(status, { ...securityHeaders(), 'Content-Type': 'text/plain; charset=utf-8', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    if (pathname === '/') {
      res.writeHead(302, { ...securityHeaders(), Location: '/www/' });
      return res.end();
    }
    // Resolve inside the root only; refuse dot-files (.git, .cargo, ...).
    const file = path.resolve(root, '.' + pathname);
    if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'forbidden\n');
    if (path.relative(root, file).split(path.sep).some((p) => p.startsWith('.'))) return send(403, 'forbidden\n');
    let target = file;
    let st;
    try {
      st = fs.statSync(target);
      if (st.isDirectory()) {
        if (!pathname.endsWith('/')) {
          res.writeHead(301, { ...securityHeaders(), Location: pathname + '/' });
          return res.end();
        }
        target = path.join(target, 'index.html');
        st = fs.statSync(target);
      }
    } catch {
      if (log) log(`404 ${pathname}`);
      return send(404, `not found: ${pathname}\n`);
    }
    const type = MIME[path.extname(target).toLowerCase()] || 'application/octet-stream';
    const headers = { ...securityHeaders(), 'Content-Type': type, 'Accept-Ranges': 'bytes' };
    if (wantsCsp(pathname)) {
      headers['Content-Security-Policy'] = DEMO_CSP;
      headers['Referrer-Policy'] = 'no-referrer';
      headers['Permissions-Policy'] = 'camera=(), microphone=(), geolocation=(), interest-cohort=()';
    }
    // The demo's service worker controls the whole origin: Chromium picks the service worker of
    // a dedicated worker's script by that script's URL, and the package's worker is /pkg/worker.js.
    if (pathname === '/www/sw.js') headers['Service-Worker-Allowed'] = '/';
    // Single byte ranges (used by some loaders); everything else gets the whole file.
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    if (range && (range[1] || range[2])) {
      if (range[1]) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), st.size - 1) : st.size - 1;
      } else {
        start = Math.max(0, st.size - Number(range[2]));
      }
      if (start > end || start >= st.size) {
        return send(416, 'range not satisfiable\n', { 'Content-Range': `bytes */${st.size}` });
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
    }
    headers['Content-Length'] = String(st.size === 0 ? 0 : end - start + 1);
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || st.size === 0) return res.end();
    fs.createReadStream(target, { start, end }).on('error', () => res.destroy()).pipe(res);
  };
}

/**
 * Starts the server; resolves to { server, port, url, close() }.
 * onRequest({ method, url, headers }) sees every request (the tests use it to check privacy).
 */
export function startServer({ port = 8080, host = '127.0.0.1', root = ROOT, log = null, onRequest = null } = {}) {
  const server = http.createServer(handler(path.resolve(root), log, onRequest));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const actual = server.address().port;
      resolve({
        server,
        port: actual,
        url: `http://${host}:${actual}`,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 8080 : Number(process.env.PORT);
  const host = process.env.HOST || '127.0.0.1';
  const s = await startServer({ port, host, log: (m) => console.error(m) });
  console.log(`padlock demo: ${s.url}/www/   (bench: ${s.url}/www/bench.html; serving ${ROOT}; Ctrl-C to stop)`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => s.close().then(() => process.exit(0)));
}
