// Experiment results (stories 8.10, 8.12): what each Autopilot experiment has measured, as
// GET /api/v1/stores/{id}/changesets/{cid}/results computes it.
//   List (/experiments): the ChangeSets that ran or run as experiments (ACTIVE, MEASURING,
//     PROVEN, ROLLED_BACK, PERMANENT), newest first, each linking to its results.
//   Results (/experiments?cs=<id>): the verdict (WINNER, LOSER, INCONCLUSIVE, or RUNNING while
//     live) with the decision's own sentence; the primary metric's uplift with its interval; the
//     ConfidenceMeter — a bar with the percentage 1 − the always-valid p of the primary metric
//     (the sequential test the decision uses, valid at every look) against the plan's
//     significance; per-variant figures; the revenue and profit effects per visitor with their
//     intervals and, once proven, the measured profit a month; the comparison of the two
//     variants over time (uPlot, no animation) from the measure job's looks; when the minimum
//     runtime ends and how many units each arm still needs; a sample-ratio-mismatch warning.
import { api, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatChange, formatTime, formatValue, humanize } from '../lib/format.js';
import { linesChart } from '../lib/chart.js';

const EXPERIMENT_STATES = new Set(['ACTIVE', 'MEASURING', 'PROVEN', 'ROLLED_BACK', 'PERMANENT']);
const SRM_ALPHA = 0.001; // decide.c rule 1

/** WINNER | LOSER | INCONCLUSIVE | RUNNING, from the ChangeSet's state and the decision. */
function verdictOf(status, action) {
  if (status === 'PROVEN' || status === 'PERMANENT') return 'WINNER';
  if (status === 'ROLLED_BACK') return action === 'ROLLBACK' || action === 'ROLLBACK_LOSER' ? 'LOSER' : 'INCONCLUSIVE';
  if (action === 'PROVE') return 'WINNER';
  if (action === 'ROLLBACK' || action === 'ROLLBACK_LOSER') return 'LOSER';
  if (action === 'ROLLBACK_INCONCLUSIVE') return 'INCONCLUSIVE';
  return 'RUNNING';
}
const VERDICT_CLASS = { WINNER: 'success', LOSER: 'risk', INCONCLUSIVE: 'muted', RUNNING: 'info' };

function interval(e) {
  if (!e) return '—';
  return `${formatChange(e.effect)} [${formatChange(e.ciLow)}, ${formatChange(e.ciHigh)}]`;
}

function meter(p, significance) {
  const confidence = p === null || p === undefined ? null : Math.min(1, Math.max(0, 1 - p));
  const target = 1 - (significance ?? 0.05);
  const pct = confidence === null ? 0 : confidence * 100;
  return `<div class="meter" data-field="confidence" data-value="${confidence ?? ''}" role="meter" aria-valuemin="0" aria-valuemax="100"
      aria-valuenow="${pct.toFixed(1)}" aria-label="Confidence">
    <div class="meter-bar"><span class="meter-fill${confidence !== null && confidence >= target ? ' met' : ''}" data-w="${pct.toFixed(2)}"></span>
      <span class="meter-target" data-l="${(target * 100).toFixed(2)}" title="needed: ${esc(formatValue(target, 'percent1'))}"></span></div>
    <span class="num">${esc(confidence === null ? '—' : formatValue(confidence, 'percent1'))}</span>
    <span class="muted">confidence · ${esc(formatValue(target, 'percent1'))} needed</span></div>`;
}

function variantsTable(variants, cur) {
  const rows = variants.map((v) => `<tr data-variant="${esc(v.variant)}"><td class="mono">${esc(v.variant)}</td>
      <td class="num" data-field="units">${esc(formatValue(v.units, 'integer'))}</td>
      <td class="num" data-field="step">${esc(formatValue(v.step?.rate, 'percent'))}</td>
      <td class="num" data-field="conversion">${esc(formatValue(v.conversionRate, 'percent'))}</td>
      <td class="num">${esc(formatValue(v.orders, 'integer'))}</td>
      <td class="num" data-field="revenue">${esc(formatValue(v.revenue, 'currency', cur))}</td>
      <td class="num" data-field="profit">${esc(formatValue(v.profit, 'currency', cur))}</td>
      <td class="num">${esc(formatValue(v.revenuePerVisitor, 'currency', cur))}</td>
      <td class="num">${esc(formatValue(v.profitPerVisitor, 'currency', cur))}</td></tr>`).join('');
  const step = variants[0]?.step?.name ?? 'step';
  return `<div class="scroll-x"><table data-table="variants"><thead><tr><th>Variant</th><th class="num">Units</th><th class="num">${esc(step)} conversion</th>
    <th class="num">Conversion</th><th class="num">Orders</th><th class="num">Revenue</th><th class="num">Gross profit</th>
    <th class="num">Revenue / visitor</th><th class="num">Profit / visitor</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function effectsTable(effects) {
  const rows = effects.map((e) => `<tr data-effect="${esc(e.metric)}"><td>${esc(humanize(e.metric))}</td>
      <td class="num" data-field="effect">${esc(interval(e))}</td>
      <td class="num">${esc(formatValue(e.pValue, 'number'))}</td><td class="num">${esc(formatValue(e.alwaysValidP, 'number'))}</td></tr>`).join('');
  return `<div class="scroll-x"><table data-table="effects"><thead><tr><th>Treatment against control</th><th class="num">Effect [95 % interval]</th>
    <th class="num">p</th><th class="num">Always-valid p</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function results(r, cs, cur) {
  const verdict = verdictOf(r.status, r.decision?.action);
  const primary = (r.effects ?? []).find((e) => e.metric === r.primaryMetric) ?? r.decision?.evidence;
  const significance = cs.proofPlan?.significanceThreshold;
  const srm = r.srmPValue !== null && r.srmPValue !== undefined && r.srmPValue < SRM_ALPHA;
  const impact = cs.execution?.proofResult?.impactPerMonth;
  const live = r.status === 'ACTIVE' || r.status === 'MEASURING';
  return `<div class="stack results" data-cs="${esc(r.changesetId)}" data-verdict="${esc(verdict)}">
    <p><a href="/experiments?store=${encodeURIComponent(cs.storeId)}" data-link>← Every experiment</a> ·
      <a href="/autopilot?store=${encodeURIComponent(cs.storeId)}&cs=${encodeURIComponent(r.changesetId)}" data-link>The ChangeSet</a></p>
    ${srm ? `<section class="panel alert-panel" data-field="srm" role="alert"><h2 class="risk">SAMPLE RATIO MISMATCH</h2>
      <p>The variants did not get the split the flag asks for (χ² p = ${esc(formatValue(r.srmPValue, 'number'))}): something assigns or counts
      visitors unevenly, so no automatic decision is taken on these figures until it is found.</p></section>` : ''}
    <section class="panel verdict"><header class="rec-head"><span class="verdict-word ${VERDICT_CLASS[verdict]}" data-field="verdict">${esc(verdict)}</span>
      <h1>${esc(cs.hypothesis?.problem ?? r.changesetId)}</h1><pe-status-badge status="${esc(r.status)}"></pe-status-badge></header>
      <p data-field="reason">${esc(r.decision?.reason ?? '')}</p>
      <div class="rec-grid">
        <section><h3>Uplift · ${esc(humanize(r.primaryMetric))}</h3><p class="big num" data-field="uplift">${esc(formatChange(primary?.effect))}</p>
          <p class="num muted" data-field="interval">95 % interval ${esc(formatChange(primary?.ciLow))} … ${esc(formatChange(primary?.ciHigh))}</p></section>
        <section><h3>Confidence</h3>${meter(primary?.alwaysValidP, significance)}</section>
        <section><h3>Runtime</h3><div class="pairs">
          <div class="pair"><span>Running for</span><span class="num" data-field="runtime">${esc(formatValue(r.runtimeDays, 'number'))} days</span></div>
          <div class="pair"><span>Minimum runtime ends</span><span class="num" data-field="minimumRuntime">${esc(formatTime(r.minimumRuntimeEndsAt))}</span></div>
          <div class="pair"><span>Units still needed per arm</span><span class="num" data-field="unitsNeeded">${esc(formatValue(r.unitsNeededPerArm, 'integer'))}</span></div></div></section>
        <section><h3>Profit</h3><div class="pairs">
          <div class="pair"><span>Profit / visitor</span><span class="num" data-field="profitEffect">${esc(interval((r.effects ?? []).find((e) => e.metric === 'profit_per_visitor')))}</span></div>
          <div class="pair"><span>Revenue / visitor</span><span class="num" data-field="revenueEffect">${esc(interval((r.effects ?? []).find((e) => e.metric === 'revenue_per_visitor')))}</span></div>
          ${impact ? `<div class="pair"><span>Measured profit a month</span><span class="num success" data-field="impact">${esc(formatValue(impact.profitLowerBound, 'currency', cur))} at least</span></div>` : ''}</div>
          ${live ? '' : `<p class="muted">Ended: ${esc(humanize(r.status))}.</p>`}</section>
      </div></section>
    <section class="panel"><h2>Variants</h2>${variantsTable(r.variants ?? [], cur)}
      ${(r.variants ?? []).some((v) => v.costKnownShare !== null && v.costKnownShare < 1) ? '<p class="muted">Where the catalogue has no cost for a product, its cost is taken as 70 % of its price.</p>' : ''}</section>
    <section class="panel"><h2>Effects</h2>${effectsTable(r.effects ?? [])}</section>
    <section class="panel" data-panel="series"><h2>Over time · ${esc(humanize(r.variants?.[0]?.step?.name ?? 'step'))} conversion by variant</h2>
      ${(r.series ?? []).length ? '<div class="chart" id="exp-chart"></div>' : '<p class="muted" data-empty>No measurement yet: the measure job looks every few minutes while the experiment runs.</p>'}</section>
  </div>`;
}

function listPage(items, storeId) {
  if (!items.length) {
    return `<section class="empty" data-empty><h2>No experiment yet</h2><p>An approved recommendation runs as an experiment:
      see <a href="/recommendations?store=${encodeURIComponent(storeId)}" data-link>Recommendations</a>.</p></section>`;
  }
  return `<div class="scroll-x"><table data-table="experiments"><thead><tr><th>Experiment</th><th>Status</th><th>Started</th><th></th></tr></thead><tbody>
    ${items.map((cs) => `<tr data-cs="${esc(cs.id)}"><td>${esc(cs.problem ?? cs.id)}</td><td><pe-status-badge status="${esc(cs.status)}"></pe-status-badge></td>
      <td class="mono">${esc(formatTime(cs.createdAt))}</td>
      <td><a href="/experiments?store=${encodeURIComponent(storeId)}&cs=${encodeURIComponent(cs.id)}" data-link>Results</a></td></tr>`).join('')}</tbody></table></div>`;
}

export async function render(view, { store, params }) {
  const cur = store.currency;
  const csId = params.get('cs');
  view.innerHTML = `<div class="stack"><h1>Experiment results</h1><div id="exp-body" aria-busy="true">
    <section class="panel"><span class="skeleton"></span><span class="skeleton"></span><span class="skeleton"></span></section></div></div>`;
  const body = view.querySelector('#exp-body');
  try {
    if (!csId) {
      const list = (await api('GET', storeUrl(store.id, 'changesets', { limit: 100 }))).changesets ?? [];
      if (!view.isConnected) return null;
      body.innerHTML = listPage(list.filter((cs) => EXPERIMENT_STATES.has(cs.status)), store.id);
      body.removeAttribute('aria-busy'); // loaded: assistive technology may read it now
      return null;
    }
    const [r, cs] = await Promise.all([
      api('GET', storeUrl(store.id, `changesets/${encodeURIComponent(csId)}/results`)),
      api('GET', storeUrl(store.id, `changesets/${encodeURIComponent(csId)}`)),
    ]);
    if (!view.isConnected) return null;
    body.innerHTML = results(r, cs, cur);
    body.removeAttribute('aria-busy');
    for (const s of body.querySelectorAll('.meter-fill')) s.style.width = `${s.dataset.w}%`;
    for (const s of body.querySelectorAll('.meter-target')) s.style.left = `${s.dataset.l}%`;
    const chart = body.querySelector('#exp-chart');
    if (!chart) return null;
    const series = r.series;
    const rate = (p, v) => {
      const x = p.variants?.[v];
      const y = x?.stepRate ?? x?.conversionRate;
      return y === null || y === undefined ? null : y * 100;
    };
    return linesChart(chart, series.map((p) => Date.parse(p.at) / 1000), [
      { label: 'control', ys: series.map((p) => rate(p, 'control')), stroke: '#ffffff' },
      { label: 'treatment', ys: series.map((p) => rate(p, 'treatment')), stroke: '#ccff00' },
    ], { yFormat: (x) => `${x.toFixed(1)}%` });
  } catch (err) {
    body.removeAttribute('aria-busy');
    body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the results</h2><p>${esc(err.message)}</p></section>`;
    return null;
  }
}
