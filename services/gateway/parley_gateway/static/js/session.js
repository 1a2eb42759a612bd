// Keeps a session alive while the app is open: POST /auth/refresh halfway through each
// token's life (half, not "a minute before": background tabs may run timers a minute late),
// then hands the new token to the socket. A refusal (401: logged out elsewhere, or past the
// session's maximum age) ends in the login screen through api()'s unauthorized handler.
import { api, ApiError, replaceToken, tokenExpiresAt } from './api.js';

const MIN_DELAY_MS = 1000;
const RETRY_MS = 15000;

let timer = null;
let onRenewed = null;

export function startTokenRenewal(renewed) {
  onRenewed = renewed;
  document.addEventListener('visibilitychange', onVisible);
  schedule();
}

export function stopTokenRenewal() {
  clearTimeout(timer);
  timer = null;
  onRenewed = null;
  document.removeEventListener('visibilitychange', onVisible);
}

function onVisible() {
  if (document.visibilityState === 'visible' && onRenewed) schedule(); // timers slept with the tab
}

function schedule() {
  clearTimeout(timer);
  const expiresAt = tokenExpiresAt();
  if (!expiresAt) return;
  timer = setTimeout(renew, Math.max(MIN_DELAY_MS, (expiresAt - Date.now()) / 2));
}

async function renew() {
  timer = null;
  try {
    const res = await api('POST', '/auth/refresh');
    if (!onRenewed) return; // logged out meanwhile
    replaceToken(res.access_token);
    onRenewed(res.access_token);
    schedule();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    // Offline, or the server is busy: try again while the token still lives.
    const left = (tokenExpiresAt() || 0) - Date.now();
    if (onRenewed && left > MIN_DELAY_MS) timer = setTimeout(renew, Math.min(RETRY_MS, left / 2));
  }
}
