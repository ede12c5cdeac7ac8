// Notifications (story 8.19): everything the engine told the store, newest first (GET
// …/notifications, keyset pages by nextCursor): each with its time, what happened, a link to its
// ChangeSet; unread ones marked, with "Mark read"; alarms (rollbacks, SRM, blocked) in red.
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatTime } from '../lib/format.js';
import { alarmTitle, isAlarm, refreshAlerts } from '../lib/alerts.js';

const PAGE = 20;

function item(n, storeId) {
  const alarm = isAlarm(n);
  const link = n.changesetId ? `<a href="/autopilot?store=${encodeURIComponent(storeId)}&cs=${encodeURIComponent(n.changesetId)}" data-link>The ChangeSet</a>` : '';
  return `<li data-notification="${esc(n.id)}" data-kind="${esc(n.kind)}" class="${n.readAt ? 'read' : 'unread'}${alarm ? ' alarm' : ''}">
    <span class="mono muted">${esc(formatTime(n.createdAt))}</span>
    ${alarm ? `<strong class="mono risk">${esc(alarmTitle(n))}</strong>` : ''}
    <span class="title">${esc(n.title)}</span>${n.body ? `<span class="muted">${esc(n.body)}</span>` : ''}
    ${link}${n.readAt ? '<span class="mono muted">READ</span>' : '<button class="btn ghost small" type="button" data-act="read">Mark read</button>'}</li>`;
}

export async function render(view, { store }) {
  view.innerHTML = `<div class="stack"><h1>Notifications</h1><section class="panel" id="nt-body" aria-busy="true">
    <span class="skeleton"></span><span class="skeleton"></span></section></div>`;
  const body = view.querySelector('#nt-body');
  let items = [];
  let cursor = null;

  async function load(more = false) {
    let page;
    try {
      page = await api('GET', storeUrl(store.id, 'notifications', { limit: PAGE, cursor: more ? cursor : null }));
    } catch (err) {
      body.innerHTML = `<h2 class="risk">Cannot load the notifications</h2><p>${esc(err.message)}</p>`;
      return;
    }
    items = more ? items.concat(page.notifications ?? []) : page.notifications ?? [];
    cursor = page.nextCursor ?? null;
    if (!view.isConnected) return;
    body.removeAttribute('aria-busy');
    body.innerHTML = `<p class="mono" data-field="unread">${esc(String(page.unreadCount ?? 0))} UNREAD</p>
      ${items.length ? `<ol class="timeline notifications">${items.map((n) => item(n, store.id)).join('')}</ol>`
        : '<p class="muted" data-empty>Nothing yet. Approvals, rollbacks, proofs and blocked changes appear here as they happen.</p>'}
      ${cursor ? '<button class="btn ghost" type="button" data-act="more">Show more</button>' : ''}
      <p class="risk" role="alert" data-error></p>`;
  }

  body.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button');
    if (!btn || btn.disabled) return;
    btn.disabled = true;
    if (btn.dataset.act === 'more') { await load(true); return; }
    if (btn.dataset.act !== 'read') return;
    const li = btn.closest('[data-notification]');
    try {
      await api('POST', storeUrl(store.id, `notifications/${encodeURIComponent(li.dataset.notification)}/read`));
    } catch (err) {
      body.querySelector('[data-error]').textContent = err instanceof ApiError ? err.message : 'Cannot mark it read right now';
      btn.disabled = false;
      return;
    }
    await load();
    refreshAlerts(store);
  });

  await load();
  return null;
}
