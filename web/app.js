// Dashboard entry point (native ES modules, no build step): the shell (rail, sidebar,
// breadcrumb), sign-in through /api/v1/auth/login, the store switcher and a client-side router.
// Routes are real paths (/performance, /funnel, /diagnostics, /recommendations, /autopilot,
// /experiments, /guardrails, /audit, /attribution, /notifications, /settings/keys,
// /login; /dev/components, the developers' gallery, is not in the merchant's navigation); the
// server answers index.html for any path without an extension, so deep links survive a reload.
// Page state
// (store, date range, filters, the open funnel step) lives in the query string.
import './components/global.js';
import { api, ApiError } from './lib/api.js';
import { refreshAlerts, startAlerts, stopAlerts, wireAlarmBanner } from './lib/alerts.js';

const $ = (id) => document.getElementById(id);

const ROUTES = {
  '/performance': { section: 'Store performance', key: 'performance', load: () => import('./pages/performance.js'), auth: true },
  '/funnel': { section: 'Funnel', key: 'funnel', load: () => import('./pages/funnel.js'), auth: true },
  '/diagnostics': { section: 'Diagnostics', key: 'diagnostics', load: () => import('./pages/diagnostics.js'), auth: true },
  '/recommendations': { section: 'Recommendations', key: 'recommendations', load: () => import('./pages/recommendations.js'), auth: true },
  '/autopilot': { section: 'Autopilot', key: 'autopilot', load: () => import('./pages/autopilot.js'), auth: true },
  '/experiments': { section: 'Experiment results', key: 'experiments', load: () => import('./pages/experiments.js'), auth: true },
  '/guardrails': { section: 'Guardrails', key: 'guardrails', load: () => import('./pages/guardrails.js'), auth: true },
  '/audit': { section: 'Audit', key: 'audit', load: () => import('./pages/audit.js'), auth: true },
  '/settings/keys': { section: 'Settings › API keys', key: 'keys', load: () => import('./pages/keys.js'), auth: true },
  '/notifications': { section: 'Notifications', key: 'notifications', load: () => import('./pages/notifications.js'), auth: true },
  '/attribution': { section: 'Attribution', key: 'attribution', load: () => import('./pages/attribution.js'), auth: true },
  '/dev/components': { section: 'Components', key: 'components', load: () => import('./pages/components.js'), auth: false },
  '/login': { section: 'Sign in', key: 'login', load: async () => ({ render: renderLogin }), auth: false },
};

const state = { me: null, storeId: null, alertsFor: null, cleanup: null, seq: 0 };

function currentStore() {
  return state.me?.stores.find((s) => s.id === state.storeId) ?? null;
}

function chooseStore(wanted) {
  const stores = state.me?.stores ?? [];
  const pick = stores.find((s) => s.id === wanted) ?? stores.find((s) => s.id === localStorage.getItem('pe.store')) ?? stores[0];
  state.storeId = pick?.id ?? null;
  if (pick) localStorage.setItem('pe.store', pick.id);
}

function renderStoreSwitcher() {
  const sel = $('store-select');
  const stores = state.me?.stores ?? [];
  $('logout').hidden = !state.me;
  if (stores.length > 1) {
    sel.replaceChildren(...stores.map((s) => new Option(`${s.name} (${s.currency})`, s.id, false, s.id === state.storeId)));
    sel.hidden = false;
    $('store-name').hidden = true;
  } else {
    sel.hidden = true;
    $('store-name').hidden = false;
    $('store-name').textContent = stores[0] ? `${stores[0].name} · ${stores[0].currency}` : 'Not signed in';
  }
}

/** Navigates inside the app; keeps ?store= so every page is a deep link. */
export function navigate(url, { replace = false } = {}) {
  const u = new URL(url, location.origin);
  if (state.storeId && ROUTES[u.pathname]?.auth && !u.searchParams.has('store')) u.searchParams.set('store', state.storeId);
  const target = u.pathname + u.search + u.hash;
  if (target !== location.pathname + location.search + location.hash) {
    if (replace) history.replaceState(null, '', target); else history.pushState(null, '', target);
  }
  return route();
}

async function route() {
  const seq = ++state.seq;
  let path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') { history.replaceState(null, '', '/performance' + location.search); path = '/performance'; }
  const params = new URLSearchParams(location.search);
  let def = ROUTES[path];
  if (!def) {
    $('section').textContent = 'Not found';
    setView('<section class="panel"><h1>Not found</h1><p class="muted">No page at this address.</p></section>');
    return;
  }
  if (def.auth && !state.me) {
    def = ROUTES['/login'];
  } else if (def.auth) {
    if (params.get('store') !== state.storeId) chooseStore(params.get('store'));
    renderStoreSwitcher();
    if (state.alertsFor !== state.storeId) {
      state.alertsFor = state.storeId;
      startAlerts(currentStore());
    } else {
      refreshAlerts(currentStore());
    }
  }
  $('section').textContent = def.section;
  document.title = `${def.section} — Profit Engine`;
  for (const a of document.querySelectorAll('[data-route]')) {
    if (a.dataset.route === def.key) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    if (state.storeId && a.dataset.route !== 'components') a.href = `${a.getAttribute('href').split('?')[0]}?store=${encodeURIComponent(state.storeId)}`;
  }
  state.cleanup?.();
  state.cleanup = null;
  const mod = await def.load();
  if (seq !== state.seq) return;
  const view = $('view');
  view.replaceChildren();
  state.cleanup = (await mod.render(view, { store: currentStore(), params, navigate, me: state.me })) ?? null;
}

function setView(html) { $('view').innerHTML = html; }

function renderLogin(view) {
  view.innerHTML = `<section class="panel signin"><h1>Sign in</h1>
    <form id="login" novalidate>
      <label>Email <input name="email" type="email" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button class="btn" type="submit">Sign in</button>
      <p id="login-error" class="error" role="alert"></p>
    </form></section>`;
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    try {
      await api('POST', '/api/v1/auth/login', { email: form.get('email'), password: form.get('password') });
      state.me = await api('GET', '/api/v1/me');
      chooseStore(new URLSearchParams(location.search).get('store'));
      renderStoreSwitcher();
      const p = location.pathname;
      navigate(p === '/login' || !ROUTES[p] ? '/performance' : p + location.search, { replace: true });
    } catch (err) {
      $('login-error').textContent = err instanceof ApiError ? err.message : 'Sign-in failed';
    }
  });
  view.querySelector('input[name=email]').focus();
}

async function start() {
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest?.('a[data-link]');
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(a.getAttribute('href'));
  });
  window.addEventListener('popstate', () => route());
  wireAlarmBanner(currentStore);
  $('store-select').addEventListener('change', (ev) => {
    state.storeId = ev.target.value;
    localStorage.setItem('pe.store', state.storeId);
    const u = new URL(location.href);
    u.searchParams.set('store', state.storeId);
    navigate(u.pathname + u.search);
  });
  $('logout').addEventListener('click', async () => {
    await api('POST', '/api/v1/auth/logout').catch(() => {});
    state.me = null;
    state.storeId = null;
    state.alertsFor = null;
    stopAlerts();
    renderStoreSwitcher();
    navigate('/login');
  });
  fetch('/healthz').then((r) => r.json()).then((h) => { $('server').textContent = `v${h.version} ONLINE`; })
    .catch(() => { $('server').textContent = 'OFFLINE'; });
  // Signed out is an answer here, not a 401 the console would log as an error.
  const session = await api('GET', '/api/v1/auth/session');
  state.me = session.signedIn ? session : null;
  if (state.me) chooseStore(new URLSearchParams(location.search).get('store'));
  renderStoreSwitcher();
  await route();
}

start().catch((err) => { $('server').textContent = `ERROR ${err.message}`; });
