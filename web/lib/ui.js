// Pieces of the decision-loop pages written once: a segment in words, the evidence table of a
// finding or ChangeSet, the auto-rollback promise, what a guardrail refusal is called, and the
// scroll to an address's #fragment.
import { esc } from './escape.js';
import { formatValue } from './format.js';

export const ROLLBACK_PROMISE = 'AUTO-ROLLBACK: ARMED • DEVIATION > 5% = AUTO-KILL';

/** {"device":"mobile"} → "device mobile"; none → "every visitor". */
export function segmentText(segment) {
  const parts = Object.entries(segment ?? {}).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : 'every visitor';
}

/** The DataPoints of a finding, recommendation or hypothesis as a table ('' when none). */
export function evidenceTable(evidence) {
  const rows = (evidence ?? []).map((e) => `<tr><td>${esc(String(e.metric ?? '').replace(/_/g, ' '))}</td>
      <td class="num">${esc(formatValue(e.value, e.unit === 'ratio' ? 'percent' : 'number'))}</td>
      <td class="num">${esc(formatValue(e.sampleSize, 'integer'))}</td><td class="mono">${esc(e.period ?? '')}</td></tr>`).join('');
  return rows ? `<div class="scroll-x"><table><thead><tr><th>Evidence</th><th class="num">Value</th><th class="num">Sessions</th><th>Period</th></tr></thead><tbody>${rows}</tbody></table></div>` : '';
}

/** What a guardrail violation's kind is called on a blocked card. */
const VIOLATION_TITLES = {
  margin: 'MARGIN VIOLATION',
  margin_unknown: 'MARGIN UNKNOWN',
  discount: 'DISCOUNT LIMIT',
  stock: 'STOCK PROTECTION',
  excluded_category: 'EXCLUDED CATEGORY',
};

/** "BLOCKED: MARGIN VIOLATION • STOCK PROTECTION" for a list of violations. */
export function blockedTitle(violations) {
  const kinds = [...new Set((violations ?? []).map((v) => VIOLATION_TITLES[v.kind] ?? String(v.kind ?? 'GUARDRAIL').toUpperCase()))];
  return `BLOCKED: ${kinds.join(' • ') || 'GUARDRAIL VIOLATION'}`;
}

/** Each violation's own sentence, as a list. */
export function violationList(violations) {
  return `<ul class="violations">${(violations ?? []).map((v) => `<li>${esc(v.message)}</li>`).join('')}</ul>`;
}

/** The storefront's install snippet for a publishable key (comment: a note after the call). */
export function sdkSnippet(key, comment) {
  const tail = comment ? ` // ${esc(comment)}` : '';
  return `<pre><code data-snippet>&lt;script src="${esc(location.origin)}/sdk/pe.js"&gt;&lt;/script&gt;
&lt;script&gt;pe.init({ key: '${esc(key)}' });${tail}&lt;/script&gt;</code></pre>`;
}

/** Copies el's text to the clipboard, or selects it when the page may not; says which in status. */
export async function copyText(el, status) {
  try {
    await navigator.clipboard.writeText(el.textContent);
    status.textContent = 'Copied to the clipboard';
  } catch {
    // no clipboard access (an insecure origin, a denied permission): select it for Ctrl+C
    getSelection().selectAllChildren(el);
    status.textContent = 'Selected: press Ctrl+C (⌘C) to copy';
  }
}

/** Scrolls the element the address's #fragment names inside root into view, when there is one. */
export function scrollToHash(root) {
  const target = location.hash ? root.querySelector(location.hash.replace(/[^#\w-]/g, '')) : null;
  target?.scrollIntoView();
}
