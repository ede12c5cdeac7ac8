// The SDK's Zod schemas (web/sdk/schema.mjs) and the C validator give the same verdict: on every
// file of the shared corpus tests/corpus/events/{valid,invalid} (and that verdict is the folder's),
// and on generated edge cases at the exact bounds (bytes of UTF-8, serialised sizes with escapes,
// key counts, depths, numbers). The C side is `$PE_TEST_BINARY schema validate < file` (exit 0
// valid, 1 invalid, 2 not JSON); the Zod side reads the bytes as the server does
// (lib/sdk-cjson.mjs) before eventSchema.safeParse.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { batchSchema, cjsonSize, eventSchema } from '../../web/sdk/schema.mjs';
import { parseLikeServer } from './lib/sdk-cjson.mjs';

const CORPUS = new URL('../corpus/events/', import.meta.url);

/** The C verdict: { valid, code, message, exit }. */
function validateWithC(bytes) {
  const binary = process.env.PE_TEST_BINARY;
  if (!binary) throw new Error('PE_TEST_BINARY is not set');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['schema', 'validate'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('error', reject);
    child.on('close', (exit) => {
      if (exit !== 0 && exit !== 1 && exit !== 2) {
        reject(new Error(`schema validate exited ${exit}: ${out}${err}`));
        return;
      }
      let verdict;
      try {
        verdict = JSON.parse(out);
      } catch {
        reject(new Error(`schema validate printed no JSON verdict (exit ${exit}): ${out}${err}`));
        return;
      }
      if (verdict.valid !== (exit === 0)) reject(new Error(`exit ${exit} contradicts ${out}`));
      else resolve({ ...verdict, exit });
    });
    child.stdin.end(bytes);
  });
}

/** The Zod verdict on the same bytes: { valid, why }. */
function validateWithZod(bytes) {
  const parsed = parseLikeServer(bytes);
  if (!parsed.ok) return { valid: false, why: `not JSON to the server: ${parsed.reason}` };
  if (parsed.duplicateKeys) return { valid: false, why: 'a key given twice' };
  const r = eventSchema.safeParse(parsed.value);
  return r.success
    ? { valid: true, why: '' }
    : { valid: false, why: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
}

/** Runs f over items, at most `limit` at a time; resolves to the results in order. */
async function pool(items, limit, f) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function corpusFiles(kind) {
  const dir = new URL(`${kind}/`, CORPUS);
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => ({ name: f, url: new URL(f, dir) }));
}

describe('Zod and C agree on the shared corpus', () => {
  test('the corpus is there, with valid and invalid events', () => {
    assert.ok(existsSync(CORPUS), `${CORPUS.pathname} is missing`);
    assert.ok(corpusFiles('valid').length >= 9, 'at least one valid event per type');
    assert.ok(corpusFiles('invalid').length > 0);
  });

  for (const kind of ['valid', 'invalid']) {
    test(`every ${kind}/*.json is ${kind} to both`, async () => {
      const want = kind === 'valid';
      const verdicts = await pool(corpusFiles(kind), 4, async ({ name, url }) => {
        const bytes = readFileSync(url);
        return { name, c: await validateWithC(bytes), z: validateWithZod(bytes) };
      });
      const wrong = [];
      for (const { name, c, z } of verdicts) {
        if (c.valid !== want) wrong.push(`${kind}/${name}: C says ${c.valid ? 'valid' : `${c.code}: ${c.message}`}`);
        if (z.valid !== want) wrong.push(`${kind}/${name}: Zod says ${z.valid ? 'valid' : z.why}`);
      }
      assert.deepEqual(wrong, []);
    });
  }
});

// ---- generated edge cases: each pair sits on either side of one bound --------------------------

const base = () => ({
  eventId: '6f1c2b9e-4d3a-4e8f-9a7b-1c2d3e4f5a6b',
  name: 'checkout.order.completed',
  timestamp: '2026-11-24T10:00:00.123Z',
  sessionId: 'sess-1',
  anonymousId: 'anon-1',
  context: {
    page: { url: 'https://shop.example/checkout', path: '/checkout', referrer: '', title: 'Checkout' },
    utm: { source: 'news', campaign: 'nov' },
    device: { type: 'desktop' },
    userAgent: 'Mozilla/5.0',
    locale: 'fr-FR',
  },
  properties: { orderId: 'o-1', value: 10.5, currency: 'EUR', items: [{ productId: 'p', quantity: 1, price: 10.5 }] },
});

/** custom = { s: string } padded so that custom serialises to exactly n bytes with unit (an
 * escape or a multi-byte character of `unitBytes` serialised bytes) repeated. */
function customOfSize(n, unit, unitBytes) {
  const overhead = cjsonSize({ s: '' });
  const units = Math.floor((n - overhead) / unitBytes);
  const custom = { s: unit.repeat(units) + 'x'.repeat(n - overhead - units * unitBytes) };
  assert.equal(cjsonSize(custom), n);
  return custom;
}

const CASES = [];
const edge = (label, change) => {
  const e = base();
  change(e);
  CASES.push([label, Buffer.from(JSON.stringify(e))]);
};

edge('base', () => {});
for (const [unit, bytes] of [['x', 1], ['\n', 2], ['"', 2], ['\u0001', 6], ['é', 2], ['€', 3], ['😀', 4], ['\u007f', 1]]) {
  for (const n of [4095, 4096, 4097]) {
    edge(`custom of ${n} bytes made of ${JSON.stringify(unit)}`, (e) => { e.custom = customOfSize(n, unit, bytes); });
  }
}
for (const n of [32767, 32768, 32769]) {
  edge(`event of ${n} bytes`, (e) => {
    e.properties.items = Array.from({ length: 300 }, (_, i) => ({ productId: `p${i}`, quantity: 1, price: 1 }));
    e.context.page.url = 'u'.repeat(2048);
    e.context.page.referrer = 'r'.repeat(2048);
    e.context.userAgent = 'a'.repeat(1024);
    const rest = n - cjsonSize(e) - cjsonSize({ s: '' }) - ',"custom":'.length;
    e.custom = { s: 'x'.repeat(rest) };
    assert.equal(cjsonSize(e), n);
  });
}
for (const [label, value] of [['0.1', 0.1], ['1e21', 1e21], ['-2147483648', -2147483648], ['2147483648', 2147483648],
  ['1.5e-7', 1.5e-7], ['0.30000000000000004', 0.30000000000000004], ['123456789.123', 123456789.123],
  ['5e-324', 5e-324], ['1.7976931348623157e308', 1.7976931348623157e308], ['-0.000001', -0.000001]]) {
  // Numbers serialise differently in C (%1.15g, %1.17g) and JavaScript: the size must still agree
  // to the byte, so each number sits in a custom object filled to exactly the bound.
  for (const n of [4096, 4097]) {
    edge(`custom of ${n} bytes ending in the number ${label}`, (e) => {
      const pad = n - cjsonSize({ s: '', n: value });
      e.custom = { s: 'x'.repeat(pad), n: value };
    });
  }
}
const keys = (n, value = 1) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));
edge('custom with 50 keys', (e) => { e.custom = keys(50); });
edge('custom with 51 keys', (e) => { e.custom = keys(51); });
edge('custom with 50 keys over three levels', (e) => { e.custom = { a: { b: keys(48) } }; });
edge('custom with 51 keys over three levels', (e) => { e.custom = { a: { b: keys(49) } }; });
edge('array elements are not keys', (e) => { e.custom = { a: Array.from({ length: 80 }, (_, i) => i) }; });
edge('custom three levels deep', (e) => { e.custom = { a: { b: { c: 1 } } }; });
edge('custom four levels deep', (e) => { e.custom = { a: { b: { c: {} } } }; });
edge('custom four levels deep through arrays', (e) => { e.custom = { a: [[[]]] }; });
edge('custom event properties four levels deep', (e) => { e.name = 'custom.quiz.done'; e.properties = { a: [{ b: [] }] }; });
edge('custom event properties three levels deep', (e) => { e.name = 'custom.quiz.done'; e.properties = { a: [{ b: 1 }] }; });
for (const [field, max] of [['url', 2048], ['path', 1024], ['referrer', 2048], ['title', 512]]) {
  edge(`page.${field} of ${max} bytes (2-byte characters)`, (e) => { e.context.page[field] = 'é'.repeat(max / 2); });
  edge(`page.${field} of ${max + 1} bytes (2-byte characters)`, (e) => { e.context.page[field] = `${'é'.repeat(max / 2)}x`; });
}
for (const [field, max] of [['sessionId', 64], ['anonymousId', 64], ['userId', 64], ['storeId', 64]]) {
  edge(`${field} of ${max} bytes (4-byte characters)`, (e) => { e[field] = '😀'.repeat(max / 4); });
  edge(`${field} of ${max + 2} bytes (3-byte characters)`, (e) => { e[field] = '€'.repeat(22); });
  edge(`${field} with DEL`, (e) => { e[field] = 'a\u007fb'; });
}
edge('empty page strings', (e) => { e.context.page = { url: '', path: '', referrer: '', title: '' }; });
edge('empty orderId', (e) => { e.properties.orderId = ''; });
edge('line item name of 256 bytes', (e) => { e.properties.items[0].name = 'n'.repeat(256); });
edge('line item name of 257 bytes', (e) => { e.properties.items[0].name = 'n'.repeat(257); });
edge('500 line items', (e) => { e.properties.items = Array.from({ length: 500 }, () => ({ productId: 'p', quantity: 1, price: 0 })); });
edge('501 line items', (e) => { e.properties.items = Array.from({ length: 501 }, () => ({ productId: 'p', quantity: 1, price: 0 })); });
edge('value 1e9', (e) => { e.properties.value = 1e9; });
edge('value just above 1e9', (e) => { e.properties.value = 1000000000.0000001; });
edge('quantity 1.5', (e) => { e.properties.items[0].quantity = 1.5; });
edge('null userId', (e) => { e.userId = null; });
edge('array properties', (e) => { e.properties = []; });
edge('timestamp 29 February 1900', (e) => { e.timestamp = '1900-02-29T00:00:00Z'; });
edge('timestamp 29 February 2000', (e) => { e.timestamp = '2000-02-29T00:00:00Z'; });
edge('timestamp with offset +23:59', (e) => { e.timestamp = '2026-01-01T00:00:00+23:59'; });
edge('timestamp with offset +24:00', (e) => { e.timestamp = '2026-01-01T00:00:00+24:00'; });
edge('sentAt', (e) => { e.sentAt = '2026-11-24T10:00:01Z'; });
edge('sentAt without zone', (e) => { e.sentAt = '2026-11-24T10:00:01'; });
edge('a custom key "__proto__"', (e) => { e.custom = JSON.parse('{"__proto__": {"x": 1}}'); });
edge('unknown top-level "__proto__"', (e) => { Object.defineProperty(e, '__proto__', { value: 1, enumerable: true }); });

describe('Zod and C agree on generated edge cases', () => {
  test(`${CASES.length} cases, each on one side of a bound`, async () => {
    const verdicts = await pool(CASES, 4, async ([label, bytes]) => ({
      label, c: await validateWithC(bytes), z: validateWithZod(bytes),
    }));
    const wrong = [];
    let valid = 0;
    for (const { label, c, z } of verdicts) {
      if (c.valid) valid++;
      if (c.valid !== z.valid) {
        wrong.push(`${label}: C says ${c.valid ? 'valid' : `${c.code}: ${c.message}`}; Zod says ${z.valid ? 'valid' : z.why}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(valid > 10 && valid < CASES.length - 10, `both sides of the bounds are covered (${valid} valid)`);
  });
});

describe('batchSchema', () => {
  test('takes the POST /v1/events body the SDK sends', () => {
    const events = corpusFiles('valid').map(({ url }) => JSON.parse(readFileSync(url, 'utf8')));
    assert.ok(batchSchema.safeParse({ events, sentAt: '2026-11-24T10:00:00.000Z' }).success);
    assert.ok(batchSchema.safeParse({ events: [] }).success);
  });

  test('refuses a batch with an invalid event, more than 500 events, or a bad sentAt', () => {
    const event = JSON.parse(readFileSync(corpusFiles('valid')[0].url, 'utf8'));
    const invalid = JSON.parse(readFileSync(corpusFiles('invalid')[0].url, 'utf8'));
    assert.equal(batchSchema.safeParse({ events: [event, invalid] }).success, false);
    assert.equal(batchSchema.safeParse({ events: Array.from({ length: 501 }, () => event) }).success, false);
    assert.equal(batchSchema.safeParse({ events: [event], sentAt: 'yesterday' }).success, false);
    assert.equal(batchSchema.safeParse({ events: {} }).success, false);
    assert.equal(batchSchema.safeParse({ events: [event], writeKey: 'pk_x' }).success, false, 'unknown envelope key');
  });
});
