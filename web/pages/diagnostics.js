// Diagnostics (story 8.6): the funnel doctor's latest findings (GET /api/v1/stores/{id}/findings),
// ranked as the doctor ranks them — each with its numbers in JetBrains Mono (the step's rate
// against its reference, the sessions, q, what it costs a month), its explanation and evidence,
// and links to the funnel at its step (filtered to its segment where the funnel can filter) and
// to the recommendation that answers it (GET …/recommendations: open, or approved and live as an
// experiment), else to the recommendations. "Run the doctor now" is POST …/diagnostics/runs (the default window:
// the last 28 complete days). A finding is addressable as #finding-<id>.
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatValue } from '../lib/format.js';
import { evidenceTable, scrollToHash, segmentText } from '../lib/ui.js';

const KINDS = {
  segment_gap: 'SEGMENT GAP',
  change_point: 'CHANGE POINT',
  benchmark_gap: 'BENCHMARK GAP',
  baseline_shift: 'BASELINE SHIFT',
};
const FUNNEL_FILTERS = ['device', 'country', 'source']; // what /funnel can filter by

/** /funnel at the finding's step, over its window, filtered to what of its segment the funnel can. */
function funnelHref(store, run, f) {
  const q = new URLSearchParams({ store: store.id, from: run.from, to: run.to, step: f.step });
  for (const k of FUNNEL_FILTERS) if (f.segment?.[k]) q.set(k, f.segment[k]);
  return `/funnel?${q}`;
}

function qText(q) {
  if (q === null || q === undefined) return '—';
  return q < 0.001 ? '< 0.001' : formatValue(q, 'number');
}

const REC_STATES = {
  active: 'WAITING FOR YOU', blocked: 'BLOCKED BY A GUARDRAIL', queued: 'NEXT IN LINE', approved: 'LIVE EXPERIMENT',
};

/** The link to rec, the recommendation that answers a finding, or to the page of them. */
function recommendationLink(store, rec) {
  const q = `store=${encodeURIComponent(store.id)}`;
  if (!rec) return `<a class="btn ghost" data-link href="/recommendations?${q}">Recommendations</a>`;
  const href = rec.status === 'approved'
    ? `/experiments?${q}&cs=${encodeURIComponent(rec.changesetId)}`
    : `/recommendations?${q}#recommendation-${encodeURIComponent(rec.id)}`;
  return `<a class="btn" data-link data-go="recommendation" data-rec="${esc(rec.id)}" href="${esc(href)}">Its recommendation · ${esc(REC_STATES[rec.status] ?? rec.status.toUpperCase())}</a>`;
}

function finding(store, run, f, cur, rec) {
  const ev = evidenceTable(f.evidence);
  return `<article class="panel finding" id="finding-${esc(f.id)}" data-finding="${esc(f.id)}" data-kind="${esc(f.kind)}">
    <header class="rec-head"><span class="mono muted">#${esc(formatValue(f.rank, 'integer'))}</span>
      <h2>${esc(f.title)}</h2><span class="alert">${esc(KINDS[f.kind] ?? String(f.kind).toUpperCase())}</span></header>
    <div class="rec-grid">
      <section><h3>Where</h3><div class="pairs">
        <div class="pair"><span>Step</span><span class="mono">${esc(f.step)}</span></div>
        <div class="pair"><span>Who</span><span>${esc(segmentText(f.segment))}</span></div>
        <div class="pair"><span>Sessions</span><span class="num" data-field="sessions">${esc(formatValue(f.sessions, 'integer'))}</span></div>
        ${f.since ? `<div class="pair"><span>Since</span><span class="num">${esc(f.since)}</span></div>` : ''}</div></section>
      <section><h3>How bad</h3><div class="pairs">
        <div class="pair"><span>Step conversion</span><span class="num risk" data-field="rate">${esc(formatValue(f.rate, 'percent1'))}</span></div>
        <div class="pair"><span>Against</span><span class="num" data-field="reference">${esc(formatValue(f.referenceRate, 'percent1'))}</span></div>
        <div class="pair"><span>q (false discovery)</span><span class="num" data-field="q">${esc(qText(f.qValue))}</span></div></div></section>
      <section><h3>What it costs · a month</h3><div class="pairs">
        <div class="pair"><span>Orders</span><span class="num" data-field="lostOrders">${esc(formatValue(f.lostOrdersPerMonth, 'number'))}</span></div>
        <div class="pair"><span>Revenue</span><span class="num" data-field="lostRevenue">${esc(formatValue(f.lostRevenuePerMonth, 'currency', cur))}</span></div>
        <div class="pair"><span>Gross profit</span><span class="num risk" data-field="lostProfit">${esc(formatValue(f.lostProfitPerMonth, 'currency', cur))}</span></div></div></section>
      <section><h3>Why we think so</h3><p>${esc(f.explanation ?? '')}</p>
        ${f.explainedBy ? '<p class="muted">Mostly explained by a finding ranked before it: its recommendation answers both.</p>' : ''}</section>
    </div>
    ${ev}
    <div class="row actions"><a class="btn ghost" data-link data-go="funnel" href="${esc(funnelHref(store, run, f))}">Open the funnel at ${esc(f.step)}</a>
      ${recommendationLink(store, rec)}</div>
  </article>`;
}

function page(store, run, cur, recs) {
  // a finding's recommendation: the one waiting for the merchant before a running or queued one
  const rank = (r) => ['active', 'blocked', 'approved', 'queued'].indexOf(r.status);
  const answering = new Map();
  for (const r of recs) {
    const held = answering.get(r.findingId);
    if (!held || rank(r) < rank(held)) answering.set(r.findingId, r);
  }
  const list = (run.findings ?? []).map((f) => finding(store, run, f, cur, answering.get(f.id))).join('');
  const none = `<section class="empty" data-empty><h1>No drop-off stands out</h1>
      <p>${esc(run.note ?? `The doctor ran ${formatValue(run.tests, 'integer')} tests over this window and none found a step that loses more buyers than it should.`)}</p></section>`;
  return `<p class="muted" data-window><span class="num">${esc(run.from)}</span> → <span class="num">${esc(run.to)}</span> ·
      <span class="num">${esc(formatValue(run.sessions, 'integer'))}</span> sessions ·
      <span class="num">${esc(formatValue(run.tests, 'integer'))}</span> tests ·
      <span class="num">${esc(formatValue((run.findings ?? []).length, 'integer'))}</span> findings</p>
    <div class="stack">${list || none}</div>`;
}

export async function render(view, { store }) {
  const cur = store.currency;
  view.innerHTML = `<div class="stack"><div class="row"><h1>Where buyers drop off</h1>
      <button class="btn" type="button" data-act="run">Run the doctor now</button><p class="risk" role="alert" data-error></p></div>
    <div id="diag-body"><div class="stack" aria-busy="true"><article class="panel"><span class="skeleton"></span><span class="skeleton"></span></article></div></div></div>`;
  const body = view.querySelector('#diag-body');
  const err = view.querySelector('[data-error]');

  async function load() {
    let run, recs;
    try {
      [run, recs] = await Promise.all([api('GET', storeUrl(store.id, 'findings')),
        api('GET', storeUrl(store.id, 'recommendations', { status: 'active,blocked,queued,approved' }))]);
    } catch (e) {
      body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the findings</h2><p>${esc(e.message)}</p></section>`;
      return;
    }
    if (!view.isConnected) return;
    body.innerHTML = run.runId === null
      ? `<section class="empty" data-empty><h1>The doctor has not run yet</h1>
          <p>It runs every day over the last 28 complete days of traffic. Run it now to see where buyers drop off.</p></section>`
      : page(store, run, cur, recs.recommendations ?? []);
    scrollToHash(body);
  }

  view.querySelector('[data-act=run]').addEventListener('click', async (ev) => {
    ev.currentTarget.disabled = true;
    err.textContent = '';
    try {
      await api('POST', storeUrl(store.id, 'diagnostics/runs'));
      await load();
    } catch (e) {
      err.textContent = e instanceof ApiError ? e.message : 'Cannot run the doctor right now';
    } finally {
      view.querySelector('[data-act=run]').disabled = false;
    }
  });
  await load();
  return null;
}
