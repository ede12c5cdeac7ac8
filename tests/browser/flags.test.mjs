// Feature flags in chromium against the real server (OFREP, issue 6), from a storefront of another
// origin (http://localhost:PORT, a tiny server in this test):
//  - the real OpenFeature web SDK with its OFREP provider (@openfeature/web-sdk,
//    @openfeature/ofrep-web-provider from node_modules, loaded as native ES modules through an
//    import map, no bundler): boolean and string values, variant and reason as the server's
//    single-flag endpoint gives them, a disabled flag, an unknown flag, tenant isolation, and the
//    bulk ETag / If-None-Match round trip across origins;
//  - pe.flags() of web/sdk/pe.js: values, the context it sends, the exposure the server records
//    for the visitor, one request per page path and session, the timeout fallback, consent,
//    failures, and no exception escaping into the page.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { sharedBrowser } from './lib/sdk-browser.mjs';
import { closeAll, createStore, waitForEvents } from './lib/sdk-env.mjs';
import { startServer } from './lib/server.mjs';
import { sendPage, startStorefront } from './lib/storefront.mjs';

const OFREP_BULK = '/ofrep/v1/evaluate/flags';
const NODE_MODULES = new URL('../../node_modules/@openfeature/', import.meta.url);
// The ES module entry of each package (their package.json "module"), served under /m/.
const MODULES = {
  '@openfeature/core': 'core/dist/esm/index.js',
  '@openfeature/web-sdk': 'web-sdk/dist/esm/index.js',
  '@openfeature/ofrep-core': 'ofrep-core/index.esm.js',
  '@openfeature/ofrep-web-provider': 'ofrep-web-provider/index.esm.js',
};
const STANDARD_REASONS = ['STATIC', 'DEFAULT', 'TARGETING_MATCH', 'SPLIT', 'CACHED', 'DISABLED', 'UNKNOWN', 'STALE', 'ERROR'];

const variants = (control, treatment, split = 50) => [
  { key: 'control', value: control, weight: 100 - split },
  { key: 'treatment', value: treatment, weight: split },
];

// Store A's flags (B has its own 'checkout-copy' and nothing else).
const FLAGS_A = [
  { key: 'free-shipping-banner', kind: 'experiment', enabled: true, rolloutPercentage: 100, variants: variants(false, true), rules: [] },
  { key: 'checkout-copy', enabled: true, rolloutPercentage: 100, variants: [{ key: 'v2', value: 'Free returns for 30 days', weight: 100 }], rules: [] },
  { key: 'old-banner', enabled: false, rolloutPercentage: 100, variants: variants(false, true), rules: [] },
  {
    key: 'checkout-promo', enabled: true, rolloutPercentage: 100,
    variants: [{ key: 'off', value: 'none', weight: 100 }, { key: 'on', value: 'promo', weight: 0 }],
    rules: [{ conditions: [{ attribute: 'path', operator: 'starts_with', values: ['/shop/checkout'] }], variant: 'on' }],
  },
];
const FLAGS_B = [
  { key: 'checkout-copy', enabled: true, rolloutPercentage: 100, variants: [{ key: 'b', value: 'Store B copy', weight: 100 }], rules: [] },
];

describe('feature flags in the browser (OFREP)', () => {
  let server;
  let storefront;
  let shopOrigin;
  let shopInit = () => ({});
  let chrome;
  let storeA;
  let storeB;

  async function createFlag(store, flag) {
    const res = await fetch(`${server.baseUrl}/api/v1/stores/${store.storeId}/flags`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${store.secretKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(flag),
    });
    const text = await res.text();
    assert.ok(res.status === 201 || res.status === 200, `creating flag ${flag.key}: ${res.status} ${text}`);
  }

  /** The server's own answer for one flag (single-flag endpoint): { status, body }. */
  async function evaluate(key, context, pk = storeA.publishableKey) {
    const res = await fetch(`${server.baseUrl}/ofrep/v1/evaluate/flags/${encodeURIComponent(key)}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${pk}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ context }),
    });
    return { status: res.status, body: await res.json() };
  }

  before(async () => {
    server = await startServer();
    chrome = await sharedBrowser();
    storeA = await createStore('flags A');
    storeB = await createStore('flags B');
    for (const f of FLAGS_A) await createFlag(storeA, f);
    for (const f of FLAGS_B) await createFlag(storeB, f);

    const importMap = JSON.stringify({ imports: Object.fromEntries(Object.entries(MODULES).map(([name, file]) => [name, `/m/${file}`])) });
    storefront = await startStorefront((url, res) => {
      const html = (body) => sendPage(res,
        `<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>${body}</head><body></body></html>`);
      if (url.pathname.startsWith('/m/')) {
        const file = url.pathname.slice(3);
        if (!Object.values(MODULES).includes(file)) return false;
        readFile(new URL(file, NODE_MODULES)).then((body) => {
          res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
          res.end(body);
        }, () => res.writeHead(500).end());
      } else if (url.pathname === '/of/') {
        html(`<script type="importmap">${importMap}</script><script type="module">
          import { OpenFeature } from '@openfeature/web-sdk';
          import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
          window.openFeature = { OpenFeature, OFREPWebProvider };
        </script>`);
      } else if (url.pathname.startsWith('/shop/')) {
        const options = JSON.stringify(shopInit()).replace(/</g, '\\u003c');
        html(`<script src="${server.baseUrl}/sdk/pe.js"></script><script>pe.init(${options});</script>`);
      } else {
        return false;
      }
      return true;
    });
    shopOrigin = storefront.origin;
  });

  after(() => closeAll({ chrome, storefront, server }));

  /** A fresh browser context; records page errors and the OFREP requests (POST and preflight). */
  async function open({ init } = {}) {
    if (init) shopInit = init;
    const browser = await chrome.newContext();
    const page = await browser.newPage();
    const problems = [];
    const bulk = [];
    const preflights = [];
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
    });
    browser.context.on('request', (r) => {
      if (new URL(r.url()).pathname !== OFREP_BULK) return;
      if (r.method() === 'POST') bulk.push(r);
      else if (r.method() === 'OPTIONS') preflights.push(r);
    });
    return { browser, page, problems, bulk, preflights };
  }

  /**
   * Evaluates flags with the OpenFeature web SDK and the OFREP provider for one store and
   * context; resolves to the details of each [method, key, default] asked.
   */
  async function openFeature(page, pk, context, asks) {
    await page.goto(`${shopOrigin}/of/`);
    await page.waitForFunction(() => window.openFeature);
    return page.evaluate(async ({ baseUrl, pk, context, asks }) => {
      const { OpenFeature, OFREPWebProvider } = window.openFeature;
      await OpenFeature.setContext(context);
      await OpenFeature.setProviderAndWait(new OFREPWebProvider({
        baseUrl, headers: [['Authorization', `Bearer ${pk}`]], cacheMode: 'disabled',
      }));
      const client = OpenFeature.getClient();
      const out = {};
      for (const [method, key, dflt] of asks) {
        const d = client[method](key, dflt);
        out[key] = { value: d.value, variant: d.variant ?? null, reason: d.reason, errorCode: d.errorCode ?? null };
      }
      return out;
    }, { baseUrl: server.baseUrl, pk, context, asks });
  }

  test('the OpenFeature web SDK with the OFREP provider evaluates store flags as the server does', async () => {
    const { browser, page, problems, bulk } = await open();
    try {
      const seen = new Set();
      for (let i = 0; i < 8; i++) {
        const context = { targetingKey: `visitor-${i}`, device: 'mobile', path: '/product/mug' };
        const got = await openFeature(page, storeA.publishableKey, context, [
          ['getBooleanDetails', 'free-shipping-banner', false],
          ['getStringDetails', 'checkout-copy', 'default copy'],
          ['getBooleanDetails', 'old-banner', true],
          ['getStringDetails', 'checkout-promo', 'default promo'],
          ['getBooleanDetails', 'no-such-flag', true],
        ]);
        const banner = got['free-shipping-banner'];
        seen.add(banner.variant);
        // What the server's single-flag endpoint says for the same context.
        for (const key of ['free-shipping-banner', 'checkout-copy', 'old-banner', 'checkout-promo']) {
          const truth = await evaluate(key, context);
          assert.equal(truth.status, 200, `${key}: ${JSON.stringify(truth.body)}`);
          assert.deepEqual(
            { value: got[key].value, variant: got[key].variant, reason: got[key].reason },
            { value: truth.body.value, variant: truth.body.variant, reason: truth.body.reason },
            `${key} for ${context.targetingKey}`,
          );
          assert.ok(STANDARD_REASONS.includes(got[key].reason), `${key}: ${got[key].reason} is an OpenFeature reason`);
          assert.equal(got[key].errorCode, null, key);
        }
        assert.equal(banner.reason, 'SPLIT');
        assert.ok(['control', 'treatment'].includes(banner.variant), banner.variant);
        assert.equal(banner.value, banner.variant === 'treatment', 'the variant carries its value');
        assert.deepEqual(got['checkout-copy'], { value: 'Free returns for 30 days', variant: 'v2', reason: 'STATIC', errorCode: null });
        assert.deepEqual(got['old-banner'], { value: false, variant: 'control', reason: 'DISABLED', errorCode: null },
          'a disabled flag answers its default variant');
        assert.equal(got['checkout-promo'].value, 'none', 'the path rule does not match /product/mug');
        assert.deepEqual(got['no-such-flag'], { value: true, variant: null, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
      }
      assert.deepEqual([...seen].sort(), ['control', 'treatment'], '8 visitors see both variants of a 50/50 split');
      assert.equal(bulk.length, 8, 'one bulk request per initialisation');

      const promo = await openFeature(page, storeA.publishableKey, { targetingKey: 'v', path: '/shop/checkout/shipping' },
        [['getStringDetails', 'checkout-promo', 'default promo']]);
      assert.deepEqual(promo['checkout-promo'], { value: 'promo', variant: 'on', reason: 'TARGETING_MATCH', errorCode: null });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('another store\'s publishable key sees only its own flags', async () => {
    const { browser, page, problems } = await open();
    try {
      const got = await openFeature(page, storeB.publishableKey, { targetingKey: 'visitor-1' }, [
        ['getBooleanDetails', 'free-shipping-banner', false],
        ['getStringDetails', 'checkout-copy', 'default copy'],
      ]);
      assert.deepEqual(got['free-shipping-banner'], { value: false, variant: null, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
      assert.equal(got['checkout-copy'].value, 'Store B copy');
      const single = await evaluate('free-shipping-banner', { targetingKey: 'visitor-1' }, storeB.publishableKey);
      assert.equal(single.status, 404);
      assert.equal(single.body.errorCode, 'FLAG_NOT_FOUND');
      const secret = await evaluate('free-shipping-banner', { targetingKey: 'visitor-1' }, storeA.secretKey);
      assert.equal(secret.status, 403, 'a secret key must never be used from a browser');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('bulk answers carry an ETag the page can read, and If-None-Match gives 304', async () => {
    const { browser, page, problems } = await open();
    try {
      await page.goto(`${shopOrigin}/of/`);
      const r = await page.evaluate(async ({ url, pk }) => {
        const post = (etag) => fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${pk}`, 'Content-Type': 'application/json', ...(etag ? { 'If-None-Match': etag } : {}) },
          body: JSON.stringify({ context: { targetingKey: 'etag-visitor' } }),
        });
        const first = await post();
        const body = await first.json();
        const etag = first.headers.get('etag');
        const second = await post(etag);
        const stale = await post('"not-the-etag"');
        return { status: first.status, type: first.headers.get('content-type'), keys: body.flags.map((f) => f.key).sort(), etag, second: second.status, stale: stale.status };
      }, { url: `${server.baseUrl}${OFREP_BULK}`, pk: storeA.publishableKey });
      assert.equal(r.status, 200);
      assert.match(r.type, /^application\/json/);
      assert.deepEqual(r.keys, FLAGS_A.map((f) => f.key).sort());
      assert.ok(r.etag, 'ETag is exposed to the page (Access-Control-Expose-Headers)');
      assert.equal(r.second, 304, 'same context, same flags: 304');
      assert.equal(r.stale, 200, 'another ETag: the full answer');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  // ---- pe.flags() ----

  const shop = (path) => `${shopOrigin}/shop/${path}`;

  test('pe.flags(): one bulk request per page path and session, values as the server gives them', async () => {
    const { browser, page, problems, bulk } = await open({ init: () => ({ key: storeA.publishableKey, flushInterval: 60000 }) });
    try {
      await page.goto(shop('home?utm_source=news&utm_campaign=spring'));
      const first = await page.evaluate(async () => {
        const [a, b, c] = await Promise.all([pe.flags(), pe.flags(), pe.flags()]);
        return {
          same: a === b && b === c,
          ok: a.ok,
          banner: a.value('free-shipping-banner', false),
          bannerVariant: a.variant('free-shipping-banner'),
          copy: a.value('checkout-copy', 'default'),
          copyAsNumber: a.value('checkout-copy', 0),
          old: a.value('old-banner', true),
          promo: a.value('checkout-promo', 'default'),
          missing: a.value('no-such-flag', 'fallback'),
          missingVariant: a.variant('no-such-flag') ?? null,
          ids: pe.ids(),
        };
      });
      assert.equal(bulk.length, 1, 'three calls on one page: one request');
      assert.ok(first.same, 'every call on a page gets the same answer');
      assert.equal(first.ok, true);
      const sent = bulk[0].postDataJSON().context;
      assert.equal(sent.targetingKey, first.ids.anonymousId, 'the unit is the visitor');
      assert.equal(sent.sessionId, first.ids.sessionId);
      assert.equal(sent.path, '/shop/home');
      assert.equal(sent.device, 'other', 'headless chromium counts as "other"');
      assert.equal(sent.utm_source, 'news');
      assert.equal(sent.utm_campaign, 'spring');
      // a recommendation's segment dimensions, as the aggregation defines them
      assert.equal(sent.source, 'news', 'source: the utm_source, lower case');
      assert.equal(sent.campaign, 'spring');
      assert.equal(sent.customer, 'new', "the visitor's first session on this browser");
      assert.match(bulk[0].headers().authorization ?? '', /^Bearer pk_/);

      const truth = await evaluate('free-shipping-banner', sent);
      assert.equal(first.banner, truth.body.value);
      assert.equal(first.bannerVariant, truth.body.variant);
      assert.equal(first.copy, 'Free returns for 30 days');
      assert.equal(first.copyAsNumber, 0, 'a value of another type than the default answers the default');
      assert.equal(first.old, false, 'disabled: the default variant');
      assert.equal(first.promo, 'none');
      assert.equal(first.missing, 'fallback');
      assert.equal(first.missingVariant, null);

      // The server recorded the visitor's exposure to the experiment, in the visitor's session.
      const mine = (events) => events.filter((e) => e.name === 'experiment.exposure.assigned' && e.anonymousId === first.ids.anonymousId);
      const exposures = mine(await waitForEvents(storeA.storeId, (events) => mine(events).length > 0, { what: 'the exposure' }));
      assert.deepEqual(exposures.map((e) => [e.sessionId, e.properties]),
        [[first.ids.sessionId, { flagKey: 'free-shipping-banner', variant: first.bannerVariant }]]);

      // The session keeps the answer: a reload asks nothing.
      await page.reload();
      const again = await page.evaluate(async () => {
        const f = await pe.flags();
        return { ok: f.ok, banner: f.value('free-shipping-banner', false) };
      });
      assert.deepEqual(again, { ok: true, banner: first.banner });
      assert.equal(bulk.length, 1, 'a reload in the same session: no request');

      // Another path is another page: one more request, and its path rule applies.
      await page.goto(shop('checkout/shipping'));
      const checkout = await page.evaluate(async () => {
        const f = await pe.flags();
        await pe.flags();
        return { promo: f.value('checkout-promo', 'default'), variant: f.variant('checkout-promo'), banner: f.value('free-shipping-banner', false) };
      });
      assert.equal(bulk.length, 2, 'a new path: one more request');
      assert.deepEqual(checkout, { promo: 'promo', variant: 'on', banner: first.banner });
      assert.equal(bulk[1].postDataJSON().context.path, '/shop/checkout/shipping');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('pe.flags() answers defaults within its timeout when the engine is slow, and keeps the late answer for the next page', async () => {
    const { browser, page, problems, bulk } = await open({ init: () => ({ key: storeA.publishableKey, flushInterval: 60000 }) });
    try {
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      await browser.context.route(`${server.baseUrl}${OFREP_BULK}`, async (route) => {
        if (route.request().method() === 'POST') await held;
        await route.continue();
      });
      await page.goto(shop('slow'));
      const slow = await page.evaluate(async () => {
        const t0 = performance.now();
        const f = await pe.flags();
        return { ms: performance.now() - t0, ok: f.ok, banner: f.value('free-shipping-banner', false), copy: f.value('checkout-copy', 'default'), variant: f.variant('free-shipping-banner') ?? null };
      });
      assert.equal(slow.ok, false);
      assert.deepEqual([slow.banner, slow.copy, slow.variant], [false, 'default', null], 'defaults: control');
      assert.ok(slow.ms >= 250 && slow.ms < 1500, `answered after ${slow.ms.toFixed(0)} ms (timeout 300 ms)`);

      // A per-call timeout, and the same page keeps its first answer.
      const fast = await page.evaluate(async () => {
        const t0 = performance.now();
        const f = await pe.flags({ timeout: 50 });
        return { ms: performance.now() - t0, ok: f.ok };
      });
      assert.equal(fast.ok, false);
      assert.ok(fast.ms < 250, `the page's first answer is kept (${fast.ms.toFixed(0)} ms)`);

      // The engine answers late: the answer is kept for the next page of the session.
      release();
      await waitFor(() => page.evaluate(() => Object.keys(sessionStorage).some((k) => k.startsWith('pe_f'))), 'the late answer in sessionStorage');
      await page.reload();
      const next = await page.evaluate(async () => {
        const f = await pe.flags();
        return { ok: f.ok, copy: f.value('checkout-copy', 'default') };
      });
      assert.deepEqual(next, { ok: true, copy: 'Free returns for 30 days' });
      assert.equal(bulk.length, 1, 'one request in all');

      // flagsTimeout from init (longer than the default, so timers firing late cannot fake it).
      shopInit = () => ({ key: storeA.publishableKey, flushInterval: 60000, flagsTimeout: 1200 });
      await browser.context.unroute(`${server.baseUrl}${OFREP_BULK}`);
      await browser.context.route(`${server.baseUrl}${OFREP_BULK}`, () => { /* never answered */ });
      await page.goto(shop('slower'));
      const configured = await page.evaluate(async () => {
        const t0 = performance.now();
        const f = await pe.flags();
        return { ms: performance.now() - t0, ok: f.ok };
      });
      assert.equal(configured.ok, false);
      assert.ok(configured.ms >= 1150 && configured.ms < 4000, `flagsTimeout 1200: answered after ${configured.ms.toFixed(0)} ms`);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('pe.flags() without consent sends nothing and answers defaults', async () => {
    const { browser, page, problems, bulk, preflights } = await open({
      init: () => ({ key: storeA.publishableKey, flushInterval: 60000, consent: false }),
    });
    try {
      await page.goto(shop('no-consent'));
      const r = await page.evaluate(async () => {
        const f = await pe.flags();
        return { ok: f.ok, banner: f.value('free-shipping-banner', false), copy: f.value('checkout-copy', 'default') };
      });
      assert.deepEqual(r, { ok: false, banner: false, copy: 'default' });
      // Consent given later on the page: flags are asked for then.
      const later = await page.evaluate(async () => {
        pe.consent(true);
        const f = await pe.flags();
        return { ok: f.ok, copy: f.value('checkout-copy', 'default') };
      });
      assert.equal(bulk.length, 1, 'only after consent');
      assert.deepEqual(later, { ok: true, copy: 'Free returns for 30 days' });
      await page.evaluate(() => pe.consent(false));
      await page.goto(shop('no-consent-again'));
      await page.evaluate(() => pe.flags());
      await sleep(200);
      assert.equal(bulk.length, 1, 'no request without consent');
      assert.ok(preflights.length <= 1, 'no preflight without consent either');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('pe.flags() answers defaults before init, on a server error and on a broken answer, and never throws', async () => {
    const { browser, page, problems } = await open({ init: () => ({ key: storeA.publishableKey, flushInterval: 60000 }) });
    try {
      // Before init: the page calls pe.flags() from a script that runs first.
      await page.goto(`${shopOrigin}/of/`);
      await page.addScriptTag({ url: `${server.baseUrl}/sdk/pe.js` });
      const early = await page.evaluate(async () => { const f = await pe.flags(); return { ok: f.ok, v: f.value('x', 7) }; });
      assert.deepEqual(early, { ok: false, v: 7 });

      let answer = { status: 500, body: '{"errorDetails":"boom"}' };
      await browser.context.route(`${server.baseUrl}${OFREP_BULK}`, (route) => (route.request().method() === 'POST'
        ? route.fulfill({ status: answer.status, contentType: 'application/json', body: answer.body, headers: { 'Access-Control-Allow-Origin': '*' } })
        : route.continue()));
      for (const a of [{ status: 500, body: '{"errorDetails":"boom"}' }, { status: 200, body: 'not json' }, { status: 200, body: '{"flags":null}' },
        { status: 401, body: '{}' }]) {
        answer = a;
        await page.goto(shop(`broken-${a.status}-${a.body.length}`));
        const r = await page.evaluate(async () => {
          const f = await pe.flags();
          return { ok: f.ok, banner: f.value('free-shipping-banner', false) };
        });
        assert.deepEqual(r, { ok: false, banner: false }, JSON.stringify(a));
        const cached = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('pe_f')));
        assert.deepEqual(cached, [], 'a failure is not kept for the session');
      }
      // Odd arguments and a context that cannot be serialised do not throw either.
      const odd = await page.evaluate(async () => {
        const cyclic = {};
        cyclic.self = cyclic;
        const results = [];
        for (const arg of [null, 42, 'x', { context: cyclic }, { timeout: -1 }]) {
          try {
            const f = await pe.flags(arg);
            results.push(typeof f.value === 'function');
          } catch (e) {
            results.push(`threw ${e}`);
          }
        }
        return results;
      });
      assert.deepEqual(odd, [true, true, true, true, true]);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
});

async function waitFor(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
