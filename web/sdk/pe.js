/*! Profit Engine storefront SDK (/sdk/pe.js), no dependencies, ES2017. Invariants:
 * 1. Harmless: no exception reaches the page; nothing blocks (pe.flags() answers defaults after
 *    its timeout).
 * 2. At least once: an event leaves the queue (localStorage, at most 500) only when the server
 *    stored (200) or refused it (4xx but 408/429, or listed in `rejected`); the rest is retried
 *    with backoff and jitter. The server stores each eventId once.
 * 3. consent(false) stops all sending and tracking and empties the queue.
 */
(function (w) {
  'use strict';
  if (!w || w.pe) return;
  var d = w.document, nav = w.navigator || {}, loc = w.location;
  var VERSION = '1.0.0', MAX_QUEUE = 500, SESSION_MS = 30 * 60 * 1000, MAX_BACKOFF = 300000;
  var PFX = 'pe_';
  var cs = d && d.currentScript, scriptOrigin;
  try { scriptOrigin = cs && cs.src ? new URL(cs.src).origin : loc.origin; } catch (e) { scriptOrigin = ''; }

  var cfg = null, consented = true, queue = [], pre = [], lastHref = '', timer = 0, retryAt = 0,
    attempt = 0, chain = Promise.resolve(), mem = {};

  function log() {
    if (cfg && cfg.debug && w.console && console.debug) {
      try { console.debug.apply(console, ['[pe]'].concat([].slice.call(arguments))); } catch (e) { /* ignore */ }
    }
  }
  // f, swallowing what it throws (invariant 1).
  function safe(f) {
    return function () {
      try { return f.apply(this, arguments); } catch (e) { log('error', e); }
    };
  }

  // ---- storage: localStorage, else a cookie (small values only), else this page's memory ----
  function lsGet(k) { try { return w.localStorage.getItem(PFX + k); } catch (e) { return null; } }
  function lsSet(k, v) {
    try {
      if (v == null) w.localStorage.removeItem(PFX + k); else w.localStorage.setItem(PFX + k, v);
      return true;
    } catch (e) { return false; }
  }
  function get(k) {
    var v = lsGet(k);
    if (v != null) return v;
    try {
      var m = d.cookie.match(new RegExp('(?:^|; )' + PFX + k + '=([^;]*)'));
      if (m) return decodeURIComponent(m[1]);
    } catch (e) { /* cookies disabled */ }
    return k in mem ? mem[k] : null;
  }
  // cookie: small values may fall back to a first-party cookie.
  function set(k, v, cookie) {
    if (v == null) delete mem[k]; else mem[k] = v;
    if (lsSet(k, v) || !cookie) return;
    try {
      d.cookie = PFX + k + '=' + (v == null ? '' : encodeURIComponent(v)) + '; path=/; max-age=' +
        (v == null ? 0 : 31536000) + '; SameSite=Lax' + (loc.protocol === 'https:' ? '; Secure' : '');
    } catch (e) { /* cookies disabled */ }
  }
  function parse(s) { try { return s ? JSON.parse(s) : null; } catch (e) { return null; } }

  // ---- ids and small helpers ----
  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) { try { return c.randomUUID(); } catch (e) { /* insecure context */ } }
    var b = new Uint8Array(16), i, h = '';
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    for (i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + (i === 3 || i === 5 || i === 7 || i === 9 ? '-' : '');
    return h;
  }
  // Cuts s to at most n UTF-8 bytes without splitting a character.
  function cut(s, n) {
    s = s == null ? '' : String(s);
    if (s.length * 3 <= n) return s;
    var out = '', bytes = 0;
    for (var ch of s) {
      var c = ch.codePointAt(0), l = c < 128 ? 1 : c < 2048 ? 2 : c < 65536 ? 3 : 4;
      if (bytes + l > n) break;
      bytes += l;
      out += ch;
    }
    return out;
  }
  function assign(t) {
    for (var i = 1; i < arguments.length; i++) {
      var s = arguments[i];
      if (s) for (var k in s) if (Object.prototype.hasOwnProperty.call(s, k)) t[k] = s[k];
    }
    return t;
  }

  // ---- identity and session ----
  function anonymousId() {
    var id = get('aid');
    if (!id || id.length > 64) set('aid', id = uuid(), true);
    return id;
  }
  function utmOf(href) {
    var out = {}, any = false;
    try {
      var q = new URL(href).searchParams;
      ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) {
        var v = q.get('utm_' + k);
        if (v) { out[k] = cut(v, 256); any = true; }
      });
    } catch (e) { /* not a URL */ }
    return any ? out : null;
  }
  // Rotated after 30 idle minutes or by a new campaign; keeps the UTM it started with.
  function session(utm) {
    var s = parse(get('sess')), now = Date.now();
    var camp = utm ? (utm.source || '') + '|' + (utm.campaign || '') : null;
    if (!s || !s.id || now - s.t > SESSION_MS || (camp && camp !== s.c)) {
      s = { id: uuid(), c: camp || '', u: utm || null, r: (/\/\/(?:www\.)?([^/:?#]+)/.exec(lastRef) || 0)[1], v: get('seen') ? 'returning' : 'new' };
      set('seen', 1, true);
    }
    s.t = now;
    set('sess', JSON.stringify(s), true);
    return s;
  }
  function device() {
    var ua = nav.userAgent || '';
    if (/iPad|Tablet|PlayBook|Silk|Kindle|(Android(?!.*Mobile))/i.test(ua)) return 'tablet';
    if (/Mobi|iPhone|iPod|Android|BlackBerry|Opera Mini|IEMobile/i.test(ua)) return 'mobile';
    if (nav.userAgentData && nav.userAgentData.mobile) return 'mobile';
    // iPadOS presents itself as a Mac: a touch screen gives it away.
    if (/Macintosh/.test(ua) && nav.maxTouchPoints > 1) return 'tablet';
    if (/bot|crawl|spider|headless/i.test(ua)) return 'other';
    return ua ? 'desktop' : 'other';
  }

  // ---- events ----
  var NAMES = {
    productViewed: 'storefront.product.viewed',
    addToCart: 'storefront.cart.item_added',
    cartViewed: 'storefront.cart.viewed',
    checkoutStarted: 'checkout.session.started',
    shippingSubmitted: 'checkout.shipping.submitted',
    paymentSubmitted: 'checkout.payment.submitted',
    orderCompleted: 'checkout.order.completed'
  };

  function record(name, props, custom, utm) {
    if (!consented) return;
    if (!cfg) return void (pre.length < 100 && pre.push([name, props, custom]));
    if (typeof name !== 'string' || !/^(storefront|checkout|experiment|custom)\.[a-z0-9_]+\.[a-z0-9_]+$/.test(name)) {
      return void log('ignored event with a bad name', name);
    }
    var s = session(utm), href = loc.href, uid = get('uid');
    var ctx = {
      page: {
        url: cut(href, 2048),
        path: cut(loc.pathname, 1024),
        referrer: cut(lastRef, 2048),
        title: cut(d.title, 512)
      },
      device: { type: device() },
      userAgent: cut(nav.userAgent, 1024),
      locale: cut(nav.language || '', 35)
    };
    if (s.u) ctx.utm = s.u;
    var ev = {
      eventId: uuid(),
      name: name,
      timestamp: stamp(),
      sessionId: s.id,
      anonymousId: anonymousId(),
      context: ctx,
      properties: assign({}, props)
    };
    if (uid) ev.userId = uid;
    if (custom && typeof custom === 'object') ev.custom = assign({}, custom);
    // A copy; what cannot be serialised fails here, once.
    ev = JSON.parse(JSON.stringify(ev));
    queue.push(ev);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    save();
    log('queued', name, ev);
    if (queue.length >= cfg.maxBatch) flush(0, 1);
    schedule(cfg.flushInterval);
    return ev.eventId;
  }
  // Strictly increasing, so events of one millisecond keep their order.
  var lastT = 0;
  function stamp() {
    var t = Math.max(Date.now(), lastT + 1);
    lastT = t;
    return new Date(t).toISOString();
  }

  var lastRef = d ? d.referrer : '', loaded = 0;
  // A campaign comes with a page load; single-page navigations keep the session's.
  function pageView(force) {
    var href = loc.href;
    if (href === lastHref && !force) return;
    if (lastHref) lastRef = lastHref;
    lastHref = href;
    record('storefront.page.viewed', {}, null, loaded++ ? null : utmOf(href));
  }

  // ---- the queue and delivery ----
  function qkey() { return 'q_' + cfg.key.slice(-12); }
  function save() {
    if (cfg) set(qkey(), queue.length ? JSON.stringify(queue) : null);
  }
  function post(path, body, keepalive) {
    return fetch(cfg.endpoint + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + cfg.key },
      body: body,
      keepalive: keepalive,
      credentials: 'omit'
    });
  }
  function schedule(ms) {
    if (!cfg || !consented) return;
    var at = Math.max(Date.now() + ms, retryAt);
    if (timer && timer.at <= at) return;
    clearTimeout(timer && timer.id);
    timer = { at: at, id: setTimeout(safe(function () { timer = 0; flush(); }), at - Date.now()) };
  }
  function drop(ids) {
    queue = queue.filter(function (e) { return !ids[e.eventId]; });
    save();
  }
  // Sends the oldest batch; resolves true when the queue may go on, false when it must wait.
  function sendBatch() {
    var batch = queue.slice(0, cfg.maxBatch), ids = {};
    batch.forEach(function (e) { ids[e.eventId] = 1; });
    var body = JSON.stringify({ events: batch, sentAt: new Date().toISOString() });
    var status = 0;
    return post('/v1/events', body, body.length < 60000).then(function (res) {
      status = res.status;
      if (status === 200) {
        return res.json().then(function (j) {
          if (j && j.rejected && j.rejected.length) log('rejected', j.rejected);
        }, function () { /* stored all the same */ });
      }
      var ra = parseFloat(res.headers.get('Retry-After'));
      if (status >= 500 || status === 408 || status === 429) throw { ra: ra };
      // Too large: smaller batches (a lone event too large goes).
      if (status === 413 && batch.length > 1) { cfg.maxBatch = batch.length >> 1; ids = {}; return; }
      log('refused', status);
    }).then(function () {
      attempt = 0;
      retryAt = 0;
      drop(ids);
      return true;
    }, function (e) {
      attempt++;
      var wait = Math.min(MAX_BACKOFF, 1000 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
      if (e && e.ra >= 0) wait = Math.max(wait, e.ra * 1000);
      retryAt = Date.now() + wait;
      log('retry in', Math.round(wait), 'ms', status || e);
      return false;
    }).then(function (go) {
      if (queue.length) schedule(go ? cfg.flushInterval : 0);
      return go;
    });
  }

  // Batch after batch until done or a failure; full: full batches only; force: skip a backoff.
  function flush(force, full) {
    if (!cfg) return Promise.resolve();
    if (force) retryAt = 0;
    var p = chain.then(function loop() {
      if (!consented || queue.length < (full ? cfg.maxBatch : 1)) return;
      if (retryAt > Date.now()) return schedule(0);
      return sendBatch().then(function (go) { if (go) return loop(); });
    });
    chain = p.catch(function (e) { log('flush', e); });
    return chain;
  }

  // Beacons when the page goes away; the events stay queued (the answer is never seen).
  var beaconed = {};
  function beacon() {
    if (!cfg || !consented || !nav.sendBeacon || nav.onLine === false) return;
    var todo = queue.filter(function (e) { return !beaconed[e.eventId]; });
    for (var i = 0; i < todo.length; i += cfg.maxBatch) {
      var batch = todo.slice(i, i + cfg.maxBatch);
      if (!nav.sendBeacon(cfg.endpoint + '/v1/events?key=' + encodeURIComponent(cfg.key), JSON.stringify({ events: batch, sentAt: new Date().toISOString() }))) break;
      batch.forEach(function (e) { beaconed[e.eventId] = 1; });
    }
  }

  // ---- flags: one OFREP bulk evaluation per page path and session ----
  var fmemo = {};
  function ss(k, v) {
    try { var s = w.sessionStorage; return v ? s.setItem(PFX + k, v) : s.getItem(PFX + k); } catch (e) { return null; }
  }
  function flagSet(m) {
    m = m || 0;
    return {
      ok: !!m,
      variant: function (k) { return m[k] && m[k].variant; },
      value: function (k, def) {
        var v = m[k] ? m[k].value : def;
        return v === undefined || (def !== undefined && typeof v !== typeof def) ? def : v;
      }
    };
  }
  function flags(o) {
    o = o || {};
    if (!cfg || !consented) return Promise.resolve(flagSet());
    var s = session(), k = 'f' + s.id + loc.pathname, m = parse(ss(k)), ctx;
    if (fmemo[k]) return fmemo[k];
    if (m) return fmemo[k] = Promise.resolve(flagSet(m));
    ctx = { targetingKey: anonymousId(), sessionId: s.id, device: device(), path: loc.pathname, userId: get('uid') || undefined };
    for (m in s.u) ctx['utm_' + m] = s.u[m];
    m = s.u || 0; // the segment dimensions, as the aggregation has them
    ctx.source = (m.source || s.r || 'direct').toLowerCase();
    ctx.campaign = m.campaign && m.campaign.toLowerCase();
    ctx.customer = s.v;
    return fmemo[k] = Promise.race([post('/ofrep/v1/evaluate/flags', JSON.stringify({ context: assign(ctx, cfg.context, o.context) })).then(function (r) {
      if (!r.ok) throw r.status;
      return r.json();
    }).then(function (j) {
      m = {};
      j.flags.forEach(function (f) { if (!f.errorCode) m[f.key] = f; });
      ss(k, JSON.stringify(m));
      return flagSet(m);
    }), new Promise(function (r) {
      setTimeout(r, o.timeout >= 0 ? o.timeout : cfg.flagsTimeout, flagSet());
    })]).catch(function (e) { log('flags', e); return flagSet(); });
  }

  // ---- the public API ----
  var api = {
    version: VERSION,
    init: safe(function (o) {
      if (cfg) return log('init: already initialised');
      o = o || {};
      if (typeof o.key !== 'string' || !/^pk_/.test(o.key)) {
        if (w.console) console.warn('[pe] init: a publishable key (pk_…) is required');
        return;
      }
      cfg = {
        key: o.key,
        endpoint: String(o.endpoint || scriptOrigin || loc.origin).replace(/\/+$/, ''),
        flushInterval: o.flushInterval >= 0 ? +o.flushInterval : 2000,
        maxBatch: Math.min(Math.max(+o.maxBatch || 20, 1), 500),
        flagsTimeout: o.flagsTimeout >= 0 ? +o.flagsTimeout : 300,
        context: o.context,
        debug: !!o.debug
      };
      if (typeof o.consent === 'boolean') api.consent(o.consent);
      else consented = get('consent') !== '0';
      var stored = parse(lsGet(qkey()));
      if (stored && stored.length) {
        var have = {};
        queue.forEach(function (e) { have[e.eventId] = 1; });
        queue = stored.filter(function (e) { return e && e.eventId && !have[e.eventId]; }).concat(queue).slice(-MAX_QUEUE);
      }
      if (!consented) queue = [];
      save();
      var left = queue.length; // from earlier pages: send at once
      if (o.autoPageView !== false) pageView();
      var p = pre;
      pre = [];
      p.forEach(function (a) { record(a[0], a[1], a[2]); });
      if (left) schedule(0);

      var h = w.history, push = h && h.pushState;
      if (push && o.autoPageView !== false) {
        h.pushState = function () {
          var r = push.apply(this, arguments);
          setTimeout(safe(pageView), 0); // after the app set the title
          return r;
        };
        w.addEventListener('popstate', safe(function () { setTimeout(safe(pageView), 0); }));
      }
      w.addEventListener('pagehide', safe(beacon));
      d.addEventListener('visibilitychange', safe(function () { if (d.visibilityState === 'hidden') beacon(); }));
      w.addEventListener('online', safe(function () { retryAt = 0; attempt = 0; flush(); }));
    }),
    track: safe(function (name, props, custom) { return record(name, props, custom); }),
    page: safe(function () { pageView(1); }),
    identify: safe(function (userId) {
      var u = userId == null ? '' : cut(String(userId).replace(/[\x00-\x1f\x7f]/g, ''), 64);
      set('uid', u || null, true);
    }),
    consent: safe(function (yes) {
      consented = !!yes;
      set('consent', consented ? null : '0', true);
      if (!consented) {
        queue = [];
        pre = [];
        if (cfg) save();
        clearTimeout(timer && timer.id);
        timer = 0;
      }
    }),
    flush: function () {
      try { return flush(true).then(function () {}, function () {}); } catch (e) { return Promise.resolve(); }
    },
    flags: function (o) {
      try { return flags(o); } catch (e) { return Promise.resolve(flagSet()); }
    },
    // What the SDK would send next (a copy), for debugging.
    queued: safe(function () { return JSON.parse(JSON.stringify(queue)); }),
    ids: safe(function () {
      var s = parse(get('sess'));
      return { anonymousId: anonymousId(), sessionId: s && s.id, userId: get('uid') };
    })
  };
  Object.keys(NAMES).forEach(function (m) {
    api[m] = safe(function (props, custom) { return record(NAMES[m], props, custom); });
  });
  w.pe = api;
})(typeof window !== 'undefined' ? window : null);
