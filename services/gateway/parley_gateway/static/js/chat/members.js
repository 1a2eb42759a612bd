// Members and presence: the room details panel (topic, members, who is online), each room's
// member list (loaded once, then kept by member_joined / member_left / presence frames).
import { api, enc } from '../api.js';
import { $, h, displayName, avatar } from '../util.js';
import { me, roomLabel } from './state.js';
import { allRooms, fetchAndAddRoom, getRoom, removeRoom } from './conversations.js';
import { isOpen, openRoomState, renderRoomHeader } from './room.js';
import { renderSidebar } from './sidebar.js';
import { clearTyping } from './typing.js';
import { scheduleReceipts } from './receipts.js';

let dom = {};

export function setupMembers() {
  dom = { info: $('#info-panel'), infoBtn: $('#info-btn'), memberList: $('#member-list') };
  dom.infoBtn.addEventListener('click', () => setInfoOpen(dom.info.hidden));
  $('#info-close').addEventListener('click', () => setInfoOpen(false));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !dom.info.hidden && !document.querySelector('dialog[open]')) setInfoOpen(false);
  });
}

export function setInfoOpen(open) {
  dom.info.hidden = !open;
  dom.infoBtn.setAttribute('aria-expanded', String(open));
  const r = openRoomState();
  if (open && r) { renderMembers(r); ensureMembers(r); }
}

export function ensureMembers(r, force) {
  if (r.members && !force) return Promise.resolve(r.members);
  if (r.membersPromise) return r.membersPromise;
  r.membersPromise = api('GET', `/rooms/${enc(r.room.id)}/members`).then((data) => {
    const map = new Map();
    for (const m of data.members || []) if (m && m.user) map.set(m.user.id, { ...m });
    r.members = map;
    r.room.member_count = map.size;
    if (r.room.kind === 'direct') {
      const other = [...map.values()].find((m) => m.user.id !== me.id);
      if (other) r.peer = other.user;
    }
    renderSidebar();
    if (isOpen(r)) { renderRoomHeader(r); renderMembers(r); scheduleReceipts(); }
    return map;
  }).catch((e) => {
    if (e.status === 404) removeRoom(r.room.id, 'This room is no longer available.');
    return null;
  }).finally(() => { r.membersPromise = null; });
  return r.membersPromise;
}

export function renderMembers(r) {
  if (!isOpen(r) || dom.info.hidden) return;
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
    m.user.id === me.id ? h('span', { class: 'tag', text: 'you' }) : null,
    m.role === 'owner' ? h('span', { class: 'tag', text: 'owner' }) : null,
    h('span', { class: 'sr-only', text: m.online ? ', online' : ', offline' }))));
}

export function onPresence(f) {
  const targets = f.room_id ? [getRoom(f.room_id)] : [...allRooms()];
  for (const r of targets) {
    const m = r && r.members && r.members.get(f.user_id);
    if (!m) continue;
    m.online = f.status === 'online';
    if (r.room.kind === 'direct') renderSidebar();
    if (isOpen(r)) { renderRoomHeader(r); renderMembers(r); }
  }
}

export function onMemberJoined(f) {
  const user = f.user;
  if (!user) return;
  const r = getRoom(f.room_id);
  if (!r) {
    if (user.id === me.id) fetchAndAddRoom(f.room_id);
    return;
  }
  if (r.members && !r.members.has(user.id)) {
    r.members.set(user.id, { user, role: 'member', joined_at: new Date().toISOString(), last_read_seq: 0, online: false });
    r.room.member_count = r.members.size;
  }
  if (isOpen(r)) { renderRoomHeader(r); renderMembers(r); }
}

export function onMemberLeft(f) {
  if (f.user_id === me.id) {
    const mine = getRoom(f.room_id); // our own leave's frame may beat its HTTP answer
    removeRoom(f.room_id, mine && mine.leaving ? `You left ${roomLabel(mine)}.` : 'You are no longer a member of this room.');
    return;
  }
  const r = getRoom(f.room_id);
  if (!r) return;
  if (r.members && r.members.delete(f.user_id)) r.room.member_count = r.members.size;
  clearTyping(r, f.user_id);
  if (isOpen(r)) { renderRoomHeader(r); renderMembers(r); scheduleReceipts(); }
}
