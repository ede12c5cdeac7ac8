// Global Profit Engine components (epic 8 "Key Components"): custom elements whose attributes are
// their customisation props (RETRO-4) and whose named slots let a merchant's own code wrap or
// replace a part (RETRO-5). Each renders into a shadow root styled by components.css (linked,
// because the CSP allows no inline styles).
import { esc } from '../lib/escape.js';
import { formatChange, formatValue } from '../lib/format.js';

// import.meta.resolve applies index.html's import map: the fingerprinted URL (see web.c).
const CSS_URL = import.meta.resolve('./components.css');

function shadow(host, html) {
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  root.innerHTML = `<link rel="stylesheet" href="${CSS_URL}">${html}`;
  return root;
}

class PeElement extends HTMLElement {
  connectedCallback() { this.render(); }
  attributeChangedCallback() { if (this.isConnected) this.render(); }
}

/**
 * <pe-metric-card label value previous change format=currency|number|percent|integer currency
 *                 period invert loading size=s bare>
 * Slots: label, value, delta, footer (default slot). `invert` makes a fall good (green).
 */
export class PeMetricCard extends PeElement {
  static observedAttributes = ['label', 'value', 'previous', 'change', 'format', 'currency', 'period',
    'invert', 'loading', 'size'];

  render() {
    const fmt = this.getAttribute('format') ?? 'number';
    const cur = this.getAttribute('currency') ?? 'EUR';
    const label = esc(this.getAttribute('label'));
    if (this.hasAttribute('loading')) {
      shadow(this, `<div class="card" part="card" aria-busy="true"><slot name="label"><span class="label">${label}</span></slot>
        <span class="skeleton big"></span><span class="skeleton"></span></div>`);
      return;
    }
    const change = this.getAttribute('change');
    const c = change === null || change === '' ? null : Number(change);
    const good = this.hasAttribute('invert') ? -1 : 1;
    const dir = c === null || c === 0 ? 'flat' : c * good > 0 ? 'up' : 'down';
    const prev = this.getAttribute('previous');
    const period = this.getAttribute('period');
    shadow(this, `<div class="card" part="card">
      <slot name="label"><span class="label" part="label">${label}</span></slot>
      <slot name="value"><span class="value num" part="value">${esc(formatValue(this.getAttribute('value'), fmt, cur))}</span></slot>
      <slot name="delta"><span class="delta num ${dir}" part="delta">${esc(formatChange(c))}</span>
        ${prev === null ? '' : `<span class="prev">vs <span class="num previous">${esc(formatValue(prev, fmt, cur))}</span>${period ? ` ${esc(period)}` : ''}</span>`}</slot>
      <slot></slot></div>`);
  }
}

/** <pe-status-badge status=DRAFT|PENDING|PENDING_APPROVAL|ACTIVE|MEASURING|PROVEN|ROLLED_BACK|PERMANENT|ARCHIVED|PROBLEM>
 *  Slot: default (replaces the text). Transitions are instant (UX-ANIM-5). */
export class PeStatusBadge extends PeElement {
  static observedAttributes = ['status', 'label'];
  render() {
    const status = (this.getAttribute('status') ?? 'DRAFT').toUpperCase();
    const cls = status === 'PENDING_APPROVAL' ? 'pending' : status.toLowerCase();
    const text = this.getAttribute('label') ?? status.replace(/_/g, ' ');
    shadow(this, `<span class="badge ${esc(cls)}" part="badge" role="status"><slot>${esc(text)}</slot></span>`);
  }
}

/** <pe-confidence-meter value="0.87" threshold="0.95" label> — a bar with its percentage (UX-9).
 *  Below 80 % risk red, from threshold success green, acid in between. Slot: label. */
export class PeConfidenceMeter extends PeElement {
  static observedAttributes = ['value', 'threshold', 'label'];
  render() {
    const v = Math.max(0, Math.min(1, Number(this.getAttribute('value') ?? 0) || 0));
    const t = Number(this.getAttribute('threshold') ?? 0.95);
    const level = v >= t ? 'high' : v < 0.8 ? 'low' : 'mid';
    const label = esc(this.getAttribute('label') ?? 'Confidence');
    const root = shadow(this, `<slot name="label"><span class="label">${label}</span></slot>
      <div class="meter ${level}" part="meter" role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${(v * 100).toFixed(1)}" aria-label="${label}">
        <div class="bar"><span class="fill" part="fill"></span></div><span class="pct num">${esc(formatValue(v, 'percent1'))}</span></div>`);
    const fill = root.querySelector('.fill');
    requestAnimationFrame(() => { fill.style.width = `${(v * 100).toFixed(2)}%`; });
  }
}

/** <pe-brutal-grid columns="3" min="200px"> — children in a grid of visible 1px #333 lines. */
export class PeBrutalGrid extends PeElement {
  static observedAttributes = ['columns', 'min'];
  render() {
    const root = shadow(this, '<div class="grid" part="grid"><slot></slot></div>');
    const grid = root.querySelector('.grid');
    const cols = this.getAttribute('columns');
    if (cols) grid.style.setProperty('--pe-cols', String(Number(cols) || 1));
    const min = this.getAttribute('min');
    if (min && /^\d+(px|rem|em|%)$/.test(min)) grid.style.setProperty('--pe-min', min);
  }
}

/** <pe-brutal-button variant=action|success|risk|ghost disabled type=button|submit> — instant
 *  inversion on hover, acid focus. Slot: default (the label). Submits its closest form when
 *  type=submit. */
export class PeBrutalButton extends PeElement {
  static observedAttributes = ['variant', 'disabled', 'type'];
  render() {
    const variant = this.getAttribute('variant') ?? 'action';
    const root = shadow(this, `<button part="button" class="${esc(variant)}" type="button"${this.hasAttribute('disabled') ? ' disabled' : ''}><slot></slot></button>`);
    root.querySelector('button').addEventListener('click', (ev) => {
      if (this.hasAttribute('disabled')) { ev.stopPropagation(); return; }
      if (this.getAttribute('type') === 'submit') this.closest('form')?.requestSubmit();
    });
  }
}

const ELEMENTS = {
  'pe-metric-card': PeMetricCard,
  'pe-status-badge': PeStatusBadge,
  'pe-confidence-meter': PeConfidenceMeter,
  'pe-brutal-grid': PeBrutalGrid,
  'pe-brutal-button': PeBrutalButton,
};
for (const [name, cls] of Object.entries(ELEMENTS)) if (!customElements.get(name)) customElements.define(name, cls);
