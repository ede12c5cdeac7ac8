// Funnel (story 8.5): GET /api/v1/stores/{id}/funnel with the date range and device / country /
// source filters taken from the URL (?from=&to=&device=&country=&source=), problem steps in risk
// red, and ?step= opening that step's breakdown (GET …/funnel/steps/{step}/breakdown with the same
// range and filters: it splits the sessions the funnel shows), and below it the doctor's latest
// findings (GET …/findings: segment gaps and benchmark gaps need no history, so a young store's
// problems show here before its drop-off test has a baseline), each linked to Diagnostics.
// Every filter change is a navigation, so each view is a deep link.
import { api, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatValue } from '../lib/format.js';
import './funnel/_components/pe-funnel-visualization.js';

const FILTERS = ['from', 'to', 'device', 'country', 'source'];
const DEVICES = ['desktop', 'mobile', 'tablet', 'other'];
const STEPS = ['cart', 'checkout', 'shipping', 'payment', 'confirmation'];
const FINDINGS_SHOWN = 5;

function options(values, selected, all) {
  const list = [...new Set([...(values ?? []), ...(selected ? [selected] : [])])];
  return `<option value="">${all}</option>${list.map((v) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(v)}</option>`).join('')}`;
}

function table(title, rows, key) {
  return `<section data-breakdown="${key}"><h2>${title}</h2><table><thead><tr><th>${key}</th><th class="num">Sessions</th><th class="num">Reached</th><th class="num">Conversion</th></tr></thead>
    <tbody>${rows.map((r) => `<tr><td>${esc(r.value)}</td><td class="num">${esc(formatValue(r.sessions, 'integer'))}</td><td class="num">${esc(formatValue(r.reached, 'integer'))}</td>
    <td class="num">${esc(formatValue(r.conversion, 'percent1'))}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">No sessions.</td></tr>'}</tbody></table></section>`;
}

function filtersText(filters) {
  const on = Object.entries(filters ?? {}).filter(([, v]) => v !== null && v !== undefined && v !== '');
  return `· ${on.length ? on.map(([k, v]) => `${k} <span class="mono">${esc(v)}</span>`).join(' · ') : 'all sessions'}`;
}

function breakdownHtml(b) {
  const max = Math.max(1, ...b.byHour.map((h) => h.sessions || 0));
  return `<div class="row"><h1>Breakdown · <span class="step-name">${esc(b.step)}</span></h1>
    <span class="muted">sessions that reached <span class="mono">${esc(b.previousStep ?? 'the store')}</span> and how many reached <span class="mono">${esc(b.step)}</span></span>
    <span class="muted" id="breakdown-filters">${filtersText(b.filters)}</span></div>
    <div class="breakdown">${table('By device', b.byDevice, 'device')}${table('By country', b.byCountry, 'country')}${table('By source', b.bySource, 'source')}
    <section data-breakdown="hour"><h2>By hour of day (sessions, store time)</h2><div class="hours">${b.byHour.map((h) => `<span data-h="${((h.sessions || 0) / max * 100).toFixed(1)}" data-hour="${esc(h.hour)}" data-sessions="${esc(h.sessions)}" data-reached="${esc(h.reached)}" title="${h.hour}:00 ${h.sessions} sessions, ${formatValue(h.conversion, 'percent1')}"></span>`).join('')}</div>
    <div class="hours-axis num">${[0, 6, 12, 18].map((h) => `<span>${h}</span>`).join('')}</div></section></div>`;
}

/** The doctor's latest findings, each linked to its place on the Diagnostics page. */
function findingsPanel(store, run, list) {
  if (!run || run.runId === null) {
    return `<section class="panel" data-panel="findings"><h2>The doctor's findings</h2>
      <p class="muted">The doctor has not run yet: it runs once a day (<a data-link href="/diagnostics?store=${encodeURIComponent(store.id)}">Diagnostics</a>).</p></section>`;
  }
  const items = list.slice(0, FINDINGS_SHOWN).map((x) => `<li data-finding="${esc(x.id)}"><span class="mono">${esc(x.step)}</span>
      <a data-link href="/diagnostics?store=${encodeURIComponent(store.id)}#finding-${esc(x.id)}">${esc(x.title)}</a>
      <span class="num risk">${esc(formatValue(x.lostProfitPerMonth, 'currency', run.currency ?? store.currency))}</span> <span class="muted">profit a month</span></li>`).join('');
  return `<section class="panel" data-panel="findings"><h2>The doctor's findings · <span class="num">${esc(run.from)}</span> → <span class="num">${esc(run.to)}</span></h2>
    ${items ? `<ul class="findings">${items}</ul>` : '<p class="muted">No step loses more buyers than it should.</p>'}</section>`;
}

export async function render(view, { store, params, navigate }) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? '']));
  const step = STEPS.includes(params.get('step')) ? params.get('step') : null;
  view.innerHTML = `<div class="stack">
    <div class="row"><h1>Checkout funnel</h1><span class="muted mono" id="funnel-range"></span></div>
    <form class="toolbar" id="funnel-filters" aria-label="Filters">
      <label>From <input type="date" name="from" value="${esc(f.from)}"></label>
      <label>To <input type="date" name="to" value="${esc(f.to)}"></label>
      <label>Device <select name="device">${options(DEVICES, f.device, 'All devices')}</select></label>
      <label>Country <select name="country">${options([], f.country, 'All countries')}</select></label>
      <label>Source <select name="source">${options([], f.source, 'All sources')}</select></label>
    </form>
    <div id="funnel-body"><pe-funnel-visualization aria-busy="true"></pe-funnel-visualization><span class="skeleton"></span><span class="skeleton"></span></div>
    <div id="funnel-breakdown"></div></div>`;
  const form = view.querySelector('#funnel-filters');
  // A change that leaves the address as it is (a second change event for the same value, as
  // some pickers send) reloads nothing: a reload would blank the funnel the merchant is reading.
  const go = (changes) => {
    const q = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) if (v) q.set(k, v); else q.delete(k);
    const target = `/funnel?${q}`;
    if (target !== location.pathname + location.search) navigate(target);
  };
  form.addEventListener('change', (ev) => { if (ev.target.name) go({ [ev.target.name]: ev.target.value }); });
  form.addEventListener('submit', (ev) => ev.preventDefault());

  const filters = Object.fromEntries(FILTERS.map((k) => [k, f[k]]));
  let funnel;
  let findings = [];
  let findingsRun = null;
  try {
    // The segment values to filter by come from the first step's breakdown over the same range.
    const [fn, seg, run] = await Promise.all([
      api('GET', storeUrl(store.id, 'funnel', filters)),
      api('GET', storeUrl(store.id, 'funnel/steps/cart/breakdown', { from: f.from, to: f.to })),
      // the doctor's latest findings (benchmarks and segment gaps need no history of the store)
      api('GET', storeUrl(store.id, 'findings')).catch(() => null),
    ]);
    funnel = fn;
    findings = run?.findings ?? [];
    findingsRun = run;
    if (!view.isConnected) return null;
    form.country.innerHTML = options(seg.byCountry.map((r) => r.value).sort(), f.country, 'All countries');
    form.source.innerHTML = options(seg.bySource.map((r) => r.value).sort(), f.source, 'All sources');
  } catch (err) {
    view.querySelector('#funnel-body').innerHTML = `<section class="panel"><h2 class="risk">Cannot load the funnel</h2><p>${esc(err.message)}</p></section>`;
    return null;
  }
  view.querySelector('#funnel-range').textContent = `${funnel.from} → ${funnel.to} · ${formatValue(funnel.sessions, 'integer')} sessions`;
  // the range in force, also when it is the default one (never an empty "mm/dd/yyyy")
  if (!form.from.value) form.from.value = funnel.from;
  if (!form.to.value) form.to.value = funnel.to;
  const problems = funnel.steps.filter((s) => s.problem).map((s) => s.step);
  const body = view.querySelector('#funnel-body');
  body.innerHTML = `<pe-funnel-visualization total="${esc(funnel.sessions)}"${step ? ` selected="${step}"` : ''}></pe-funnel-visualization>
    <p class="${problems.length ? 'risk' : 'muted'}" id="funnel-problems">${problems.length
      ? `Problem: drop-off at ${problems.map(esc).join(', ')} is well above this store's previous 28 days.`
      : 'No step drops off more than usual for this store against its own past.'} Choose a step for its breakdown.</p>
    ${findingsPanel(store, findingsRun, findings)}`;
  const viz = body.querySelector('pe-funnel-visualization');
  viz.steps = funnel.steps;
  viz.addEventListener('pe-step-select', (ev) => go({ step: ev.detail.step === step ? '' : ev.detail.step }));

  if (step) {
    const box = view.querySelector('#funnel-breakdown');
    box.innerHTML = '<span class="skeleton"></span><span class="skeleton"></span>';
    try {
      const b = await api('GET', storeUrl(store.id, `funnel/steps/${step}/breakdown`, filters));
      if (!view.isConnected) return null;
      box.innerHTML = breakdownHtml(b);
      for (const h of box.querySelectorAll('.hours > span')) h.style.height = `${h.dataset.h}%`;
    } catch (err) {
      box.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the breakdown</h2><p>${esc(err.message)}</p></section>`;
    }
  }
  return null;
}
