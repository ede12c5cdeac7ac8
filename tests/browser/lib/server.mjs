// Starts the profit-engine binary under test (PE_TEST_BINARY) as `serve` on a free loopback
// port, with the private services of `scripts/dev services up` (PE_DATABASE_URL, PE_REDIS_URL
// from the environment), and stops it with SIGTERM.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** Resolves to a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run \`scripts/dev services up\` and ` +
      '`eval "$(scripts/dev env)"` (scripts/dev test does both)');
  }
  return value;
}

/** Runs `profit-engine migrate` on PE_DATABASE_URL (idempotent); throws with its output. */
export function migrate(env = {}) {
  const binary = requireEnv('PE_TEST_BINARY');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['migrate'], {
      env: { ...process.env, PE_LOG_LEVEL: process.env.PE_LOG_LEVEL ?? 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => { output += c; });
    child.stderr.on('data', (c) => { output += c; });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`profit-engine migrate failed (${code ?? signal}):\n${output}`));
    });
  });
}

/** The path of libfaketime (Debian's package, which `scripts/dev deps` installs). */
async function libfaketime() {
  const { stdout } = await promisify(execFile)('dpkg', ['-L', 'libfaketime']);
  const lib = stdout.split('\n').find((l) => l.endsWith('/libfaketime.so.1'));
  assert.ok(lib, 'libfaketime is not installed: run scripts/dev deps');
  return lib;
}

/**
 * Starts `profit-engine serve`, after `migrate` unless migrate is false. Returns { baseUrl, port, log(), stop() }; stop() sends SIGTERM
 * and resolves to the exit code (or the signal name when it had to be killed).
 * clockAt ('YYYY-MM-DD hh:mm:ss', UTC): the server's clock starts at that instant and runs on
 * (libfaketime, as `scripts/dev test --at` runs the whole suite): its "now" — an approval's time,
 * a ChangeSet's start — is then; PostgreSQL and the rest keep the real clock.
 */
export async function startServer({ env = {}, timeoutMs = 30000, migrate: doMigrate = true, clockAt = null } = {}) {
  const binary = requireEnv('PE_TEST_BINARY');
  const databaseUrl = requireEnv('PE_DATABASE_URL');
  const redisUrl = requireEnv('PE_REDIS_URL');
  if (doMigrate) await migrate(env);
  const port = await freePort();
  // The clock as the `faketime` command sets it, but on the server's own process (the command
  // would stand between it and stop()'s SIGTERM). ASan's allocator reads the clock inside malloc,
  // where libfaketime's first lookup mallocs: never returning memory to the OS is the one feature
  // that does (as in scripts/dev).
  const clockEnv = clockAt
    ? { LD_PRELOAD: await libfaketime(), FAKETIME: `@${clockAt}`,
      ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'allocator_release_to_os_interval_ms=-1'].filter(Boolean).join(':') }
    : {};
  const child = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      ...clockEnv,
      PE_LISTEN: `127.0.0.1:${port}`,
      PE_DATABASE_URL: databaseUrl,
      PE_REDIS_URL: redisUrl,
      PE_LOG_LEVEL: process.env.PE_LOG_LEVEL ?? 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 200000) output = output.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = code ?? signal;
      resolve(exited);
    });
    child.on('error', (err) => {
      exited = err.message;
      resolve(exited);
    });
  });

  const baseUrl = `http://127.0.0.1:${port}`;
  const server = {
    baseUrl,
    port,
    log: () => output,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    },
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== null) {
      throw new Error(`profit-engine serve exited (${exited}) before /healthz answered:\n${output}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`/healthz did not answer 200 within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }
}

/**
 * Stops a server startServer started and asserts that it exited with 0 on SIGTERM (a crash, or a
 * leak AddressSanitizer found, shows with the server's log). Accepts null: a before() that failed
 * before the server was up.
 */
export async function stopServer(server) {
  if (!server) return;
  const code = await server.stop();
  assert.equal(code, 0, `profit-engine exited with ${code} after SIGTERM:\n${server.log()}`);
}

/**
 * Runs a command of the binary under test (PE_TEST_BINARY) with the environment and
 * PE_LOG_LEVEL=warn, input (if any) on its stdin; resolves to its stdout, rejects on a non-zero
 * exit with its stderr.
 */
export async function cli(args, input) {
  const bin = requireEnv('PE_TEST_BINARY');
  const env = { ...process.env, PE_LOG_LEVEL: 'warn' };
  if (input === undefined) {
    const { stdout } = await promisify(execFile)(bin, args, { env, maxBuffer: 1 << 24 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${code} ${err}`))));
    child.stdin.end(input);
  });
}

/**
 * Closes a node:http server made by a test (a storefront, an attacker page) at once. close()
 * alone waits for every open connection to end, and a browser that is still running keeps its
 * keep-alive connections for minutes: closing an attacker page's server took 107 s that way.
 * Accepts null.
 */
export function closeHttpServer(srv) {
  if (!srv) return Promise.resolve();
  return new Promise((resolve) => {
    srv.close(() => resolve());
    srv.closeAllConnections();
  });
}
