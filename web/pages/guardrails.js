// Guardrails (story 8.13): the store's profit guardrails as a form — minimum margin for the
// store, per category and per product (picked from the catalogue), maximum discount, stock
// protection, categories excluded from automation; the SLO gates are shown and kept. While the
// merchant types, the form is checked by the server (POST …/guardrails/preview, nothing saved):
// its own message when a value is refused, and which ChangeSets waiting for a decision the new
// settings would block (or free) — before saving. Save is PUT …/guardrails.
import { api, ApiError, storeUrl } from '../lib/api.js';
import { esc } from '../lib/escape.js';
import { formatTime, formatValue } from '../lib/format.js';
import { violationList } from '../lib/ui.js';

const CHECK_MS = 300;
const CATALOGUE_PAGE = 500;

function numberOrNull(input) {
  const t = input.value.trim();
  return t === '' ? null : Number(t);
}

/** The configuration the form holds, as PUT takes it; the SLO gates as they were read. */
function formConfig(form, slo) {
  const map = (kind) => {
    const out = {};
    for (const row of form.querySelectorAll(`[data-map=${kind}] .map-row`)) {
      const key = row.querySelector('[name=key]').value.trim();
      const pct = row.querySelector('[name=pct]');
      if (key) out[key] = numberOrNull(pct) ?? pct.value.trim();
    }
    return out;
  };
  return {
    minMarginPct: numberOrNull(form.elements.minMarginPct),
    maxDiscountPct: numberOrNull(form.elements.maxDiscountPct),
    minStockUnits: numberOrNull(form.elements.minStockUnits),
    categoryMinMarginPct: map('category'),
    productMinMarginPct: map('product'),
    excludedCategories: [...form.querySelectorAll('[name=excluded]:checked')].map((c) => c.value),
    sloGates: slo,
  };
}

function mapRow(kind, key = '', pct = '') {
  const list = kind === 'category' ? 'pe-categories' : 'pe-skus';
  return `<div class="map-row row"><input name="key" list="${list}" value="${esc(key)}" placeholder="${kind === 'category' ? 'Category' : 'SKU'}"
      aria-label="${kind === 'category' ? 'Category' : 'SKU'}" autocomplete="off">
    <input name="pct" type="number" min="0" max="100" step="0.1" value="${esc(pct)}" aria-label="Minimum margin %" class="pct"> %
    <button class="btn ghost small" type="button" data-act="remove">Remove</button></div>`;
}

function mapSection(kind, title, entries) {
  return `<fieldset data-map="${kind}"><legend>${esc(title)}</legend>
    <div data-rows>${Object.entries(entries ?? {}).map(([k, v]) => mapRow(kind, k, v)).join('')}</div>
    <button class="btn ghost small" type="button" data-act="add" data-kind="${kind}">Add ${kind === 'category' ? 'a category' : 'a product'}</button></fieldset>`;
}

function excludedSection(categories, excluded) {
  const all = [...new Set([...categories, ...excluded])].sort();
  if (!all.length) return '<p class="muted">No category in the catalogue yet.</p>';
  return `<div class="checks">${all.map((c) => `<label><input type="checkbox" name="excluded" value="${esc(c)}"${excluded.includes(c) ? ' checked' : ''}> ${esc(c)}</label>`).join('')}</div>`;
}

function previewHtml(p) {
  const blocked = (p.changesets ?? []).filter((c) => c.blockedAfter);
  const freed = (p.changesets ?? []).filter((c) => c.blockedNow && !c.blockedAfter);
  if (!(p.changesets ?? []).length) return '<p class="muted" data-preview-empty>No ChangeSet is waiting for a decision: these settings block nothing today.</p>';
  return `<p data-field="newlyBlocked"><span class="num${p.newlyBlocked ? ' risk' : ''}">${esc(formatValue(p.newlyBlocked, 'integer'))}</span> waiting ChangeSets would be newly blocked ·
      <span class="num">${esc(formatValue(p.noLongerBlocked, 'integer'))}</span> no longer blocked</p>
    ${blocked.length ? `<ul class="preview">${blocked.map((c) => `<li data-preview="${esc(c.id)}" data-blocked="true"><strong class="risk mono">BLOCKED</strong> ${esc(c.problem || c.id)}
      ${violationList(c.violations)}</li>`).join('')}</ul>` : '<p class="success">Nothing waiting would be blocked.</p>'}
    ${freed.length ? `<ul class="preview">${freed.map((c) => `<li data-preview="${esc(c.id)}" data-blocked="false"><strong class="success mono">FREED</strong> ${esc(c.problem || c.id)}</li>`).join('')}</ul>` : ''}`;
}

async function catalogue(storeId) {
  try {
    const products = (await api('GET', storeUrl(storeId, 'products', { limit: CATALOGUE_PAGE }))).products ?? [];
    return { skus: products.map((p) => p.sku), categories: [...new Set(products.map((p) => p.category).filter(Boolean))].sort() };
  } catch {
    return { skus: [], categories: [] }; // the form still works with typed names
  }
}

export async function render(view, { store }) {
  view.innerHTML = `<div class="stack"><h1>Guardrails</h1><div id="gr-body" aria-busy="true">
    <section class="panel"><span class="skeleton"></span><span class="skeleton"></span><span class="skeleton"></span></section></div></div>`;
  const body = view.querySelector('#gr-body');
  let g;
  let cat;
  try {
    [g, cat] = await Promise.all([api('GET', storeUrl(store.id, 'guardrails')), catalogue(store.id)]);
  } catch (err) {
    body.innerHTML = `<section class="panel"><h2 class="risk">Cannot load the guardrails</h2><p>${esc(err.message)}</p></section>`;
    return null;
  }
  if (!view.isConnected) return null;
  body.removeAttribute('aria-busy');
  const slo = g.sloGates ?? [];
  body.innerHTML = `<form class="stack guardrails" novalidate>
    <datalist id="pe-categories">${cat.categories.map((c) => `<option value="${esc(c)}">`).join('')}</datalist>
    <datalist id="pe-skus">${cat.skus.map((s) => `<option value="${esc(s)}">`).join('')}</datalist>
    <section class="panel"><h2>Margin</h2>
      <label class="field">Minimum gross margin for every change, % <input name="minMarginPct" type="number" min="0" max="100" step="0.1" value="${esc(g.minMarginPct ?? '')}" placeholder="no limit"></label>
      <p class="muted">The most specific threshold wins: a product's, then its category's, then this one. A change whose margin cannot be computed (no cost in the catalogue) is blocked.</p>
      ${mapSection('category', 'Per category', g.categoryMinMarginPct)}
      ${mapSection('product', 'Per product', g.productMinMarginPct)}</section>
    <section class="panel"><h2>Discounts and stock</h2>
      <label class="field">Maximum discount, % <input name="maxDiscountPct" type="number" min="0" max="100" step="0.1" value="${esc(g.maxDiscountPct ?? '')}" placeholder="no limit"></label>
      <label class="field">Minimum units in stock for any product a change touches <input name="minStockUnits" type="number" min="0" step="1" value="${esc(g.minStockUnits ?? '')}" placeholder="no limit"></label></section>
    <section class="panel"><h2>Excluded from automation</h2>${excludedSection(cat.categories, g.excludedCategories ?? [])}</section>
    <section class="panel"><h2>SLO gates</h2>${slo.length ? `<ul>${slo.map((s) => `<li class="mono">${esc(s.metric)} ${esc(s.operator)} ${esc(s.threshold)}</li>`).join('')}</ul>`
      : '<p class="muted">None. Set them through the API (PUT …/guardrails, sloGates).</p>'}</section>
    <section class="panel" data-panel="preview" aria-live="polite"><h2>What these settings would block</h2><div data-preview></div></section>
    <p class="risk" role="alert" data-error></p>
    <div class="row"><button class="btn" type="submit">Save guardrails</button>
      <span class="muted mono" data-saved>${g.version ? `VERSION ${esc(g.version)} · ${esc(formatTime(g.updatedAt))}` : 'NEVER SAVED: NO LIMITS'}</span></div>
  </form>`;
  const form = body.querySelector('form');
  const errorEl = form.querySelector('[data-error]');
  const preview = form.querySelector('[data-preview]');
  let timer = null;
  let seq = 0;

  async function check() {
    const mine = ++seq;
    try {
      const p = await api('POST', storeUrl(store.id, 'guardrails/preview'), formConfig(form, slo));
      if (mine !== seq) return;
      if (!p.valid) { // refused as PUT would refuse it: its own message
        form.dataset.valid = 'false';
        errorEl.textContent = p.error?.message ?? 'These settings are not valid';
        return;
      }
      errorEl.textContent = '';
      form.dataset.valid = 'true';
      preview.innerHTML = previewHtml(p);
    } catch (err) {
      if (mine !== seq) return;
      form.dataset.valid = 'false';
      errorEl.textContent = err instanceof ApiError ? err.message : 'Cannot check the guardrails right now';
    }
  }
  const soon = () => { clearTimeout(timer); timer = setTimeout(check, CHECK_MS); };

  form.addEventListener('input', soon);
  form.addEventListener('change', soon);
  form.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    if (btn.dataset.act === 'add') {
      btn.previousElementSibling.insertAdjacentHTML('beforeend', mapRow(btn.dataset.kind));
      btn.previousElementSibling.lastElementChild.querySelector('input').focus();
    } else if (btn.dataset.act === 'remove') {
      btn.closest('.map-row').remove();
      soon();
    }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const saved = await api('PUT', storeUrl(store.id, 'guardrails'), formConfig(form, slo));
      errorEl.textContent = '';
      form.querySelector('[data-saved]').textContent = `SAVED · VERSION ${saved.version} · ${formatTime(saved.updatedAt)}`;
      await check();
    } catch (err) {
      errorEl.textContent = err instanceof ApiError ? err.message : 'Cannot save the guardrails right now';
    } finally {
      submit.disabled = false;
    }
  });
  await check();
  return () => clearTimeout(timer);
}
