// Local component of the funnel page (epic 8: FunnelVisualization is local, not global).
// <pe-funnel-visualization selected="shipping" steps='[{"step":"cart","sessions":…,"conversion":…,
//   "dropOff":…,"problem":false},…]' total="9120">
// Props: `steps` (JSON attribute or the .steps property), `total` (sessions entering), `selected`.
// Each step is a button (keyboard reachable); choosing one fires `pe-step-select` {detail:{step}}.
// Problem steps are outlined in risk red with a PROBLEM badge; drop-off % is monospace (UX-8).
// Slots: `header` (replaces the column header), `footer`.
import { esc } from '../../../lib/escape.js';
import { formatValue } from '../../../lib/format.js';

const CSS_URL = import.meta.resolve('../../../components/components.css'); // fingerprinted (import map)
const NAMES = { cart: 'Cart', checkout: 'Checkout', shipping: 'Shipping', payment: 'Payment', confirmation: 'Confirmation' };

export class PeFunnelVisualization extends HTMLElement {
  static observedAttributes = ['steps', 'total', 'selected'];
  #steps = null;

  get steps() {
    if (this.#steps) return this.#steps;
    try { return JSON.parse(this.getAttribute('steps') ?? '[]'); } catch { return []; }
  }
  set steps(v) { this.#steps = v; this.render(); }

  connectedCallback() { this.render(); }
  attributeChangedCallback(name) { if (name === 'steps') this.#steps = null; if (this.isConnected) this.render(); }

  render() {
    const root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
    const steps = this.steps;
    const max = Math.max(1, Number(this.getAttribute('total')) || 0, ...steps.map((s) => s.sessions || 0));
    const selected = this.getAttribute('selected');
    root.innerHTML = `<link rel="stylesheet" href="${CSS_URL}"><div class="funnel" part="funnel">
      <slot name="header"><div class="head" aria-hidden="true"><span class="label">Step</span><span class="label">Sessions reaching</span>
        <span class="label">Sessions</span><span class="label conv">Conversion</span><span class="label">Drop-off</span></div></slot>
      ${steps.map((s) => `<button type="button" class="step${s.problem ? ' problem' : ''}" part="step${s.problem ? ' problem' : ''}"
          data-step="${esc(s.step)}" aria-pressed="${s.step === selected}"
          aria-label="${esc(NAMES[s.step] ?? s.step)}: ${esc(s.sessions)} sessions, drop-off ${esc(formatValue(s.dropOff, 'percent1'))}${s.problem ? ', problem step' : ''}">
        <span class="name">${esc(NAMES[s.step] ?? s.step)}${s.problem ? ' <span class="label risk-tag">▲ problem</span>' : ''}</span>
        <span class="track"><span data-w="${((s.sessions || 0) / max * 100).toFixed(2)}"></span></span>
        <span class="cell num sessions">${esc(formatValue(s.sessions, 'integer'))}</span>
        <span class="cell num conv">${esc(formatValue(s.conversion, 'percent1'))}</span>
        <span class="cell num drop">${esc(formatValue(s.dropOff, 'percent1'))}</span>
      </button>`).join('')}
      <slot name="footer"></slot></div>`;
    for (const bar of root.querySelectorAll('.track > span')) bar.style.width = `${bar.dataset.w}%`;
    for (const btn of root.querySelectorAll('.step')) {
      btn.addEventListener('click', () => {
        this.dispatchEvent(new CustomEvent('pe-step-select', { detail: { step: btn.dataset.step }, bubbles: true, composed: true }));
      });
    }
  }
}

if (!customElements.get('pe-funnel-visualization')) customElements.define('pe-funnel-visualization', PeFunnelVisualization);
