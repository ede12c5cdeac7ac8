// fetch wrapper for the JSON API: same-origin cookie session, the one error shape. The session's
// anti-CSRF token (csrfToken of the sign-in answer and of /api/v1/me) is kept here and sent as
// X-CSRF-Token on every request that changes state; the server refuses those without it.
export class ApiError extends Error {
  constructor(status, data) {
    super(data?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = data?.error?.code;
    this.error = data?.error ?? null; // the whole error object (e.g. a guardrail refusal's violations)
  }
}

let csrfToken = null;

export async function api(method, path, body) {
  const headers = body ? { 'Content-Type': 'application/json' } : {};
  if (csrfToken && !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())) headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  if (typeof data?.csrfToken === 'string') csrfToken = data.csrfToken;
  return data;
}

/** /api/v1/stores/{id}/<rest>?<params without empty values> */
export function storeUrl(storeId, rest, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const qs = q.toString();
  return `/api/v1/stores/${encodeURIComponent(storeId)}/${rest}${qs ? `?${qs}` : ''}`;
}
