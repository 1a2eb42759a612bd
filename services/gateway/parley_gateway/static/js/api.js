// REST client for /api/v1 (DESIGN.md §5) and access-token storage.

const KEY = 'parley.token';
let token = null;
let remembered = false; // kept in localStorage (survives the browser) rather than sessionStorage
let unauthorizedHandler = () => {};

export function loadToken() {
  try {
    const forThisTab = sessionStorage.getItem(KEY);
    token = forThisTab || localStorage.getItem(KEY);
    remembered = !forThisTab && !!token;
  } catch { token = null; }
  return token;
}

export function saveToken(t, remember) {
  token = t;
  remembered = !!remember;
  clearStored();
  try { (remember ? localStorage : sessionStorage).setItem(KEY, t); } catch { /* storage disabled */ }
}

/** A refreshed token of the same session replaces the current one where it was kept. */
export function replaceToken(t) { saveToken(t, remembered); }

/** When the current token expires (ms since the epoch, from its `exp` claim), or null. */
export function tokenExpiresAt() {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch { return null; }
}

function clearStored() {
  try { sessionStorage.removeItem(KEY); localStorage.removeItem(KEY); } catch { /* ignore */ }
}

export function clearToken() { token = null; clearStored(); }
export function getToken() { return token; }

/** Called with the ApiError whenever an authenticated call answers 401. */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

/** api('GET', '/rooms?scope=public') -> parsed JSON body (null for 204); throws ApiError.
 *  A File/Blob body goes as it is, with its own type (an avatar upload). */
export async function api(method, path, body, { auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  const raw = body instanceof Blob;
  if (body !== undefined) headers['Content-Type'] = raw ? body.type : 'application/json';
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.', {}, null);
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.ok) return data;
  const err = (data && data.error) || {};
  const ra = parseInt(res.headers.get('Retry-After') || '', 10);
  const e = new ApiError(res.status, err.code || `http_${res.status}`,
    err.message || res.statusText || 'Request failed.', err.details, Number.isNaN(ra) ? null : ra);
  if (res.status === 401 && auth) unauthorizedHandler(e);
  throw e;
}

/** A one-line human message for an error, with a retry hint where the server gave one. */
export function describeError(e) {
  if (!(e instanceof ApiError)) return String((e && e.message) || e);
  if (e.status === 429) return `Too many requests. Try again in ${e.retryAfter || 'a few'} seconds.`;
  if (e.status === 503) return `The service is unavailable right now. Try again in ${e.retryAfter || 'a few'} seconds.`;
  if (e.status === 422 && e.details && Object.keys(e.details).length) {
    return Object.entries(e.details).map(([k, v]) => `${k}: ${detailText(v)}`).join('; ');
  }
  return e.message;
}

/** Validation details may be a string, a list of strings, or an object; flatten to text. */
export function detailText(v) {
  if (v == null) return 'invalid';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(detailText).join(', ');
  if (typeof v === 'object') return v.message || v.msg || JSON.stringify(v);
  return String(v);
}

export const enc = encodeURIComponent;
