// What the SDK and demo browser tests share: a fresh store (and its publishable key) from the
// binary under test, reads of what PostgreSQL holds for it (one pg connection on
// PE_DATABASE_URL, opened on first use; closeDatabase() ends it), and their after().
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { stopServer } from './server.mjs';

const run = promisify(execFile);

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (scripts/dev test sets it)`);
  return v;
}

/** Creates a store; resolves to { storeId, publishableKey, secretKey }. */
export async function createStore(name) {
  const { stdout } = await run(env('PE_TEST_BINARY'), ['store', 'create', '--name', name], {
    env: { ...process.env, PE_LOG_LEVEL: 'warn' },
  });
  const store = JSON.parse(stdout);
  if (!/^pk_/.test(store.publishableKey ?? '')) throw new Error(`store create printed no pk: ${stdout}`);
  return store;
}

let client = null;

/** Runs one parameterised statement ($1, $2, …); resolves to the rows. */
export async function query(sql, params = []) {
  if (!client) {
    const c = new pg.Client({ connectionString: env('PE_DATABASE_URL') });
    await c.connect();
    client = c;
  }
  return (await client.query(sql, params)).rows;
}

/** Closes the connection query() opened (call from after()). */
export async function closeDatabase() {
  const c = client;
  client = null;
  await c?.end();
}

/**
 * What such a test closes in its after(), in this order: its chromium (sharedBrowser), the
 * database connection, its storefront (startStorefront) and the server, whose exit status must
 * be 0 (stopServer). Each may be missing: a before() that failed part way.
 */
export async function closeAll({ chrome, storefront, server } = {}) {
  await chrome?.close();
  await closeDatabase();
  await storefront?.close();
  await stopServer(server);
}

/** The events stored for a store, in the order the client recorded them. */
export async function storedEvents(storeId) {
  const rows = await query(
    `SELECT name, session_id, anonymous_id, event_id::text, coalesce(user_id, '') AS user_id,
            properties, context, custom
       FROM events WHERE store_id = $1 ORDER BY client_ts, received_at`,
    [storeId],
  );
  return rows.map((r) => ({
    name: r.name, sessionId: r.session_id, anonymousId: r.anonymous_id, eventId: r.event_id,
    userId: r.user_id, properties: r.properties, context: r.context, custom: r.custom,
  }));
}

/** Dead letters of a store (what the collector refused). */
export async function rejectedEvents(storeId) {
  return query(
    'SELECT code, message FROM events_rejected WHERE store_id = $1 ORDER BY received_at, id',
    [storeId],
  );
}

/**
 * Polls storedEvents until done(events) is true; resolves to the events. On timeout throws with
 * what was stored last, so a failing test shows the difference.
 */
export async function waitForEvents(storeId, done, { timeoutMs = 15000, what = 'events' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let events = [];
  for (;;) {
    events = await storedEvents(storeId);
    if (done(events)) return events;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; stored: ${JSON.stringify(events.map((e) => e.name))}`);
    }
    await sleep(200);
  }
}

/** Waits until at least n events are stored, then a little longer to catch extra ones. */
export async function settle(storeId, n, opts = {}) {
  await waitForEvents(storeId, (e) => e.length >= n, { what: `${n} events`, ...opts });
  await sleep(opts.quietMs ?? 1000);
  return storedEvents(storeId);
}
