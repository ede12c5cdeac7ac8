// gzip batches from a real Segment-compatible server-side client: @rudderstack/rudder-sdk-node
// (from npm) compresses every batch by default — its constructor sets `this.gzip = true` unless
// `gzip: false` is passed, and flush() then posts `zlib.gzipSync(JSON.stringify(batch))` with
// `Content-Encoding: gzip` (axios labels that Buffer application/x-www-form-urlencoded) to
// `<dataPlaneUrl>/v1/batch`, the write key as the Basic-auth user. Pointed at profit-engine with
// nothing but its data plane URL changed, every event it sends must be stored, and /metrics must
// show that every batch arrived gzip-encoded (so the test cannot pass on uncompressed bodies).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Analytics from '@rudderstack/rudder-sdk-node';
import { closeDatabase, createStore, query } from './lib/sdk-env.mjs';
import { startServer, stopServer } from './lib/server.mjs';

/** Sum of the samples of one Prometheus counter whose labels include all of `labels`. */
async function counter(baseUrl, name, labels) {
  const res = await fetch(`${baseUrl}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const have = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(close + 1).trim());
    }
  }
  return sum;
}

describe('gzip batches from @rudderstack/rudder-sdk-node', () => {
  let server;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await closeDatabase();
    await stopServer(server);
  });

  test('every event of the client\'s default (gzip) batches is stored', async () => {
    const store = await createStore('RudderStack gzip test');
    const batchRoute = { method: 'POST', route: '/v1/batch' };
    const requestsBefore = await counter(server.baseUrl, 'pe_http_requests_total', batchRoute);
    const gzipBefore = await counter(server.baseUrl, 'pe_http_request_bodies_decoded_total',
      { ...batchRoute, encoding: 'gzip' });

    // The client's defaults (gzip on, flushAt 20, /v1/batch, Basic auth): only where to send.
    const analytics = new Analytics(store.publishableKey, {
      dataPlaneUrl: server.baseUrl,
      logLevel: 'error',
    });
    assert.equal(analytics.gzip, true, 'this client compresses by default');

    const anonymousId = randomUUID();
    const userId = `user-${randomUUID()}`;
    const orderId = `order-${randomUUID()}`;
    const sent = [];
    const call = (method, message) => {
      sent.push(new Promise((resolve) => {
        analytics[method](message, (err) => resolve(err ? String(err.message ?? err) : null));
      }));
    };
    call('page', {
      anonymousId,
      name: 'Tees',
      properties: { url: 'https://shop.example.com/collections/tees', path: '/collections/tees' },
    });
    const viewed = 44; // with flushAt 20: several batches, the last one partial
    for (let i = 0; i < viewed; i++) {
      call('track', {
        anonymousId,
        event: 'Product Viewed',
        properties: { product_id: `tee-${i}`, name: `Tee ${i}`, price: 20 + i, currency: 'EUR' },
      });
    }
    call('identify', { anonymousId, userId, traits: { plan: 'pro' } });
    call('track', {
      anonymousId,
      userId,
      event: 'Order Completed',
      properties: {
        order_id: orderId, revenue: 48, currency: 'EUR',
        products: [{ product_id: 'tee-1', quantity: 2, price: 24 }],
      },
    });

    // Every call's callback runs once its batch has been answered; flush() sends what is
    // queued below flushAt instead of waiting for the 10 s timer.
    let settled = false;
    const all = Promise.all(sent).finally(() => { settled = true; });
    const deadline = Date.now() + 60000;
    while (!settled && Date.now() < deadline) {
      await analytics.flush();
      await Promise.race([all, sleep(50)]);
    }
    assert.ok(settled, `not every batch was answered within 60 s:\n${server.log()}`);
    const errors = (await all).filter((e) => e !== null);
    assert.deepEqual(errors, [], `the client reported errors:\n${server.log()}`);

    const total = sent.length;
    const rows = await query(
      'SELECT name, count(*) AS n FROM events WHERE store_id = $1 GROUP BY name ORDER BY name',
      [store.storeId],
    );
    assert.deepEqual(Object.fromEntries(rows.map(({ name, n }) => [name, Number(n)])), {
      'checkout.order.completed': 1,
      'custom.segment.identify': 1,
      'storefront.page.viewed': 1,
      'storefront.product.viewed': viewed,
    }, `all ${total} events stored`);
    const [order] = await query(
      `SELECT user_id, properties->>'value' AS value FROM events
        WHERE store_id = $1 AND name = 'checkout.order.completed'`,
      [store.storeId],
    );
    assert.equal(order.user_id, userId);
    assert.equal(order.value, '48');
    const [{ n: rejected }] = await query(
      'SELECT count(*)::int AS n FROM events_rejected WHERE store_id = $1', [store.storeId]);
    assert.equal(rejected, 0);

    // Every request the client made to /v1/batch came gzip-encoded and was decoded.
    const requests = await counter(server.baseUrl, 'pe_http_requests_total', batchRoute)
      - requestsBefore;
    const gzipped = await counter(server.baseUrl, 'pe_http_request_bodies_decoded_total',
      { ...batchRoute, encoding: 'gzip' }) - gzipBefore;
    assert.ok(requests >= 2, `${requests} requests to /v1/batch for ${total} events`);
    assert.equal(gzipped, requests, 'every batch arrived Content-Encoding: gzip');
  });
});
