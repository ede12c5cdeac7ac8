// Audit (story 8.19): the store's audit trail — every event of every ChangeSet, who did what and
// why — with the hash chains' verification (GET …/audit/verify: intact, or the first broken
// link), filters that live in the URL (?from=&to= store dates, ?actor=, ?action=, ?cs=), a
// ChangeSet's own timeline by clicking its id, and the CSV and JSON exports of the range as
// streamed downloads (GET …/audit/export, the server's attachment). The events of the range are
// the JSON export's lines (newest first here); the filters other than the range narrow the table,
// not the downloads.
import { api, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatTime, humanize } from '../lib/format.js';

const SHOWN = 500;
const DAY_MS = 86400000;
const ACTORS = ['user', 'system', 'autopilot'];

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

function badge(state) {
  return state ? `<pe-status-badge status="${esc(state)}"></pe-status-badge>` : '';
}

function chainHtml(v) {
  if (!v) return '<p class="muted">The chain could not be checked right now.</p>';
  if (v.ok) {
    return `<p data-field="chain" data-ok="true"><strong class="success mono">CHAIN INTACT</strong>
      <span class="num">${esc(String(v.checked))}</span> events checked, each hash over the event and the one before it.</p>`;
  }
  const b = v.firstBroken ?? {};
  return `<p data-field="chain" data-ok="false"><strong class="risk mono">CHAIN BROKEN</strong>
    at ChangeSet <span class="mono">${esc(b.changesetId ?? '?')}</span>, event ${esc(String(b.seq ?? '?'))}: ${esc(b.reason ?? '')}</p>`;
}

function filters(p, actions) {
  const opt = (v, label, cur) => `<option value="${esc(v)}"${cur === v ? ' selected' : ''}>${esc(label)}</option>`;
  return `<form class="toolbar audit-filters" data-filters>
    <label>From <input type="date" name="from" value="${esc(p.from)}" required></label>
    <label>To <input type="date" name="to" value="${esc(p.to)}" required></label>
    <label>Actor <select name="actor">${opt('', 'everyone', p.actor)}${ACTORS.map((a) => opt(a, a, p.actor)).join('')}</select></label>
    <label>Action <select name="action">${opt('', 'every action', p.action)}${actions.map((a) => opt(a, humanize(a), p.action)).join('')}</select></label>
    <label>ChangeSet <input name="cs" value="${esc(p.cs)}" placeholder="any" size="26" autocomplete="off"></label>
  </form>`;
}

function table(events, storeId, p) {
  if (!events.length) return '<p class="muted" data-empty>No event matches. Widen the range or clear a filter.</p>';
  const rows = events.slice(0, SHOWN).map((e) => `<tr data-event="${esc(e.id)}">
      <td class="mono">${esc(formatTime(e.timestamp))}</td>
      <td><a class="mono" href="/audit?${esc(new URLSearchParams({ store: storeId, from: p.from, to: p.to, cs: e.changesetId }))}" data-link data-cs="${esc(e.changesetId)}">${esc(e.changesetId)}</a></td>
      <td class="mono">${esc(String(e.actor?.type ?? '').toUpperCase())} ${esc(e.actor?.id ?? '')}</td>
      <td>${esc(humanize(e.action))}</td>
      <td class="move">${badge(e.previousState)}${e.previousState ? ' → ' : ''}${badge(e.newState)}</td>
      <td>${esc(e.reason ?? '')}</td></tr>`).join('');
  return `<div class="scroll-x"><table data-table="audit"><thead><tr><th>Time</th><th>ChangeSet</th><th>Actor</th><th>Action</th>
    <th>From → to</th><th>Reason</th></tr></thead><tbody>${rows}</tbody></table></div>
    ${events.length > SHOWN ? `<p class="muted">The newest ${SHOWN} of ${events.length} events are shown; the exports hold them all.</p>` : ''}`;
}

export async function render(view, { store, params, navigate }) {
  const today = Date.now();
  const p = {
    from: /^\d{4}-\d{2}-\d{2}$/.test(params.get('from') ?? '') ? params.get('from') : isoDay(today - 6 * DAY_MS),
    to: /^\d{4}-\d{2}-\d{2}$/.test(params.get('to') ?? '') ? params.get('to') : isoDay(today),
    actor: ACTORS.includes(params.get('actor')) ? params.get('actor') : '',
    action: params.get('action') ?? '',
    cs: params.get('cs') ?? '',
  };
  // the export's range: from the first day's start to the day after the last (UTC), to exclusive
  const range = { from: `${p.from}T00:00:00Z`, to: `${isoDay(Date.parse(`${p.to}T00:00:00Z`) + DAY_MS)}T00:00:00Z` };
  const exportUrl = (format) => storeUrl(store.id, 'audit/export', { format, ...range });
  view.innerHTML = `<div class="stack"><h1>Audit</h1>
    <section class="panel" data-panel="chain"><h2>Hash chains</h2><span class="skeleton"></span></section>
    <section class="panel" data-panel="log"><h2>Audit log${p.cs ? ` · ChangeSet <span class="mono">${esc(p.cs)}</span>` : ''}</h2>
      <div data-filters-slot></div>
      <div class="row exports"><a class="btn ghost" href="${esc(exportUrl('csv'))}" download data-export="csv">Export CSV</a>
        <a class="btn ghost" href="${esc(exportUrl('json'))}" download data-export="json">Export JSON</a>
        <span class="muted">Every event from ${esc(p.from)} to ${esc(p.to)} (UTC days), whatever the other filters.</span></div>
      <div data-log aria-busy="true"><span class="skeleton"></span><span class="skeleton"></span></div></section></div>`;
  const [verify, text] = await Promise.all([
    api('GET', storeUrl(store.id, 'audit/verify')).catch(() => null),
    fetch(exportUrl('json'), { credentials: 'same-origin' }).then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`)))).catch((err) => err),
  ]);
  if (!view.isConnected) return null;
  view.querySelector('[data-panel=chain]').innerHTML = `<h2>Hash chains</h2>${chainHtml(verify)}`;
  const log = view.querySelector('[data-log]');
  log.removeAttribute('aria-busy');
  if (text instanceof Error) {
    log.innerHTML = `<p class="risk">Cannot read the audit log: ${esc(text.message)}</p>`;
    return null;
  }
  const all = text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).reverse(); // newest first
  const actions = [...new Set(all.map((e) => e.action))].sort();
  view.querySelector('[data-filters-slot]').innerHTML = filters(p, actions);
  const shown = all.filter((e) => (!p.actor || e.actor?.type === p.actor) && (!p.action || e.action === p.action) && (!p.cs || e.changesetId === p.cs));
  log.innerHTML = `<p class="mono muted" data-field="count">${esc(String(shown.length))} OF ${esc(String(all.length))} EVENTS</p>${table(shown, store.id, p)}`;
  view.querySelector('[data-filters]').addEventListener('change', (ev) => {
    const form = ev.currentTarget;
    if (!form.reportValidity()) return;
    const q = new URLSearchParams({ store: store.id });
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    navigate(`/audit?${q}`);
  });
  return null;
}
