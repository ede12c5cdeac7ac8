// The demo storefront (web/demo/, served at /demo/) walked in chromium against the real server
// and PostgreSQL: home → product → add to cart → cart → reload → shipping → payment →
// confirmation stores exactly the expected events, in order, with one session and one
// anonymous id, each once; the pages keep a clean console under the dashboard's strict CSP. The
// demo store's simulated history (scripts/demo-scenario.json) sells what the storefront sells.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sharedBrowser } from './lib/sdk-browser.mjs';
import { closeAll, createStore, settle } from './lib/sdk-env.mjs';
import { startServer } from './lib/server.mjs';

const RECORD_CSP_VIOLATIONS = () => {
  window.__peCspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__peCspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
  });
};

const JOURNEY = [
  'storefront.page.viewed', // home
  'storefront.page.viewed', // product
  'storefront.product.viewed',
  'storefront.cart.item_added',
  'storefront.page.viewed', // cart
  'storefront.cart.viewed',
  'storefront.page.viewed', // cart again, after the reload
  'storefront.cart.viewed',
  'checkout.session.started',
  'storefront.page.viewed', // shipping
  'checkout.shipping.submitted',
  'storefront.page.viewed', // payment
  'checkout.payment.submitted',
  'storefront.page.viewed', // confirmation
  'checkout.order.completed',
];

describe('demo storefront', () => {
  let server;
  let chrome;

  before(async () => {
    server = await startServer();
    chrome = await sharedBrowser();
  });

  after(() => closeAll({ chrome, server }));

  /** A fresh browser context and a page that records problems (errors, CSP violations). */
  async function openBrowser(initScript) {
    const browser = await chrome.newContext();
    const page = await browser.newPage();
    await page.addInitScript(RECORD_CSP_VIOLATIONS);
    if (initScript) await page.addInitScript(initScript);
    const problems = [];
    page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location()?.url ?? '';
      if (url && new URL(url).pathname === '/favicon.ico') return;
      problems.push(`console error: ${msg.text()} (${url})`);
    });
    const cspViolations = async () => page.evaluate(() => window.__peCspViolations ?? []);
    return { browser, page, problems, cspViolations };
  }

  test('the journey with a reload mid-way stores the exact events, one session, no duplicates', async () => {
    const store = await createStore('demo journey');
    const { browser, page, problems, cspViolations } = await openBrowser();
    try {
      const home = await page.goto(`${server.baseUrl}/demo/index.html?key=${store.publishableKey}`);
      assert.equal(home.status(), 200);
      assert.match(home.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      assert.equal(await page.locator('#products a[data-product]').count(), 3);

      await page.click('a[data-product="burr-grinder"]');
      await page.waitForURL(/\/demo\/product\.html\?id=burr-grinder$/);
      assert.equal(await page.textContent('#product-name'), 'Burr Grinder');
      await page.fill('#quantity', '2');
      await page.click('#add-to-cart');
      await page.waitForURL(/\/demo\/cart\.html$/);
      assert.equal(await page.textContent('#cart-count'), '2');
      assert.equal(await page.textContent('#cart-total'), '€179.80');

      await page.reload();
      assert.equal(await page.textContent('#cart-total'), '€179.80');

      await page.click('#checkout');
      await page.waitForURL(/\/demo\/shipping\.html$/);
      await page.check('input[name="method"][value="express"]');
      await page.click('#to-payment');
      await page.waitForURL(/\/demo\/payment\.html$/);
      assert.equal(await page.textContent('#order-total'), '€191.80');
      await page.check('input[name="method"][value="paypal"]');
      await page.click('#place-order');
      await page.waitForURL(/\/demo\/confirmation\.html$/);
      const orderId = await page.textContent('#order-id');
      assert.match(orderId, /^BB-/);

      await page.evaluate(() => window.pe.flush());
      const ids = await page.evaluate(() => window.pe.ids());
      const events = await settle(store.storeId, JOURNEY.length);

      assert.deepEqual(events.map((e) => e.name), JOURNEY);
      assert.deepEqual([...new Set(events.map((e) => e.sessionId))], [ids.sessionId], 'one session');
      assert.deepEqual([...new Set(events.map((e) => e.anonymousId))], [ids.anonymousId], 'one anonymous id');
      assert.equal(new Set(events.map((e) => e.eventId)).size, JOURNEY.length, 'no event twice');

      const paths = events.filter((e) => e.name === 'storefront.page.viewed').map((e) => e.context.page.path);
      assert.deepEqual(paths, ['/demo/index.html', '/demo/product.html', '/demo/cart.html', '/demo/cart.html',
        '/demo/shipping.html', '/demo/payment.html', '/demo/confirmation.html']);
      const byName = (n) => events.find((e) => e.name === n).properties;
      assert.deepEqual(byName('storefront.cart.item_added'), {
        productId: 'burr-grinder', variantId: 'burr-grinder-steel', name: 'Burr Grinder', quantity: 2,
        price: 89.9, currency: 'EUR',
      });
      assert.deepEqual(byName('checkout.session.started'), { cartValue: 179.8, currency: 'EUR', itemCount: 2 });
      assert.deepEqual(byName('checkout.shipping.submitted'), {
        shippingMethod: 'express', shippingCost: 12, currency: 'EUR', country: 'FR',
      });
      assert.deepEqual(byName('checkout.payment.submitted'), { paymentMethod: 'paypal' });
      assert.deepEqual(byName('checkout.order.completed'), {
        orderId, value: 191.8, shipping: 12, currency: 'EUR',
        items: [{ productId: 'burr-grinder', variantId: 'burr-grinder-steel', quantity: 2, price: 89.9 }],
      });

      // A reload of the confirmation is not a second sale.
      await page.reload();
      await page.evaluate(() => window.pe.flush());
      const again = await settle(store.storeId, JOURNEY.length + 1);
      assert.deepEqual(again.map((e) => e.name), [...JOURNEY, 'storefront.page.viewed']);

      assert.deepEqual(await cspViolations(), []);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test("the demo store's simulated catalogue is the storefront's: the same SKUs, names and prices", async () => {
    const scenario = JSON.parse(readFileSync(new URL('../../scripts/demo-scenario.json', import.meta.url)));
    const simulated = scenario.catalog.map((p) => ({ sku: p.sku, name: p.name, price: `€${p.price.toFixed(2)}` }));
    const store = await createStore('demo catalogue');
    const { browser, page } = await openBrowser();
    try {
      await page.goto(`${server.baseUrl}/demo/index.html?key=${store.publishableKey}`);
      const sold = await page.$$eval('#products .cell', (cells) => cells.map((c) => ({
        sku: c.querySelector('a[data-product]').getAttribute('data-product'),
        name: c.querySelector('a[data-product]').textContent,
        price: c.querySelector('.price').textContent,
      })));
      const bySku = (a, b) => a.sku.localeCompare(b.sku);
      assert.deepEqual(sold.sort(bySku), simulated.sort(bySku));
    } finally {
      await browser.close();
    }
  });

  test('without localStorage the demo still works and sends its events', async () => {
    const store = await createStore('demo without storage');
    const { browser, page, problems } = await openBrowser(() => {
      Object.defineProperty(window, 'localStorage', {
        configurable: true,
        get() {
          throw new DOMException('storage is disabled', 'SecurityError');
        },
      });
    });
    try {
      await page.goto(`${server.baseUrl}/demo/index.html?key=${store.publishableKey}`);
      // The key cannot be remembered, so the links carry it.
      const href = await page.getAttribute('a[data-product="house-blend"]', 'href');
      assert.match(href, new RegExp(`key=${store.publishableKey}`));
      await page.click('a[data-product="house-blend"]');
      await page.waitForURL(/product\.html/);
      await page.evaluate(() => window.pe.flush());
      const events = await settle(store.storeId, 3);
      assert.deepEqual(events.map((e) => e.name),
        ['storefront.page.viewed', 'storefront.page.viewed', 'storefront.product.viewed']);
      assert.equal(new Set(events.map((e) => e.sessionId)).size, 1, 'the session survives in a cookie');
      assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('without a key the demo says so and sends nothing', async () => {
    const { browser, page, problems } = await openBrowser();
    const posts = [];
    page.on('request', (r) => {
      if (r.url().includes('/v1/events')) posts.push(r.url());
    });
    try {
      await page.goto(`${server.baseUrl}/demo/index.html`);
      assert.equal(await page.isVisible('#key-missing'), true);
      await page.evaluate(() => window.pe.flush());
      assert.deepEqual(posts, []);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
});
