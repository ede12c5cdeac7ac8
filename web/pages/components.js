// /dev/components: every component in every state, for design review and the browser test.
import './funnel/_components/pe-funnel-visualization.js';

const STEPS = [
  { step: 'cart', sessions: 2390, conversion: 0.262, dropOff: 0.738, problem: false },
  { step: 'checkout', sessions: 1300, conversion: 0.544, dropOff: 0.456, problem: false },
  { step: 'shipping', sessions: 610, conversion: 0.469, dropOff: 0.531, problem: true },
  { step: 'payment', sessions: 500, conversion: 0.82, dropOff: 0.18, problem: false },
  { step: 'confirmation', sessions: 450, conversion: 0.9, dropOff: 0.1, problem: false },
];

export function render(view) {
  view.innerHTML = `<div class="stack">
  <h1>Components</h1>
  <section data-component="pe-metric-card"><h2>pe-metric-card</h2><div class="states">
    <pe-metric-card label="Revenue · up" value="1840.5" previous="1500" change="0.227" format="currency" currency="EUR" period="yesterday"></pe-metric-card>
    <pe-metric-card label="Revenue · down" value="1840.5" previous="2210" change="-0.167" format="currency" currency="EUR" period="yesterday"></pe-metric-card>
    <pe-metric-card label="Orders · flat" value="412" previous="412" change="0" format="integer"></pe-metric-card>
    <pe-metric-card label="Conversion · no previous" value="0.0218" previous="0" change="" format="percent"></pe-metric-card>
    <pe-metric-card label="Cart abandonment · inverted" value="0.71" previous="0.75" change="-0.053" format="percent" invert></pe-metric-card>
    <pe-metric-card label="Loading" loading></pe-metric-card>
    <pe-metric-card label="Slotted value" value="1" format="integer"><span slot="value" class="num">42 ★</span></pe-metric-card>
  </div></section>
  <section data-component="pe-status-badge"><h2>pe-status-badge</h2><div class="row">
    ${['DRAFT', 'PENDING', 'ACTIVE', 'MEASURING', 'PROVEN', 'ROLLED_BACK', 'PERMANENT', 'ARCHIVED', 'PROBLEM'].map((s) => `<pe-status-badge status="${s}"></pe-status-badge>`).join('')}
    <pe-status-badge status="ACTIVE">Slotted: LIVE</pe-status-badge>
  </div></section>
  <section data-component="pe-confidence-meter"><h2>pe-confidence-meter</h2><div class="states">
    <pe-confidence-meter value="0.42" label="Low"></pe-confidence-meter>
    <pe-confidence-meter value="0.87" label="Building"></pe-confidence-meter>
    <pe-confidence-meter value="0.973" label="Significant"></pe-confidence-meter>
    <pe-confidence-meter value="0" label="None yet"></pe-confidence-meter>
  </div></section>
  <section data-component="pe-brutal-grid"><h2>pe-brutal-grid</h2>
    <pe-brutal-grid columns="3" min="120px"><div class="mono" data-cell>01</div><div class="mono" data-cell>02</div><div class="mono" data-cell>03</div><div class="mono" data-cell>04</div></pe-brutal-grid>
  </section>
  <section data-component="pe-brutal-button"><h2>pe-brutal-button</h2><div class="row">
    <pe-brutal-button>Approve</pe-brutal-button>
    <pe-brutal-button variant="success">Inspect</pe-brutal-button>
    <pe-brutal-button variant="risk">Reject</pe-brutal-button>
    <pe-brutal-button variant="ghost">Cancel</pe-brutal-button>
    <pe-brutal-button disabled>Disabled</pe-brutal-button>
  </div></section>
  <section data-component="pe-funnel-visualization"><h2>pe-funnel-visualization (local)</h2>
    <pe-funnel-visualization id="demo-funnel" total="9120"></pe-funnel-visualization>
    <h2>selected step</h2>
    <pe-funnel-visualization id="demo-funnel-selected" total="9120" selected="shipping"></pe-funnel-visualization>
    <h2>empty</h2>
    <pe-funnel-visualization steps="[]"></pe-funnel-visualization>
  </section></div>`;
  for (const id of ['demo-funnel', 'demo-funnel-selected']) view.querySelector(`#${id}`).steps = STEPS;
  return null;
}
