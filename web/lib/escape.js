// HTML escaping shared by the pages and components. The dashboard builds its markup as template
// literals (innerHTML, shadow roots), so every value in them that is not a constant of the code —
// API data, attributes, URL parameters, error messages — goes through esc() first.

/**
 * s made safe as HTML text and as a quoted attribute value (double or single quotes): & < > " '
 * become the numeric references &#38; &#60; &#62; &#34; &#39;. null and undefined give '';
 * anything else is String(s) first. Not enough for an unquoted attribute, a URL attribute (a
 * javascript: URL stays one), or the contents of <script> and <style>.
 */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
