// Log in / register forms with inline validation and server error mapping.
import { api, ApiError, detailText, describeError, saveToken } from './api.js';
import { $, charCount } from './util.js';

const USERNAME_RE = /^[A-Za-z0-9_.-]+$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const rules = {
  username(v) {
    if (!v) return 'Choose a username.';
    if (v.length < 3 || v.length > 32) return 'Use 3–32 characters.';
    if (!USERNAME_RE.test(v)) return 'Only letters, digits, “_”, “.” and “-” are allowed.';
    return '';
  },
  email(v) {
    if (!v) return 'Enter your email address.';
    if (v.length > 254 || !EMAIL_RE.test(v)) return 'Enter a valid email address.';
    return '';
  },
  password(v) {
    const n = charCount(v);
    if (!n) return 'Enter a password.';
    if (n < 8) return 'Use at least 8 characters.';
    if (n > 128) return 'Use at most 128 characters.';
    return '';
  },
  display_name(v) {
    return charCount(v.trim()) > 64 ? 'Use at most 64 characters.' : '';
  },
  login(v) { return v ? '' : 'Enter your username or email.'; },
  loginPassword(v) { return v ? '' : 'Enter your password.'; },
};

function setFieldError(input, msg) {
  const out = document.getElementById(`${input.id}-error`);
  if (out) out.textContent = msg || '';
  input.setAttribute('aria-invalid', msg ? 'true' : 'false');
}

function setFormError(form, msg) {
  $('.form-error', form).textContent = msg || '';
}

/** Wire blur/input validation for [input, rule] pairs; returns a validate-all function. */
function wireValidation(pairs) {
  for (const [input, rule] of pairs) {
    input.addEventListener('blur', () => {
      if (input.value !== '' || input.dataset.touched) { input.dataset.touched = '1'; setFieldError(input, rule(input.value)); }
    });
    input.addEventListener('input', () => {
      if (input.dataset.touched || input.getAttribute('aria-invalid') === 'true') setFieldError(input, rule(input.value));
    });
  }
  return () => {
    let first = null;
    for (const [input, rule] of pairs) {
      input.dataset.touched = '1';
      const msg = rule(input.value);
      setFieldError(input, msg);
      if (msg && !first) first = input;
    }
    if (first) first.focus();
    return !first;
  };
}

/** Disable a submit button for the server's Retry-After, with a countdown. */
function cooldown(button, seconds, form) {
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  let left = Math.max(1, seconds | 0);
  button.disabled = true;
  const tick = () => {
    if (left <= 0) { button.disabled = false; button.textContent = label; setFormError(form, ''); return; }
    button.textContent = `${label} (${left}s)`;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

/** Put server-side errors next to their fields; returns true if any field took one. */
function showServerErrors(form, e, fieldMap) {
  let placed = false;
  const put = (field, msg) => {
    const input = fieldMap[field];
    if (input) { setFieldError(input, msg); if (!placed) input.focus(); placed = true; return true; }
    return false;
  };
  if (e.code === 'username_taken') put('username', e.message || 'That username is taken.');
  else if (e.code === 'email_taken') put('email', e.message || 'That email is already registered.');
  else if (e.status === 422) {
    const rest = [];
    for (const [k, v] of Object.entries(e.details || {})) {
      if (!put(k, detailText(v))) rest.push(`${k}: ${detailText(v)}`);
    }
    if (rest.length) setFormError(form, rest.join('; '));
    else if (!placed) setFormError(form, e.message);
    return true;
  }
  return placed;
}

function handleFailure(form, button, e, fieldMap) {
  if (!(e instanceof ApiError)) { setFormError(form, String(e)); return; }
  if (showServerErrors(form, e, fieldMap)) return;
  if (e.code === 'invalid_credentials') setFormError(form, 'Wrong username or password.');
  else setFormError(form, describeError(e));
  if ((e.status === 429 || e.status === 503) && e.retryAfter) cooldown(button, e.retryAfter, form);
}

export function setupAuth({ onLoggedIn }) {
  const loginForm = $('#login-form');
  const regForm = $('#register-form');
  const tabLogin = $('#tab-login');
  const tabReg = $('#tab-register');

  function selectTab(which) {
    const login = which === 'login';
    tabLogin.setAttribute('aria-selected', String(login));
    tabReg.setAttribute('aria-selected', String(!login));
    tabLogin.tabIndex = login ? 0 : -1;
    tabReg.tabIndex = login ? -1 : 0;
    loginForm.hidden = !login;
    regForm.hidden = login;
    (login ? $('#login-username') : $('#reg-username')).focus();
  }
  tabLogin.addEventListener('click', () => selectTab('login'));
  tabReg.addEventListener('click', () => selectTab('register'));
  for (const tab of [tabLogin, tabReg]) {
    tab.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') selectTab(tab === tabLogin ? 'register' : 'login');
    });
  }

  const lUser = $('#login-username');
  const lPass = $('#login-password');
  const validateLogin = wireValidation([[lUser, (v) => rules.login(v.trim())], [lPass, rules.loginPassword]]);

  async function doLogin(username, password, remember) {
    const res = await api('POST', '/auth/login', { username, password }, { auth: false });
    saveToken(res.access_token, remember);
    lPass.value = '';
    $('#reg-password').value = '';
    onLoggedIn(res.user);
  }

  loginForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setFormError(loginForm, '');
    if (!validateLogin()) return;
    const button = $('button[type=submit]', loginForm);
    if (button.disabled) return;
    button.disabled = true;
    try {
      await doLogin(lUser.value.trim(), lPass.value, loginForm.elements.remember.checked);
      button.disabled = false;
    } catch (e) {
      button.disabled = false;
      handleFailure(loginForm, button, e, { username: lUser, login: lUser, password: lPass });
    }
  });

  const rUser = $('#reg-username');
  const rEmail = $('#reg-email');
  const rDisplay = $('#reg-display');
  const rPass = $('#reg-password');
  const validateReg = wireValidation([
    [rUser, (v) => rules.username(v.trim())],
    [rEmail, (v) => rules.email(v.trim())],
    [rDisplay, rules.display_name],
    [rPass, rules.password],
  ]);

  regForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setFormError(regForm, '');
    if (!validateReg()) return;
    const button = $('button[type=submit]', regForm);
    if (button.disabled) return;
    button.disabled = true;
    const body = { username: rUser.value.trim(), email: rEmail.value.trim(), password: rPass.value };
    if (rDisplay.value.trim()) body.display_name = rDisplay.value.trim();
    try {
      await api('POST', '/auth/register', body, { auth: false });
    } catch (e) {
      button.disabled = false;
      handleFailure(regForm, button, e,
        { username: rUser, email: rEmail, password: rPass, display_name: rDisplay });
      return;
    }
    try {
      await doLogin(body.username, body.password, false);
    } catch (e) {
      lUser.value = body.username;
      selectTab('login');
      showNotice(`Account created. ${e instanceof ApiError ? describeError(e) : ''} Please log in.`);
    } finally {
      button.disabled = false;
    }
  });
}

export function showNotice(msg) {
  const n = $('#auth-notice');
  n.textContent = msg || '';
  n.hidden = !msg;
}

export function resetAuthForms() {
  for (const form of [$('#login-form'), $('#register-form')]) {
    setFormError(form, '');
    for (const input of form.querySelectorAll('input:not([type=checkbox])')) {
      setFieldError(input, '');
      delete input.dataset.touched;
      // The login name may help whoever logs in next; a half-filled registration would not.
      if (input.type === 'password' || form.id === 'register-form') input.value = '';
    }
  }
  $('#tab-login').click(); // after a logout the next step is logging in
}
