// The administrators' console: accounts (deactivate / reactivate, grant / take back the role),
// rooms (read any history, delete a message, archive, delete), the audit log and the log
// archive search, all through /api/v1/admin/. Shown only to accounts whose self user says
// is_admin; the server refuses everyone else anyway (403). Live charts: admin-charts.js. Built here, not in index.html, so
// the chat's markup stays as it is. User data only ever goes through textContent (h()).
import { api, describeError, enc } from './api.js';
import { openDialog, closeDialog } from './dialogs.js';
import { buildCharts, startCharts, stopCharts } from './admin-charts.js';
import { $, h, debounce, fullTime } from './util.js';

const TABS = [
  ['users', 'Users'], ['rooms', 'Rooms'], ['audit', 'Audit log'], ['logs', 'Log archive'],
  ['charts', 'Live charts'],
];
const ACTIONS = {
  user_deactivated: 'deactivated', user_reactivated: 'reactivated',
  admin_granted: 'made administrator', admin_revoked: 'took administrator role from',
  message_deleted: 'deleted message', room_deleted: 'deleted room',
  room_archived: 'archived room', room_unarchived: 'unarchived room',
};

let me = null;
let dialog = null;
const state = { users: { cursor: null }, rooms: { cursor: null }, audit: { cursor: null } };

/** Called with the signed-in user: the Admin button appears for administrators only. */
export function setAdminAccess(user) {
  me = user;
  const entry = $('#admin-entry');
  if (entry) entry.hidden = !(user && user.is_admin);
  if (!(user && user.is_admin) && dialog && dialog.open) closeDialog(dialog);
}

export function setupAdmin() {
  const btn = $('#admin-btn');
  if (btn) btn.addEventListener('click', openAdmin);
}

function build() {
  dialog = h('dialog', { id: 'admin-dialog', class: 'admin-dialog', 'aria-labelledby': 'admin-title' });
  const tablist = h('div', { class: 'tabs admin-tabs', role: 'tablist', 'aria-label': 'Administration' });
  const panels = [];
  for (const [key, label] of TABS) {
    const tab = h('button', {
      type: 'button', role: 'tab', id: `admin-tab-${key}`, 'aria-controls': `admin-panel-${key}`,
      'aria-selected': 'false', tabindex: '-1',
    }, label);
    tab.addEventListener('click', () => selectTab(key));
    tab.addEventListener('keydown', (ev) => {
      const keys = TABS.map(([k]) => k);
      const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = keys[(keys.indexOf(key) + step + keys.length) % keys.length];
      selectTab(next);
      $(`#admin-tab-${next}`).focus();
    });
    tablist.append(tab);
    panels.push(h('section', {
      id: `admin-panel-${key}`, role: 'tabpanel', 'aria-labelledby': `admin-tab-${key}`,
      class: 'admin-panel', hidden: true,
    }));
  }
  const close = h('button', { type: 'button', id: 'admin-close' }, 'Close');
  close.addEventListener('click', () => closeDialog(dialog));
  dialog.append(h('div', { class: 'dialog-body admin-body' },
    h('h2', { id: 'admin-title' }, 'Administration'), tablist, ...panels,
    h('div', { class: 'dialog-actions' }, close)));
  document.body.append(dialog);
  dialog.addEventListener('close', stopCharts);
  buildUsers($('#admin-panel-users'));
  buildRooms($('#admin-panel-rooms'));
  buildAudit($('#admin-panel-audit'));
  buildLogs($('#admin-panel-logs'));
  buildCharts($('#admin-panel-charts'));
}

export function openAdmin() {
  if (!me || !me.is_admin) return;
  if (!dialog) build();
  openDialog(dialog);
  selectTab('users');
}

function selectTab(key) {
  for (const [k] of TABS) {
    const selected = k === key;
    const tab = $(`#admin-tab-${k}`);
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#admin-panel-${k}`).hidden = !selected;
  }
  if (key !== 'charts') stopCharts();
  ({ users: loadUsers, rooms: loadRooms, audit: loadAudit, logs: () => {}, charts: startCharts })[key]();
}

// ---------------------------------------------------------------- shared bits

function field(id, label, control) {
  control.id = id;
  return h('div', { class: 'admin-field' }, h('label', { for: id }, label), control);
}

function select(options) {
  return h('select', {}, ...options.map(([value, label]) => h('option', { value }, label)));
}

function status(id) {
  return h('p', { id, class: 'muted-text admin-status', role: 'status' });
}

function setStatus(id, text) { $(`#${id}`).textContent = text || ''; }

function query(params) {
  const parts = Object.entries(params).filter(([, v]) => v !== '' && v != null)
    .map(([k, v]) => `${k}=${enc(v)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** A button that runs ``action`` once at a time and reports failures in ``statusId``. */
function actionButton(label, statusId, action, cls = 'small') {
  const btn = h('button', { type: 'button', class: cls }, label);
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try { await action(); } catch (e) { setStatus(statusId, describeError(e)); btn.disabled = false; }
  });
  return btn;
}

function badge(text, kind = '') { return h('span', { class: `admin-badge ${kind}` }, text); }

function table(id, caption, headers) {
  return h('table', { id, class: 'admin-table' }, h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody'));
}

function moreButton(id, load) {
  const btn = h('button', { type: 'button', id, class: 'small', hidden: true }, 'Load more');
  btn.addEventListener('click', () => load(true));
  return btn;
}

// ---------------------------------------------------------------- users

function buildUsers(panel) {
  const q = h('input', { type: 'search', autocomplete: 'off', placeholder: 'Name or email' });
  const st = select([['', 'Everyone'], ['active', 'Active'], ['deactivated', 'Deactivated']]);
  const role = select([['', 'Any role'], ['admin', 'Administrators']]);
  const reload = debounce(() => loadUsers(), 250);
  q.addEventListener('input', reload);
  st.addEventListener('change', () => loadUsers());
  role.addEventListener('change', () => loadUsers());
  panel.append(
    h('div', { class: 'admin-filters' }, field('admin-users-q', 'Search users', q),
      field('admin-users-status', 'Status', st), field('admin-users-role', 'Role', role)),
    table('admin-users', 'Users', ['User', 'Email', 'Status', 'Actions']),
    status('admin-users-status-text'), moreButton('admin-users-more', loadUsers));
}

async function loadUsers(more = false) {
  const params = {
    q: $('#admin-users-q').value.trim(), status: $('#admin-users-status').value,
    role: $('#admin-users-role').value, limit: 50, cursor: more ? state.users.cursor : '',
  };
  setStatus('admin-users-status-text', 'Loading…');
  try {
    const res = await api('GET', `/admin/users${query(params)}`);
    const body = $('#admin-users tbody');
    const rows = res.users.map(userRow);
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    state.users.cursor = res.next_cursor;
    $('#admin-users-more').hidden = !res.next_cursor;
    setStatus('admin-users-status-text', body.children.length ? '' : 'No users match.');
  } catch (e) {
    setStatus('admin-users-status-text', describeError(e));
  }
}

function userRow(user) {
  const row = h('tr', { dataset: { userId: user.id } });
  fillUserRow(row, user);
  return row;
}

function fillUserRow(row, user) {
  const statusId = 'admin-users-status-text';
  const replace = async (promise) => { fillUserRow(row, (await promise).user); };
  const actions = h('td', { class: 'admin-actions' });
  if (user.id !== me.id) {
    actions.append(user.deactivated
      ? actionButton('Reactivate', statusId, () => replace(api('POST', `/admin/users/${enc(user.id)}/reactivate`)))
      : actionButton('Deactivate', statusId, async () => {
        if (!window.confirm(`Deactivate ${user.username}? Every session ends now and logging in is refused.`)) return;
        await replace(api('POST', `/admin/users/${enc(user.id)}/deactivate`));
      }, 'small danger'));
  }
  if (user.admin_source !== 'config') {
    actions.append(user.is_admin
      ? actionButton('Remove admin', statusId, () => replace(api('PUT', `/admin/users/${enc(user.id)}/role`, { admin: false })))
      : actionButton('Make admin', statusId, () => replace(api('PUT', `/admin/users/${enc(user.id)}/role`, { admin: true }))));
  }
  const states = [user.deactivated ? badge('deactivated', 'warn') : badge('active', 'ok')];
  if (user.is_admin) states.push(badge(user.admin_source === 'config' ? 'admin (configured)' : 'admin'));
  row.replaceChildren(
    h('td', {}, h('span', { class: 'admin-strong' }, user.username),
      user.display_name && user.display_name !== user.username ? ` (${user.display_name})` : ''),
    h('td', {}, user.email || ''), h('td', {}, ...states), actions);
}

// ---------------------------------------------------------------- rooms

function buildRooms(panel) {
  const q = h('input', { type: 'search', autocomplete: 'off', placeholder: 'Room name' });
  const kind = select([['', 'Any kind'], ['public', 'Public'], ['private', 'Private'], ['direct', 'Direct']]);
  const archived = select([['', 'Archived or not'], ['false', 'Not archived'], ['true', 'Archived']]);
  q.addEventListener('input', debounce(() => loadRooms(), 250));
  kind.addEventListener('change', () => loadRooms());
  archived.addEventListener('change', () => loadRooms());
  panel.append(
    h('div', { class: 'admin-filters' }, field('admin-rooms-q', 'Search rooms', q),
      field('admin-rooms-kind', 'Kind', kind), field('admin-rooms-archived', 'Archived', archived)),
    table('admin-rooms', 'Rooms', ['Room', 'Kind', 'Members', 'Last activity', 'Actions']),
    status('admin-rooms-status-text'), moreButton('admin-rooms-more', loadRooms),
    h('section', { id: 'admin-room-messages', class: 'admin-messages', 'aria-labelledby': 'admin-messages-title', hidden: true },
      h('h3', { id: 'admin-messages-title' }), h('ol', { id: 'admin-message-list', class: 'admin-message-list' }),
      status('admin-messages-status')));
}

async function loadRooms(more = false) {
  const params = {
    q: $('#admin-rooms-q').value.trim(), kind: $('#admin-rooms-kind').value,
    archived: $('#admin-rooms-archived').value, limit: 50, cursor: more ? state.rooms.cursor : '',
  };
  setStatus('admin-rooms-status-text', 'Loading…');
  try {
    const res = await api('GET', `/admin/rooms${query(params)}`);
    const body = $('#admin-rooms tbody');
    const rows = res.rooms.map(roomRow);
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    state.rooms.cursor = res.next_cursor;
    $('#admin-rooms-more').hidden = !res.next_cursor;
    setStatus('admin-rooms-status-text', body.children.length ? '' : 'No rooms match.');
  } catch (e) {
    setStatus('admin-rooms-status-text', describeError(e));
  }
}

function roomLabel(room) { return room.name || `(${room.kind} room)`; }

function roomRow(room) {
  const row = h('tr', { dataset: { roomId: room.id } });
  fillRoomRow(row, room);
  return row;
}

function fillRoomRow(row, room) {
  const statusId = 'admin-rooms-status-text';
  const path = `/admin/rooms/${enc(room.id)}`;
  const actions = h('td', { class: 'admin-actions' },
    actionButton('Messages', statusId, async () => { await showMessages(room); actions.querySelector('button').disabled = false; }),
    room.archived_at
      ? actionButton('Unarchive', statusId, async () => fillRoomRow(row, (await api('POST', `${path}/unarchive`)).room))
      : actionButton('Archive', statusId, async () => fillRoomRow(row, (await api('POST', `${path}/archive`)).room)),
    actionButton('Delete', statusId, async () => {
      if (!window.confirm(`Delete ${roomLabel(room)} with all its messages? This cannot be undone.`)) return;
      await api('DELETE', path);
      row.remove();
      if ($('#admin-room-messages').dataset.roomId === room.id) $('#admin-room-messages').hidden = true;
    }, 'small danger'));
  row.replaceChildren(
    h('td', {}, h('span', { class: 'admin-strong' }, roomLabel(room)), room.archived_at ? ' ' : '',
      room.archived_at ? badge('archived', 'warn') : ''),
    h('td', {}, room.kind), h('td', {}, String(room.member_count)),
    h('td', {}, room.last_activity_at ? fullTime(room.last_activity_at) : ''), actions);
}

async function showMessages(room) {
  const section = $('#admin-room-messages');
  section.hidden = false;
  section.dataset.roomId = room.id;
  $('#admin-messages-title').textContent = `Latest messages in ${roomLabel(room)}`;
  const list = $('#admin-message-list');
  list.replaceChildren();
  setStatus('admin-messages-status', 'Loading…');
  const res = await api('GET', `/admin/rooms/${enc(room.id)}/messages?limit=50`);
  list.replaceChildren(...res.messages.map((m) => messageItem(room, m)));
  setStatus('admin-messages-status', res.messages.length ? '' : 'No messages yet.');
}

function messageItem(room, m) {
  const item = h('li', { class: 'admin-message', dataset: { seq: String(m.seq) } });
  const fill = (message) => {
    const author = (message.author && (message.author.username || message.author.id)) || 'unknown';
    item.replaceChildren(
      h('span', { class: 'admin-strong' }, author), ' ',
      h('span', { class: 'muted-text' }, fullTime(message.created_at)), ' ',
      message.deleted ? h('em', { class: 'muted-text' }, 'deleted') : h('span', { class: 'admin-text' }, message.text));
    if (!message.deleted) {
      item.append(' ', actionButton('Delete message', 'admin-messages-status', async () => {
        await api('DELETE', `/admin/rooms/${enc(room.id)}/messages/${enc(message.id)}`);
        fill({ ...message, text: '', deleted: true });
      }, 'small danger'));
    }
  };
  fill(m);
  return item;
}

// ---------------------------------------------------------------- audit log

function buildAudit(panel) {
  const refresh = h('button', { type: 'button', class: 'small' }, 'Refresh');
  refresh.addEventListener('click', () => loadAudit());
  panel.append(h('div', { class: 'admin-filters' }, refresh),
    table('admin-audit', 'Audit log', ['When', 'Who', 'What', 'Target']),
    status('admin-audit-status'), moreButton('admin-audit-more', loadAudit));
}

async function loadAudit(more = false) {
  setStatus('admin-audit-status', 'Loading…');
  try {
    const res = await api('GET', `/admin/audit${query({ limit: 50, cursor: more ? state.audit.cursor : '' })}`);
    const rows = res.entries.map((e) => h('tr', {},
      h('td', {}, fullTime(e.created_at)), h('td', {}, e.actor.username || e.actor.id),
      h('td', {}, ACTIONS[e.action] || e.action),
      h('td', {}, e.target.label || e.target.id)));
    const body = $('#admin-audit tbody');
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    state.audit.cursor = res.next_cursor;
    $('#admin-audit-more').hidden = !res.next_cursor;
    setStatus('admin-audit-status', body.children.length ? '' : 'Nothing has been done yet.');
  } catch (e) {
    setStatus('admin-audit-status', describeError(e));
  }
}

// ---------------------------------------------------------------- log archive

function buildLogs(panel) {
  const service = select([['', 'Every service'], ['gateway', 'gateway'], ['auth', 'auth'],
    ['rooms', 'rooms'], ['logger', 'logger'], ['cleaner', 'cleaner']]);
  const level = select([['', 'Any level'], ['debug', 'debug and up'], ['info', 'info and up'],
    ['warning', 'warning and up'], ['error', 'error and up'], ['critical', 'critical']]);
  const since = h('input', { autocomplete: 'off', value: '1h', placeholder: '10m, 2h, 1d or ISO time' });
  const until = h('input', { autocomplete: 'off', placeholder: 'now' });
  const text = h('input', { type: 'search', autocomplete: 'off', placeholder: 'Part of the event name' });
  const form = h('form', { class: 'admin-filters', id: 'admin-logs-form', novalidate: true },
    field('admin-logs-service', 'Service', service), field('admin-logs-level', 'Level', level),
    field('admin-logs-since', 'Since', since), field('admin-logs-until', 'Until', until),
    field('admin-logs-q', 'Event contains', text),
    h('button', { type: 'submit', class: 'primary small' }, 'Search'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); loadLogs(); });
  panel.append(form, table('admin-logs', 'Log records', ['Time', 'Service', 'Level', 'Event', 'Fields']),
    status('admin-logs-status'));
}

async function loadLogs() {
  const params = {
    service: $('#admin-logs-service').value, min_level: $('#admin-logs-level').value,
    since: $('#admin-logs-since').value.trim(), until: $('#admin-logs-until').value.trim(),
    q: $('#admin-logs-q').value.trim(), limit: 200,
  };
  setStatus('admin-logs-status', 'Searching…');
  try {
    const res = await api('GET', `/admin/logs${query(params)}`);
    $('#admin-logs tbody').replaceChildren(...res.records.map((r) => {
      const fields = JSON.stringify(r.fields || {});
      return h('tr', { class: `level-${r.level}` },
        h('td', {}, fullTime(r.ts)), h('td', {}, r.service), h('td', {}, r.level),
        h('td', { class: 'admin-strong' }, r.event),
        h('td', { class: 'admin-fields', title: fields }, fields.length > 160 ? `${fields.slice(0, 159)}…` : fields));
    }));
    setStatus('admin-logs-status', `${res.records.length} record${res.records.length === 1 ? '' : 's'}.`);
  } catch (e) {
    setStatus('admin-logs-status', describeError(e));
  }
}
