// Autopilot (story 8.18): every ChangeSet of the store and what the merchant can do with it.
//   List (/autopilot?status=…): a ChangeSetCard per ChangeSet, newest first (GET …/changesets,
//     keyset pages: "Show more"), filtered by status — hypothesis, status badge (UX-4), risk,
//     and APPROVE / REJECT (waiting for approval) and INSPECT.
//   Detail (/autopilot?cs=<id>): the whole document — hypothesis with its evidence, action plan,
//     guardrails, rollback plan, proof plan, approval, execution — and its audit timeline (actor,
//     time, from → to, reason; metadata on demand). The actions the lifecycle allows the
//     merchant from the current state (src/changeset/lifecycle.c): approve, reject, roll back,
//     make permanent; ROLLED_BACK → PERMANENT only behind a confirmation that says what it does.
// Every action is POST …/changesets/{id}/transitions with the version read; the badge shows the
// state the answer carries at once, then the page reads the ChangeSet again. A guardrail refusal
// shows each violation's sentence, and force-approving repeats them before it is sent.
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatChange, formatTime, formatValue, humanize } from '../lib/format.js';
import { ROLLBACK_PROMISE, blockedTitle, evidenceTable, violationList } from '../lib/ui.js';

const PAGE = 20;
const EXPERIMENT_STATES = new Set(['ACTIVE', 'MEASURING', 'PROVEN', 'ROLLED_BACK', 'PERMANENT']);
const STATUSES = ['PENDING_APPROVAL', 'ACTIVE', 'MEASURING', 'PROVEN', 'ROLLED_BACK', 'PERMANENT', 'DRAFT', 'ARCHIVED'];

/** The merchant's moves from each state: [target state, button label, style, what the confirmation says]. */
const MOVES = {
  PENDING_APPROVAL: [
    ['ACTIVE', 'Approve', '', 'Start this experiment now? Its flag goes live for the visitors in its segment; the control group and the store holdout keep the store as it is.'],
    ['ARCHIVED', 'Reject', 'danger', null],
  ],
  ACTIVE: [['ROLLED_BACK', 'Roll back', 'danger', 'Roll this experiment back now? Its flag is switched off: every visitor gets the store as it was, at once.']],
  MEASURING: [['ROLLED_BACK', 'Roll back', 'danger', 'Roll this experiment back now? Its flag is switched off: every visitor gets the store as it was, at once.']],
  PROVEN: [
    ['PERMANENT', 'Make permanent', '', 'Make this change permanent? Every visitor gets the winning variant from now on; the experiment ends.'],
    ['ROLLED_BACK', 'Roll back', 'danger', 'Roll this proven change back? Its flag is switched off: every visitor gets the store as it was.'],
  ],
  ROLLED_BACK: [['PERMANENT', 'Make permanent anyway', 'danger',
    'This change was rolled back. Making it permanent serves its treatment to every visitor although it was stopped — only do this when you know why it was rolled back and that the reason no longer holds.']],
};


function badge(status) {
  return `<pe-status-badge status="${esc(status)}" data-field="status"></pe-status-badge>`;
}

function risk(level) {
  return `<span class="mono risk-level ${esc(level ?? '')}" data-field="risk">RISK ${esc(String(level ?? '—').toUpperCase())}</span>`;
}

function moveButtons(status, { inspect = null } = {}) {
  const moves = (MOVES[status] ?? []).map(([to, label, cls]) => `<button class="btn${cls ? ` ${cls}` : ''}" type="button" data-to="${esc(to)}">${esc(label)}</button>`);
  if (inspect) moves.push(`<a class="btn ghost" href="${esc(inspect)}" data-link data-act="inspect">Inspect</a>`);
  return moves.join('');
}

// ---- the list ------------------------------------------------------------------------------------

function csCard(cs, storeId) {
  const href = `/autopilot?store=${encodeURIComponent(storeId)}&cs=${encodeURIComponent(cs.id)}`;
  return `<article class="panel cs" data-cs="${esc(cs.id)}" data-status="${esc(cs.status)}" data-version="${esc(cs.version)}">
    <header class="rec-head">${badge(cs.status)}<h2>${esc(cs.problem ?? cs.id)}</h2>${risk(cs.riskLevel)}</header>
    <p>${esc(cs.expectedOutcome ?? '')}</p>
    <p class="muted mono">${esc(humanize(cs.actionType))} · created ${esc(formatTime(cs.createdAt))}${cs.expiresAt ? ` · approval expires ${esc(formatTime(cs.expiresAt))}` : ''}</p>
    <div class="row actions">${moveButtons(cs.status, { inspect: href })}</div>
    <div class="confirm" data-confirm hidden></div>
    <p class="risk" role="alert" data-error></p>
  </article>`;
}

function filterBar(status) {
  const chip = (value, label) => `<a class="chip${(status ?? '') === value ? ' on' : ''}" href="?status=${esc(value)}" data-status-filter="${esc(value)}"
      aria-pressed="${(status ?? '') === value}">${esc(label)}</a>`;
  return `<nav class="chips" aria-label="Filter by status">${chip('', 'ALL')}${STATUSES.map((s) => chip(s, humanize(s))).join('')}</nav>`;
}

function emptyList(status) {
  return `<section class="empty" data-empty><h2>${status ? `No ChangeSet is ${esc(humanize(status))}` : 'No ChangeSet yet'}</h2>
    <p>Autopilot's changes start as recommendations: approve one on <a href="/recommendations" data-link>Recommendations</a> and it appears
    here with its experiment, guardrails and audit trail.</p></section>`;
}

// ---- the detail ------------------------------------------------------------------------------------

function pairs(rows) {
  const shown = rows.filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!shown.length) return '<p class="muted">—</p>';
  return `<div class="pairs">${shown.map(([k, v, field]) => `<div class="pair"><span>${esc(k)}</span><span class="mono"${field ? ` data-field="${esc(field)}"` : ''}>${esc(v)}</span></div>`).join('')}</div>`;
}

const valueText = (v) => (v === null || v === undefined ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function actionPlan(a) {
  const seg = a?.targetSegment ?? {};
  const rules = (seg.rules ?? []).map((r) => `${r.attribute} ${r.operator} ${valueText(r.value)}`);
  const changes = (a?.implementation?.changes ?? []).map((c) => `<tr><td>${esc(humanize(c.type))}</td><td>${esc(c.description ?? '')}</td>
      <td class="mono">${esc(valueText(c.before))} → ${esc(valueText(c.after))}</td><td class="mono">${esc(c.variant ?? '')}</td></tr>`).join('');
  return `${pairs([['Type', humanize(a?.type)], ['Segment', seg.name ?? 'every visitor'], ['Rules', rules.join(' AND ') || 'none: every visitor'],
    ['Feature flag', a?.implementation?.featureFlagKey, 'flag'], ['Rollout', `${humanize(a?.rolloutStrategy)} · ${formatValue(a?.rolloutPercentage, 'number')} %`]])}
    ${changes ? `<div class="scroll-x"><table><thead><tr><th>Change</th><th>What</th><th>Before → after</th><th>Variant</th></tr></thead><tbody>${changes}</tbody></table></div>` : ''}`;
}

function guardrails(g) {
  const slos = (g?.sloRequirements ?? []).map((s) => `${s.metric} ${s.operator} ${s.threshold} over ${s.window}`);
  return pairs([['Profit floor', g?.profitFloor === undefined ? null : `${g.profitFloor} % gross margin`, 'profitFloor'],
    ['Stock threshold', g?.stockThreshold === undefined ? null : `${g.stockThreshold} units`], ['Risk', String(g?.riskLevel ?? '—').toUpperCase()],
    ['SLOs', slos.join('; ') || 'none'], ['Blocked when', (g?.blockedConditions ?? []).map(humanize).join(', ') || 'never']]);
}

function rollbackPlan(r) {
  const triggers = (r?.autoRollbackTriggers ?? []).map((t) => `${t.metric} ${t.operator} ${t.threshold} over ${t.window} (≥ ${t.minimumSampleSize} units): ${t.action}`);
  return `<p class="armed mono">${esc(ROLLBACK_PROMISE)}</p>${pairs([['Automatic', triggers.join('; ') || 'none'],
    ['By hand', r?.manualRollbackEnabled === false ? 'disabled' : 'enabled'], ['How', r?.rollbackProcedure], ['Takes', r?.estimatedRollbackTime]])}`;
}

function proofPlan(p) {
  const primary = (p?.primaryMetrics ?? []).map((m) => `${m.name} (${humanize(m.aggregation)}, ${m.direction})`);
  return pairs([['Primary', primary.join('; ')], ['Method', humanize(p?.statisticalMethod)], ['Significance', p?.significanceThreshold],
    ['Minimum sample', formatValue(p?.minimumSampleSize, 'integer')], ['Window', p?.measurementWindow], ['Holdout', p?.holdoutPercentage === undefined ? null : `${p.holdoutPercentage} %`]]);
}

function approval(a) {
  return pairs([['Status', String(a?.status ?? '—').toUpperCase(), 'approval'], ['By', a?.approvedBy], ['At', a?.approvedAt ? formatTime(a.approvedAt) : null],
    ['Expires', a?.expiresAt ? formatTime(a.expiresAt) : null]]);
}

function execution(e, cur) {
  const m = e?.currentMetrics;
  const p = e?.proofResult;
  const ci = p?.confidenceInterval ?? [];
  return pairs([['Status', e?.status], ['Started', e?.startedAt ? formatTime(e.startedAt) : null], ['Ended', e?.endedAt ? formatTime(e.endedAt) : null],
    ['Units', m ? `${formatValue(m.controlSampleSize, 'integer')} control · ${formatValue(m.treatmentSampleSize, 'integer')} treatment` : null],
    ['Verdict', p ? `${String(p.outcome).toUpperCase()} · ${humanize(p.primaryMetric)} ${formatChange(p.relativeLift)} [${formatChange(ci[0])}, ${formatChange(ci[1])}]` : null, 'verdict'],
    ['Profit a month', p?.impactPerMonth ? `${formatValue(p.impactPerMonth.profitLowerBound, 'currency', cur)} at least (estimate ${formatValue(p.impactPerMonth.profit, 'currency', cur)})` : null]]);
}

function timeline(events) {
  if (!events.length) return '<p class="muted">No event yet.</p>';
  return `<ol class="timeline">${events.map((e) => `<li data-event="${esc(e.id)}">
      <span class="mono muted">${esc(formatTime(e.timestamp))}</span>
      <span class="mono">${esc(String(e.actor?.type ?? '').toUpperCase())} ${esc(e.actor?.id ?? '')}</span>
      <span class="move">${e.previousState ? `${badge(e.previousState)} → ` : ''}${badge(e.newState)}</span>
      <span>${esc(humanize(e.action))}${e.reason ? ` — <q>${esc(e.reason)}</q>` : ''}</span>
      <button class="btn ghost small" type="button" data-act="meta" aria-expanded="false">Metadata</button>
      <pre class="meta" hidden>${esc(JSON.stringify(e.metadata ?? {}, null, 2))}</pre></li>`).join('')}</ol>`;
}

function detail(cs, events, storeId, cur) {
  const h = cs.hypothesis ?? {};
  const status = cs.execution?.status ?? cs.status;
  return `<article class="stack cs-detail" data-cs="${esc(cs.id)}" data-status="${esc(status)}" data-version="${esc(cs.version)}">
    <p><a href="/autopilot?store=${encodeURIComponent(storeId)}" data-link>← Every ChangeSet</a>${EXPERIMENT_STATES.has(status)
      ? ` · <a href="/experiments?store=${encodeURIComponent(storeId)}&cs=${encodeURIComponent(cs.id)}" data-link data-act="results">Experiment results</a>` : ''}</p>
    <section class="panel cs"><header class="rec-head">${badge(status)}<h1>${esc(h.problem ?? cs.id)}</h1>${risk(cs.guardrails?.riskLevel)}</header>
      <p class="muted mono">${esc(cs.id)} · version ${esc(cs.version)} · created ${esc(formatTime(cs.createdAt))} · updated ${esc(formatTime(cs.updatedAt))}</p>
      <div class="row actions">${moveButtons(status)}</div>
      <div class="confirm" data-confirm hidden></div>
      <p class="risk" role="alert" data-error></p></section>
    <div class="rec-grid cs-grid">
      <section data-section="hypothesis"><h3>Hypothesis</h3><p>${esc(h.expectedOutcome ?? '')}</p>
        ${pairs([['Confidence', String(h.confidenceLevel ?? '—').toUpperCase()]])}${evidenceTable(h.dataEvidence)}</section>
      <section data-section="actionPlan"><h3>Action plan</h3>${actionPlan(cs.actionPlan)}</section>
      <section data-section="guardrails"><h3>Guardrails</h3>${guardrails(cs.guardrails)}</section>
      <section data-section="rollbackPlan"><h3>Rollback plan</h3>${rollbackPlan(cs.rollbackPlan)}</section>
      <section data-section="proofPlan"><h3>Proof plan</h3>${proofPlan(cs.proofPlan)}</section>
      <section data-section="approval"><h3>Approval</h3>${approval(cs.approval)}</section>
      <section data-section="execution"><h3>Execution</h3>${execution(cs.execution, cur)}</section>
    </div>
    <section class="panel" data-panel="timeline"><h2>Audit timeline</h2>${timeline(events)}</section>
  </article>`;
}

// ---- actions ---------------------------------------------------------------------------------------

function confirmHtml(status, to) {
  const move = (MOVES[status] ?? []).find(([t]) => t === to);
  if (!move) return '';
  const [, label, cls, text] = move;
  if (to === 'ARCHIVED') {
    return `<label class="field">Why not? (optional, kept in the audit trail)<textarea name="reason" rows="2" maxlength="1000"></textarea></label>
      <div class="row"><button class="btn danger" type="button" data-do="ARCHIVED">Confirm: reject</button>
        <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
  }
  const reason = to === 'ROLLED_BACK' || status === 'ROLLED_BACK'
    ? '<label class="field">Reason (optional, kept in the audit trail)<textarea name="reason" rows="2" maxlength="1000"></textarea></label>' : '';
  return `<p${cls ? ' class="risk"' : ''}>${esc(text)}</p>${to === 'ACTIVE' ? `<p class="armed mono">${esc(ROLLBACK_PROMISE)}</p>` : ''}${reason}
    <div class="row"><button class="btn${cls ? ` ${cls}` : ''}" type="button" data-do="${esc(to)}">Confirm: ${esc(label.toLowerCase())}</button>
      <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
}

function forceHtml(violations) {
  return `<p class="risk">${esc(blockedTitle(violations))}. Approving overrides your own guardrails:</p>${violationList(violations)}
    <div class="row"><button class="btn danger" type="button" data-do="ACTIVE" data-force>Approve despite this</button>
      <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
}

export async function render(view, { store, params, navigate }) {
  const cur = store.currency;
  const csId = params.get('cs');
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : '';
  view.innerHTML = `<div class="stack"><h1>Autopilot</h1><div id="ap-body"><div class="stack" aria-busy="true">
    <article class="panel cs"><span class="skeleton"></span><span class="skeleton"></span></article>
    <article class="panel cs"><span class="skeleton"></span><span class="skeleton"></span></article></div></div></div>`;
  const body = view.querySelector('#ap-body');
  const fail = (what, err) => {
    body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load ${esc(what)}</h2><p>${esc(err.message)}</p></section>`;
  };
  let list = [];
  let next = null;

  async function loadDetail() {
    let cs;
    let events;
    try {
      [cs, events] = await Promise.all([
        api('GET', storeUrl(store.id, `changesets/${encodeURIComponent(csId)}`)),
        api('GET', storeUrl(store.id, `changesets/${encodeURIComponent(csId)}/timeline`)),
      ]);
    } catch (err) {
      fail('this ChangeSet', err);
      return;
    }
    if (view.isConnected) body.innerHTML = detail(cs, events.events ?? [], store.id, cur);
  }

  async function loadList(more = false) {
    let page;
    try {
      page = await api('GET', storeUrl(store.id, 'changesets', { status, limit: PAGE, after: more ? next : null }));
    } catch (err) {
      fail('the ChangeSets', err);
      return;
    }
    list = more ? list.concat(page.changesets ?? []) : page.changesets ?? [];
    next = page.nextAfter ?? null;
    if (!view.isConnected) return;
    body.innerHTML = `<div class="stack">${filterBar(status)}
      ${list.length ? `<div class="stack" data-list>${list.map((cs) => csCard(cs, store.id)).join('')}</div>` : emptyList(status)}
      ${next ? '<button class="btn ghost" type="button" data-act="more">Show more</button>' : ''}</div>`;
  }
  const reload = () => (csId ? loadDetail() : loadList());

  async function move(art, to, { force = false } = {}) {
    const err = art.querySelector('[data-error]');
    const confirm = art.querySelector('[data-confirm]');
    err.textContent = '';
    const reason = String(confirm.querySelector('textarea')?.value ?? '').trim();
    const payload = { to, version: Number(art.dataset.version) };
    if (reason) payload.reason = reason;
    if (force) Object.assign(payload, { force: true, confirm: true });
    else if (art.dataset.status === 'ROLLED_BACK' && to === 'PERMANENT') payload.confirm = true;
    for (const b of art.querySelectorAll('button')) b.disabled = true;
    let doc;
    try {
      doc = await api('POST', storeUrl(store.id, `changesets/${encodeURIComponent(art.dataset.cs)}/transitions`), payload);
    } catch (e) {
      for (const b of art.querySelectorAll('button')) b.disabled = false;
      if (e instanceof ApiError && e.code === 'guardrail_violation' && to === 'ACTIVE') {
        confirm.innerHTML = forceHtml(e.error?.violations ?? []);
        confirm.hidden = false;
        return;
      }
      err.textContent = e instanceof ApiError ? e.message : 'Cannot change the ChangeSet right now';
      return;
    }
    // the state the answer carries, at once; then the page as the server has it now
    const now = doc?.execution?.status ?? to;
    art.dataset.status = now;
    art.querySelector('[data-field=status]')?.setAttribute('status', now);
    confirm.hidden = true;
    await reload();
  }

  body.addEventListener('click', async (ev) => {
    const el = ev.target.closest('button, a[data-status-filter]');
    if (!el || el.disabled) return;
    if (el.dataset.statusFilter !== undefined) {
      ev.preventDefault();
      const u = new URL(location.href);
      u.searchParams.delete('cs');
      if (el.dataset.statusFilter) u.searchParams.set('status', el.dataset.statusFilter); else u.searchParams.delete('status');
      navigate(u.pathname + u.search);
      return;
    }
    if (el.dataset.act === 'more') { el.disabled = true; await loadList(true); return; }
    if (el.dataset.act === 'meta') {
      const pre = el.nextElementSibling;
      pre.hidden = !pre.hidden;
      el.setAttribute('aria-expanded', String(!pre.hidden));
      return;
    }
    const art = el.closest('[data-cs]');
    if (!art) return;
    const confirm = art.querySelector('[data-confirm]');
    if (el.dataset.do === 'cancel') { confirm.hidden = true; confirm.replaceChildren(); return; }
    if (el.dataset.do) { await move(art, el.dataset.do, { force: el.hasAttribute('data-force') }); return; }
    if (el.dataset.to) {
      confirm.innerHTML = confirmHtml(art.dataset.status, el.dataset.to);
      confirm.hidden = false;
      (confirm.querySelector('textarea') ?? confirm.querySelector('[data-do]'))?.focus();
    }
  });

  await reload();
  return null;
}
