// bench/flags/setup.mjs — creates the benchmark's 20 flags, with the same meaning, in profit-engine
// (admin API, secret key) and in Unleash (admin API, admin token), then checks that both evaluate
// all of them for one context. Run by bench/flags/run; prints one JSON line on success.
//
//   node setup.mjs --pe URL --store ID --sk sk_… --pk pk_…
//                  --unleash URL --admin TOKEN --frontend TOKEN [--experiments N]
//
// The set (the same in both systems; Unleash's frontend API leaves disabled flags out of its
// answer, OFREP lists them with reason DISABLED):
//   8 on/off switches at rollouts 5..100 %          (Unleash: flexibleRollout, no variants)
//   6 string A/B/n splits, 2 or 3 variants          (flexibleRollout 100 % with variants)
//   2 device rules, 2 path rules → a fixed variant  (a constrained strategy before the default one)
//   2 disabled flags
// --experiments N makes the first N splits experiments (profit-engine then records exposures).
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    pe: { type: 'string' }, store: { type: 'string' }, sk: { type: 'string' }, pk: { type: 'string' },
    unleash: { type: 'string' }, admin: { type: 'string' }, frontend: { type: 'string' },
    experiments: { type: 'string', default: '0' },
    only: { type: 'string' }, // pe | unleash (debugging one side)
  },
});
const NEEDS = { pe: ['pe', 'store', 'sk', 'pk'], unleash: ['unleash', 'admin', 'frontend'] };
for (const k of opt.only ? NEEDS[opt.only] ?? ['only'] : [...NEEDS.pe, ...NEEDS.unleash]) {
  if (!opt[k]) throw new Error(`--${k} is required`);
}
const EXPERIMENTS = Number(opt.experiments);

/** The neutral definitions: { key, type: switch|split|rule|disabled, … }. */
function definitions() {
  const out = [];
  [100, 50, 25, 10, 100, 75, 100, 5].forEach((rollout, i) => out.push({ key: `bench-switch-${i + 1}`, type: 'switch', rollout }));
  for (let i = 0; i < 6; i++) {
    const n = i % 2 ? 3 : 2;
    const weights = n === 2 ? [50, 50] : [34, 33, 33];
    out.push({
      key: `bench-split-${i + 1}`, type: 'split', experiment: i < EXPERIMENTS,
      variants: weights.map((w, j) => ({ key: ['control', 'treatment', 'treatment-b'][j], value: `copy-${i + 1}-${j}`, weight: w })),
    });
  }
  for (let i = 0; i < 4; i++) {
    const device = i < 2;
    out.push({
      key: `bench-rule-${i + 1}`, type: 'rule', attribute: device ? 'device' : 'path',
      operator: device ? 'in' : 'starts_with', values: device ? ['mobile'] : ['/checkout'],
    });
  }
  out.push({ key: 'bench-disabled-1', type: 'disabled' }, { key: 'bench-disabled-2', type: 'disabled' });
  return out;
}

function peFlag(d) {
  const onOff = [{ key: 'off', value: false, weight: 0 }, { key: 'on', value: true, weight: 100 }];
  switch (d.type) {
    case 'switch':
      return { key: d.key, enabled: true, rolloutPercentage: d.rollout, variants: onOff, defaultVariant: 'off', rules: [] };
    case 'split':
      return { key: d.key, kind: d.experiment ? 'experiment' : 'release', enabled: true, rolloutPercentage: 100, variants: d.variants, rules: [] };
    case 'rule':
      return {
        key: d.key, enabled: true, rolloutPercentage: 100,
        variants: [{ key: 'default', value: 'default', weight: 100 }, { key: 'matched', value: 'matched', weight: 0 }],
        rules: [{ conditions: [{ attribute: d.attribute, operator: d.operator, values: d.values }], variant: 'matched' }],
      };
    default:
      return { key: d.key, enabled: false, rolloutPercentage: 100, variants: onOff, defaultVariant: 'off', rules: [] };
  }
}

async function call(method, url, headers, body, ok = [200, 201]) {
  const res = await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  if (!ok.includes(res.status)) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

async function setupProfitEngine(defs) {
  const auth = { Authorization: `Bearer ${opt.sk}` };
  for (const d of defs) await call('POST', `${opt.pe}/api/v1/stores/${opt.store}/flags`, auth, peFlag(d));
  const got = await call('POST', `${opt.pe}/ofrep/v1/evaluate/flags`, { Authorization: `Bearer ${opt.pk}` },
    { context: { targetingKey: 'setup-check', device: 'mobile', path: '/checkout/shipping' } });
  const keys = (got.flags ?? []).filter((f) => !f.errorCode).map((f) => f.key);
  if (keys.length !== defs.length) throw new Error(`profit-engine evaluates ${keys.length} of ${defs.length} flags: ${JSON.stringify(got).slice(0, 500)}`);
  return keys.length;
}

async function setupUnleash(defs) {
  const auth = { Authorization: opt.admin };
  const api = `${opt.unleash}/api/admin`;
  const env = `environments/development`;
  for (const name of ['device', 'path']) {
    await call('POST', `${api}/context`, auth, { name, stickiness: false }, [200, 201, 409]);
  }
  const rollout = (key, pct) => ({ name: 'flexibleRollout', parameters: { rollout: String(pct), stickiness: 'default', groupId: key } });
  const variants = (vs) => vs.map((v) => ({
    name: v.key, weight: Math.round((v.weight * 1000) / vs.reduce((s, x) => s + x.weight, 0)), weightType: 'variable',
    stickiness: 'default', payload: { type: 'string', value: String(v.value) },
  }));
  for (const d of defs) {
    const base = `${api}/projects/default/features`;
    await call('POST', base, auth, { name: d.key, type: d.type === 'split' && d.experiment ? 'experiment' : 'release' });
    const strategies = `${base}/${d.key}/${env}/strategies`;
    if (d.type === 'switch') await call('POST', strategies, auth, rollout(d.key, d.rollout));
    if (d.type === 'split') await call('POST', strategies, auth, { ...rollout(d.key, 100), variants: variants(d.variants) });
    if (d.type === 'rule') {
      const op = d.operator === 'in' ? 'IN' : 'STR_STARTS_WITH';
      await call('POST', strategies, auth, {
        ...rollout(d.key, 100), constraints: [{ contextName: d.attribute, operator: op, values: d.values }],
        variants: variants([{ key: 'matched', value: 'matched', weight: 100 }]),
      });
      await call('POST', strategies, auth, { ...rollout(d.key, 100), variants: variants([{ key: 'default', value: 'default', weight: 100 }]) });
    }
    if (d.type !== 'disabled') await call('POST', `${base}/${d.key}/${env}/on`, auth, undefined);
  }
  // Unleash's frontend API answers from a cache refreshed on change events: wait until it has them.
  const want = defs.filter((d) => d.type !== 'disabled').length;
  const deadline = Date.now() + 60000;
  for (;;) {
    const got = await call('POST', `${opt.unleash}/api/frontend`, { Authorization: opt.frontend },
      { context: { userId: 'setup-check', properties: { device: 'mobile', path: '/checkout/shipping' } } });
    const n = (got.toggles ?? []).length;
    // The switch at 5 % (and others) may leave this unit out; all rules and splits are in.
    const must = defs.filter((d) => d.type === 'split' || d.type === 'rule').map((d) => d.key);
    const names = new Set((got.toggles ?? []).map((t) => t.name));
    if (must.every((k) => names.has(k))) return { enabledForCheck: n, enabledFlags: want };
    if (Date.now() > deadline) throw new Error(`Unleash's frontend API shows ${n} flags after 60 s: ${JSON.stringify(got).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const defs = definitions();
const pe = opt.only === 'unleash' ? null : await setupProfitEngine(defs);
const unleash = opt.only === 'pe' ? null : await setupUnleash(defs);
console.log(JSON.stringify({ flags: defs.length, experiments: EXPERIMENTS, profitEngine: { evaluated: pe }, unleash }));
