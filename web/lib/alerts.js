// The shell's notifications (story 8.19): the unread count in the top bar, and a banner for the
// newest unread alarm — an automatic rollback, a sample-ratio mismatch, a guardrail that blocked
// a change — that stays until the merchant opens or dismisses it, so a rollback cannot be
// missed. Read from GET …/notifications?unread=true when a page opens and every POLL_MS while
// the tab is visible; "Dismiss" is POST …/notifications/{id}/read.
import { api, storeUrl } from './api.js';
import { esc } from './escape.js';

const POLL_MS = 30000;
const ALARMS = new Set(['changeset.rolled_back', 'changeset.srm_mismatch', 'changeset.guardrail_blocked']);
const ALARM_TITLES = {
  'changeset.rolled_back': 'ROLLED BACK',
  'changeset.srm_mismatch': 'SAMPLE RATIO MISMATCH',
  'changeset.guardrail_blocked': 'BLOCKED BY A GUARDRAIL',
};

let timer = null;
let current = null; // the store shown

export function isAlarm(n) {
  return ALARMS.has(n.kind);
}

export function alarmTitle(n) {
  return ALARM_TITLES[n.kind] ?? 'ALERT';
}

function render(store, unread) {
  const count = unread.unreadCount ?? 0;
  const link = document.getElementById('alerts');
  link.hidden = false;
  link.href = `/notifications?store=${encodeURIComponent(store.id)}`;
  link.querySelector('[data-unread]').textContent = String(count);
  link.setAttribute('aria-label', `Notifications: ${count} unread`);
  const alarm = (unread.notifications ?? []).find(isAlarm);
  link.classList.toggle('unread', count > 0);
  link.classList.toggle('alarm', Boolean(alarm));
  const banner = document.getElementById('alarm');
  if (!alarm) { banner.hidden = true; banner.replaceChildren(); return; }
  const href = alarm.changesetId ? `/autopilot?store=${encodeURIComponent(store.id)}&cs=${encodeURIComponent(alarm.changesetId)}` : link.href;
  banner.innerHTML = `<strong class="mono">${esc(alarmTitle(alarm))}</strong>
    <span>${esc(alarm.title)}${alarm.body ? ` — ${esc(alarm.body)}` : ''}</span>
    <a class="btn danger small" href="${esc(href)}" data-link data-alarm-open="${esc(alarm.id)}">See it</a>
    <button class="btn ghost small" type="button" data-alarm-dismiss="${esc(alarm.id)}">Dismiss</button>`;
  banner.dataset.notification = alarm.id;
  banner.hidden = false;
}

/** Reads the store's unread notifications now and shows them; quiet when it cannot. */
export async function refreshAlerts(store) {
  if (!store) return;
  try {
    const unread = await api('GET', storeUrl(store.id, 'notifications', { unread: 'true', limit: 20 }));
    if (current?.id === store.id) render(store, unread);
  } catch {
    // the next poll tries again; a page's own errors say what is wrong
  }
}

/** Starts (or moves to another store) the shell's notifications; stop() when signed out. */
export function startAlerts(store) {
  current = store;
  clearInterval(timer);
  refreshAlerts(store);
  timer = setInterval(() => { if (document.visibilityState === 'visible') refreshAlerts(current); }, POLL_MS);
}

export function stopAlerts() {
  clearInterval(timer);
  timer = null;
  current = null;
  document.getElementById('alerts').hidden = true;
  document.getElementById('alarm').hidden = true;
}

/** Marks notification id read, then shows what is left unread. */
export async function markRead(store, id) {
  await api('POST', storeUrl(store.id, `notifications/${encodeURIComponent(id)}/read`));
  await refreshAlerts(store);
}

export function wireAlarmBanner(getStore) {
  document.getElementById('alarm').addEventListener('click', async (ev) => {
    const dismiss = ev.target.closest('[data-alarm-dismiss]');
    const open = ev.target.closest('[data-alarm-open]');
    const store = getStore();
    if (!store) return;
    if (dismiss) { dismiss.disabled = true; await markRead(store, dismiss.dataset.alarmDismiss).catch(() => { dismiss.disabled = false; }); }
    if (open) markRead(store, open.dataset.alarmOpen).catch(() => {});
  });
}
