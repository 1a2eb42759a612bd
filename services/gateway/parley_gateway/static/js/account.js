// Your account's security: change password (your other sessions end), your sessions (device,
// created, last used) with "sign out" per session or all others, and account deletion, which
// asks for the password again. The refresh credential itself is an HttpOnly cookie this code
// never sees; resumeSession() trades it for an access token when a tab opens without one.
import { api, describeError, detailText, getToken, replaceToken, saveToken, tokenExpiresAt } from './api.js';
import { openDialog, closeDialog } from './dialogs.js';
import { $, h } from './util.js';

let handlers = { onDeleted: () => {} };

/** A usable access token: the stored one, or a new one from the refresh cookie. */
export async function resumeSession() {
  const expiresAt = tokenExpiresAt();
  if (getToken() && expiresAt && expiresAt - Date.now() > 5000) return true;
  try {
    const res = await api('POST', '/auth/refresh', undefined, { auth: false });
    if (getToken()) replaceToken(res.access_token); else saveToken(res.access_token, false);
    return true;
  } catch {
    return false;
  }
}

export function setupAccount(hooks) {
  handlers = { ...handlers, ...hooks };
  $('#account-btn').addEventListener('click', openAccount);
  $('#password-form').addEventListener('submit', changePassword);
  $('#sessions-revoke-others').addEventListener('click', revokeOthers);
  $('#delete-form').addEventListener('submit', deleteAccount);
  $('#account-close').addEventListener('click', () => closeDialog($('#account-dialog')));
}

export function openAccount() {
  for (const id of ['old-password', 'new-password', 'delete-password']) $(`#${id}`).value = '';
  for (const el of document.querySelectorAll('#account-dialog .field-error, #account-dialog .form-error')) el.textContent = '';
  openDialog($('#account-dialog'));
  $('#old-password').focus();
  loadSessions();
}

function showFieldErrors(e, fields, fallback) {
  const details = (e && e.details) || {};
  let shown = false;
  for (const [name, id] of Object.entries(fields)) {
    if (details[name]) { $(`#${id}-error`).textContent = detailText(details[name]); shown = true; }
  }
  if (!shown) fallback.textContent = describeError(e);
}

async function changePassword(ev) {
  ev.preventDefault();
  const status = $('#password-status');
  status.textContent = '';
  $('#old-password-error').textContent = '';
  $('#new-password-error').textContent = '';
  const body = { old_password: $('#old-password').value, new_password: $('#new-password').value };
  if (body.new_password.length < 8 || body.new_password.length > 128) {
    $('#new-password-error').textContent = 'New password must be 8 to 128 characters.';
    return;
  }
  try {
    await api('POST', '/auth/password', body);
    $('#old-password').value = '';
    $('#new-password').value = '';
    status.textContent = 'Password changed. Your other sessions have been signed out.';
    loadSessions();
  } catch (e) {
    showFieldErrors(e, { old_password: 'old-password', new_password: 'new-password' }, status);
  }
}

async function loadSessions() {
  const list = $('#sessions-list');
  const status = $('#sessions-status');
  status.textContent = '';
  try {
    const { sessions } = await api('GET', '/auth/sessions');
    list.replaceChildren(...sessions.map(sessionItem));
  } catch (e) {
    status.textContent = describeError(e);
  }
}

function when(iso) {
  return new Date(iso).toLocaleString();
}

function sessionItem(s) {
  const label = s.user_agent || 'Unknown device';
  const item = h('li', { class: 'session-item' },
    h('span', { class: 'session-device' }, label + (s.current ? ' (this session)' : '')),
    h('span', { class: 'muted-text' }, `Signed in ${when(s.created_at)} · last used ${when(s.last_used_at)}`));
  if (!s.current) {
    const btn = h('button', { type: 'button', class: 'small ghost', 'aria-label': `Sign out ${label}` }, 'Sign out');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try { await api('DELETE', `/auth/sessions/${encodeURIComponent(s.id)}`); loadSessions(); }
      catch (e) { $('#sessions-status').textContent = describeError(e); btn.disabled = false; }
    });
    item.append(btn);
  }
  return item;
}

async function revokeOthers() {
  try {
    const { revoked } = await api('DELETE', '/auth/sessions');
    $('#sessions-status').textContent = `Signed out ${revoked} other session(s).`;
    loadSessions();
  } catch (e) {
    $('#sessions-status').textContent = describeError(e);
  }
}

async function deleteAccount(ev) {
  ev.preventDefault();
  const status = $('#delete-status');
  status.textContent = '';
  $('#delete-password-error').textContent = '';
  const password = $('#delete-password').value;
  if (!password) { $('#delete-password-error').textContent = 'Enter your password to confirm.'; return; }
  if (!window.confirm('Delete your account? You will be signed out everywhere. This cannot be undone.')) return;
  try {
    await api('DELETE', '/users/me', { password });
    closeDialog($('#account-dialog'));
    handlers.onDeleted();
  } catch (e) {
    showFieldErrors(e, { password: 'delete-password' }, status);
  }
}
