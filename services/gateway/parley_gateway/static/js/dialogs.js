// Modal dialogs: create and edit rooms, your profile, browse public rooms, find people (DMs and
// adding members).
import { api, ApiError, detailText, describeError, enc } from './api.js';
import { $, h, debounce, displayName, avatar, charCount } from './util.js';
import { openAccount } from './account.js';
import { openProfilePicture, wireProfilePicture } from './avatar.js';

export function openDialog(dlg) {
  if (dlg.open) return;
  if (typeof dlg.showModal === 'function') dlg.showModal();
  else dlg.setAttribute('open', '');
}

export function closeDialog(dlg) {
  if (typeof dlg.close === 'function') dlg.close();
  else dlg.removeAttribute('open');
}

export function closeAllDialogs() {
  for (const d of document.querySelectorAll('dialog[open]')) closeDialog(d);
}

// ---------------------------------------------------------------- create room

let createHandler = null;

function setErr(id, msg) {
  const el = document.getElementById(`${id}-error`);
  if (el) el.textContent = msg || '';
  const input = document.getElementById(id);
  if (input) input.setAttribute('aria-invalid', msg ? 'true' : 'false');
}

/** A dialog's form as it opens: no field errors (``ids``), no form error. */
function clearErrors(form, ...ids) {
  for (const id of ids) setErr(id, '');
  $('.form-error', form).textContent = '';
}

export function openCreateRoom(onCreated) {
  createHandler = onCreated;
  const form = $('#create-form');
  form.reset();
  clearErrors(form, 'create-name', 'create-topic');
  openDialog($('#create-dialog'));
  $('#create-name').focus();
}

function wireCreate() {
  const form = $('#create-form');
  const name = $('#create-name');
  revalidateOnInput('create-name', validateName);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const formErr = $('.form-error', form);
    formErr.textContent = '';
    // The topic input's maxlength keeps it within 256: its check only clears an old error.
    if (!validateFields([['create-name', validateName], ['create-topic', validateTopic]])) return;
    const body = { name: name.value.trim(), kind: form.elements.kind.value || 'public' };
    const topic = $('#create-topic').value.trim();
    if (topic) body.topic = topic;
    const button = $('button[type=submit]', form);
    button.disabled = true;
    try {
      const res = await api('POST', '/rooms', body);
      closeDialog($('#create-dialog'));
      if (createHandler) createHandler(res.room);
    } catch (e) {
      showRoomError(e, { name: 'create-name', topic: 'create-topic' }, formErr);
    } finally {
      button.disabled = false;
    }
  });
}

function validateName(v) {
  const n = charCount(v.trim());
  if (!n) return 'Give the room a name.';
  if (n > 64) return 'Use at most 64 characters.';
  return '';
}

/** A failed save: 422 details under their fields (fields: API name -> input id), the rest
 * and any other error on the form-error line. */
function showSaveError(e, fields, formErr) {
  if (e instanceof ApiError && e.status === 422) showDetails(e, fields, formErr);
  else formErr.textContent = describeError(e);
}

/** showSaveError, plus a taken public name under the name field. */
function showRoomError(e, fields, formErr) {
  if (e instanceof ApiError && e.code === 'room_exists') {
    setErr(fields.name, 'A public room with this name already exists.');
    document.getElementById(fields.name).focus();
  } else {
    showSaveError(e, fields, formErr);
  }
}

function showDetails(e, fields, formErr) {
  const rest = [];
  let first = null;
  for (const [k, v] of Object.entries(e.details || {})) {
    if (fields[k]) { setErr(fields[k], detailText(v)); first = first || fields[k]; }
    else rest.push(`${k}: ${detailText(v)}`);
  }
  formErr.textContent = rest.join('; ') || (first ? '' : e.message);
  if (first) document.getElementById(first).focus();
}

/** Check [input id, rule] pairs, show each message under its field, focus the first bad one. */
function validateFields(pairs) {
  let first = null;
  for (const [id, rule] of pairs) {
    const msg = rule(document.getElementById(id).value);
    setErr(id, msg);
    if (msg && !first) first = id;
  }
  if (first) document.getElementById(first).focus();
  return !first;
}

/** Once a field shows an error, re-check it as the user types. */
function revalidateOnInput(id, rule) {
  const input = document.getElementById(id);
  input.addEventListener('input', () => { if (input.getAttribute('aria-invalid') === 'true') setErr(id, rule(input.value)); });
}

// ---------------------------------------------------------------- edit room (owner)

let editRoom = { room: null, onSaved: null };

function validateTopic(v) {
  return charCount(v.trim()) > 256 ? 'Use at most 256 characters.' : '';
}

export function openEditRoom(room, onSaved) {
  editRoom = { room, onSaved };
  const form = $('#edit-room-form');
  $('#edit-room-name').value = room.name || '';
  $('#edit-room-topic').value = room.topic || '';
  clearErrors(form, 'edit-room-name', 'edit-room-topic');
  openDialog($('#edit-room-dialog'));
  $('#edit-room-name').focus();
}

function wireEditRoom() {
  const form = $('#edit-room-form');
  const name = $('#edit-room-name');
  const topic = $('#edit-room-topic');
  revalidateOnInput('edit-room-name', validateName);
  revalidateOnInput('edit-room-topic', validateTopic);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const formErr = $('.form-error', form);
    formErr.textContent = '';
    if (!validateFields([['edit-room-name', validateName], ['edit-room-topic', validateTopic]])) return;
    const { room, onSaved } = editRoom;
    const body = {};
    if (name.value.trim() !== room.name) body.name = name.value.trim();
    if (topic.value.trim() !== (room.topic || '')) body.topic = topic.value.trim();
    if (!Object.keys(body).length) { closeDialog($('#edit-room-dialog')); return; }
    const button = $('button[type=submit]', form);
    button.disabled = true;
    try {
      const res = await api('PATCH', `/rooms/${enc(room.id)}`, body);
      closeDialog($('#edit-room-dialog'));
      if (onSaved && res && res.room) onSaved(res.room);
    } catch (e) {
      showRoomError(e, { name: 'edit-room-name', topic: 'edit-room-topic' }, formErr);
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- profile

let profile = { onSaved: null, onDeleted: null };

function validateDisplayName(v) {
  return charCount(v.trim()) > 64 ? 'Use at most 64 characters.' : '';
}

/** handlers: onSaved(user) after a successful PATCH, onDeleted() once the account is gone. */
export function openProfile(me, handlers) {
  profile = { ...handlers };
  const form = $('#profile-form');
  $('#profile-who').textContent = [`@${me.username}`, me.email].filter(Boolean).join(' · ');
  $('#profile-display').value = me.display_name || '';
  clearErrors(form, 'profile-display');
  openProfilePicture(me, profile.onSaved);
  openDialog($('#profile-dialog'));
  $('#profile-display').focus();
}

function wireProfile() {
  const form = $('#profile-form');
  const dlg = $('#profile-dialog');
  const formErr = $('.form-error', form);
  const save = $('button[type=submit]', form);
  const del = $('#delete-account-btn');
  revalidateOnInput('profile-display', validateDisplayName);
  wireProfilePicture();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formErr.textContent = '';
    if (!validateFields([['profile-display', validateDisplayName]])) return;
    const body = { display_name: $('#profile-display').value.trim() };
    save.disabled = true;
    try {
      const res = await api('PATCH', '/users/me', body);
      closeDialog(dlg);
      if (profile.onSaved && res && res.user) profile.onSaved(res.user);
    } catch (e) {
      showSaveError(e, { display_name: 'profile-display' }, formErr);
    } finally {
      save.disabled = false;
    }
  });
  // Deleting asks for the password again: that lives with the account's security settings.
  del.addEventListener('click', () => { closeDialog(dlg); openAccount(); });
}

// ---------------------------------------------------------------- browse public rooms

let browse = { handlers: null, cursor: null, q: '', seq: 0 };

export function openBrowse(handlers) {
  browse.handlers = handlers;
  const q = $('#browse-q');
  q.value = '';
  openDialog($('#browse-dialog'));
  q.focus();
  loadBrowse(true);
}

export function refreshBrowseIfOpen() {
  if ($('#browse-dialog').open) loadBrowse(true);
}

async function loadBrowse(reset) {
  const list = $('#browse-list');
  const status = $('#browse-status');
  const more = $('#browse-more');
  if (reset) { browse.cursor = null; browse.q = $('#browse-q').value.trim(); }
  const mySeq = ++browse.seq;
  status.textContent = 'Loading…';
  let path = `/rooms?scope=public&limit=30&q=${enc(browse.q)}`;
  if (!reset && browse.cursor) path += `&cursor=${enc(browse.cursor)}`;
  try {
    const data = await api('GET', path);
    if (mySeq !== browse.seq) return;
    if (reset) list.replaceChildren();
    for (const room of data.rooms || []) list.append(browseItem(room));
    browse.cursor = data.next_cursor || null;
    more.hidden = !browse.cursor;
    status.textContent = list.children.length ? '' : (browse.q ? 'No public rooms match.' : 'No public rooms yet.');
  } catch (e) {
    if (mySeq !== browse.seq) return;
    status.textContent = describeError(e);
  }
}

function browseItem(room) {
  const joined = browse.handlers.isJoined(room.id);
  const button = h('button', { type: 'button', class: joined ? 'small' : 'small primary', text: joined ? 'Open' : 'Join' });
  const label = `${room.name}`;
  button.setAttribute('aria-label', `${joined ? 'Open' : 'Join'} ${label}`);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      if (joined) browse.handlers.onOpen(room.id);
      else await browse.handlers.onJoin(room);
      closeDialog($('#browse-dialog'));
    } catch (e) {
      $('#browse-status').textContent = describeError(e);
      button.disabled = false;
    }
  });
  const count = room.member_count != null ? `${room.member_count} member${room.member_count === 1 ? '' : 's'}` : '';
  return h('li', { class: 'pick-item' },
    h('span', { class: 'room-icon', 'aria-hidden': 'true', text: '#' }),
    h('div', { class: 'pick-main' },
      h('div', { class: 'pick-name', text: room.name }),
      h('div', { class: 'pick-sub', text: [count, room.topic || ''].filter(Boolean).join(' · ') })),
    button);
}

function wireBrowse() {
  const search = debounce(() => loadBrowse(true), 250);
  $('#browse-q').addEventListener('input', search);
  $('#browse-more').addEventListener('click', () => loadBrowse(false));
}

// ---------------------------------------------------------------- people picker

let picker = { onPick: null, exclude: new Set(), seq: 0 };

/** Search users, call onPick(user) on a choice; the dialog closes if onPick resolves. */
export function openUserPicker({ title, actionLabel, exclude, onPick }) {
  picker = { onPick, exclude: new Set(exclude || []), seq: picker.seq, actionLabel: actionLabel || 'Choose' };
  $('#user-title').textContent = title;
  $('#user-q').value = '';
  $('#user-list').replaceChildren();
  $('#user-status').textContent = 'Type a name to search.';
  openDialog($('#user-dialog'));
  $('#user-q').focus();
}

async function searchUsers() {
  const q = $('#user-q').value.trim();
  const list = $('#user-list');
  const status = $('#user-status');
  const mySeq = ++picker.seq;
  if (!q) { list.replaceChildren(); status.textContent = 'Type a name to search.'; return; }
  status.textContent = 'Searching…';
  try {
    const data = await api('GET', `/users?q=${enc(q)}&limit=20`);
    if (mySeq !== picker.seq) return;
    const users = (data.users || []).filter((u) => !picker.exclude.has(u.id));
    list.replaceChildren(...users.map(userItem));
    status.textContent = users.length ? '' : 'Nobody found.';
  } catch (e) {
    if (mySeq !== picker.seq) return;
    status.textContent = describeError(e);
  }
}

function userItem(user) {
  const button = h('button', { type: 'button', class: 'small primary', text: picker.actionLabel,
    'aria-label': `${picker.actionLabel}: ${displayName(user)}` });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await picker.onPick(user);
      closeDialog($('#user-dialog'));
    } catch (e) {
      $('#user-status').textContent = describeError(e);
      button.disabled = false;
    }
  });
  return h('li', { class: 'pick-item' },
    avatar(user),
    h('div', { class: 'pick-main' },
      h('div', { class: 'pick-name', text: displayName(user) }),
      h('div', { class: 'pick-sub', text: `@${user.username}` })),
    button);
}

function wireUsers() {
  $('#user-q').addEventListener('input', debounce(searchUsers, 250));
}

/** Escape closes from any field (a search box would otherwise only clear itself), and Tab
 * wraps around inside the dialog instead of leaving the page for the browser's own UI. */
function onDialogKey(dlg, ev) {
  if (ev.key === 'Escape' && !ev.isComposing) {
    ev.preventDefault();
    closeDialog(dlg);
    return;
  }
  if (ev.key !== 'Tab') return;
  const focusable = [...dlg.querySelectorAll('button, input, textarea, select, a[href], [tabindex]')]
    .filter((el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length
      && !(el.type === 'radio' && !el.checked));
  if (!focusable.length) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
  else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
}

export function setupDialogs() {
  for (const dlg of document.querySelectorAll('dialog')) {
    for (const b of dlg.querySelectorAll('.cancel-btn')) b.addEventListener('click', () => closeDialog(dlg));
    // Click on the backdrop closes.
    dlg.addEventListener('click', (ev) => { if (ev.target === dlg) closeDialog(dlg); });
    dlg.addEventListener('keydown', (ev) => onDialogKey(dlg, ev));
  }
  wireCreate();
  wireEditRoom();
  wireProfile();
  wireBrowse();
  wireUsers();
}
