// Recommendations (story 8.8, UX-7/10/11/12): AUTOPILOT PROPOSES → MERCHANT APPROVES. One card
// per recommendation waiting for the merchant (GET /api/v1/stores/{id}/recommendations: status
// active, or blocked by a guardrail): What, Why, Expected impact (the step's uplift range and
// orders / revenue / profit a month), Safety (guardrails, risk, the armed auto-rollback), and
// Approve / Reject / Learn more.
//   Approve: one click, then one confirmation; POST …/approve answers once the ChangeSet is
//     ACTIVE and its flag serves the split, so the experiment is live when the confirmation
//     closes. The card's border flashes green for 500 ms (UX-ANIM-4), then the list is read
//     again (a queued recommendation may have been promoted).
//   Reject: an optional reason, then POST …/reject; the card is archived.
//   Learn more: expands in place (the finding's explanation and evidence, the playbook's
//     rationale and source, how it is measured and rolled back).
//   Blocked (GuardrailsAlert, UX-10): red border, "BLOCKED: MARGIN VIOLATION" (or the kind that
//     applies) and each guardrail's own sentence; force-approve asks for a confirmation that
//     repeats the violations and sends {"force":true,"confirm":true}.
// Below the cards: the experiments started from here (approved, the latest ten, each a link to its
// results) and the next in line (queued). A card is addressable as #recommendation-<id> (the
// Diagnostics page links each finding to the card that answers it), and names its finding.
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatChange, formatValue, reducedMotion } from '../lib/format.js';
import { ROLLBACK_PROMISE, blockedTitle, evidenceTable, scrollToHash, segmentText, violationList } from '../lib/ui.js';

const FLASH_MS = 500;
const APPROVED_SHOWN = 10;

function range(r, format, cur) {
  if (!r) return '—';
  return `${formatValue(r.low, format, cur)} … ${formatValue(r.high, format, cur)}`;
}

function skeleton() {
  const card = '<article class="panel rec"><span class="skeleton"></span><span class="skeleton"></span><span class="skeleton"></span></article>';
  return `<div class="stack" aria-busy="true">${card}${card}</div>`;
}

function impact(r, cur) {
  const m = r.expectedImpactPerMonth ?? {};
  const u = r.expectedUplift ?? {};
  const c = m.currency ?? cur;
  const pair = (label, field, value, cls = '') => `<div class="pair"><span>${esc(label)}</span><span class="num${cls}" data-field="${field}">${esc(value)}</span></div>`;
  return `<div class="pairs">
      ${pair(String(u.metric ?? 'conversion').replace(/_/g, ' '), 'uplift', `${formatChange(u.low)} … ${formatChange(u.high)}`)}
      ${pair('Orders', 'orders', range(m.orders, 'number', c))}
      ${pair('Revenue', 'revenue', range(m.revenue, 'currency', c))}
      ${pair('Gross profit', 'profit', range(m.profit, 'currency', c), ' success')}
      ${m.cost && (m.cost.low > 0 || m.cost.high > 0) ? pair('Its cost', 'cost', range(m.cost, 'currency', c)) : ''}</div>`;
}

function learnMore(r) {
  const l = r.learnMore ?? {};
  const ev = evidenceTable(l.evidence);
  const para = (title, text) => (text ? `<h3>${esc(title)}</h3><p>${esc(text)}</p>` : '');
  return `${para('What the data shows', l.explanation)}
    ${ev}
    ${para('Why this change', l.rationale)}${para('Source', l.source)}
    ${para('How it is measured', l.measurement)}${para('How it is rolled back', l.rollback)}`;
}

function card(r, cur, store) {
  const blocked = r.status === 'blocked';
  const violations = r.violations ?? [];
  const safety = blocked
    ? `<p class="risk" data-field="guardrails">${esc(blockedTitle(violations))}</p>
       ${violationList(violations)}`
    : '<p class="success" data-field="guardrails">GUARDRAILS: PASSED</p>';
  const finding = r.findingId
    ? `<p><a data-link data-go="finding" href="/diagnostics?store=${encodeURIComponent(store.id)}#finding-${encodeURIComponent(r.findingId)}">The finding behind it</a></p>`
    : '';
  return `<article class="panel rec${blocked ? ' blocked' : ''}" id="recommendation-${esc(r.id)}" data-rec="${esc(r.id)}" data-status="${esc(r.status)}" aria-labelledby="rec-${esc(r.id)}">
    <header class="rec-head">
      <span class="mono muted">#${esc(formatValue(r.rank, 'integer'))}</span>
      <h2 id="rec-${esc(r.id)}">${esc(r.title)}</h2>
      ${blocked ? `<span class="alert" data-field="blocked">${esc(blockedTitle(violations))}</span>` : '<pe-status-badge status="PENDING_APPROVAL" label="PROPOSED"></pe-status-badge>'}
    </header>
    <div class="rec-grid">
      <section><h3>What</h3><p>${esc(r.description ?? r.title)}</p>
        <p class="muted">${esc(r.playbook)} · ${esc(r.step)} step · ${esc(segmentText(r.segment))}</p></section>
      <section><h3>Why</h3><p>${esc(r.problem ?? '')}</p>${finding}</section>
      <section><h3>Expected impact · a month</h3>${impact(r, cur)}</section>
      <section><h3>Safety</h3>${safety}
        <p>Risk <span class="mono">${esc(String(r.riskLevel ?? '—').toUpperCase())}</span></p>
        <p class="armed mono" data-field="rollback">${esc(ROLLBACK_PROMISE)}</p></section>
    </div>
    <div class="row actions">
      ${blocked ? '<button class="btn danger" type="button" data-act="force">Force approve</button>'
        : '<button class="btn" type="button" data-act="approve">Approve</button>'}
      <button class="btn ghost" type="button" data-act="reject">Reject</button>
      <button class="btn ghost" type="button" data-act="learn" aria-expanded="false" aria-controls="learn-${esc(r.id)}">Learn more</button>
    </div>
    <div class="confirm" data-confirm hidden></div>
    <div class="learn" id="learn-${esc(r.id)}" data-learn hidden>${learnMore(r)}</div>
    <p class="risk" role="alert" data-error></p>
  </article>`;
}

function approveConfirm(r) {
  return `<p>Start this experiment now? Half of the visitors in its segment (${esc(segmentText(r.segment))}) get the change;
      the other half and the store holdout keep the store as it is.</p>
    <p class="armed mono">${esc(ROLLBACK_PROMISE)}</p>
    <div class="row"><button class="btn" type="button" data-do="approve">Confirm: go live</button>
      <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
}

function forceConfirm(r) {
  return `<p class="risk">${esc(blockedTitle(r.violations))}. Approving overrides your own guardrails:</p>
    ${violationList(r.violations)}
    <div class="row"><button class="btn danger" type="button" data-do="force">Approve despite this</button>
      <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
}

function rejectForm() {
  return `<label class="field">Why not? (optional, kept with the decision)
      <textarea name="reason" rows="2" maxlength="1000"></textarea></label>
    <div class="row"><button class="btn danger" type="button" data-do="reject">Confirm: reject</button>
      <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div>`;
}

function others(list, cur, store) {
  const queued = list.filter((r) => r.status === 'queued');
  const approved = list.filter((r) => r.status === 'approved').slice(0, APPROVED_SHOWN); // newest first
  const title = (r) => (r.status === 'approved'
    ? `<a data-link href="/experiments?store=${encodeURIComponent(store.id)}&amp;cs=${encodeURIComponent(r.changesetId)}">${esc(r.title)}</a>`
    : esc(r.title));
  const row = (r) => `<tr data-rec="${esc(r.id)}"><td>${title(r)}</td><td>${esc(r.step)}</td>
      <td class="num">${esc(range(r.expectedImpactPerMonth?.profit, 'currency', r.expectedImpactPerMonth?.currency ?? cur))}</td></tr>`;
  const table = (rows, empty) => `<div class="scroll-x"><table><thead><tr><th>Recommendation</th><th>Step</th>
      <th class="num">Gross profit a month</th></tr></thead><tbody>${rows || `<tr><td colspan="3" class="muted">${esc(empty)}</td></tr>`}</tbody></table></div>`;
  return `<section class="panel" data-panel="approved"><h2>Approved · live experiments</h2>
      ${table(approved.map(row).join(''), 'None yet: approve a card above to start its experiment.')}</section>
    <section class="panel" data-panel="queued"><h2>Next in line</h2>
      <p class="muted">At most five wait for you at once; the next one moves up when you decide.</p>
      ${table(queued.map(row).join(''), 'Nothing queued.')}</section>`;
}

function page(list, cur, store) {
  const open = list.filter((r) => r.status === 'active' || r.status === 'blocked');
  const cards = open.map((r) => card(r, cur, store)).join('');
  const empty = `<section class="empty" data-empty><h1>Nothing to approve right now</h1>
      <p>Recommendations come from the funnel doctor's findings: each is a change ready to run as an
      experiment. The doctor runs every day; you can also ask for them now.</p>
      <button class="btn" type="button" data-act="generate">Generate recommendations</button>
      <p class="risk" role="alert" data-error></p></section>`;
  return `<div class="stack"><div class="flow mono" aria-label="How it works">AUTOPILOT PROPOSES → MERCHANT APPROVES</div>
    ${cards || empty}${others(list, cur, store)}</div>`;
}

export async function render(view, { store }) {
  const cur = store.currency;
  view.innerHTML = `<div class="stack"><h1>Recommendations</h1><div id="rec-body">${skeleton()}</div></div>`;
  const body = view.querySelector('#rec-body');
  let list = [];
  let timer = null;

  async function load() {
    try {
      list = (await api('GET', storeUrl(store.id, 'recommendations', { status: 'active,blocked,queued,approved' }))).recommendations ?? [];
    } catch (err) {
      body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the recommendations</h2><p>${esc(err.message)}</p></section>`;
      return;
    }
    if (!view.isConnected) return;
    body.innerHTML = page(list, cur, store);
    scrollToHash(body);
  }

  const find = (el) => {
    const art = el.closest('[data-rec]');
    return { art, rec: list.find((r) => r.id === art?.dataset.rec) };
  };

  async function decide(art, rec, verb, payload) {
    const err = art.querySelector('[data-error]');
    err.textContent = '';
    for (const b of art.querySelectorAll('button')) b.disabled = true;
    try {
      await api('POST', storeUrl(store.id, `recommendations/${encodeURIComponent(rec.id)}/${verb}`), payload);
    } catch (e) {
      err.textContent = e instanceof ApiError ? e.message : `Cannot ${verb} right now`;
      for (const b of art.querySelectorAll('button')) b.disabled = false;
      return;
    }
    if (verb === 'reject') { await load(); return; }
    // live: the flash, then the list as it is now
    art.querySelector('[data-confirm]').hidden = true;
    art.querySelector('.actions').innerHTML = '<pe-status-badge status="ACTIVE" label="APPROVED · LIVE"></pe-status-badge>';
    art.classList.add(reducedMotion() ? 'approved' : 'flash');
    art.dataset.status = 'approved';
    timer = setTimeout(load, FLASH_MS);
  }

  body.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button');
    if (!btn || btn.disabled) return;
    if (btn.dataset.act === 'generate') {
      const err = body.querySelector('[data-empty] [data-error]');
      btn.disabled = true;
      try {
        await api('POST', storeUrl(store.id, 'recommendations/generate'));
        await load();
      } catch (e) {
        err.textContent = e instanceof ApiError ? e.message : 'Cannot generate recommendations right now';
        btn.disabled = false;
      }
      return;
    }
    const { art, rec } = find(btn);
    if (!art || !rec) return;
    const confirm = art.querySelector('[data-confirm]');
    switch (btn.dataset.act ?? btn.dataset.do) {
      case 'approve':
        if (btn.dataset.do) { await decide(art, rec, 'approve', {}); break; }
        confirm.innerHTML = approveConfirm(rec);
        confirm.hidden = false;
        confirm.querySelector('[data-do=approve]').focus();
        break;
      case 'force':
        if (btn.dataset.do) { await decide(art, rec, 'approve', { force: true, confirm: true }); break; }
        confirm.innerHTML = forceConfirm(rec);
        confirm.hidden = false;
        confirm.querySelector('[data-do=force]').focus();
        break;
      case 'reject':
        if (btn.dataset.do) {
          const reason = String(confirm.querySelector('textarea')?.value ?? '').trim();
          await decide(art, rec, 'reject', reason ? { reason } : {});
          break;
        }
        confirm.innerHTML = rejectForm();
        confirm.hidden = false;
        confirm.querySelector('textarea').focus();
        break;
      case 'cancel':
        confirm.hidden = true;
        confirm.replaceChildren();
        break;
      case 'learn': {
        const learn = art.querySelector('[data-learn]');
        learn.hidden = !learn.hidden;
        btn.setAttribute('aria-expanded', String(!learn.hidden));
        btn.textContent = learn.hidden ? 'Learn more' : 'Show less';
        break;
      }
      default:
    }
  });

  await load();
  return () => clearTimeout(timer);
}
