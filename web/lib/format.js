// Number formatting shared by the pages and components. Every figure the dashboard shows goes
// through here, so the browser test can read them back.
const cache = new Map();
function nf(key, opts) {
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat('en-US', opts));
  return cache.get(key);
}

/** format: currency | number | percent (a ratio 0..1, 2 decimals) | integer. */
export function formatValue(value, format = 'number', currency = 'EUR') {
  if (value === null || value === undefined || value === '' || Number.isNaN(Number(value))) return '—';
  const v = Number(value);
  switch (format) {
    case 'currency':
      return nf(`c:${currency}`, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v);
    case 'percent':
      return nf('p', { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v);
    case 'percent1':
      return nf('p1', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(v);
    case 'integer':
      return nf('i', { maximumFractionDigits: 0 }).format(v);
    default:
      return nf('n', { maximumFractionDigits: 2 }).format(v);
  }
}

/** A relative change (0.123 → "+12.3%"), "—" when there is no previous value. */
export function formatChange(change) {
  if (change === null || change === undefined || change === '' || Number.isNaN(Number(change))) return '—';
  const v = Number(change);
  const s = nf('ch', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(Math.abs(v));
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${s}`;
}

/** An RFC 3339 time as "2026-12-07 09:30:00 UTC"; "—" when there is none. */
export function formatTime(ts) {
  return ts ? String(ts).replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '—';
}

/** An API identifier in words: "ROLLED_BACK" → "ROLLED BACK", "profit_per_visitor" → "profit per visitor". */
export function humanize(s) {
  return String(s ?? '').replace(/_/g, ' ');
}

export function reducedMotion() {
  return window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}
