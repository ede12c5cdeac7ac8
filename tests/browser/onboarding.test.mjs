// Onboarding a new store (issue 8, Store Performance's empty state): the merchant of a store
// without data signs in, sees how to install the storefront SDK, gets a publishable key from the
// dashboard (POST /api/v1/stores/{id}/keys with the session's X-CSRF-Token), and the snippet the
// page shows — copied verbatim into a storefront page on another origin — sends events that land
// in PostgreSQL for that store. Both starting points: a store fresh from `store create` (a live
// key the dashboard knows only by its prefix) and one whose publishable key was revoked (none).
// The Brutalist rules hold on the guide, the console stays clean. Screenshots go to
// $PE_TEST_ARTIFACTS (default: test-artifacts/onboarding beside the binary under test).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sharedBrowser } from './lib/sdk-browser.mjs';
import { closeAll, createStore, query, waitForEvents } from './lib/sdk-env.mjs';
import { startServer } from './lib/server.mjs';
import { sendPage, startStorefront } from './lib/storefront.mjs';

const BIN = process.env.PE_TEST_BINARY;
const ARTIFACTS = process.env.PE_TEST_ARTIFACTS ?? join(dirname(BIN ?? '.'), 'test-artifacts', 'onboarding');
const PASSWORD = 'correct horse battery staple';
const VIEWPORTS = [{ width: 1280, height: 800 }, { width: 390, height: 844 }];
const FULL_PK = /pk_[A-Za-z0-9_-]{43}\b/;

/** `profit-engine user create` (the password on stdin). */
function createUser(email, storeId) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['user', 'create', '--email', email, '--store', storeId],
      { env: { ...process.env, PE_LOG_LEVEL: 'warn' } });
    let err = '';
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`user create: ${code} ${err}`))));
    child.stdin.end(`${PASSWORD}\n`);
  });
}

/** Radius, shadows, border colours and sideways scrolling of the page, shadow roots included. */
const AUDIT = () => {
  const out = { radius: [], shadow: [], border: [] };
  const ok = new Set(['rgb(51, 51, 51)', 'rgb(204, 255, 0)', 'rgb(0, 255, 148)', 'rgb(255, 51, 102)',
    'rgb(51, 204, 255)', 'rgb(255, 255, 255)', 'rgb(0, 0, 0)']);
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (['LINK', 'SCRIPT', 'STYLE', 'META', 'TITLE', 'HEAD', 'OPTION', 'BR'].includes(el.tagName)) continue;
      const cs = getComputedStyle(el);
      const label = `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className}` : ''}`;
      if (['borderTopLeftRadius', 'borderTopRightRadius', 'borderBottomLeftRadius', 'borderBottomRightRadius']
        .some((c) => cs[c] !== '0px')) out.radius.push(label);
      if (cs.boxShadow !== 'none') out.shadow.push(label);
      for (const side of ['Top', 'Right', 'Bottom', 'Left']) {
        if (parseFloat(cs[`border${side}Width`]) > 0 && cs[`border${side}Style`] !== 'none'
            && !ok.has(cs[`border${side}Color`])) out.border.push(`${label} ${cs[`border${side}Color`]}`);
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  out.overflow = document.documentElement.scrollWidth - document.documentElement.clientWidth;
  return out;
};

describe('onboarding: the install guide gives a new store a working key', () => {
  let server;
  let chrome;
  let storefront;
  let shopOrigin;
  let shopSnippet = '';
  const problems = [];

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startServer();
    chrome = await sharedBrowser();
    // A merchant's storefront on another origin: /shop/… answers a page with whatever snippet
    // the dashboard showed, pasted as is.
    storefront = await startStorefront((url, res) => {
      if (!url.pathname.startsWith('/shop/')) return false;
      sendPage(res, `<!doctype html><html><head><meta charset="utf-8"><title>Tiny shop</title>\n${shopSnippet}\n</head>` +
        '<body><h1>Tiny shop</h1></body></html>');
      return true;
    });
    shopOrigin = storefront.origin;
  });

  after(() => closeAll({ chrome, storefront, server }));

  /** A new store (store create: one live pk, one sk) and its merchant. */
  async function newMerchant() {
    const tag = randomUUID().slice(0, 8);
    const store = await createStore(`Onboarding ${tag}`);
    const email = `new-merchant-${tag}@example.com`;
    await createUser(email, store.storeId);
    return { ...store, email };
  }

  const keysUrl = (store, id) => `${server.baseUrl}/api/v1/stores/${store.storeId}/keys${id ? `/${id}` : ''}`;

  async function listKeys(store) {
    const res = await fetch(keysUrl(store), { headers: { Authorization: `Bearer ${store.secretKey}` } });
    assert.equal(res.status, 200);
    return (await res.json()).keys;
  }

  /** POST /v1/events with an empty batch: 200 while the key works, 401 once it is revoked. */
  async function keyStatus(pk) {
    const res = await fetch(`${server.baseUrl}/v1/events`, {
      method: 'POST', headers: { Authorization: `Bearer ${pk}`, 'Content-Type': 'application/json' }, body: '{"events":[]}',
    });
    await res.arrayBuffer();
    return res.status;
  }

  async function openDashboard() {
    const browser = await chrome.newContext({ viewport: VIEWPORTS[0] });
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
    const page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location()?.url ?? '';
      // Signed out, /api/v1/me answers 401 (chromium logs it); favicon is chromium's own.
      if (/status of 401/.test(msg.text()) && url.includes('/api/v1/me')) return;
      if (url.endsWith('/favicon.ico')) return;
      problems.push(`console error: ${msg.text()} (${url})`);
    });
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    return { browser, page };
  }

  async function signIn(page, email) {
    await page.goto(`${server.baseUrl}/performance`);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('form#login button[type=submit]');
    await page.waitForSelector('[data-empty] [data-install]');
  }

  const keyState = (page) => page.getAttribute('[data-install]', 'data-key-state');
  const snippet = (page) => page.textContent('[data-snippet]');

  async function audit(page, label) {
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      const a = await page.evaluate(AUDIT);
      const where = `${label} at ${vp.width}×${vp.height}`;
      assert.deepEqual(a.radius, [], `${where}: border-radius`);
      assert.deepEqual(a.shadow, [], `${where}: box-shadow`);
      assert.deepEqual(a.border, [], `${where}: border colours`);
      assert.ok(a.overflow <= 0, `${where}: the page scrolls sideways by ${a.overflow}px`);
      await page.screenshot({ path: join(ARTIFACTS, `${label}-${vp.width}x${vp.height}.png`), fullPage: true });
    }
    await page.setViewportSize(VIEWPORTS[0]);
  }

  /** Pastes text (the snippet) into the storefront, opens a page of it and waits for its page
   * view to be stored for storeId. */
  async function storefrontSendsWith(text, storeId) {
    shopSnippet = text;
    const path = `/shop/${randomUUID().slice(0, 8)}`;
    const shop = await chrome.newContext();
    try {
      const page = await shop.newPage();
      const shopProblems = [];
      page.on('pageerror', (err) => shopProblems.push(`uncaught: ${err.message}`));
      page.on('console', (msg) => { if (msg.type() === 'error') shopProblems.push(msg.text()); });
      await page.goto(`${shopOrigin}${path}`);
      assert.equal(await page.evaluate(() => typeof window.pe?.track), 'function', 'the snippet loaded pe.js');
      const events = await waitForEvents(storeId,
        (evs) => evs.some((e) => e.name === 'storefront.page.viewed' && e.context?.page?.path === path),
        { what: `a page view of ${path}` });
      assert.ok(events.length >= 1);
      assert.deepEqual(shopProblems, []);
    } finally {
      await shop.close();
    }
    const [row] = await query('SELECT count(*)::int AS n FROM events WHERE store_id = $1', [storeId]);
    assert.ok(row.n >= 1);
  }

  test('a store fresh from `store create`: the guide names the key by its prefix, a new key works at once', async () => {
    const store = await newMerchant();
    const { browser, page } = await openDashboard();
    try {
      await signIn(page, store.email);
      assert.equal(await keyState(page), 'known');
      let text = await snippet(page);
      assert.ok(text.includes(`<script src="${server.baseUrl}/sdk/pe.js"></script>`), text);
      assert.match(text, /pe\.init\(\{ key: 'pk_…' \}\)/);
      assert.ok(text.includes(store.publishableKey.slice(0, 10)), 'the snippet names the key by its prefix');
      const guide = await page.textContent('[data-empty]');
      assert.ok(guide.includes(store.storeId));
      assert.ok(!guide.includes(store.publishableKey), 'the full key is not known to the dashboard');
      await audit(page, 'guide-known');

      await page.click('pe-brutal-button[data-action="create-key"]');
      await page.waitForSelector('[data-install][data-key-state="created"]');
      text = await snippet(page);
      const key = text.match(FULL_PK)?.[0];
      assert.ok(key, `a full key in the snippet: ${text}`);
      assert.notEqual(key, store.publishableKey);
      assert.match(text, new RegExp(`pe\\.init\\(\\{ key: '${key}' \\}\\);`));
      assert.ok((await page.textContent('[data-install]')).includes(store.publishableKey.slice(0, 10)),
        'the guide says the earlier key keeps working');

      // the server agrees: three live keys, the new one newest, known by its prefix only
      const keys = await listKeys(store);
      assert.equal(keys.filter((k) => !k.revokedAt).length, 3);
      assert.equal(keys[0].prefix, key.slice(0, 10));
      assert.ok(!JSON.stringify(keys).includes(key));
      assert.equal(await keyStatus(key), 200);
      assert.equal(await keyStatus(store.publishableKey), 200, 'the old key keeps working');

      await page.click('pe-brutal-button[data-action="copy-snippet"]');
      await page.waitForFunction(() => document.querySelector('[data-copy-status]')?.textContent.startsWith('Copied'));
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);
      await audit(page, 'guide-created');

      await storefrontSendsWith(text, store.storeId);
    } finally {
      await browser.close();
    }
  });

  test('a store without a working publishable key creates one from the guide, and the snippet sends events', async () => {
    const store = await newMerchant();
    // the storefront key was revoked (leaked, say): the store has no live publishable key
    const pk = (await listKeys(store)).find((k) => k.kind === 'publishable');
    const res = await fetch(keysUrl(store, pk.id), { method: 'DELETE', headers: { Authorization: `Bearer ${store.secretKey}` } });
    assert.equal(res.status, 200);
    assert.ok((await res.json()).revokedAt);
    assert.equal(await keyStatus(store.publishableKey), 401);

    const { browser, page } = await openDashboard();
    try {
      await signIn(page, store.email);
      assert.equal(await keyState(page), 'none');
      assert.match(await snippet(page), /pe\.init\(\{ key: 'pk_…' \}\)/);
      assert.equal(await page.textContent('pe-brutal-button[data-action="create-key"]'), 'Create publishable key');
      await audit(page, 'guide-none');

      // the request carries the session's anti-CSRF token (without it the server answers 403)
      const post = page.waitForRequest((r) => r.method() === 'POST' && r.url() === keysUrl(store));
      await page.click('pe-brutal-button[data-action="create-key"]');
      const request = await post;
      assert.ok((await request.headerValue('x-csrf-token'))?.length >= 32);
      assert.equal((await request.response()).status(), 201);
      await page.waitForSelector('[data-install][data-key-state="created"]');
      const text = await snippet(page);
      const key = text.match(FULL_PK)?.[0];
      assert.ok(key, `a full key in the snippet: ${text}`);

      // shown once: after a reload the guide knows the key by its prefix only (checked before
      // any event arrives, while the store is still without data)
      await page.reload();
      await page.waitForSelector('[data-install][data-key-state="known"]');
      const again = await snippet(page);
      assert.ok(again.includes(key.slice(0, 10)));
      assert.ok(!(await page.content()).includes(key));

      await storefrontSendsWith(text, store.storeId);
      const [row] = await query(
        "SELECT count(*)::int AS n FROM events WHERE store_id = $1 AND name = 'storefront.page.viewed'", [store.storeId]);
      assert.ok(row.n >= 1);
    } finally {
      await browser.close();
    }
  });

  test('no console errors anywhere', () => {
    assert.deepEqual(problems, []);
  });
});
