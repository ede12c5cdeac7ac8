// Attribution (story 8.15): what Autopilot has earned the store, from
// GET /api/v1/stores/{id}/attribution — the conservative attributed profit first and largest
// (the lower bound; the estimate beside it, smaller), attributed revenue, the experiments,
// everything Autopilot did measured against the store holdout with its interval, harm avoided,
// ROI (with the subscription cost form when it is not set: PUT …/settings), the cumulative
// weekly trend, the credited changes, and the method one click away (<details>). The range is
// ?from=&to= in the URL (default: the API's, the last 30 days).
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatChange, formatValue } from '../lib/format.js';
import { lineChart } from '../lib/chart.js';

const RANGES = [['30', 'Last 30 days'], ['90', 'Last 90 days'], ['365', 'Last 365 days']];

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

function skeleton() {
  const box = (cls, title) => `<section class="panel ${cls}"><h2>${esc(title)}</h2><span class="skeleton"></span><span class="skeleton"></span></section>`;
  return `<div class="bento" aria-busy="true">${box('w3', 'Attributed profit')}${box('w3', 'Attributed revenue')}
    ${box('w2', 'Experiments')}${box('w2', 'Against the holdout')}${box('w2', 'Harm avoided')}
    ${box('w6', 'Cumulative attributed profit · weekly')}</div>`;
}

/** "+12.3 % [−4.1 %, +28.0 %]" for a holdout comparison, or why there is none. */
function interval(m) {
  if (m?.effect === null || m?.effect === undefined) return '<span class="muted">not enough visitors yet</span>';
  return `<span class="num">${esc(formatChange(m.effect))}</span> <span class="num muted">[${esc(formatChange(m.ciLow))}, ${esc(formatChange(m.ciHigh))}]</span>`;
}

function roiPanel(a, cur) {
  const roi = a.roi ?? {};
  if (roi.value === null || roi.value === undefined) {
    return `<section class="panel w2" data-panel="roi"><h2>Return on the subscription</h2>
      <p class="muted">Set what Profit Engine costs you a month to see its return.</p>
      <form data-form="subscription" class="row" novalidate>
        <label class="muted">Per month (${esc(cur)}) <input name="cost" inputmode="decimal" size="8" required></label>
        <button class="btn" type="submit">Save</button>
      </form><p class="risk" role="alert" data-subscription-error></p></section>`;
  }
  return `<section class="panel w2" data-panel="roi"><h2>Return on the subscription</h2>
    <p class="num big" data-figure="roi">${esc(formatValue(roi.value, 'number'))}×</p>
    <p class="muted">attributed profit over <span class="num">${esc(formatValue(roi.subscriptionCost, 'currency', cur))}</span>
      of subscription (<span class="num">${esc(formatValue(roi.subscriptionCostPerMonth, 'currency', cur))}</span> a month)</p></section>`;
}

function page(a, cur) {
  const x = a.experiments;
  const h = a.holdout;
  const credited = a.attributed.changesets ?? [];
  const rows = credited.map((c) => `<tr data-changeset="${esc(c.id)}"><td class="mono">${esc(c.id)}</td><td>${esc(c.step ?? '—')}</td>
      <td><pe-status-badge status="${esc(c.status)}"></pe-status-badge></td>
      <td class="num">${esc(formatValue(c.treatedUnits, 'integer'))}</td>
      <td class="num" data-field="lowerBound">${esc(formatValue(c.profit.lowerBound, 'currency', cur))}</td>
      <td class="num muted">${esc(formatValue(c.profit.estimate, 'currency', cur))}</td>
      <td class="muted">${c.measuredBy === 'controlGroup' ? 'its control group, to date' : 'its proof'}</td></tr>`).join('');
  return `<div class="bento">
    <section class="panel w3" data-panel="profit"><h2>Attributed profit</h2>
      <p class="num huge" data-figure="profit">${esc(formatValue(a.attributed.profit.lowerBound, 'currency', cur))}</p>
      <p class="muted">at least, measured · estimate <span class="num" data-figure="profit-estimate">${esc(formatValue(a.attributed.profit.estimate, 'currency', cur))}</span>
        ${a.attributed.cappedByHoldout ? ' · held to what the holdout supports' : ''}</p>
      ${a.attributed.reason ? `<p data-reason>${esc(a.attributed.reason)}</p>` : ''}</section>
    <section class="panel w3" data-panel="revenue"><h2>Attributed revenue</h2>
      <p class="num big" data-figure="revenue">${esc(formatValue(a.attributed.revenue.lowerBound, 'currency', cur))}</p>
      <p class="muted">at least · estimate <span class="num">${esc(formatValue(a.attributed.revenue.estimate, 'currency', cur))}</span></p></section>
    <section class="panel w2" data-panel="experiments"><h2>Experiments</h2>
      <div class="kv"><span>Proven and live</span><span></span><span class="num" data-figure="proven">${esc(formatValue(x.proven + x.permanent, 'integer'))}</span>
        <span>Measuring</span><span></span><span class="num">${esc(formatValue(x.running, 'integer'))}</span>
        <span>Rolled back automatically</span><span></span><span class="num">${esc(formatValue(x.rolledBackAutomatically, 'integer'))}</span>
        <span>Rolled back by you</span><span></span><span class="num">${esc(formatValue(x.rolledBackManually, 'integer'))}</span>
        <span>Run in this period</span><span></span><span class="num">${esc(formatValue(x.run, 'integer'))}</span></div></section>
    <section class="panel w2" data-panel="holdout"><h2>Everything Autopilot did, against the holdout</h2>
      <div class="kv"><span>Profit per visitor</span><span></span><span data-figure="holdout-ppv">${interval(h.profitPerVisitor)}</span>
        <span>Revenue per visitor</span><span></span><span>${interval(h.revenuePerVisitor)}</span>
        <span>Conversion rate</span><span></span><span>${interval(h.conversionRate)}</span></div>
      <p class="muted"><span class="num">${esc(formatValue(h.units, 'integer'))}</span> holdout visitors against
        <span class="num">${esc(formatValue(h.exposedUnits, 'integer'))}</span> exposed; 95 % intervals.</p></section>
    <section class="panel w2" data-panel="harm"><h2>Harm avoided · estimate</h2>
      <p class="num big" data-figure="harm">${esc(formatValue(a.harmAvoided.profit, 'currency', cur))}</p>
      <p class="muted">profit, from <span class="num">${esc(formatValue(a.harmAvoided.rollbacks, 'integer'))}</span> automatic
        rollbacks: the smallest loss a day each was measured to cause × the days its test had left</p></section>
    ${roiPanel(a, cur)}
    <section class="panel w4" aria-label="Cumulative attributed profit"><h2>Cumulative attributed profit · weekly</h2><div class="chart" id="att-trend"></div></section>
    <section class="panel w6" data-panel="credited"><h2>Credited changes</h2>
      <div class="scroll-x"><table><thead><tr><th>ChangeSet</th><th>Step</th><th>Status</th><th class="num">Visitors served</th>
        <th class="num">Credited</th><th class="num">Estimate</th><th>Measured by</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="7" class="muted">No change is credited in this period: approve a recommendation and let its experiment prove it.</td></tr>'}</tbody></table></div></section>
    <section class="panel w6"><details data-method><summary>How this is measured</summary><p>${esc(a.method)}</p></details></section>
  </div>`;
}

export async function render(view, { store, params, navigate }) {
  const cur = store.currency;
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';
  view.innerHTML = `<div class="stack"><div class="row"><h1>What Autopilot has earned</h1><span class="muted mono" id="att-range"></span></div>
    <nav class="row" aria-label="Range">${RANGES.map(([days, label]) => `<a class="btn" data-link data-days="${days}" href="#">${esc(label)}</a>`).join('')}</nav>
    <div id="att-body">${skeleton()}</div></div>`;
  for (const a of view.querySelectorAll('[data-days]')) {
    const end = new Date();
    const start = new Date(end.getTime() - (Number(a.dataset.days) - 1) * 86400000);
    a.href = `/attribution?store=${encodeURIComponent(store.id)}&from=${isoDay(start)}&to=${isoDay(end)}`;
  }
  const body = view.querySelector('#att-body');
  let a;
  try {
    a = await api('GET', storeUrl(store.id, 'attribution', { from, to }));
  } catch (err) {
    body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the attribution</h2><p>${esc(err.message)}</p></section>`;
    return null;
  }
  if (!view.isConnected) return null;
  view.querySelector('#att-range').textContent = `${a.from} → ${a.to}`;
  body.innerHTML = page(a, cur);
  const form = body.querySelector('[data-form="subscription"]');
  form?.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const raw = String(new FormData(form).get('cost') ?? '').trim().replace(',', '.');
    const out = body.querySelector('[data-subscription-error]');
    // the API's own rule (PUT …/settings), checked here first so a typo costs no round trip
    if (!/^\d{1,10}(\.\d{1,2})?$/.test(raw) || Number(raw) > 1e9) {
      out.textContent = 'subscriptionCostPerMonth: must be 0 … 1000000000 in the store\'s currency, with at most two decimals (to the cent)';
      return;
    }
    try {
      await api('PUT', storeUrl(store.id, 'settings'), { subscriptionCostPerMonth: Number(raw) });
      navigate(location.pathname + location.search);
    } catch (err) {
      out.textContent = err instanceof ApiError ? err.message : 'Cannot save the subscription cost';
    }
  });
  const weekly = a.weekly ?? [];
  return lineChart(body.querySelector('#att-trend'), weekly.map((w) => Date.parse(`${w.week}T00:00:00Z`) / 1000),
    weekly.map((w) => w.cumulativeProfit ?? 0), { label: 'Cumulative attributed profit', yFormat: (v) => formatValue(v, 'integer'), ySize: 64 });
}
