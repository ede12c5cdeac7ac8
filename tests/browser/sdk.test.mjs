// The storefront SDK (web/sdk/pe.js) in chromium against the real server and PostgreSQL, on a
// storefront of another origin (http://localhost:PORT/shop/…, a tiny server in this test) that
// loads /sdk/pe.js from the engine (http://127.0.0.1:PORT): CORS, batching, context, sessions,
// consent, offline spells, reloads, retries, refusals, beacons, broken storage, and no exception
// escaping into the page.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { sharedBrowser } from './lib/sdk-browser.mjs';
import { closeAll, createStore, rejectedEvents, settle, storedEvents, waitForEvents } from './lib/sdk-env.mjs';
import { startServer } from './lib/server.mjs';
import { sendPage, startStorefront } from './lib/storefront.mjs';
import { eventSchema } from '../../web/sdk/schema.mjs';

const SDK = new URL('../../web/sdk/pe.js', import.meta.url);
const SIZE_LIMIT = 6 * 1024;

describe('SDK file', () => {
  test(`pe.js is at most ${SIZE_LIMIT} bytes gzipped (gzip -9)`, () => {
    const size = gzipSync(readFileSync(SDK), { level: 9 }).length;
    assert.ok(size <= SIZE_LIMIT, `pe.js is ${size} bytes gzipped, the limit is ${SIZE_LIMIT}`);
  });

  test('pe.js is a classic script without syntax newer than ES2017', () => {
    const source = readFileSync(SDK, 'utf8');
    assert.doesNotThrow(() => new Script(source, { filename: 'pe.js' }));
    const code = source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:[^'\\\n]|\\.)*'|\/(?:[^/\\\n]|\\.)+\/[gimsuy]*/g, '');
    for (const [what, re] of [['optional chaining', /\?\./], ['nullish coalescing', /\?\?/],
      ['object spread or rest', /\.\.\./], ['catch without binding', /catch\s*\{/]]) {
      assert.doesNotMatch(code, re, `pe.js uses ${what} (newer than ES2017)`);
    }
  });
});

describe('storefront SDK', () => {
  let server;
  let storefront;
  let shopOrigin;
  let shopInit = () => ({});
  let chrome;

  before(async () => {
    server = await startServer();
    chrome = await sharedBrowser();
    // The storefront answers every /shop/… with a page that loads pe.js from the engine and
    // calls pe.init(shopInit()).
    storefront = await startStorefront((url, res) => {
      if (!url.pathname.startsWith('/shop/')) return false;
      const options = JSON.stringify(shopInit()).replace(/</g, '\\u003c');
      sendPage(res, `<!doctype html><html><head><meta charset="utf-8"><title>Shop ${url.pathname}</title>` +
        `<script src="${server.baseUrl}/sdk/pe.js"></script><script>pe.init(${options});</script></head>` +
        `<body><h1>${url.pathname.replace(/[<&]/g, '')}</h1></body></html>`);
      return true;
    });
    shopOrigin = storefront.origin;
  });

  after(() => closeAll({ chrome, storefront, server }));

  /**
   * A fresh browser context on the storefront: its pages call pe.init(init()) — init is read at
   * every page load, so a test may change what it returns between pages.
   */
  async function openShop({ init, initScript, contextOptions } = {}) {
    shopInit = init;
    const browser = await chrome.newContext(contextOptions);
    const page = await browser.newPage();
    if (initScript) await page.addInitScript(initScript);
    const problems = [];
    const posts = [];
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    browser.context.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/events') posts.push(r);
    });
    return { browser, page, problems, posts };
  }

  const shop = (path) => `${shopOrigin}/shop/${path}`;

  test('events from another origin are stored with their context, properties and identities', async () => {
    const store = await createStore('sdk context');
    const { browser, page, problems, posts } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 60000 }),
    });
    try {
      const landing = shop('landing?utm_source=news&utm_medium=email&utm_campaign=black_friday&utm_term=beans&utm_content=hero');
      await page.goto(landing, { referer: 'https://search.example/q' });
      await page.evaluate(() => {
        pe.productViewed({ productId: 'sku-1', variantId: 'sku-1-red', name: 'Mug', category: 'kitchen', price: 12.5, currency: 'EUR' });
        pe.addToCart({ productId: 'sku-1', quantity: 3, price: 12.5, currency: 'EUR' }, { placement: 'pdp' });
        pe.identify('user-42');
        pe.track('custom.wishlist.added', { productId: 'sku-1', tags: ['gift', 'red'] });
        pe.track('experiment.exposure.assigned', { flagKey: 'free-shipping', variant: 'on' });
      });
      const queued = await page.evaluate(() => pe.queued());
      assert.equal(queued.length, 5);
      for (const ev of queued) {
        const verdict = eventSchema.safeParse(ev);
        assert.ok(verdict.success, `${ev.name} fails the Zod schema: ${JSON.stringify(verdict.error?.issues)}`);
      }
      assert.equal(posts.length, 0, 'nothing is sent before the flush interval');
      await page.evaluate(() => pe.flush());
      assert.equal(posts.length, 1, 'one batch');
      assert.match(posts[0].headers().authorization ?? '', /^Bearer pk_/);

      const events = await settle(store.storeId, 5);
      assert.deepEqual(events.map((e) => e.name), ['storefront.page.viewed', 'storefront.product.viewed',
        'storefront.cart.item_added', 'custom.wishlist.added', 'experiment.exposure.assigned']);
      assert.deepEqual(events.map((e) => e.eventId), queued.map((e) => e.eventId));
      const [view, product, cart, custom, exposure] = events;
      assert.deepEqual(view.context.page, { url: landing, path: '/shop/landing', referrer: 'https://search.example/q', title: 'Shop /shop/landing' });
      for (const e of events) {
        assert.deepEqual(e.context.utm, { source: 'news', medium: 'email', campaign: 'black_friday', term: 'beans', content: 'hero' });
        assert.equal(e.context.device.type, 'other', 'headless chromium counts as "other"');
        assert.match(e.context.userAgent, /HeadlessChrome/);
        assert.match(e.context.locale, /^[a-z]{2}(-[A-Z]{2})?$/);
      }
      assert.deepEqual(product.properties, { productId: 'sku-1', variantId: 'sku-1-red', name: 'Mug', category: 'kitchen', price: 12.5, currency: 'EUR' });
      assert.deepEqual(cart.custom, { placement: 'pdp' });
      assert.deepEqual(custom.properties, { productId: 'sku-1', tags: ['gift', 'red'] });
      assert.deepEqual(exposure.properties, { flagKey: 'free-shipping', variant: 'on' });
      assert.deepEqual(events.map((e) => e.userId), ['', '', '', 'user-42', 'user-42']);
      assert.equal(new Set(events.map((e) => e.sessionId)).size, 1);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('batches by size: a full batch goes at once, the rest after the interval', async () => {
    const store = await createStore('sdk batching');
    const { browser, page, posts } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 3000, maxBatch: 5, autoPageView: false }),
    });
    try {
      await page.goto(shop('batch'));
      await page.evaluate(() => {
        for (let i = 0; i < 7; i++) pe.track('custom.batch.test', { i });
      });
      const first = await waitForEvents(store.storeId, (e) => e.length >= 5, { what: 'the full batch' });
      assert.equal(first.length, 5, 'only the full batch before the interval');
      assert.equal(posts.length, 1);
      const events = await settle(store.storeId, 7);
      assert.deepEqual(events.map((e) => e.properties.i), [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(posts.length, 2);
    } finally {
      await browser.close();
    }
  });

  test('the session continues across pages and reloads, and rotates on a new campaign or after 30 idle minutes', async () => {
    const store = await createStore('sdk sessions');
    const { browser, page, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 60000 }),
    });
    try {
      await page.goto(shop('a?utm_source=ads&utm_campaign=spring'));
      const first = await page.evaluate(() => pe.ids());
      await page.goto(shop('b'));
      await page.reload();
      const same = await page.evaluate(() => pe.ids());
      assert.deepEqual(same, first, 'same session and visitor across pages and a reload');

      await page.goto(shop('c?utm_source=ads&utm_campaign=summer'));
      const campaign = await page.evaluate(() => pe.ids());
      assert.notEqual(campaign.sessionId, first.sessionId, 'a new campaign starts a session');
      assert.equal(campaign.anonymousId, first.anonymousId);

      // 31 minutes without an event.
      await page.evaluate(() => {
        const s = JSON.parse(localStorage.getItem('pe_sess'));
        s.t -= 31 * 60 * 1000;
        localStorage.setItem('pe_sess', JSON.stringify(s));
      });
      await page.evaluate(() => pe.cartViewed({}));
      const idle = await page.evaluate(() => pe.ids());
      assert.notEqual(idle.sessionId, campaign.sessionId, 'a session ends after 30 idle minutes');
      assert.equal(idle.anonymousId, first.anonymousId, 'the visitor stays the same');

      // Single-page navigations are page views, with the previous URL as referrer.
      await page.evaluate(() => history.pushState({}, '', '/shop/spa?step=2'));
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50)));
      await page.evaluate(() => history.back());
      await page.waitForURL(/\/shop\/c\?/);
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50)));

      await page.evaluate(() => pe.flush());
      const events = await settle(store.storeId, 7);
      assert.deepEqual(events.map((e) => [e.name, e.context.page.path]), [
        ['storefront.page.viewed', '/shop/a'],
        ['storefront.page.viewed', '/shop/b'],
        ['storefront.page.viewed', '/shop/b'],
        ['storefront.page.viewed', '/shop/c'],
        ['storefront.cart.viewed', '/shop/c'],
        ['storefront.page.viewed', '/shop/spa'],
        ['storefront.page.viewed', '/shop/c'],
      ]);
      assert.deepEqual(events.map((e) => e.sessionId), [first.sessionId, first.sessionId, first.sessionId,
        campaign.sessionId, idle.sessionId, idle.sessionId, idle.sessionId]);
      assert.equal(events[5].context.page.referrer, shop('c?utm_source=ads&utm_campaign=summer'));
      assert.equal(events[6].context.page.referrer, shop('spa?step=2'));
      // A session carries the campaign it started with; the idle one started without.
      assert.deepEqual(events.map((e) => e.context.utm?.campaign ?? null),
        ['spring', 'spring', 'spring', 'summer', null, null, null]);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('consent(false) sends nothing, empties the queue, and is remembered', async () => {
    const store = await createStore('sdk consent');
    let consent = false;
    const { browser, page, posts, problems } = await openShop({
      init: () => (consent === undefined ? { key: store.publishableKey, flushInterval: 60000 }
        : { key: store.publishableKey, flushInterval: 60000, consent }),
    });
    try {
      await page.goto(shop('no-consent'));
      await page.evaluate(() => {
        pe.productViewed({ productId: 'p1' });
        pe.orderCompleted({ orderId: 'o1', value: 1, currency: 'EUR', items: [{ productId: 'p1', quantity: 1, price: 1 }] });
      });
      await page.evaluate(() => pe.flush());
      assert.deepEqual(await page.evaluate(() => pe.queued()), []);

      // Given, then withdrawn before the queue was sent.
      consent = true;
      await page.goto(shop('consent-given'));
      await page.evaluate(() => {
        pe.consent(false);
        pe.productViewed({ productId: 'p2' });
      });
      assert.deepEqual(await page.evaluate(() => pe.queued()), []);
      assert.equal(await page.evaluate(() => localStorage.getItem('pe_consent')), '0');

      // A later page that does not say remembers the refusal.
      consent = undefined;
      await page.goto(shop('later'));
      await page.evaluate(() => pe.productViewed({ productId: 'p3' }));
      await page.evaluate(() => pe.flush());
      await page.goto('about:blank');
      await sleep(1500);
      assert.equal(posts.length, 0, `sent ${posts.length} requests without consent`);
      assert.deepEqual(await storedEvents(store.storeId), []);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('offline: queued events survive the spell and arrive exactly once when back online', async () => {
    const store = await createStore('sdk offline');
    const { browser, page, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 100 }),
    });
    try {
      await page.goto(shop('offline'));
      await waitForEvents(store.storeId, (e) => e.length === 1, { what: 'the page view' });

      await browser.context.setOffline(true);
      await page.evaluate(() => {
        pe.productViewed({ productId: 'p1', price: 10, currency: 'EUR' });
        pe.addToCart({ productId: 'p1', quantity: 1, price: 10, currency: 'EUR' });
      });
      await page.evaluate(() => pe.flush());
      await sleep(1500); // a few failed attempts
      assert.equal((await page.evaluate(() => pe.queued())).length, 2);
      assert.equal((await page.evaluate(() => JSON.parse(Object.entries(localStorage)
        .find(([k]) => k.startsWith('pe_q_'))[1]))).length, 2, 'the queue is persisted');
      assert.equal((await storedEvents(store.storeId)).length, 1);

      await browser.context.setOffline(false); // the SDK retries on 'online'
      const events = await settle(store.storeId, 3);
      assert.deepEqual(events.map((e) => e.name),
        ['storefront.page.viewed', 'storefront.product.viewed', 'storefront.cart.item_added']);
      assert.equal(new Set(events.map((e) => e.eventId)).size, 3);
      assert.deepEqual(await page.evaluate(() => pe.queued()), []);
      assert.deepEqual(problems.filter((p) => !p.includes('net::ERR_INTERNET_DISCONNECTED')), []);
    } finally {
      await browser.close();
    }
  });

  test('offline, then the page is closed: the next page sends the persisted queue once', async () => {
    const store = await createStore('sdk offline reload');
    const { browser, page, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 100 }),
    });
    try {
      await page.goto(shop('first'));
      await waitForEvents(store.storeId, (e) => e.length === 1, { what: 'the page view' });
      await browser.context.setOffline(true);
      await page.evaluate(() => pe.checkoutStarted({ cartValue: 42, currency: 'EUR' }));
      await page.evaluate(() => pe.flush());
      await page.close(); // offline: no beacon; the event waits in localStorage
      await browser.context.setOffline(false);

      const next = await browser.newPage();
      next.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
      await next.goto(shop('second'));
      await next.evaluate(() => pe.flush());
      const events = await settle(store.storeId, 3);
      assert.deepEqual(events.map((e) => e.name),
        ['storefront.page.viewed', 'checkout.session.started', 'storefront.page.viewed']);
      assert.equal(new Set(events.map((e) => e.eventId)).size, 3);
      assert.deepEqual(problems.filter((p) => !p.includes('net::ERR_INTERNET_DISCONNECTED')), []);
    } finally {
      await browser.close();
    }
  });

  test('a 503 is retried with backoff; the events arrive once', async () => {
    const store = await createStore('sdk retry');
    const { browser, page, posts } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 100 }),
    });
    let refused = 0;
    await browser.context.route(`${server.baseUrl}/v1/events**`, (route) => {
      if (route.request().method() === 'POST' && refused < 2) {
        refused++;
        return route.fulfill({
          status: 503,
          headers: { 'Retry-After': '1', 'Access-Control-Allow-Origin': '*' },
          contentType: 'application/json',
          body: '{"error":{"code":"unavailable","message":"try later"}}',
        });
      }
      return route.continue();
    });
    try {
      await page.goto(shop('retry'));
      await page.evaluate(() => pe.paymentSubmitted({ paymentMethod: 'card' }));
      const events = await settle(store.storeId, 2, { timeoutMs: 20000 });
      assert.equal(refused, 2);
      assert.deepEqual(events.map((e) => e.name), ['storefront.page.viewed', 'checkout.payment.submitted']);
      assert.ok(posts.length >= 3, `expected the refused batch to be sent again (${posts.length} posts)`);
    } finally {
      await browser.close();
    }
  });

  test('events the server refuses are dropped, not retried; the others are stored', async () => {
    const store = await createStore('sdk rejected');
    const { browser, page, posts, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 60000, debug: true }),
    });
    try {
      await page.goto(shop('rejected'));
      await page.evaluate(() => {
        pe.addToCart({ productId: 'p1', quantity: 0, price: 1, currency: 'EUR' }); // quantity 1..10000
        pe.shippingSubmitted({ shippingMethod: 'standard', country: 'FR' });
      });
      await page.evaluate(() => pe.flush());
      assert.deepEqual(await page.evaluate(() => pe.queued()), []);
      await page.evaluate(() => pe.flush());
      assert.equal(posts.length, 1, 'a refused event is not sent again');
      const events = await settle(store.storeId, 2);
      assert.deepEqual(events.map((e) => e.name), ['storefront.page.viewed', 'checkout.shipping.submitted']);
      const dead = await rejectedEvents(store.storeId);
      assert.deepEqual(dead.map((d) => d.code), ['out_of_range']);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('sendBeacon on pagehide delivers what is queued; the next page does not store it twice', async () => {
    const store = await createStore('sdk beacon');
    const { browser, page, posts, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 600000 }),
      // Notes every beacon where the next page of the shop can read it.
      initScript: () => {
        const send = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (url, data) => {
          const ok = send(url, data);
          const log = JSON.parse(localStorage.getItem('test_beacons') || '[]');
          log.push({ url: String(url), events: JSON.parse(data).events.length, ok });
          localStorage.setItem('test_beacons', JSON.stringify(log));
          return ok;
        };
      },
    });
    try {
      await page.goto(shop('beacon'));
      await page.evaluate(() => {
        pe.productViewed({ productId: 'p1' });
        pe.cartViewed({ cartValue: 10, currency: 'EUR', itemCount: 1 });
      });
      await page.goto('about:blank'); // pagehide
      const events = await settle(store.storeId, 3);
      assert.deepEqual(events.map((e) => e.name),
        ['storefront.page.viewed', 'storefront.product.viewed', 'storefront.cart.viewed']);
      // (chromium may or may not report the beacon itself: only fetches, without ?key=, count.)
      const fetches = posts.filter((r) => !new URL(r.url()).searchParams.has('key'));
      assert.equal(fetches.length, 0, 'no fetch: the events went as a beacon');

      // The beacon's answer is never seen, so the next page sends the events again: the server
      // keeps each eventId once.
      await page.goto(shop('after-beacon'));
      const beacons = await page.evaluate(() => JSON.parse(localStorage.getItem('test_beacons')));
      assert.deepEqual(beacons, [{ url: `${server.baseUrl}/v1/events?key=${store.publishableKey}`, events: 3, ok: true }]);
      await page.evaluate(() => pe.flush());
      const after = await settle(store.storeId, 4);
      assert.deepEqual(after.map((e) => e.name), [...events.map((e) => e.name), 'storefront.page.viewed']);
      assert.equal(new Set(after.map((e) => e.eventId)).size, 4);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('storage that throws does not break the page; cookies keep the session', async () => {
    const store = await createStore('sdk no storage');
    const { browser, page, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 100 }),
      initScript: () => {
        Object.defineProperty(window, 'localStorage', {
          configurable: true,
          get() {
            throw new DOMException('storage is disabled', 'SecurityError');
          },
        });
      },
    });
    try {
      await page.goto(shop('one'));
      await page.evaluate(() => pe.productViewed({ productId: 'p1' }));
      await page.goto(shop('two'));
      await page.evaluate(() => pe.flush());
      const events = await settle(store.storeId, 3);
      assert.deepEqual(events.map((e) => e.name),
        ['storefront.page.viewed', 'storefront.product.viewed', 'storefront.page.viewed']);
      assert.equal(new Set(events.map((e) => e.sessionId)).size, 1);
      assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('no exception escapes into the page, whatever the SDK is given', async () => {
    const store = await createStore('sdk harmless');
    const { browser, page, problems } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 60000 }),
      // An insecure-context-like browser: no crypto.randomUUID (the fallback makes the UUIDs).
      initScript: () => {
        delete Crypto.prototype.randomUUID;
      },
    });
    try {
      await page.goto(shop('harmless'));
      const result = await page.evaluate(async () => {
        const cyclic = {};
        cyclic.self = cyclic;
        const hostile = { get productId() { throw new Error('boom'); } };
        const calls = [
          () => pe.init(42), () => pe.init({ key: 'sk_secret' }), () => pe.track(),
          () => pe.track(null, null), () => pe.track('Not A Name', {}), () => pe.addToCart(undefined),
          () => pe.productViewed('a string'), () => pe.orderCompleted(hostile),
          () => pe.track('custom.cyclic.event', cyclic), () => pe.identify({ toString: null }),
          () => pe.consent(true), () => pe.ids(), () => pe.queued(),
        ];
        const thrown = [];
        for (const call of calls) {
          try {
            call();
          } catch (e) {
            thrown.push(String(e));
          }
        }
        const flushed = pe.flush();
        await flushed;
        return { thrown, isPromise: flushed instanceof Promise, queued: pe.queued() };
      });
      assert.deepEqual(result.thrown, []);
      assert.equal(result.isPromise, true);
      // Still working afterwards.
      await page.evaluate(() => pe.cartViewed({ itemCount: 0 }));
      await page.evaluate(() => pe.flush());
      const events = await settle(store.storeId, 2);
      assert.ok(events.map((e) => e.name).includes('storefront.cart.viewed'));
      for (const e of events) assert.match(e.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(problems.filter((p) => !/^console error: Failed to load resource/.test(p)), []);
    } finally {
      await browser.close();
    }
  });

  test('a phone is a mobile device', async () => {
    const store = await createStore('sdk mobile');
    const { browser, page } = await openShop({
      init: () => ({ key: store.publishableKey, flushInterval: 60000 }),
      contextOptions: {
        userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
      },
    });
    try {
      await page.goto(shop('phone'));
      const ev = await page.evaluate(() => pe.queued()[0]);
      assert.equal(ev.context.device.type, 'mobile');
    } finally {
      await browser.close();
    }
  });
});

describe('/sdk/ route', () => {
  let server;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
  });

  test('serves the SDK files with their types, CORS and a 5-minute cache', async () => {
    for (const [file, type] of [['pe.js', /^text\/javascript/], ['schema.mjs', /^text\/javascript/],
      ['pe.d.ts', /^text\/plain/]]) {
      const res = await fetch(`${server.baseUrl}/sdk/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type'), type, file);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=300', file);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', file);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', file);
      assert.equal(await res.text(), readFileSync(new URL(`../../web/sdk/${file}`, import.meta.url), 'utf8'));
    }
  });

  test('anything else under /sdk/ is a JSON 404 that is not cached', async () => {
    for (const path of ['/sdk/nope.js', '/sdk/', '/sdk/..%2Findex.html', '/sdk/.hidden.js', '/sdk/pe', '/sdk/a//b.js']) {
      const res = await fetch(`${server.baseUrl}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
      const body = await res.json();
      assert.equal(body.error?.code, 'not_found', path);
    }
  });
});
