// Store Performance (story 8.4): a Bento grid of GET /api/v1/stores/{id}/metrics/overview —
// revenue today / this week / this month, orders, AOV and conversion rate over the range, the
// conversion-rate trend (uPlot, vendored), top products, new vs returning customers; every
// figure against its previous period. Skeletons while loading; an install guide when the store
// has no data yet, with its publishable key (created here when it has none, or when the merchant
// no longer has the one that was shown once).
import { api, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatValue } from '../lib/format.js';
import { lineChart } from '../lib/chart.js';
import { copyText, sdkSnippet } from '../lib/ui.js';

function card({ id, label, m, format, currency, period, cls = 'w2', invert = false }) {
  // No previous figure (a store younger than the period): no "vs —", no delta to compare.
  const attrs = !m ? 'loading'
    : m.previous === null || m.previous === undefined ? `value="${esc(m.value)}" change=""`
      : `value="${esc(m.value)}" previous="${esc(m.previous)}" change="${m.change ?? ''}" period="${esc(period)}"`;
  return `<pe-metric-card bare class="${cls}" data-metric="${esc(id)}" label="${esc(label)}" format="${format}" currency="${esc(currency)}" ${attrs}${invert ? ' invert' : ''}></pe-metric-card>`;
}

function skeleton(currency) {
  const cards = [['revenue.today', 'Revenue today'], ['revenue.week', 'Revenue this week'], ['revenue.month', 'Revenue this month'],
    ['orders.range', 'Orders'], ['aov.range', 'Average order value'], ['conversionRate.range', 'Conversion rate']];
  return `<div class="bento" aria-busy="true">${cards.map(([id, label]) => card({ id, label, format: 'number', currency })).join('')}
    <section class="panel w4"><h2>Conversion rate trend</h2><span class="skeleton"></span><span class="skeleton"></span><span class="skeleton"></span></section>
    <section class="panel w2"><h2>New vs returning customers</h2><span class="skeleton"></span><span class="skeleton"></span></section>
    <section class="panel w6"><h2>Top products</h2><span class="skeleton"></span><span class="skeleton"></span></section></div>`;
}

function isEmpty(o) {
  return (o.trend ?? []).every((d) => !d.sessions && !d.orders) && !o.revenue?.range?.value;
}

// ---- the install guide of a store without data -------------------------------------------------
// The server keeps only a key's first 10 characters, so the guide can show a full key only right
// after creating it (POST …/keys, with the session's X-CSRF-Token through api()). States:
//   none     no live publishable key      → "Create publishable key"
//   known    a live one, prefix only      → placeholder snippet naming the prefix + "Create a new key"
//   created  just created                 → the snippet with the key itself + "Copy snippet"
//   unknown  the key list could not be read → placeholder snippet

function installHtml({ state, live = null, created = null, error = null }) {
  const button = (label) => `<div class="row"><pe-brutal-button data-action="create-key">${esc(label)}</pe-brutal-button></div>
    <p class="risk" role="alert" data-key-error></p>`;
  switch (state) {
    case 'created':
      return `${sdkSnippet(created.key)}
        <div class="row"><pe-brutal-button data-action="copy-snippet">Copy snippet</pe-brutal-button><span class="muted" role="status" data-copy-status></span></div>
        <p><strong>This is the only time the full key is shown.</strong> Copy the snippet now: afterwards only its first characters
          (<span class="mono">${esc(created.prefix)}</span>) are kept.${live ? ` The earlier key (<span class="mono">${esc(live.prefix)}…</span>) keeps working until it is revoked.` : ''}</p>`;
    case 'known':
      return `${sdkSnippet('pk_…', `your publishable key, starting ${live.prefix}`)}
        <p>This store's publishable key starts with <span class="mono">${esc(live.prefix)}</span>. Only those first characters are kept, so the
          full key cannot be shown again: paste the key you saved, or create a new one — the old key keeps working until it is revoked.</p>
        ${button('Create a new key')}`;
    case 'none':
      return `${sdkSnippet('pk_…', 'create a publishable key below')}
        <p>This store has no publishable key that works. Create one to complete the snippet.</p>
        ${button('Create publishable key')}`;
    default:
      return `${sdkSnippet('pk_…', 'your publishable key')}
        <p class="muted">Cannot read the store's keys (${esc(error)}): paste the publishable key you saved.</p>`;
  }
}

function emptyState(store, install) {
  return `<section class="empty" data-empty>
    <h1>No data yet — install the storefront SDK</h1>
    <p>${esc(store.name)} has not received any events. Add these two tags to every page of your storefront; the first
      figures appear here within a minute of the first visit.</p>
    <div data-install data-key-state="${esc(install.state)}">${installHtml(install)}</div>
    <p class="muted">Store <span class="num">${esc(store.id)}</span>. The publishable key (<span class="num">pk_…</span>) only sends events and reads
      feature flags, so it is safe to ship to browsers. Never put the secret key (<span class="num">sk_…</span>) in a page.</p>
  </section>`;
}

/** The newest live publishable key of the list answer, or null. */
function livePublishable(list) {
  return (list?.keys ?? []).find((k) => k.kind === 'publishable' && !k.revokedAt) ?? null;
}

/** Renders the guide into body and wires its buttons; returns nothing (no timers to stop). */
async function renderEmpty(body, store) {
  let install;
  try {
    const live = livePublishable(await api('GET', storeUrl(store.id, 'keys')));
    install = live ? { state: 'known', live } : { state: 'none' };
  } catch (err) {
    install = { state: 'unknown', error: err.message };
  }
  if (!body.isConnected) return;
  body.innerHTML = emptyState(store, install);
  const box = body.querySelector('[data-install]');
  const show = (next) => {
    install = next;
    box.dataset.keyState = next.state;
    box.innerHTML = installHtml(next);
  };
  box.addEventListener('click', async (ev) => {
    const action = ev.target.closest?.('[data-action]');
    if (!action || action.hasAttribute('disabled')) return;
    if (action.dataset.action === 'create-key') {
      action.setAttribute('disabled', '');
      box.querySelector('[data-key-error]').textContent = '';
      try {
        const created = await api('POST', storeUrl(store.id, 'keys'), { kind: 'publishable' });
        if (box.isConnected) show({ state: 'created', created, live: install.live ?? null });
      } catch (err) {
        if (!box.isConnected) return;
        box.querySelector('[data-key-error]').textContent = `Cannot create a key: ${err.message}`;
        action.removeAttribute('disabled');
      }
    } else if (action.dataset.action === 'copy-snippet') {
      await copyText(box.querySelector('[data-snippet]'), box.querySelector('[data-copy-status]'));
    }
  });
}

function drawTrend(el, trend, today) {
  // Today is not over: its rate so far would read as a fall (at 01:00 it is often 0 %).
  trend = trend.filter((d) => d.date !== today);
  const xs = trend.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  const ys = trend.map((d) => (d.conversionRate ?? 0) * 100);
  return lineChart(el, xs, ys, { label: 'Conversion rate', yFormat: (x) => `${x.toFixed(1)}%` });
}

export async function render(view, { store }) {
  const cur = store.currency;
  view.innerHTML = `<div class="stack"><div class="row"><h1>Store performance</h1><span class="muted mono" id="perf-range"></span></div>
    <div id="perf-body">${skeleton(cur)}</div></div>`;
  let overview;
  try {
    overview = await api('GET', storeUrl(store.id, 'metrics/overview'));
  } catch (err) {
    view.querySelector('#perf-body').innerHTML = `<section class="panel"><h2 class="risk">Cannot load the metrics</h2><p>${esc(err.message)}</p></section>`;
    return null;
  }
  if (!view.isConnected) return null;
  const body = view.querySelector('#perf-body');
  view.querySelector('#perf-range').textContent = `${overview.from} → ${overview.to}`;
  if (isEmpty(overview)) { await renderEmpty(body, store); return null; }
  const o = overview;
  // Today, this week and this month are not over: the server compares them with the previous
  // period up to the same time of day (comparedUntil), so an early morning is no collapse.
  const until = o.comparedUntil;
  const sameTime = until ? ` until ${until}` : '';
  const range = `prev. ${(o.trend ?? []).length || 30} days${o.to === o.today ? sameTime : ''}`;
  const nw = o.customers?.new?.range ?? {};
  const ret = o.customers?.returning?.range ?? {};
  const total = (nw.value ?? 0) + (ret.value ?? 0);
  body.innerHTML = `<div class="bento">
    ${card({ id: 'revenue.today', label: `Revenue today${until ? ' so far' : ''}`, m: o.revenue.today, format: 'currency', currency: cur, period: `yesterday${sameTime}` })}
    ${card({ id: 'revenue.week', label: `Revenue this week${until ? ' so far' : ''}`, m: o.revenue.week, format: 'currency', currency: cur, period: until ? 'at the same point last week' : 'last week' })}
    ${card({ id: 'revenue.month', label: `Revenue this month${until ? ' so far' : ''}`, m: o.revenue.month, format: 'currency', currency: cur, period: until ? 'at the same point last month' : 'last month' })}
    ${card({ id: 'orders.range', label: 'Orders · 30 days', m: o.orders.range, format: 'integer', currency: cur, period: range })}
    ${card({ id: 'aov.range', label: 'Average order value · 30 days', m: o.aov.range, format: 'currency', currency: cur, period: range })}
    ${card({ id: 'conversionRate.range', label: 'Conversion rate · 30 days', m: o.conversionRate.range, format: 'percent', currency: cur, period: range })}
    <section class="panel w4" aria-label="Conversion rate trend"><h2>Conversion rate trend · daily, finished days</h2><div class="chart" id="trend"></div></section>
    <section class="panel w2" data-panel="customers"><h2>New vs returning customers · 30 days</h2>
      <div class="split" aria-hidden="true"><span class="new" data-w="${total ? (nw.value / total * 100).toFixed(2) : 0}"></span><span class="ret" data-w="${total ? (ret.value / total * 100).toFixed(2) : 0}"></span></div>
      <p class="legend"><span class="swatch new" aria-hidden="true"></span>New <span class="swatch ret" aria-hidden="true"></span>Returning</p>
      ${card({ id: 'customers.new.range', label: 'New customers', m: nw, format: 'integer', currency: cur, period: range, cls: '' }).replace('<pe-metric-card', '<pe-metric-card size="s"')}
      ${card({ id: 'customers.returning.range', label: 'Returning customers', m: ret, format: 'integer', currency: cur, period: range, cls: '' }).replace('<pe-metric-card', '<pe-metric-card size="s"')}
    </section>
    <section class="panel w6"><h2>Top products · 30 days</h2>
      <table id="top-products"><thead><tr><th>Product</th><th>Category</th><th class="num">Units</th><th class="num">Revenue</th></tr></thead>
      <tbody>${(o.topProducts ?? []).map((p) => `<tr data-product="${esc(p.productId)}"><td class="mono">${esc(p.productId)}</td><td>${esc(p.category ?? '—')}</td>
        <td class="num" data-field="units">${esc(formatValue(p.units, 'integer'))}</td><td class="num" data-field="revenue">${esc(formatValue(p.revenue, 'currency', cur))}</td></tr>`).join('')
        || '<tr><td colspan="4" class="muted">No product sold in this range.</td></tr>'}</tbody></table>
    </section></div>`;
  for (const s of body.querySelectorAll('.split > span')) s.style.width = `${s.dataset.w}%`;
  return drawTrend(body.querySelector('#trend'), o.trend ?? [], o.today);
}
