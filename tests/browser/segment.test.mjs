// Segment compatibility with the real client: @segment/analytics-node (from npm) pointed at
// profit-engine's POST /v1/batch sends track (Product Viewed, Order Completed), page and identify
// calls; after closeAndFlush() every one of them is in PostgreSQL under the store of the write
// key, with its native name, one session, and the translated properties.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Analytics } from '@segment/analytics-node';
import { startServer, stopServer } from './lib/server.mjs';

const run = promisify(execFile);

/** Creates a store with the binary under test; resolves to { storeId, publishableKey, … }. */
async function createStore(name) {
  const { stdout } = await run(process.env.PE_TEST_BINARY, ['store', 'create', '--name', name,
    '--currency', 'EUR'], { env: { ...process.env, PE_LOG_LEVEL: 'warn' } });
  return JSON.parse(stdout);
}

/** Rows of one query (psql variables :'name' from vars, never string concatenation). */
async function query(sql, vars = {}) {
  const args = ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
    process.env.PE_DATABASE_URL];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  const child = run('psql', args, { maxBuffer: 16 << 20 });
  child.child.stdin.end(`${sql}\n`);
  const { stdout } = await child;
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

describe('Segment HTTP Tracking API with @segment/analytics-node', () => {
  let server;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await stopServer(server);
  });

  test('track, page and identify calls are stored under the write key\'s store', async () => {
    const store = await createStore('Segment client test');
    const analytics = new Analytics({
      writeKey: store.publishableKey,
      host: server.baseUrl,
      path: '/v1/batch',
      maxEventsInBatch: 10,
      flushInterval: 100,
      maxRetries: 2,
    });
    const problems = [];
    const statuses = [];
    analytics.on('error', (err) => problems.push(String(err?.reason ?? err?.message ?? err)));
    analytics.on('http_response', (r) => statuses.push(r.status));

    const anonymousId = randomUUID();
    const userId = `user-${randomUUID()}`;
    const orderId = `order-${randomUUID()}`;
    analytics.page({
      anonymousId,
      name: 'Tees',
      properties: {
        url: 'https://shop.example.com/collections/tees?utm_source=newsletter&utm_campaign=fall',
        path: '/collections/tees',
        title: 'Tees | Example Shop',
        referrer: 'https://www.example.org/',
      },
    });
    analytics.track({
      anonymousId,
      event: 'Product Viewed',
      properties: { product_id: 'tee-black', sku: 'TEE-B-M', name: 'Black Tee', price: 24,
        currency: 'eur', category: 'tees' },
    });
    analytics.identify({ anonymousId, userId, traits: { email: 'buyer@example.com' } });
    analytics.track({
      anonymousId,
      userId,
      event: 'Order Completed',
      properties: {
        order_id: orderId, revenue: 48, shipping: 4.9, tax: 7.66, currency: 'EUR',
        products: [{ product_id: 'tee-black', quantity: 2, price: 24, name: 'Black Tee' }],
      },
    });
    await analytics.closeAndFlush({ timeout: 20000 });

    assert.deepEqual(problems, [], `the client reported errors:\n${server.log()}`);
    assert.ok(statuses.length >= 1 && statuses.every((s) => s === 200),
      `answers: ${statuses.join(', ')}`);

    const rows = await query(
      `SELECT name, session_id, anonymous_id, coalesce(user_id, ''), properties::text,
              coalesce(context::text, '')
         FROM events WHERE store_id = :'store' ORDER BY name`,
      { store: store.storeId },
    );
    const events = rows.map(([name, sessionId, anon, user, properties, context]) => ({
      name, sessionId, anon, user, properties: JSON.parse(properties),
      context: context ? JSON.parse(context) : null,
    }));
    assert.deepEqual(events.map((e) => e.name), [
      'checkout.order.completed',
      'custom.segment.identify',
      'storefront.page.viewed',
      'storefront.product.viewed',
    ]);
    for (const e of events) {
      assert.equal(e.anon, anonymousId, e.name);
      assert.equal(e.sessionId, anonymousId, `${e.name}: one session, the visitor's`);
    }
    const byName = Object.fromEntries(events.map((e) => [e.name, e]));

    const page = byName['storefront.page.viewed'];
    assert.equal(page.context.page.path, '/collections/tees');
    assert.equal(page.context.page.title, 'Tees | Example Shop');
    assert.deepEqual(page.context.utm, { source: 'newsletter', campaign: 'fall' });

    assert.deepEqual(byName['storefront.product.viewed'].properties, {
      productId: 'tee-black', name: 'Black Tee', price: 24, currency: 'EUR', category: 'tees',
    });

    const order = byName['checkout.order.completed'];
    assert.equal(order.user, userId);
    assert.deepEqual(order.properties, {
      orderId, value: 48, currency: 'EUR', shipping: 4.9, tax: 7.66,
      items: [{ productId: 'tee-black', quantity: 2, price: 24, name: 'Black Tee' }],
    });

    const identify = byName['custom.segment.identify'];
    assert.equal(identify.user, userId);
    assert.deepEqual(identify.properties, {}, 'traits (personal data) are not stored');

    const [[rejected]] = await query(
      `SELECT count(*) FROM events_rejected WHERE store_id = :'store'`, { store: store.storeId });
    assert.equal(rejected, '0');
  });
});
