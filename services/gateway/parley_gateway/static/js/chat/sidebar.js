// The sidebar: you (name, avatar), the buttons that start a conversation, and the filtered,
// most-recent-first list of conversations (redrawn at most once a frame).
import { api, enc } from '../api.js';
import { $, h, displayName, shortTime, avatar, lockIcon } from '../util.js';
import { openCreateRoom, openBrowse, openUserPicker } from '../dialogs.js';
import { me, running, isMine, roomLabel, activity } from './state.js';
import { addRoom, allRooms, hasRoom, roomCount, conversationsLoaded } from './conversations.js';
import { isOpen, openRoom } from './room.js';

let dom = {};
let sidebarTimer = null;

export function setupSidebar() {
  dom = { convList: $('#conv-list'), convEmpty: $('#conv-empty'), filter: $('#conv-filter') };
  $('#new-room-btn').addEventListener('click', () => openCreateRoom((room) => {
    addRoom(room);
    openRoom(room.id);
  }));
  $('#browse-btn').addEventListener('click', () => openBrowse({
    isJoined: (id) => hasRoom(id),
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
}

export function renderMe() {
  $('#me-name').textContent = displayName(me);
  $('#me-name').title = `@${me.username}`;
  $('#me-avatar').replaceChildren(avatar(me));
}

export function clearSidebar() {
  dom.convList.replaceChildren();
}

export function renderSidebar() {
  updateTitle();
  if (sidebarTimer) return;
  sidebarTimer = setTimeout(() => { sidebarTimer = null; drawSidebar(); }, 16);
}

function updateTitle() {
  let n = 0;
  for (const r of allRooms()) if (!r.muted) n += r.unread;
  document.title = n ? `(${n}) Parley` : 'Parley';
}

function drawSidebar() {
  if (!running) return;
  const q = dom.filter.value.trim().toLowerCase();
  const focusedId = document.activeElement && document.activeElement.classList.contains('conv')
    ? document.activeElement.dataset.id : null;
  const rooms = [...allRooms()]
    .filter((r) => !q || roomLabel(r).toLowerCase().includes(q))
    .sort((a, b) => activity(b) - activity(a));
  const items = rooms.map(convItem);
  dom.convList.replaceChildren(...items);
  dom.convEmpty.hidden = roomCount() > 0 || !conversationsLoaded();
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
  const mentions = r.mentionCount ? h('span', { class: 'badge badge-mention', title: 'Mentions of you', text: r.mentionCount > 99 ? '@99+' : `@${r.mentionCount}` }) : null;
  const srBits = [r.unread ? `${r.unread} unread` : '', r.mentionCount ? `${r.mentionCount} mentioning you` : '', r.muted ? 'muted' : ''].filter(Boolean).join(', ');
  const button = h('button', {
    type: 'button',
    class: `conv${r.unread && !r.muted ? ' has-unread' : ''}`,
    dataset: { id: r.room.id },
    'aria-current': isOpen(r) ? 'true' : null,
  },
  icon,
  h('span', { class: 'conv-main' },
    h('span', { class: 'conv-top' },
      h('span', { class: 'conv-name', text: roomLabel(r) }),
      r.muted ? h('span', { class: 'tag muted-tag', text: 'muted' }) : null,
      h('span', { class: 'conv-time', text: time })),
    h('span', { class: 'conv-bottom' },
      h('span', { class: previewClass, text: preview }),
      mentions,
      badge)),
  srBits ? h('span', { class: 'sr-only', text: `, ${srBits}` }) : null);
  return h('li', {}, button);
}
