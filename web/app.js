// Dashboard entry point (native ES module, no build step). Signs the merchant in through
// /api/v1/auth/login and lists their stores; the full dashboard pages build on this shell.
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  const text = await res.text();
  return { status: res.status, data: text ? JSON.parse(text) : null };
}

function showStores(me) {
  $('signin').hidden = true;
  $('stores').hidden = false;
  const list = $('store-list');
  list.replaceChildren(...me.stores.map((s) => {
    const li = document.createElement('li');
    li.textContent = `${s.name} — ${s.currency} — ${s.timezone} — ${s.id}`;
    return li;
  }));
}

function showSignIn() {
  $('stores').hidden = true;
  $('signin').hidden = false;
}

async function start() {
  const health = await api('GET', '/healthz');
  $('server').textContent = health.status === 200 ? `v${health.data.version} ONLINE` : 'OFFLINE';
  const me = await api('GET', '/api/v1/me');
  if (me.status === 200) showStores(me.data); else showSignIn();

  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const res = await api('POST', '/api/v1/auth/login',
      { email: form.get('email'), password: form.get('password') });
    if (res.status === 200) { $('login-error').textContent = ''; showStores(res.data); }
    else $('login-error').textContent = res.data?.error?.message ?? 'sign-in failed';
  });
  $('logout').addEventListener('click', async () => {
    await api('POST', '/api/v1/auth/logout');
    showSignIn();
  });
}

start().catch((err) => { $('server').textContent = `ERROR ${err.message}`; });
