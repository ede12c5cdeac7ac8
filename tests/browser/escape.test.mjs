// web/lib/escape.js, the dashboard's one HTML escape: what it rewrites, that Chromium's HTML
// parser reads escaped text back unchanged as text and inside double- and single-quoted attribute
// values (none of it becomes markup or an attribute of its own), and that no page or component of
// web/ carries an escape of its own beside it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { esc } from '../../web/lib/escape.js';
import { launchBrowser } from './lib/browser.mjs';

const WEB = new URL('../../web/', import.meta.url);

const HOSTILE = [
  '<script>window.pwned = 1</script>',
  '<img src=x onerror="window.pwned = 1">',
  '" onmouseover="window.pwned = 1" x="',
  "' onmouseover='window.pwned = 1' x='",
  '&amp; &#60; &lt &',
  '</p></textarea></title><b>bold</b><!--',
  'Café ☕ — 100 % `${x}` \\ / =',
  '',
];

test("esc rewrites & < > \" ' as numeric references and leaves everything else", () => {
  assert.equal(esc(`<a href="x" title='y'>&</a>`),
    '&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
  assert.equal(esc('Café ☕ — 100 % `${x}` \\ / ='), 'Café ☕ — 100 % `${x}` \\ / =');
  assert.equal(esc(null), '');
  assert.equal(esc(undefined), '');
  assert.equal(esc(0), '0');
  assert.equal(esc(false), 'false');
  assert.equal(esc(12.5), '12.5');
});

describe('escaped text in Chromium', () => {
  let browser;
  let page;
  before(async () => {
    browser = await launchBrowser();
    page = await browser.newPage();
  });
  after(async () => { await browser?.close(); });

  test('reads back unchanged as text and in quoted attribute values, and runs nothing', async () => {
    const html = HOSTILE.map((s, i) => `<p id="t${i}" data-d="${esc(s)}" data-s='${esc(s)}'>${esc(s)}</p>`).join('');
    await page.setContent(`<!doctype html><html><head><title>${esc(HOSTILE[5])}</title></head><body>${html}</body></html>`);
    const got = await page.evaluate((n) => ({
      pwned: window.pwned ?? null,
      title: document.title,
      elements: document.body.querySelectorAll('*').length,
      read: Array.from({ length: n }, (_, i) => {
        const p = document.getElementById(`t${i}`);
        return { text: p.textContent, d: p.dataset.d, s: p.dataset.s, attributes: p.attributes.length };
      }),
    }), HOSTILE.length);
    assert.equal(got.pwned, null);
    assert.equal(got.title, HOSTILE[5]);
    assert.equal(got.elements, HOSTILE.length, 'no element but the paragraphs');
    got.read.forEach((r, i) => assert.deepEqual(r, { text: HOSTILE[i], d: HOSTILE[i], s: HOSTILE[i], attributes: 3 }, `case ${i}`));
  });
});

test('the pages and components import it instead of escaping on their own', () => {
  // A String.replace whose pattern is a character class with & or <: how every copy looked.
  const copy = /\.replace\(\s*\/\[[^\]]*[&<][^\]]*\]/;
  const files = readdirSync(WEB, { recursive: true })
    .filter((f) => /\.(m?js|html)$/.test(f) && !/^(vendor|sdk)\//.test(f));
  assert.ok(files.length > 5, `${files.length} files under web/`);
  const copies = files.filter((f) => copy.test(readFileSync(new URL(f, WEB), 'utf8')));
  assert.deepEqual(copies, ['lib/escape.js']);
});
