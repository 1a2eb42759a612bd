// The chat screen: conversation list, message pane, members, realtime frames.
import { api, describeError, enc, getToken } from './api.js';
import { ChatSocket } from './socket.js';
import {
  $, h, uuid, displayName, toTime, shortTime, fullTime, avatar, charCount, toast, lockIcon,
} from './util.js';
import {
  setupDialogs, openCreateRoom, openEditRoom, openProfile, openBrowse, refreshBrowseIfOpen, openUserPicker,
  closeAllDialogs,
} from './dialogs.js';

const PAGE = 50;
const GROUP_MS = 5 * 60 * 1000;
const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 5000;
const ACK_TIMEOUT_MS = 20000;
const OPEN_KEY = 'parley.openRoom';

const S = {
  me: null,
  rooms: new Map(), // room id -> room state (see newRoomState)
  openId: null,
  socket: null,
  hooks: null,
  running: false,
  everReady: false,
  convLoaded: false,
  readTimer: null,
};

// DOM of the open room, keyed for incremental updates.
const els = new Map(); // seq -> <li>
const pendingEls = new Map(); // client_id -> <li>

let dom = {};

function newRoomState(room) {
  const seq = room.last_seq || 0;
  return {
    room,
    muted: false,
    unread: 0,
    lastMessage: null,
    lastSeq: seq, // newest seq known for the room (list preview, unread bookkeeping)
    resumeSeq: seq, // newest seq actually received as a message (subscribe after_seq)
    members: null, // Map user id -> {user, role, joined_at, last_read_seq, online}
    membersPromise: null,
    peer: null, // the other user of a direct room
    messages: new Map(), // seq -> message (only while loaded)
    loaded: false,
    loading: null,
    hasMore: true,
    loadingOlder: false,
    historyError: '',
    pending: new Map(), // client_id -> {client_id, text, failed, error, timer}
    typing: new Map(), // user id -> {user, timer}
    sentReadSeq: 0,
    lastTypingSent: 0,
    draft: '',
  };
}

const isMine = (m) => !!(m && m.author && S.me && m.author.id === S.me.id);
const openRoomState = () => (S.openId ? S.rooms.get(S.openId) : null);
const viewing = (r) => S.openId === r.room.id && document.visibilityState === 'visible';

function roomLabel(r) {
  if (r.room.kind === 'direct') return r.peer ? displayName(r.peer) : (r.room.name || 'Direct message');
  return r.room.name || 'Untitled room';
}

function activity(r) {
  return Math.max(toTime(r.room.last_activity_at), toTime(r.lastMessage && r.lastMessage.created_at),
    toTime(r.room.created_at));
}

// ================================================================ lifecycle

export function setupChat(hooks) {
  S.hooks = hooks;
  dom = {
    convList: $('#conv-list'),
    convEmpty: $('#conv-empty'),
    filter: $('#conv-filter'),
    roomView: $('#room-view'),
    noRoom: $('#no-room'),
    messages: $('#messages'),
    list: $('#message-list'),
    history: $('#history-status'),
    jump: $('#jump-btn'),
    input: $('#composer-input'),
    composerError: $('#composer-error'),
    typing: $('#typing'),
    info: $('#info-panel'),
    infoBtn: $('#info-btn'),
    memberList: $('#member-list'),
  };
  setupDialogs();

  $('#logout-btn').addEventListener('click', () => S.hooks.onLogout());
  $('#profile-btn').addEventListener('click', () => openProfile(S.me, {
    onSaved: onProfileSaved,
    onDeleted: () => S.hooks.onAccountDeleted(),
  }));
  $('#new-room-btn').addEventListener('click', () => openCreateRoom((room) => {
    addRoom(room);
    openRoom(room.id);
  }));
  $('#browse-btn').addEventListener('click', () => openBrowse({
    isJoined: (id) => S.rooms.has(id),
    onOpen: (id) => openRoom(id),
    onJoin: async (room) => {
      const res = await api('POST', `/rooms/${enc(room.id)}/join`);
      addRoom(res.room || room);
      openRoom(room.id);
    },
  }));
  $('#new-dm-btn').addEventListener('click', () => openUserPicker({
    title: 'Direct message',
    actionLabel: 'Message',
    onPick: async (user) => {
      const res = await api('POST', '/rooms/direct', { user_id: user.id });
      const r = addRoom(res.room, { peer: user });
      openRoom(r.room.id);
    },
  }));

  dom.filter.addEventListener('input', () => renderSidebar());
  dom.convList.addEventListener('click', (ev) => {
    const b = ev.target.closest('button.conv');
    if (b) openRoom(b.dataset.id);
  });

  $('#back-btn').addEventListener('click', () => closeRoomView());
  $('#mute-btn').addEventListener('click', toggleMute);
  dom.infoBtn.addEventListener('click', () => setInfoOpen(dom.info.hidden));
  $('#info-close').addEventListener('click', () => setInfoOpen(false));
  $('#edit-room-btn').addEventListener('click', () => {
    const r = openRoomState();
    if (r) openEditRoom(r.room, onRoomUpdated);
  });
  $('#add-member-btn').addEventListener('click', addMemberFlow);
  $('#leave-btn').addEventListener('click', leaveRoom);
  $('#delete-room-btn').addEventListener('click', deleteRoom);

  $('#composer').addEventListener('submit', (ev) => { ev.preventDefault(); submitComposer(); });
  dom.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submitComposer(); }
  });
  dom.input.addEventListener('input', onComposerInput);

  dom.messages.addEventListener('scroll', () => {
    if (dom.messages.scrollTop < 150) loadOlder();
    if (nearBottom()) dom.jump.hidden = true;
  }, { passive: true });
  dom.jump.addEventListener('click', () => { scrollToBottom(); dom.jump.hidden = true; });
  dom.list.addEventListener('click', onMessageAction);

  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') scheduleRead(); });
  window.addEventListener('focus', scheduleRead);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !dom.info.hidden && !document.querySelector('dialog[open]')) setInfoOpen(false);
  });
}

export async function startChat(me) {
  S.me = me;
  S.running = true;
  S.everReady = false;
  S.convLoaded = false;
  renderMe();
  closeRoomView(true);
  S.socket = new ChatSocket({
    getToken,
    onReady,
    onFrame,
    onStatus,
    onAuthLost: (code) => S.hooks.onAuthLost(code),
  });
  try {
    await loadConversations();
  } catch (e) {
    if (e.status === 401) return;
    toast(describeError(e), 'error');
  }
  if (!S.running) return;
  S.socket.start();
  let last = null;
  try { last = sessionStorage.getItem(OPEN_KEY); } catch { /* ignore */ }
  if (last && S.rooms.has(last) && !S.openId) openRoom(last);
}

/** A refreshed token: the open socket takes it too, or it would close when the old one expires. */
export function renewSocketToken(token) {
  if (S.socket) S.socket.send({ type: 'auth', token, ref: 'renew' });
}

export function stopChat() {
  S.running = false;
  if (S.socket) S.socket.stop();
  S.socket = null;
  clearTimeout(S.readTimer);
  for (const r of S.rooms.values()) {
    for (const t of r.typing.values()) clearTimeout(t.timer);
    for (const p of r.pending.values()) clearTimeout(p.timer);
  }
  S.rooms.clear();
  S.openId = null;
  S.me = null;
  closeAllDialogs();
  closeRoomView(true);
  dom.convList.replaceChildren();
  document.title = 'Parley';
}

function renderMe() {
  $('#me-name').textContent = displayName(S.me);
  $('#me-name').title = `@${S.me.username}`;
  $('#me-avatar').replaceChildren(avatar(S.me));
}

function onProfileSaved(user) {
  if (S.running) onUserUpdated(user);
}

/** Someone's new display name or avatar (yours included): everywhere it is shown. */
function onUserUpdated(user) {
  const profile = { display_name: user.display_name, avatar_url: user.avatar_url };
  if (S.me && user.id === S.me.id) { S.me = { ...S.me, ...profile }; renderMe(); }
  for (const r of S.rooms.values()) {
    const m = r.members && r.members.get(user.id);
    if (m) m.user = { ...m.user, ...profile };
    if (r.peer && r.peer.id === user.id) r.peer = { ...r.peer, ...profile };
    const authored = (msg) => msg && msg.author && msg.author.id === user.id;
    if (authored(r.lastMessage)) r.lastMessage = { ...r.lastMessage, author: { ...r.lastMessage.author, ...profile } };
    for (const msg of r.messages.values()) {
      if (!authored(msg)) continue;
      msg.author = { ...msg.author, display_name: user.display_name };
      if (S.openId === r.room.id && els.has(msg.seq)) upsertMessageEl(r, msg); // not while editing it
    }
  }
  renderSidebar();
  const r = openRoomState();
  if (r) { renderRoomHeader(r); renderMembers(r); }
}

function onStatus(state, info) {
  const el = $('#conn-status');
  el.dataset.state = state;
  if (state === 'online') el.textContent = 'Online';
  else if (state === 'connecting') el.textContent = 'Connecting…';
  else {
    const secs = Math.max(1, Math.round(((info && info.retryIn) || 1000) / 1000));
    el.textContent = `Offline — reconnecting in ${secs}s`;
    for (const r of S.rooms.values()) {
      for (const t of r.typing.values()) clearTimeout(t.timer);
      r.typing.clear();
    }
    const r = openRoomState();
    if (r) renderTyping(r);
  }
}

// ================================================================ conversations

async function loadConversations() {
  const seen = new Set();
  let cursor = null;
  let pages = 0;
  do {
    const data = await api('GET', `/conversations?limit=100${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    if (!S.running) return;
    for (const c of data.conversations || []) {
      if (!c || !c.room) continue;
      seen.add(c.room.id);
      mergeConversation(c);
    }
    cursor = data.next_cursor || null;
    pages += 1;
  } while (cursor && pages < 20);
  if (!cursor) {
    for (const id of [...S.rooms.keys()]) if (!seen.has(id)) removeRoom(id, 'You are no longer a member of this room.');
  }
  S.convLoaded = true;
  renderSidebar();
  for (const r of S.rooms.values()) if (r.room.kind === 'direct' && !r.peer) ensureMembers(r);
  const open = openRoomState();
  if (open) { renderRoomHeader(open); scheduleRead(); }
}

function mergeConversation(c) {
  let r = S.rooms.get(c.room.id);
  if (!r) {
    r = newRoomState(c.room);
    S.rooms.set(c.room.id, r);
  } else {
    r.room = { ...r.room, ...c.room, last_seq: Math.max(r.room.last_seq || 0, c.room.last_seq || 0) };
  }
  r.muted = !!c.muted;
  r.unread = c.unread_count || 0;
  if (c.last_message && (!r.lastMessage || c.last_message.seq >= r.lastMessage.seq)) r.lastMessage = c.last_message;
  r.lastSeq = Math.max(r.lastSeq, c.room.last_seq || 0, (c.last_message && c.last_message.seq) || 0);
}

function addRoom(room, extra) {
  let r = S.rooms.get(room.id);
  if (r) {
    r.room = { ...r.room, ...room, last_seq: Math.max(r.room.last_seq || 0, room.last_seq || 0) };
  } else {
    r = newRoomState(room);
    S.rooms.set(room.id, r);
    subscribe(r);
  }
  if (extra && extra.peer) r.peer = extra.peer;
  if (room.kind === 'direct' && !r.peer) ensureMembers(r);
  renderSidebar();
  return r;
}

async function fetchAndAddRoom(id) {
  try {
    const res = await api('GET', `/rooms/${enc(id)}`);
    if (res && res.room && S.running) addRoom(res.room);
  } catch { /* not visible to us after all */ }
}

function removeRoom(id, notice) {
  const r = S.rooms.get(id);
  if (!r) return;
  for (const t of r.typing.values()) clearTimeout(t.timer);
  for (const p of r.pending.values()) clearTimeout(p.timer);
  S.rooms.delete(id);
  if (S.openId === id) {
    closeRoomView();
    if (notice) toast(notice);
  }
  renderSidebar();
  refreshBrowseIfOpen();
}

function subscribe(r) {
  if (!S.socket) return;
  const after = r.loaded || r.loading ? r.resumeSeq : r.lastSeq;
  S.socket.send({ type: 'subscribe', room_id: r.room.id, after_seq: after, ref: `sub:${r.room.id}` });
}

// ---------------------------------------------------------------- sidebar

let sidebarTimer = null;
function renderSidebar() {
  updateTitle();
  if (sidebarTimer) return;
  sidebarTimer = setTimeout(() => { sidebarTimer = null; drawSidebar(); }, 16);
}

function updateTitle() {
  let n = 0;
  for (const r of S.rooms.values()) if (!r.muted) n += r.unread;
  document.title = n ? `(${n}) Parley` : 'Parley';
}

function drawSidebar() {
  if (!S.running) return;
  const q = dom.filter.value.trim().toLowerCase();
  const focusedId = document.activeElement && document.activeElement.classList.contains('conv')
    ? document.activeElement.dataset.id : null;
  const rooms = [...S.rooms.values()]
    .filter((r) => !q || roomLabel(r).toLowerCase().includes(q))
    .sort((a, b) => activity(b) - activity(a));
  const items = rooms.map(convItem);
  dom.convList.replaceChildren(...items);
  dom.convEmpty.hidden = S.rooms.size > 0 || !S.convLoaded;
  if (focusedId) {
    const b = dom.convList.querySelector(`button.conv[data-id="${CSS.escape(focusedId)}"]`);
    if (b) b.focus();
  }
}

function convItem(r) {
  const direct = r.room.kind === 'direct';
  let preview = '';
  let previewClass = 'conv-preview';
  if (r.typing.size) { preview = 'typing…'; previewClass += ' typing-preview'; }
  else if (r.lastMessage) {
    const m = r.lastMessage;
    const who = isMine(m) ? 'You' : displayName(m.author);
    preview = m.deleted ? `${who}: message deleted` : `${direct && !isMine(m) ? '' : `${who}: `}${m.text.slice(0, 140)}`;
  } else if (r.room.topic) preview = r.room.topic;

  let icon;
  if (direct) {
    icon = h('span', { class: 'conv-icon' }, avatar(r.peer || { id: r.room.id, display_name: roomLabel(r) }));
    const peerMember = r.members && r.peer && r.members.get(r.peer.id);
    if (peerMember && peerMember.online) icon.append(h('span', { class: 'presence-dot on', title: 'Online' }));
  } else {
    icon = r.room.kind === 'private'
      ? h('span', { class: 'conv-icon room-icon', title: 'Private room' }, lockIcon())
      : h('span', { class: 'conv-icon room-icon', 'aria-hidden': 'true', text: '#' });
  }
  const time = r.lastMessage ? shortTime(r.lastMessage.created_at, false) : '';
  const badge = r.unread ? h('span', { class: `badge${r.muted ? ' badge-muted' : ''}`, text: r.unread > 99 ? '99+' : String(r.unread) }) : null;
  const srBits = [r.unread ? `${r.unread} unread` : '', r.muted ? 'muted' : ''].filter(Boolean).join(', ');
  const button = h('button', {
    type: 'button',
    class: `conv${r.unread && !r.muted ? ' has-unread' : ''}`,
    dataset: { id: r.room.id },
    'aria-current': S.openId === r.room.id ? 'true' : null,
  },
  icon,
  h('span', { class: 'conv-main' },
    h('span', { class: 'conv-top' },
      h('span', { class: 'conv-name', text: roomLabel(r) }),
      r.muted ? h('span', { class: 'tag muted-tag', text: 'muted' }) : null,
      h('span', { class: 'conv-time', text: time })),
    h('span', { class: 'conv-bottom' },
      h('span', { class: previewClass, text: preview }),
      badge)),
  srBits ? h('span', { class: 'sr-only', text: `, ${srBits}` }) : null);
  return h('li', {}, button);
}

// ================================================================ open room

async function openRoom(id) {
  const r = S.rooms.get(id);
  if (!r) return;
  const prev = openRoomState();
  if (prev && prev !== r) prev.draft = dom.input.value;
  S.openId = id;
  try { sessionStorage.setItem(OPEN_KEY, id); } catch { /* ignore */ }
  document.body.classList.add('room-open');
  dom.noRoom.hidden = true;
  dom.roomView.hidden = false;
  dom.input.value = r.draft || '';
  autosize();
  showComposerError('');
  dom.jump.hidden = true;
  renderRoomHeader(r);
  renderTyping(r);
  renderMembers(r);
  renderSidebar();
  dom.list.replaceChildren();
  els.clear();
  pendingEls.clear();
  if (!r.loaded) {
    dom.history.textContent = 'Loading messages…';
    await loadLatest(r);
    if (S.openId !== id) return;
  }
  renderAllMessages(r);
  scrollToBottom();
  updateHistoryStatus(r);
  ensureMembers(r);
  scheduleRead();
  fillViewport(r);
  if (window.matchMedia('(min-width: 761px)').matches) dom.input.focus();
}

function closeRoomView(silent) {
  const r = openRoomState();
  if (r) r.draft = dom.input.value;
  S.openId = null;
  try { if (!silent) sessionStorage.removeItem(OPEN_KEY); } catch { /* ignore */ }
  document.body.classList.remove('room-open');
  dom.roomView.hidden = true;
  dom.noRoom.hidden = false;
  dom.list.replaceChildren();
  els.clear();
  pendingEls.clear();
  setInfoOpen(false);
  renderSidebar();
}

function setInfoOpen(open) {
  dom.info.hidden = !open;
  dom.infoBtn.setAttribute('aria-expanded', String(open));
  const r = openRoomState();
  if (open && r) { renderMembers(r); ensureMembers(r); }
}

function renderRoomHeader(r) {
  if (S.openId !== r.room.id) return;
  const kind = r.room.kind;
  $('#room-title').replaceChildren(kind === 'private' ? lockIcon() : '', kind === 'public' ? '# ' : '', roomLabel(r));
  $('#room-title').title = kind === 'private' ? 'Private room' : '';
  dom.input.placeholder = `Message ${kind === 'public' ? '#' : ''}${roomLabel(r)}`;
  let sub;
  if (kind === 'direct') {
    const pm = r.members && r.peer && r.members.get(r.peer.id);
    sub = pm ? (pm.online ? 'Online' : 'Offline') : 'Direct message';
  } else {
    const count = r.members ? r.members.size : r.room.member_count;
    const parts = [];
    if (count != null) parts.push(`${count} member${count === 1 ? '' : 's'}`);
    if (r.members) parts.push(`${[...r.members.values()].filter((x) => x.online).length} online`);
    if (r.room.topic) parts.push(r.room.topic);
    sub = parts.join(' · ');
  }
  $('#room-sub').textContent = sub;
  const mute = $('#mute-btn');
  mute.textContent = r.muted ? 'Unmute' : 'Mute';
  mute.setAttribute('aria-pressed', String(r.muted));
  mute.title = r.muted ? 'Muted: unread messages do not count in the tab title' : 'Mute this conversation';
  $('#info-topic').textContent = r.room.topic || (kind === 'direct' ? 'Direct message' : '');
  const owner = S.me && r.room.owner_id === S.me.id;
  $('#edit-room-btn').hidden = !(owner && kind !== 'direct');
  $('#add-member-btn').hidden = kind !== 'private';
  $('#leave-btn').hidden = kind === 'direct';
  $('#delete-room-btn').hidden = !(owner && kind !== 'direct');
}

// ---------------------------------------------------------------- members and presence

function ensureMembers(r, force) {
  if (r.members && !force) return Promise.resolve(r.members);
  if (r.membersPromise) return r.membersPromise;
  r.membersPromise = api('GET', `/rooms/${enc(r.room.id)}/members`).then((data) => {
    const map = new Map();
    for (const m of data.members || []) if (m && m.user) map.set(m.user.id, { ...m });
    r.members = map;
    r.room.member_count = map.size;
    if (r.room.kind === 'direct') {
      const other = [...map.values()].find((m) => m.user.id !== S.me.id);
      if (other) r.peer = other.user;
    }
    renderSidebar();
    if (S.openId === r.room.id) { renderRoomHeader(r); renderMembers(r); scheduleReceipts(); }
    return map;
  }).catch((e) => {
    if (e.status === 404) removeRoom(r.room.id, 'This room is no longer available.');
    return null;
  }).finally(() => { r.membersPromise = null; });
  return r.membersPromise;
}

function renderMembers(r) {
  if (S.openId !== r.room.id || dom.info.hidden) return;
  if (!r.members) {
    dom.memberList.replaceChildren(h('li', { class: 'muted-text', text: 'Loading members…' }));
    return;
  }
  const arr = [...r.members.values()].sort((a, b) => (Number(!!b.online) - Number(!!a.online))
    || displayName(a.user).localeCompare(displayName(b.user)));
  const online = arr.filter((m) => m.online).length;
  $('#members-heading').textContent = `Members (${arr.length}) · ${online} online`;
  dom.memberList.replaceChildren(...arr.map((m) => h('li', { class: `member${m.online ? ' online' : ''}` },
    h('span', { class: `presence-dot${m.online ? ' on' : ''}`, 'aria-hidden': 'true' }),
    avatar(m.user, 'avatar small'),
    h('span', { class: 'member-name', text: displayName(m.user), title: `@${m.user.username}` }),
    m.user.id === S.me.id ? h('span', { class: 'tag', text: 'you' }) : null,
    m.role === 'owner' ? h('span', { class: 'tag', text: 'owner' }) : null,
    h('span', { class: 'sr-only', text: m.online ? ', online' : ', offline' }))));
}

function onPresence(f) {
  const targets = f.room_id ? [S.rooms.get(f.room_id)] : [...S.rooms.values()];
  for (const r of targets) {
    const m = r && r.members && r.members.get(f.user_id);
    if (!m) continue;
    m.online = f.status === 'online';
    if (r.room.kind === 'direct') renderSidebar();
    if (S.openId === r.room.id) { renderRoomHeader(r); renderMembers(r); }
  }
}

function onMemberJoined(f) {
  const user = f.user;
  if (!user) return;
  const r = S.rooms.get(f.room_id);
  if (!r) {
    if (user.id === S.me.id) fetchAndAddRoom(f.room_id);
    return;
  }
  if (r.members && !r.members.has(user.id)) {
    r.members.set(user.id, { user, role: 'member', joined_at: new Date().toISOString(), last_read_seq: 0, online: false });
    r.room.member_count = r.members.size;
  }
  if (S.openId === r.room.id) { renderRoomHeader(r); renderMembers(r); }
}

function onMemberLeft(f) {
  if (f.user_id === S.me.id) {
    const mine = S.rooms.get(f.room_id); // our own leave's frame may beat its HTTP answer
    removeRoom(f.room_id, mine && mine.leaving ? `You left ${roomLabel(mine)}.` : 'You are no longer a member of this room.');
    return;
  }
  const r = S.rooms.get(f.room_id);
  if (!r) return;
  if (r.members && r.members.delete(f.user_id)) r.room.member_count = r.members.size;
  clearTyping(r, f.user_id);
  if (S.openId === r.room.id) { renderRoomHeader(r); renderMembers(r); scheduleReceipts(); }
}

// ---------------------------------------------------------------- room actions

async function toggleMute() {
  const r = openRoomState();
  if (!r) return;
  const button = $('#mute-btn');
  button.disabled = true;
  try {
    const res = await api('PUT', `/rooms/${enc(r.room.id)}/mute`, { muted: !r.muted });
    r.muted = res && typeof res.muted === 'boolean' ? res.muted : !r.muted;
    renderRoomHeader(r);
    renderSidebar();
  } catch (e) {
    toast(describeError(e), 'error');
  } finally {
    button.disabled = false;
  }
}

function addMemberFlow() {
  const r = openRoomState();
  if (!r) return;
  const exclude = r.members ? [...r.members.keys()] : [S.me.id];
  openUserPicker({
    title: `Add someone to ${roomLabel(r)}`,
    actionLabel: 'Add',
    exclude,
    onPick: async (user) => {
      const res = await api('POST', `/rooms/${enc(r.room.id)}/members`, { user_id: user.id });
      if (res && res.room) r.room = { ...r.room, ...res.room };
      onMemberJoined({ room_id: r.room.id, user });
      toast(`${displayName(user)} was added.`);
    },
  });
}

async function leaveRoom() {
  const r = openRoomState();
  if (!r) return;
  if (!window.confirm(`Leave “${roomLabel(r)}”?`)) return;
  r.leaving = true;
  try {
    await api('POST', `/rooms/${enc(r.room.id)}/leave`);
    if (S.socket) S.socket.send({ type: 'unsubscribe', room_id: r.room.id });
    removeRoom(r.room.id, `You left ${roomLabel(r)}.`);
  } catch (e) {
    r.leaving = false;
    toast(describeError(e), 'error');
  }
}

async function deleteRoom() {
  const r = openRoomState();
  if (!r) return;
  if (!window.confirm(`Delete “${roomLabel(r)}” and all of its messages for everyone? This cannot be undone.`)) return;
  try {
    await api('DELETE', `/rooms/${enc(r.room.id)}`);
    removeRoom(r.room.id, `Deleted ${roomLabel(r)}.`);
  } catch (e) {
    toast(describeError(e), 'error');
  }
}

// ================================================================ messages

/** Fold a message into a room's state. Returns true if it is newer than anything seen. */
function absorb(r, m, live) {
  let fresh = false;
  if (m.seq > r.lastSeq) {
    fresh = true;
    r.lastSeq = m.seq;
    r.room.last_seq = Math.max(r.room.last_seq || 0, m.seq);
    if (toTime(m.created_at) > toTime(r.room.last_activity_at)) r.room.last_activity_at = m.created_at;
    if (live) {
      if (isMine(m)) r.unread = 0; // posting moves your read marker to your message
      else if (!m.deleted && !viewing(r)) r.unread += 1;
    }
  }
  if (!r.lastMessage || m.seq >= r.lastMessage.seq) r.lastMessage = m;
  if (m.seq > r.resumeSeq) r.resumeSeq = m.seq;
  if (isMine(m) && r.members) {
    const me = r.members.get(S.me.id);
    if (me) me.last_read_seq = Math.max(me.last_read_seq || 0, m.seq);
  }
  if (r.loaded || r.loading) r.messages.set(m.seq, m);
  return fresh;
}

async function loadLatest(r) {
  if (r.loading) return r.loading;
  r.loading = api('GET', `/rooms/${enc(r.room.id)}/messages?limit=${PAGE}`).then((data) => {
    const msgs = (data && data.messages) || [];
    for (const m of msgs) absorb(r, m, false);
    r.hasMore = !!data.has_more && msgs.length > 0;
    r.loaded = true;
    r.historyError = '';
    return true;
  }).catch((e) => {
    r.historyError = describeError(e);
    if (e.status === 404) removeRoom(r.room.id, 'This room is no longer available.');
    return false;
  }).finally(() => { r.loading = null; });
  return r.loading;
}

/** After a reconnect: pick up edits and deletions in the newest page of the open room. */
async function refreshLatest(r) {
  try {
    const data = await api('GET', `/rooms/${enc(r.room.id)}/messages?limit=${PAGE}`);
    for (const m of data.messages || []) {
      absorb(r, m, false);
      if (S.openId === r.room.id && r.loaded) upsertMessageEl(r, m);
    }
    scheduleReceipts();
    renderSidebar();
  } catch { /* the live stream still works */ }
}

async function loadOlder() {
  const r = openRoomState();
  if (!r || !r.loaded || !r.hasMore || r.loadingOlder) return;
  let oldest = Infinity;
  for (const s of r.messages.keys()) if (s < oldest) oldest = s;
  if (oldest === Infinity || oldest <= 1) { r.hasMore = false; updateHistoryStatus(r); return; }
  r.loadingOlder = true;
  r.historyError = '';
  updateHistoryStatus(r);
  try {
    const data = await api('GET', `/rooms/${enc(r.room.id)}/messages?before_seq=${oldest}&limit=${PAGE}`);
    const all = (data && data.messages) || [];
    const msgs = all.filter((m) => !r.messages.has(m.seq)).sort((a, b) => a.seq - b.seq);
    for (const m of msgs) r.messages.set(m.seq, m);
    r.hasMore = !!data.has_more && all.length > 0;
    if (S.openId === r.room.id) prependMessages(r, msgs);
  } catch (e) {
    r.historyError = `${describeError(e)} Scroll up to retry.`;
  } finally {
    r.loadingOlder = false;
    updateHistoryStatus(r);
  }
  if (S.openId === r.room.id) fillViewport(r);
}

function fillViewport(r) {
  if (S.openId !== r.room.id || !r.hasMore || r.loadingOlder || r.historyError) return;
  if (dom.messages.scrollHeight <= dom.messages.clientHeight + 150) loadOlder();
}

function updateHistoryStatus(r) {
  if (S.openId !== r.room.id) return;
  let t = '';
  if (r.historyError) t = r.historyError;
  else if (r.loadingOlder) t = 'Loading older messages…';
  else if (r.loaded && !r.hasMore) t = r.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
  dom.history.textContent = t;
}

// ---------------------------------------------------------------- rendering

function isCont(prev, m) {
  return !!(prev && m && prev.author && m.author && prev.author.id === m.author.id
    && !prev.deleted && toTime(m.created_at) - toTime(prev.created_at) < GROUP_MS);
}

function prevMessage(r, seq) {
  let best = null;
  for (const [s, m] of r.messages) if (s < seq && (!best || s > best.seq)) best = m;
  return best;
}

function messageEl(r, m, prev) {
  const mine = isMine(m);
  const cls = ['msg'];
  if (mine) cls.push('own');
  if (m.deleted) cls.push('deleted');
  if (isCont(prev, m)) cls.push('cont');
  const li = h('li', { class: cls.join(' '), dataset: { seq: String(m.seq), id: m.id } });
  const text = m.deleted
    ? h('div', { class: 'msg-text deleted-text', text: 'message deleted' })
    : h('div', { class: 'msg-text' },
      h('span', { text: m.text }),
      m.edited_at ? h('span', { class: 'msg-edited', title: `Edited ${fullTime(m.edited_at)}`, text: ' (edited)' }) : null);
  li.append(
    avatar(m.author, 'avatar msg-avatar'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author', text: displayName(m.author) }),
        h('time', { class: 'msg-time', datetime: m.created_at, title: fullTime(m.created_at), text: shortTime(m.created_at) })),
      text,
      mine && !m.deleted ? h('div', { class: 'receipt' }) : null),
  );
  const canEdit = mine && !m.deleted;
  const canDelete = !m.deleted && (mine || (S.me && r.room.owner_id === S.me.id));
  if (canEdit || canDelete) {
    li.append(h('div', { class: 'msg-actions' },
      canEdit ? h('button', { type: 'button', class: 'small ghost', 'data-act': 'edit', 'aria-label': 'Edit message', text: 'Edit' }) : null,
      canDelete ? h('button', { type: 'button', class: 'small ghost', 'data-act': 'delete', 'aria-label': 'Delete message', text: 'Delete' }) : null));
  }
  return li;
}

function pendingEl(p) {
  const li = h('li', { class: `msg own pending${p.failed ? ' failed' : ''}`, dataset: { pending: p.client_id } },
    avatar(S.me, 'avatar msg-avatar'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author', text: displayName(S.me) }),
        h('span', { class: 'msg-time', text: p.failed ? 'not sent' : 'sending…' })),
      h('div', { class: 'msg-text' }, h('span', { text: p.text })),
      p.failed ? h('div', { class: 'pending-error' },
        h('span', { text: p.error || 'Not sent.' }),
        h('button', { type: 'button', class: 'small', 'data-act': 'retry', text: 'Retry' }),
        h('button', { type: 'button', class: 'small ghost', 'data-act': 'discard', text: 'Discard' })) : null));
  return li;
}

function renderAllMessages(r) {
  els.clear();
  pendingEls.clear();
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of [...r.messages.values()].sort((a, b) => a.seq - b.seq)) {
    const li = messageEl(r, m, prev);
    els.set(m.seq, li);
    frag.append(li);
    prev = m;
  }
  for (const p of r.pending.values()) {
    const li = pendingEl(p);
    pendingEls.set(p.client_id, li);
    frag.append(li);
  }
  dom.list.replaceChildren(frag);
  scheduleReceipts();
}

function regroupAfter(r, li) {
  const next = li.nextElementSibling;
  if (!next || !next.dataset.seq) return;
  const nm = r.messages.get(Number(next.dataset.seq));
  next.classList.toggle('cont', isCont(r.messages.get(Number(li.dataset.seq)), nm));
}

function upsertMessageEl(r, m, force) {
  const old = els.get(m.seq);
  if (old) {
    if (old.classList.contains('editing') && !force) return;
    const li = messageEl(r, m, prevMessage(r, m.seq));
    old.replaceWith(li);
    els.set(m.seq, li);
    regroupAfter(r, li);
    return;
  }
  let before = null;
  for (let c = dom.list.lastElementChild; c; c = c.previousElementSibling) {
    if (c.dataset.pending || Number(c.dataset.seq) > m.seq) before = c;
    else break;
  }
  const li = messageEl(r, m, prevMessage(r, m.seq));
  dom.list.insertBefore(li, before);
  els.set(m.seq, li);
  regroupAfter(r, li);
}

function prependMessages(r, msgs) {
  if (!msgs.length) return;
  const box = dom.messages;
  const beforeH = box.scrollHeight;
  const beforeTop = box.scrollTop;
  const frag = document.createDocumentFragment();
  let prev = prevMessage(r, msgs[0].seq);
  let lastLi = null;
  for (const m of msgs) {
    const li = messageEl(r, m, prev);
    els.set(m.seq, li);
    frag.append(li);
    prev = m;
    lastLi = li;
  }
  let anchor = dom.list.firstElementChild;
  while (anchor && anchor.dataset.seq && Number(anchor.dataset.seq) < msgs[0].seq) anchor = anchor.nextElementSibling;
  dom.list.insertBefore(frag, anchor);
  if (lastLi) regroupAfter(r, lastLi);
  box.scrollTop = beforeTop + (box.scrollHeight - beforeH);
  scheduleReceipts();
}

function nearBottom() {
  const b = dom.messages;
  return b.scrollHeight - b.scrollTop - b.clientHeight < 80;
}

function scrollToBottom() {
  dom.messages.scrollTop = dom.messages.scrollHeight;
}

// ---------------------------------------------------------------- read receipts

let receiptsTimer = null;
function scheduleReceipts() {
  if (receiptsTimer) return;
  receiptsTimer = setTimeout(() => { receiptsTimer = null; updateReceipts(); }, 50);
}

/** "Seen by N" on your newest message, and on older ones where the count differs. */
function updateReceipts() {
  const r = openRoomState();
  if (!r || !r.members) return;
  const others = [...r.members.values()].filter((m) => m.user.id !== S.me.id);
  const own = [...els.keys()].filter((s) => { const m = r.messages.get(s); return m && !m.deleted && isMine(m); })
    .sort((a, b) => b - a);
  let shown = -1;
  for (const seq of own) {
    const rc = els.get(seq).querySelector('.receipt');
    if (!rc) continue;
    const readers = others.filter((m) => (m.last_read_seq || 0) >= seq);
    const n = readers.length;
    let label = '';
    if (n > 0 && n !== shown) {
      if (r.room.kind === 'direct') label = 'Seen';
      else if (n === others.length && n > 1) label = 'Seen by everyone';
      else label = `Seen by ${n}`;
      shown = n;
    }
    rc.textContent = label;
    rc.title = readers.map((m) => displayName(m.user)).join(', ');
  }
}

function onRead(f) {
  const r = S.rooms.get(f.room_id);
  if (!r) return;
  if (r.members) {
    const m = r.members.get(f.user_id);
    if (m) m.last_read_seq = Math.max(m.last_read_seq || 0, f.seq || 0);
  }
  if (f.user_id === S.me.id) {
    r.sentReadSeq = Math.max(r.sentReadSeq, f.seq || 0);
    if ((f.seq || 0) >= r.lastSeq && r.unread) { r.unread = 0; renderSidebar(); }
  }
  if (S.openId === r.room.id) scheduleReceipts();
}

function scheduleRead() {
  clearTimeout(S.readTimer);
  S.readTimer = setTimeout(markRead, 300);
}

function markRead() {
  const r = openRoomState();
  if (!r || !r.loaded || document.visibilityState !== 'visible') return;
  if (r.unread) { r.unread = 0; renderSidebar(); }
  const seq = r.lastSeq;
  if (!seq || seq <= r.sentReadSeq) return;
  r.sentReadSeq = seq;
  if (r.members) {
    const me = r.members.get(S.me.id);
    if (me) me.last_read_seq = Math.max(me.last_read_seq || 0, seq);
  }
  api('POST', `/rooms/${enc(r.room.id)}/read`, { seq }).then((res) => {
    if (res && S.openId !== r.room.id && typeof res.unread_count === 'number') { r.unread = res.unread_count; renderSidebar(); }
  }).catch(() => { if (r.sentReadSeq === seq) r.sentReadSeq = 0; });
}

// ---------------------------------------------------------------- live frames

function onFrame(f) {
  switch (f.type) {
    case 'message': if (f.message) onMessage(f.message); break;
    case 'ack': onAck(f); break;
    case 'message_edited': if (f.message) onEdited(f.message); break;
    case 'message_deleted': onDeleted(f); break;
    case 'typing': onTyping(f); break;
    case 'read': onRead(f); break;
    case 'presence': onPresence(f); break;
    case 'member_joined': onMemberJoined(f); break;
    case 'member_left': onMemberLeft(f); break;
    case 'room_created': if (f.room) onRoomCreated(f.room); break;
    case 'room_updated': if (f.room) onRoomUpdated(f.room); break;
    case 'room_deleted': removeRoom(f.room_id, 'This room was deleted.'); break;
    case 'user_updated': if (f.user && f.user.id) onUserUpdated(f.user); break;
    case 'error': onError(f); break;
    default: break; // subscribed, unsubscribed and future frame types
  }
}

async function onReady(f) {
  if (f.user && S.me && f.user.id === S.me.id) { S.me = { ...S.me, ...f.user }; renderMe(); }
  const reconnect = S.everReady;
  S.everReady = true;
  if (reconnect || !S.convLoaded) {
    // Edits and deletions missed while offline: drop cached history of rooms not on screen.
    for (const r of S.rooms.values()) {
      if (r.room.id !== S.openId && !r.loading) { r.loaded = false; r.messages.clear(); r.hasMore = true; }
      if (r.room.id !== S.openId && r.room.kind !== 'direct') r.members = null;
    }
    try { await loadConversations(); } catch (e) { if (e.status === 401) return; }
    if (!S.socket || !S.socket.ready) return;
  }
  for (const r of S.rooms.values()) subscribe(r);
  for (const r of S.rooms.values()) {
    for (const p of r.pending.values()) if (!p.failed && !p.viaHttp) dispatchPending(r, p);
  }
  const open = openRoomState();
  if (open) {
    if (reconnect && open.loaded) refreshLatest(open);
    ensureMembers(open, reconnect);
  }
  scheduleRead();
}

function onMessage(m) {
  const r = S.rooms.get(m.room_id);
  if (!r) return;
  resolvePending(r, m);
  const open = S.openId === r.room.id;
  const stick = open && (nearBottom() || isMine(m));
  const fresh = absorb(r, m, true);
  if (m.author) clearTyping(r, m.author.id);
  if (open && r.loaded) {
    upsertMessageEl(r, m);
    if (fresh) updateHistoryStatus(r);
    if (stick) scrollToBottom();
    else if (fresh) dom.jump.hidden = false;
    scheduleReceipts();
    if (fresh) scheduleRead();
  }
  renderSidebar();
}

function onAck(f) {
  if (f.message) { onMessage(f.message); return; }
  for (const r of S.rooms.values()) {
    const p = r.pending.get(f.client_id);
    if (p) { clearTimeout(p.timer); r.pending.delete(f.client_id); dropPendingEl(f.client_id); }
  }
}

function onEdited(m) {
  const r = S.rooms.get(m.room_id);
  if (!r) return;
  if (r.messages.has(m.seq) || r.loaded) r.messages.set(m.seq, m);
  if (r.lastMessage && r.lastMessage.seq === m.seq) { r.lastMessage = m; renderSidebar(); }
  if (S.openId === r.room.id && els.has(m.seq)) upsertMessageEl(r, m);
}

function onDeleted(f) {
  const r = S.rooms.get(f.room_id);
  if (!r) return;
  const mark = (m) => ({ ...m, deleted: true, text: '' });
  const cur = r.messages.get(f.seq);
  if (cur) {
    const d = mark(cur);
    r.messages.set(f.seq, d);
    if (S.openId === r.room.id && els.has(f.seq)) { upsertMessageEl(r, d, true); scheduleReceipts(); }
  }
  if (r.lastMessage && (r.lastMessage.seq === f.seq || r.lastMessage.id === f.message_id)) {
    r.lastMessage = mark(r.lastMessage);
    renderSidebar();
  }
}

function onTyping(f) {
  const r = S.rooms.get(f.room_id);
  if (!r || !f.user || f.user.id === S.me.id) return;
  const prev = r.typing.get(f.user.id);
  if (prev) clearTimeout(prev.timer);
  r.typing.set(f.user.id, { user: f.user, timer: setTimeout(() => clearTyping(r, f.user.id), TYPING_SHOW_MS) });
  renderTyping(r);
  if (!prev) renderSidebar();
}

function clearTyping(r, userId) {
  const t = r.typing.get(userId);
  if (!t) return;
  clearTimeout(t.timer);
  r.typing.delete(userId);
  renderTyping(r);
  renderSidebar();
}

function renderTyping(r) {
  if (S.openId !== r.room.id) return;
  const names = [...r.typing.values()].map((t) => displayName(t.user));
  let t = '';
  if (names.length === 1) t = `${names[0]} is typing…`;
  else if (names.length === 2) t = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) t = 'Several people are typing…';
  dom.typing.textContent = t;
}

function onRoomCreated(room) {
  if (S.rooms.has(room.id)) { onRoomUpdated(room); return; }
  // Public rooms are announced to everyone; only rooms we belong to join the list.
  if (room.kind !== 'public' || room.owner_id === S.me.id) addRoom(room);
  else refreshBrowseIfOpen();
}

function onRoomUpdated(room) {
  const r = S.rooms.get(room.id);
  if (!r) { refreshBrowseIfOpen(); return; }
  r.room = { ...r.room, ...room, last_seq: Math.max(r.room.last_seq || 0, room.last_seq || 0) };
  renderSidebar();
  renderRoomHeader(r);
}

function onError(f) {
  const ref = f.ref || '';
  if (ref.startsWith('sub:')) {
    const id = ref.slice(4);
    if (f.code === 'not_found' || f.code === 'forbidden') removeRoom(id, 'This room is no longer available.');
    return;
  }
  for (const r of S.rooms.values()) {
    const p = ref && r.pending.get(ref);
    if (p) { failPending(r, p, f.message || f.code); return; }
  }
  if (f.code === 'rate_limited') toast(f.message || 'Slow down a little.', 'error');
  else if (f.message) toast(f.message, 'error');
}

// ---------------------------------------------------------------- sending

function onComposerInput() {
  autosize();
  showComposerError('');
  const r = openRoomState();
  if (!r || !dom.input.value.trim()) return;
  const now = Date.now();
  if (now - r.lastTypingSent >= TYPING_SEND_MS && S.socket && S.socket.send({ type: 'typing', room_id: r.room.id })) {
    r.lastTypingSent = now;
  }
}

function autosize() {
  const t = dom.input;
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight + 2, 200)}px`;
}

function showComposerError(msg) {
  dom.composerError.textContent = msg;
  dom.composerError.hidden = !msg;
}

function submitComposer() {
  const r = openRoomState();
  if (!r) return;
  const text = dom.input.value.trim();
  if (!text) return;
  if (charCount(text) > 4000) { showComposerError('A message can be at most 4000 characters.'); return; }
  const p = { client_id: uuid(), text, failed: false, error: '', timer: null, viaHttp: false };
  r.pending.set(p.client_id, p);
  dom.input.value = '';
  r.draft = '';
  r.lastTypingSent = 0;
  autosize();
  const li = pendingEl(p);
  pendingEls.set(p.client_id, li);
  dom.list.append(li);
  scrollToBottom();
  dispatchPending(r, p);
}

function dispatchPending(r, p) {
  p.failed = false;
  clearTimeout(p.timer);
  const frame = { type: 'send', room_id: r.room.id, text: p.text, client_id: p.client_id, ref: p.client_id };
  if (S.socket && S.socket.send(frame)) {
    p.timer = setTimeout(() => {
      if (r.pending.get(p.client_id) === p && !p.failed) failPending(r, p, 'No answer from the server.');
    }, ACK_TIMEOUT_MS);
    return;
  }
  // Not connected: use REST instead (idempotent thanks to client_id).
  p.viaHttp = true;
  api('POST', `/rooms/${enc(r.room.id)}/messages`, { text: p.text, client_id: p.client_id })
    .then((res) => { if (res && res.message) onMessage(res.message); })
    .catch((e) => failPending(r, p, describeError(e)))
    .finally(() => { p.viaHttp = false; });
}

function resolvePending(r, m) {
  if (!m.client_id || !isMine(m)) return;
  const p = r.pending.get(m.client_id);
  if (!p) return;
  clearTimeout(p.timer);
  r.pending.delete(m.client_id);
  dropPendingEl(m.client_id);
}

function dropPendingEl(cid) {
  const li = pendingEls.get(cid);
  if (li) li.remove();
  pendingEls.delete(cid);
}

function failPending(r, p, error) {
  clearTimeout(p.timer);
  p.failed = true;
  p.error = error;
  const old = pendingEls.get(p.client_id);
  if (old && S.openId === r.room.id) {
    const li = pendingEl(p);
    old.replaceWith(li);
    pendingEls.set(p.client_id, li);
  }
}

// ---------------------------------------------------------------- edit / delete

function onMessageAction(ev) {
  const b = ev.target.closest('button[data-act]');
  if (!b) return;
  const li = b.closest('li.msg');
  const r = openRoomState();
  if (!li || !r) return;
  const act = b.dataset.act;
  if (li.dataset.pending) {
    const p = r.pending.get(li.dataset.pending);
    if (!p) return;
    if (act === 'retry') {
      const fresh = { ...p, failed: false, error: '' };
      r.pending.set(p.client_id, fresh);
      const nli = pendingEl(fresh);
      li.replaceWith(nli);
      pendingEls.set(p.client_id, nli);
      dispatchPending(r, fresh);
    } else if (act === 'discard') {
      r.pending.delete(p.client_id);
      dropPendingEl(p.client_id);
    }
    return;
  }
  const m = r.messages.get(Number(li.dataset.seq));
  if (!m) return;
  if (act === 'edit') startEdit(r, li, m);
  else if (act === 'delete') deleteMessage(r, m);
}

function startEdit(r, li, m) {
  if (li.classList.contains('editing')) return;
  const textDiv = li.querySelector('.msg-text');
  const ta = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', maxlength: '4000', rows: '2' });
  ta.value = m.text;
  const err = h('p', { class: 'field-error', role: 'alert' });
  const cancel = h('button', { type: 'button', class: 'small', text: 'Cancel' });
  const form = h('form', { class: 'edit-form' }, ta,
    h('div', { class: 'edit-actions' },
      h('button', { type: 'submit', class: 'small primary', text: 'Save' }), cancel,
      h('span', { class: 'hint', text: 'Enter to save · Esc to cancel' })),
    err);
  li.classList.add('editing');
  textDiv.replaceWith(form);
  ta.focus();
  ta.setSelectionRange(ta.value.length, ta.value.length);

  const finish = () => {
    const cur = r.messages.get(m.seq) || m;
    if (S.openId === r.room.id && els.get(m.seq) === li) upsertMessageEl(r, cur, true);
    scheduleReceipts();
  };
  const save = async () => {
    const text = ta.value.trim();
    if (!text) { err.textContent = 'A message cannot be empty; delete it instead.'; return; }
    if (charCount(text) > 4000) { err.textContent = 'A message can be at most 4000 characters.'; return; }
    if (text === m.text) { finish(); return; }
    ta.disabled = true;
    try {
      const res = await api('PATCH', `/rooms/${enc(r.room.id)}/messages/${enc(m.id)}`, { text });
      if (res && res.message) onEdited(res.message);
      finish();
    } catch (e) {
      ta.disabled = false;
      err.textContent = describeError(e);
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); save(); });
  cancel.addEventListener('click', finish);
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(); }
    else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); save(); }
  });
}

async function deleteMessage(r, m) {
  const whose = isMine(m) ? 'your message' : `${displayName(m.author)}'s message`;
  if (!window.confirm(`Delete ${whose}?`)) return;
  try {
    await api('DELETE', `/rooms/${enc(r.room.id)}/messages/${enc(m.id)}`);
    onDeleted({ room_id: r.room.id, message_id: m.id, seq: m.seq });
  } catch (e) {
    toast(describeError(e), 'error');
  }
}
