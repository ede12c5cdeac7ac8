// Reads JSON bytes the way the server does (pe_json_parse in src/core/json.c, then cJSON 1.7.15),
// so the Zod side of the corpus agreement test judges the same value the C validator judges.
// JSON.parse would not do: it decodes invalid UTF-8 into U+FFFD, lets the last of two equal keys
// win, refuses raw control characters inside strings and cJSON's lenient numbers ("01", "1."),
// and knows nothing of the server's rules and cJSON's quirks (a \u0000 escape is refused; a
// leading UTF-8 BOM is skipped; a \uXXXX that is not four hex digits reads as a NUL, which ends
// the C string).
//
// parseLikeServer(bytes) → { ok: true, value, duplicateKeys } | { ok: false, reason }.
// duplicateKeys counts objects that name a key twice: the C validator refuses such an event
// wherever the key appears, and the parsed value (last key wins) cannot show it to Zod.

const MAX_DEPTH = 64; // PE_JSON_MAX_DEPTH
const STRTOD_PREFIX = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;

class ParseError extends Error {}

export function parseLikeServer(bytes) {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  if (buf.length === 0) return { ok: false, reason: 'empty' };
  if (buf.includes(0)) return { ok: false, reason: 'NUL byte' };
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return { ok: false, reason: 'invalid UTF-8' };
  }
  const p = new Parser(text);
  if (text.startsWith('\ufeff')) p.i = 1; // cJSON skips a byte order mark
  try {
    p.ws();
    const value = p.value(0);
    p.ws();
    if (p.i !== text.length) throw new ParseError(`trailing data at ${p.i}`);
    return { ok: true, value, duplicateKeys: p.duplicates };
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, reason: err.message };
    throw err;
  }
}

class Parser {
  constructor(text) {
    this.s = text;
    this.i = 0;
    this.duplicates = 0;
  }

  // pe_json_parse allows only the four JSON whitespace characters between tokens.
  ws() {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.i++;
      else if (c !== undefined && c.charCodeAt(0) < 0x20) throw new ParseError('control byte');
      else return;
    }
  }

  value(depth) {
    const c = this.s[this.i];
    if (c === '{' || c === '[') {
      if (depth + 1 > MAX_DEPTH) throw new ParseError('too deep');
      return c === '{' ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['null', null], ['true', true], ['false', false]]) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    throw new ParseError(`unexpected ${JSON.stringify(c)} at ${this.i}`);
  }

  object(depth) {
    this.i++; // {
    const out = {};
    const seen = new Set();
    let dup = false;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') throw new ParseError('expected a key');
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ':') throw new ParseError('expected :');
      this.i++;
      this.ws();
      const v = this.value(depth);
      if (seen.has(key)) dup = true;
      seen.add(key);
      // An own data property even for "__proto__".
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') break;
      if (c !== ',') throw new ParseError('expected , or }');
    }
    if (dup) this.duplicates++;
    return out;
  }

  array(depth) {
    this.i++; // [
    const out = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') break;
      if (c !== ',') throw new ParseError('expected , or ]');
    }
    return out;
  }

  // cJSON: raw control characters are kept; \b \f \n \r \t \" \\ \/ and \uXXXX (surrogate pairs
  // joined, a lone low surrogate or an unpaired high one refused) are the only escapes; a \uXXXX
  // that is not four hex digits reads as 0, and a 0 ends the C string.
  string() {
    this.i++; // "
    let out = '';
    let ended = false; // a NUL was decoded: the rest is invisible to C
    for (;;) {
      if (this.i >= this.s.length) throw new ParseError('unterminated string');
      const c = this.s[this.i];
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c !== '\\') {
        if (!ended) out += c;
        this.i++;
        continue;
      }
      const e = this.s[this.i + 1];
      if (e === undefined) throw new ParseError('unterminated string');
      const simple = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', '/': '/' }[e];
      if (simple !== undefined) {
        if (!ended) out += simple;
        this.i += 2;
        continue;
      }
      if (e !== 'u') throw new ParseError('bad escape');
      if (this.s.startsWith('u0000', this.i + 1)) throw new ParseError('\\u0000 in a string');
      const first = this.hex4(this.i + 2);
      let cp;
      if (first >= 0xdc00 && first <= 0xdfff) throw new ParseError('lone low surrogate');
      if (first >= 0xd800 && first <= 0xdbff) {
        if (this.s[this.i + 6] !== '\\' || this.s[this.i + 7] !== 'u') throw new ParseError('unpaired surrogate');
        const second = this.hex4(this.i + 8);
        if (second < 0xdc00 || second > 0xdfff) throw new ParseError('bad low surrogate');
        cp = 0x10000 + (((first & 0x3ff) << 10) | (second & 0x3ff));
        this.i += 12;
      } else {
        cp = first;
        this.i += 6;
      }
      if (cp === 0) ended = true;
      else if (!ended) out += String.fromCodePoint(cp);
    }
  }

  hex4(at) {
    const h = this.s.slice(at, at + 4);
    // cJSON checks that six bytes remain before the closing quote; short input fails.
    if (h.length < 4 || h.includes('"')) throw new ParseError('short \\u escape');
    return /^[0-9a-fA-F]{4}$/.test(h) ? parseInt(h, 16) : 0;
  }

  number() {
    let run = '';
    for (let k = this.i; k < this.s.length; k++) {
      const c = this.s[k];
      if ((c >= '0' && c <= '9') || c === '+' || c === '-' || c === 'e' || c === 'E' || c === '.') run += c;
      else break;
    }
    const m = STRTOD_PREFIX.exec(run);
    if (!m) throw new ParseError('bad number');
    this.i += m[0].length;
    return Number(m[0]);
  }
}
