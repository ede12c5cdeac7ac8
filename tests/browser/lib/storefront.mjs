// A merchant's storefront for the browser tests: a node:http server on the loopback address,
// addressed as http://localhost:PORT, another origin than the engine's http://127.0.0.1:PORT
// (chromium lets a page reach the loopback address space only from there). A test says what it
// serves; everything else is 404, and /favicon.ico, which chromium asks for, 204.
import { createServer } from 'node:http';
import { closeHttpServer } from './server.mjs';

/** Answers 200 with html as a page no cache keeps (every load reaches the storefront). */
export function sendPage(res, html) {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

/**
 * Starts a storefront. respond(url, res, req) answers a request it serves (url: its parsed URL)
 * and returns true, or returns false to leave it unanswered here. Resolves to
 * { origin, close() }; close() ends open connections at once (see closeHttpServer).
 */
export async function startStorefront(respond) {
  const srv = createServer((req, res) => {
    const url = new URL(req.url, 'http://shop');
    if (!respond(url, res, req)) res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404).end();
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { origin: `http://localhost:${srv.address().port}`, close: () => closeHttpServer(srv) };
}
