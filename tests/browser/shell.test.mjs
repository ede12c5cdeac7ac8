// The dashboard shell served at `/`: security headers, title, a clean console (no errors, no
// CSP violations), the Brutalist pure-black background, and deep links answered by the app.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser } from './lib/browser.mjs';
import { startServer, stopServer } from './lib/server.mjs';

// Collects `securitypolicyviolation` events from the first moment of every document.
const RECORD_CSP_VIOLATIONS = () => {
  window.__peCspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__peCspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}` +
      ` at ${e.sourceFile}:${e.lineNumber}`);
  });
};

/** Splits a CSP header into { directive: [sources] }. */
function parseCsp(header) {
  const out = {};
  for (const part of header.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name.toLowerCase()] = sources;
  }
  return out;
}

describe('dashboard shell', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
  });

  /** Opens path in a new page; returns { page, response, problems } after the page settled. */
  async function open(path) {
    const page = await browser.newPage();
    await page.addInitScript(RECORD_CSP_VIOLATIONS);
    const problems = [];
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      const url = msg.location()?.url ?? '';
      // Signed out, the shell asks /api/v1/me and gets 401: chromium logs every non-2xx
      // resource load as a console error. That one is expected; any other is a problem.
      const path = url ? new URL(url, server.baseUrl).pathname : '';
      if (/status of 401/.test(text) && path.startsWith('/api/')) return;
      // chromium asks for /favicon.ico by itself (the app does not); whether that 404 lands
      // before the checks is a matter of timing, so it is not counted.
      if (path === '/favicon.ico') return;
      if (/Content Security Policy/i.test(text)) problems.push(`CSP console: ${text}`);
      else problems.push(`console error: ${text} (${url})`);
    });
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    const response = await page.goto(server.baseUrl + path, { waitUntil: 'load' });
    await page.waitForLoadState('networkidle');
    const violations = await page.evaluate(() => window.__peCspViolations ?? []);
    problems.push(...violations.map((v) => `CSP violation: ${v}`));
    return { page, response, problems };
  }

  test('`/` sends the security headers', async () => {
    const { page, response } = await open('/');
    try {
      assert.equal(response.status(), 200);
      const headers = response.headers();
      assert.match(headers['content-type'] ?? '', /^text\/html/);
      assert.equal(headers['x-content-type-options'], 'nosniff');
      const cspHeader = headers['content-security-policy'];
      assert.ok(cspHeader, 'Content-Security-Policy header is missing');
      const csp = parseCsp(cspHeader);
      assert.deepEqual(csp['frame-ancestors'], ["'none'"], `frame-ancestors in: ${cspHeader}`);
      const scriptSrc = csp['script-src'] ?? csp['default-src'];
      assert.ok(scriptSrc, `neither script-src nor default-src in: ${cspHeader}`);
      assert.ok(!scriptSrc.includes("'unsafe-inline'"), `script-src allows 'unsafe-inline': ${cspHeader}`);
      assert.ok(!scriptSrc.includes("'unsafe-eval'"), `script-src allows 'unsafe-eval': ${cspHeader}`);
    } finally {
      await page.close();
    }
  });

  test('`/` renders the app with a clean console on pure black', async () => {
    const { page, problems } = await open('/');
    try {
      assert.match(await page.title(), /Profit Engine/);
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background, 'rgb(0, 0, 0)');
      assert.deepEqual(problems, [], `console errors or CSP violations:\n${problems.join('\n')}`);
    } finally {
      await page.close();
    }
  });

  test('a deep link answers the same document', async () => {
    const normalize = (html) => html.replace(/nonce="[^"]*"/g, 'nonce=""');
    const root = await fetch(`${server.baseUrl}/`);
    const rootHtml = await root.text();
    const deep = await fetch(`${server.baseUrl}/funnel`);
    const deepHtml = await deep.text();
    assert.equal(deep.status, 200);
    assert.match(deep.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(normalize(deepHtml), normalize(rootHtml), '/funnel is not the app document');

    const { page, response, problems } = await open('/funnel');
    try {
      assert.equal(response.status(), 200);
      assert.match(await page.title(), /Profit Engine/);
      assert.deepEqual(problems, [], `console errors or CSP violations:\n${problems.join('\n')}`);
    } finally {
      await page.close();
    }
  });
});
