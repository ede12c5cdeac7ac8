// Zod schemas of the Profit Engine storefront events, served at /sdk/schema.mjs.
//
// They mirror the C definition (src/events/defs.c, include/pe/events.h) and validator
// (src/events/validate.c) exactly: the same names, required and optional properties, bounds,
// strict objects (an unknown key is refused), and the same verdict on every file of the shared
// corpus tests/corpus/events/{valid,invalid} (tests/browser/schema.test.mjs checks it).
//
// Invariants:
//  1. String bounds count bytes of UTF-8, as the server does (not UTF-16 code units).
//  2. Sizes ("custom: 4096 bytes", "event: 32768 bytes") are counted as cJSON prints the value
//     (cjsonSize below), so the byte limits agree with the server's to the byte.
//  3. Duplicate keys cannot be seen here (a parsed object holds one of them); the server refuses
//     them, so validate text with a parser that does too before calling these schemas.
//
// Usage: import { eventSchema, batchSchema } from './schema.mjs';
//        eventSchema.safeParse(event).success
import { z } from 'zod';

// ---- bounds (include/pe/events.h, src/events/defs.c, src/events/events_internal.h) ----------
export const LIMITS = Object.freeze({
  eventBytes: 32768, // PE_EVENT_MAX_BYTES
  idBytes: 64, // PE_EVENT_ID_MAX: sessionId, anonymousId, userId, storeId
  customKeys: 50, // PE_EVENT_CUSTOM_MAX_KEYS (all levels)
  customDepth: 3, // PE_EVENT_CUSTOM_MAX_DEPTH
  customBytes: 4096, // PE_EVENT_CUSTOM_MAX_BYTES
  items: 500, // PE_EVENT_MAX_ITEMS
  batchEvents: 500, // PE_EVENT_BATCH_MAX_EVENTS
  batchBytes: 512 * 1024, // PE_COLLECTOR_MAX_BODY
  money: 1e9, // MONEY_MAX
  quantity: 10000, // QUANTITY_MAX
  idLen: 128, // ID_LEN: productId, variantId, orderId, methods, flag keys
  labelLen: 256, // LABEL_LEN: product names, categories
  couponLen: 64,
  page: { url: 2048, path: 1024, referrer: 2048, title: 512 },
  utm: { source: 256, medium: 256, campaign: 256, term: 256, content: 256 },
  userAgent: 1024, // PE_EVENTS_USER_AGENT_MAX
  locale: 35, // PE_EVENTS_LOCALE_MAX
});

export const DEVICE_TYPES = ['desktop', 'mobile', 'tablet', 'other'];
export const CUSTOM_NAME = /^custom\.[a-z0-9_]{1,64}\.[a-z0-9_]{1,64}$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

// ---- helpers --------------------------------------------------------------------------------

/** Bytes of s in UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD). */
export function utf8Length(s) {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

// printf("%1.<p>g", d) for a finite, non-zero d.
function formatG(d, p) {
  const exp = Number(d.toExponential(p - 1).split('e')[1]);
  const strip = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= p) {
    const [mant, e] = d.toExponential(p - 1).split('e');
    const n = Math.abs(Number(e));
    return `${strip(mant)}e${e[0] === '-' ? '-' : '+'}${n < 10 ? '0' : ''}${n}`;
  }
  return strip(d.toFixed(p - 1 - exp));
}

function numberSize(d) {
  if (!Number.isFinite(d)) return 4; // null
  if (Number.isInteger(d) && d >= -2147483648 && d <= 2147483647) return String(d === 0 ? 0 : d).length;
  const g15 = formatG(d, 15);
  return (Number(g15) === d ? g15 : formatG(d, 17)).length;
}

function stringSize(s) {
  let n = 2;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === '\\' || ch === '\b' || ch === '\f' || ch === '\n' || ch === '\r' || ch === '\t') n += 2;
    else if (c < 0x20) n += 6;
    else n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** Bytes of v as cJSON_PrintUnformatted writes it (what the server counts). */
export function cjsonSize(v) {
  if (v === null) return 4;
  switch (typeof v) {
    case 'boolean':
      return v ? 4 : 5;
    case 'number':
      return numberSize(v);
    case 'string':
      return stringSize(v);
    case 'object': {
      if (Array.isArray(v)) return 2 + Math.max(0, v.length - 1) + v.reduce((n, x) => n + cjsonSize(x), 0);
      const keys = Object.keys(v);
      return 2 + Math.max(0, keys.length - 1) + keys.reduce((n, k) => n + stringSize(k) + 1 + cjsonSize(v[k]), 0);
    }
    default:
      return 4;
  }
}

function leapYear(y) {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** RFC 3339 exactly as pe_time_parse_rfc3339 accepts it (a real date, no leap second). */
export function isTimestamp(s) {
  const m = TIMESTAMP.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number);
  const days = [31, leapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] || h > 23 || mi > 59 || sec > 59) return false;
  return m[7] === undefined || (Number(m[7]) <= 23 && Number(m[8]) <= 59);
}

// ---- scalar schemas ---------------------------------------------------------------------------

/** A string of min..max bytes of UTF-8. */
const text = (max, min = 1) =>
  z.string().refine((s) => s.length >= min && utf8Length(s) <= max, {
    message: min ? `must be 1..${max} bytes` : `must be at most ${max} bytes`,
  });
const id = text(LIMITS.idBytes).refine((s) => !CONTROL.test(s), { message: 'must not contain control characters' });
const timestamp = z.string().refine(isTimestamp, { message: 'must be an RFC 3339 date-time with a time zone' });
const money = z.number().min(0).max(LIMITS.money);
const currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code');
const country = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code');
const quantity = (min) => z.number().int().min(min).max(LIMITS.quantity);

// A free object (custom, custom events' properties): JSON values only, at most 50 keys over all
// levels, 3 levels deep (the object itself is level 1), finite numbers, 4096 bytes serialised.
function checkFree(obj, ctx) {
  let keys = 0;
  const fail = (message) => {
    ctx.addIssue({ code: 'custom', message });
    return false;
  };
  const walk = (node, depth) => {
    const isArray = Array.isArray(node);
    for (const k of Object.keys(node)) {
      if (!isArray && ++keys > LIMITS.customKeys) return fail(`more than ${LIMITS.customKeys} keys (all levels)`);
      const v = node[k];
      if (v !== null && typeof v === 'object') {
        if (depth + 1 > LIMITS.customDepth) return fail(`nests deeper than ${LIMITS.customDepth} levels`);
        if (!walk(v, depth + 1)) return false;
      } else if (typeof v === 'number') {
        if (!Number.isFinite(v)) return fail('numbers must be finite');
      } else if (v !== null && typeof v !== 'string' && typeof v !== 'boolean') {
        return fail('holds a value that is not JSON');
      }
    }
    return true;
  };
  if (walk(obj, 1) && cjsonSize(obj) > LIMITS.customBytes) fail(`larger than ${LIMITS.customBytes} bytes serialised`);
}
export const freeObjectSchema = z.record(z.string(), z.unknown()).superRefine(checkFree);

// ---- context ------------------------------------------------------------------------------------

const textFields = (bounds) => Object.fromEntries(Object.entries(bounds).map(([k, max]) => [k, text(max, 0).optional()]));

export const contextSchema = z.strictObject({
  page: z.strictObject(textFields(LIMITS.page)).optional(),
  utm: z.strictObject(textFields(LIMITS.utm)).optional(),
  device: z.strictObject({ type: z.enum(DEVICE_TYPES) }).optional(),
  userAgent: text(LIMITS.userAgent, 0).optional(),
  locale: text(LIMITS.locale, 0).optional(),
});

// ---- properties of each event type (src/events/defs.c) -----------------------------------------

export const lineItemSchema = z.strictObject({
  productId: text(LIMITS.idLen),
  quantity: quantity(1),
  price: money,
  variantId: text(LIMITS.idLen).optional(),
  name: text(LIMITS.labelLen).optional(),
  category: text(LIMITS.labelLen).optional(),
});

export const propertySchemas = {
  'storefront.page.viewed': z.strictObject({}),
  'storefront.product.viewed': z.strictObject({
    productId: text(LIMITS.idLen),
    variantId: text(LIMITS.idLen).optional(),
    name: text(LIMITS.labelLen).optional(),
    category: text(LIMITS.labelLen).optional(),
    price: money.optional(),
    currency: currency.optional(),
  }),
  'storefront.cart.item_added': z.strictObject({
    productId: text(LIMITS.idLen),
    quantity: quantity(1),
    price: money,
    currency,
    variantId: text(LIMITS.idLen).optional(),
    name: text(LIMITS.labelLen).optional(),
    category: text(LIMITS.labelLen).optional(),
  }),
  'storefront.cart.viewed': z.strictObject({
    cartValue: money.optional(),
    currency: currency.optional(),
    itemCount: quantity(0).optional(),
  }),
  'checkout.session.started': z.strictObject({
    cartValue: money,
    currency,
    itemCount: quantity(0).optional(),
  }),
  'checkout.shipping.submitted': z.strictObject({
    shippingMethod: text(LIMITS.idLen),
    shippingCost: money.optional(),
    currency: currency.optional(),
    country: country.optional(),
  }),
  'checkout.payment.submitted': z.strictObject({
    paymentMethod: text(LIMITS.idLen),
  }),
  'checkout.order.completed': z.strictObject({
    orderId: text(LIMITS.idLen),
    value: money,
    currency,
    items: z.array(lineItemSchema).min(1).max(LIMITS.items),
    shipping: money.optional(),
    tax: money.optional(),
    discount: money.optional(),
    coupon: text(LIMITS.couponLen).optional(),
  }),
  'experiment.exposure.assigned': z.strictObject({
    flagKey: text(LIMITS.idLen),
    variant: text(LIMITS.idLen),
  }),
};

/** Funnel step of each event (PE_FUNNEL_…), for dashboards and tests. */
export const FUNNEL_STEPS = Object.freeze({
  'storefront.cart.item_added': 'cart',
  'storefront.cart.viewed': 'cart',
  'checkout.session.started': 'checkout',
  'checkout.shipping.submitted': 'shipping',
  'checkout.payment.submitted': 'payment',
  'checkout.order.completed': 'confirmation',
});

export const EVENT_NAMES = Object.freeze(Object.keys(propertySchemas));

// ---- events -----------------------------------------------------------------------------------

const common = {
  eventId: z.string().regex(UUID, 'must be a UUID (8-4-4-4-12 hex digits)'),
  timestamp,
  sentAt: timestamp.optional(),
  sessionId: id,
  anonymousId: id,
  userId: id.optional(),
  storeId: id.optional(),
  context: contextSchema.optional(),
  custom: freeObjectSchema.optional(),
};

// properties may be left out only when the type requires none (the server reads {} then).
const requiresNone = (schema) => schema.safeParse({}).success;

const knownEventSchemas = EVENT_NAMES.map((name) =>
  z.strictObject({
    ...common,
    name: z.literal(name),
    properties: requiresNone(propertySchemas[name]) ? propertySchemas[name].optional() : propertySchemas[name],
  }),
);

export const customEventSchema = z.strictObject({
  ...common,
  name: z.string().regex(CUSTOM_NAME, 'must be custom.<entity>.<action>'),
  properties: freeObjectSchema.optional(),
});

const checkEventSize = (ev, ctx) => {
  if (cjsonSize(ev) > LIMITS.eventBytes) {
    ctx.addIssue({ code: 'custom', message: `event: larger than ${LIMITS.eventBytes} bytes serialised` });
  }
};

/** One event: a defined event (discriminated by name) or custom.<entity>.<action>. */
export const eventSchema = z
  .union([z.discriminatedUnion('name', knownEventSchemas), customEventSchema])
  .superRefine(checkEventSize);

/**
 * The body of POST /v1/events: {"events":[…], "sentAt"?} and nothing else (the server refuses
 * other keys), at most 500 events and 512 KB. The server answers for each event; this schema
 * passes only a batch every event of which the server would accept.
 */
export const batchSchema = z
  .strictObject({
    events: z.array(eventSchema).max(LIMITS.batchEvents),
    sentAt: timestamp.optional(),
  })
  .superRefine((b, ctx) => {
    if (cjsonSize(b) > LIMITS.batchBytes) ctx.addIssue({ code: 'custom', message: `larger than ${LIMITS.batchBytes} bytes` });
  });
