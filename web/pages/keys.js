// Settings › API keys: the store's keys (GET …/keys: live ones first, newest first; the server
// keeps only a key's first characters), a new key (POST …/keys) shown once — a publishable one
// with the storefront's install snippet, a secret one with how the API takes it — and revoking
// one behind a confirmation that says what stops working (DELETE …/keys/{id}).
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatTime } from '../lib/format.js';
import { copyText, sdkSnippet } from '../lib/ui.js';

const USE = {
  publishable: 'the storefront: events and flag evaluations (safe in a page)',
  secret: 'your servers: imports, the API, ChangeSets (never in a page)',
};

function createdHtml(k) {
  const shown = k.kind === 'publishable'
    ? sdkSnippet(k.key)
    : `<pre><code data-snippet>Authorization: Bearer ${esc(k.key)}</code></pre>`;
  return `<section class="panel created" data-created="${esc(k.id)}"><h2 class="success">${esc(k.kind.toUpperCase())} KEY CREATED</h2>
    ${shown}
    <div class="row"><button class="btn" type="button" data-act="copy">Copy</button><span class="muted" role="status" data-copy-status></span></div>
    <p><strong>This is the only time the full key is shown.</strong> Copy it now: afterwards only its first characters
      (<span class="mono">${esc(k.prefix)}</span>) are kept.</p></section>`;
}

function table(keys) {
  if (!keys.length) return '<p class="muted" data-empty>No key yet. Create a publishable key for the storefront.</p>';
  return `<div class="scroll-x"><table data-table="keys"><thead><tr><th>Kind</th><th>Key</th><th>Created</th><th>State</th><th></th></tr></thead><tbody>
    ${keys.map((k) => `<tr data-key="${esc(k.id)}" data-live="${!k.revokedAt}"><td>${esc(k.kind)}</td><td class="mono">${esc(k.prefix)}…</td>
      <td class="mono">${esc(formatTime(k.createdAt))}</td>
      <td class="mono">${k.revokedAt ? `<span class="muted">REVOKED ${esc(formatTime(k.revokedAt))}</span>` : '<span class="success">LIVE</span>'}</td>
      <td>${k.revokedAt ? '' : '<button class="btn danger small" type="button" data-act="revoke">Revoke</button>'}</td></tr>
      <tr class="confirm-row" data-confirm-for="${esc(k.id)}" hidden><td colspan="5"></td></tr>`).join('')}</tbody></table></div>`;
}

export async function render(view, { store }) {
  view.innerHTML = `<div class="stack"><h1>Settings › API keys</h1>
    <section class="panel"><h2>New key</h2>
      <div class="row"><button class="btn" type="button" data-create="publishable">Create publishable key</button>
        <button class="btn ghost" type="button" data-create="secret">Create secret key</button></div>
      <p class="muted">Publishable: ${esc(USE.publishable)}. Secret: ${esc(USE.secret)}.</p>
      <p class="risk" role="alert" data-error></p></section>
    <div data-created-slot></div>
    <section class="panel" data-panel="keys"><h2>Keys <span class="mono muted" data-field="live"></span></h2><div data-list aria-busy="true">
      <span class="skeleton"></span><span class="skeleton"></span></div></section></div>`;
  const list = view.querySelector('[data-list]');
  const errorEl = view.querySelector('[data-error]');
  let created = null;

  async function load() {
    let ans;
    try {
      ans = await api('GET', storeUrl(store.id, 'keys'));
    } catch (err) {
      list.innerHTML = `<p class="risk">Cannot list the keys: ${esc(err.message)}</p>`;
      return;
    }
    if (!view.isConnected) return;
    list.removeAttribute('aria-busy');
    const live = (ans.keys ?? []).filter((k) => !k.revokedAt).length;
    view.querySelector('[data-field=live]').textContent = `${live} OF ${ans.maxLive ?? '—'} LIVE`;
    list.innerHTML = table(ans.keys ?? []);
  }

  view.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button');
    if (!btn || btn.disabled) return;
    if (btn.dataset.create) {
      btn.disabled = true;
      errorEl.textContent = '';
      try {
        created = await api('POST', storeUrl(store.id, 'keys'), { kind: btn.dataset.create });
        view.querySelector('[data-created-slot]').innerHTML = createdHtml(created);
        await load();
      } catch (err) {
        errorEl.textContent = err instanceof ApiError ? err.message : 'Cannot create a key right now';
      } finally {
        btn.disabled = false;
      }
      return;
    }
    if (btn.dataset.act === 'copy') {
      await copyText(view.querySelector('[data-created] [data-snippet]'), view.querySelector('[data-copy-status]'));
      return;
    }
    const row = btn.closest('[data-key], [data-confirm-for]');
    const id = row?.dataset.key ?? row?.dataset.confirmFor;
    if (!id) return;
    const confirm = list.querySelector(`[data-confirm-for="${CSS.escape(id)}"]`);
    if (btn.dataset.act === 'revoke') {
      const prefix = row.querySelector('td:nth-child(2)').textContent;
      confirm.firstElementChild.innerHTML = `<p class="risk">Revoke ${esc(prefix)}? Whatever uses it — a storefront, a server — is refused from its next request.</p>
        <div class="row"><button class="btn danger" type="button" data-do="revoke">Confirm: revoke</button>
        <button class="btn ghost" type="button" data-do="cancel">Cancel</button></div><p class="risk" role="alert" data-revoke-error></p>`;
      confirm.hidden = false;
    } else if (btn.dataset.do === 'cancel') {
      confirm.hidden = true;
    } else if (btn.dataset.do === 'revoke') {
      btn.disabled = true;
      try {
        await api('DELETE', storeUrl(store.id, `keys/${encodeURIComponent(id)}`));
        await load();
      } catch (err) {
        confirm.querySelector('[data-revoke-error]').textContent = err instanceof ApiError ? err.message : 'Cannot revoke it right now';
        btn.disabled = false;
      }
    }
  });

  await load();
  return null;
}
