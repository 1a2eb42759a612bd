// Parley web client entry point: decides between the sign-in screen and the chat.
import { api, loadToken, clearToken, onUnauthorized, describeError } from './js/api.js';
import { setupAuth, showNotice, resetAuthForms } from './js/auth.js';
import { setupChat, startChat, stopChat, renewSocketToken } from './js/chat/index.js';
import { startTokenRenewal, stopTokenRenewal } from './js/session.js';
import { resumeSession, setupAccount } from './js/account.js';
import { setAdminAccess, setupAdmin } from './js/admin.js';
import { $ } from './js/util.js';
import { registerView, showView } from './js/views.js';

let inChat = false;
let bootTimer = null;

function showAuth(notice) {
  stopTokenRenewal();
  setAdminAccess(null);
  if (inChat) stopChat();
  inChat = false;
  clearToken();
  resetAuthForms();
  showView('auth');
  showNotice(notice || '');
  const first = $('#login-form').hidden ? $('#reg-username') : $('#login-username');
  first.focus();
}

function showChat(user) {
  clearTimeout(bootTimer);
  showNotice('');
  showView('chat');
  inChat = true;
  setAdminAccess(user);
  startChat(user);
  startTokenRenewal(renewSocketToken);
}

async function logout() {
  try { await api('POST', '/auth/logout'); } catch { /* the token is dropped anyway */ }
  showAuth('You have been logged out.');
}

/** With a stored token, check it (GET /users/me); otherwise show the login form. */
async function boot(attempt = 0) {
  loadToken();
  // No token in this tab, or an expired one: the refresh cookie may still hold the session.
  if (!(await resumeSession())) { showAuth(); return; }
  try {
    const res = await api('GET', '/users/me');
    showChat(res.user);
  } catch (e) {
    if (e.status === 401) return; // handled by onUnauthorized
    // Server unreachable or a dependency is down: keep the token and retry.
    const delay = Math.min(30, e.retryAfter || 2 ** Math.min(attempt + 1, 5));
    $('#boot').textContent = `${describeError(e)} Retrying in ${delay}s…`;
    showView('boot');
    bootTimer = setTimeout(() => boot(attempt + 1), delay * 1000);
  }
}

function init() {
  // The screens (js/views.js); a new one registers here, and its module's setup goes below.
  registerView('boot', '#boot');
  registerView('auth', '#auth-view');
  registerView('chat', '#app-view');
  onUnauthorized(() => {
    if (inChat || $('#auth-view').hidden) showAuth('Your session has ended. Please log in again.');
  });
  setupAuth({ onLoggedIn: (user) => showChat(user) });
  setupAccount({ onDeleted: () => showAuth('Your account has been deleted.') });
  setupAdmin();
  setupChat({
    onLogout: logout,
    onAccountDeleted: () => showAuth('Your account has been deleted.'),
    onAuthLost: (code) => showAuth(code === 4001
      ? 'Your session was revoked. Please log in again.'
      : 'Your session has expired. Please log in again.'),
  });
  boot();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
