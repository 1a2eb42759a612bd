// Who is typing: the line under the messages and the sidebar's "typing…" preview.
import { displayName, $ } from '../util.js';
import { me } from './state.js';
import { allRooms, getRoom } from './conversations.js';
import { isOpen, openRoomState } from './room.js';
import { renderSidebar } from './sidebar.js';

const TYPING_SHOW_MS = 5000;

let dom = {};

export function setupTyping() {
  dom = { typing: $('#typing') };
}

export function onTyping(f) {
  const r = getRoom(f.room_id);
  if (!r || !f.user || f.user.id === me.id) return;
  const prev = r.typing.get(f.user.id);
  if (prev) clearTimeout(prev.timer);
  r.typing.set(f.user.id, { user: f.user, timer: setTimeout(() => clearTyping(r, f.user.id), TYPING_SHOW_MS) });
  renderTyping(r);
  if (!prev) renderSidebar();
}

export function clearTyping(r, userId) {
  const t = r.typing.get(userId);
  if (!t) return;
  clearTimeout(t.timer);
  r.typing.delete(userId);
  renderTyping(r);
  renderSidebar();
}

/** Offline: nobody's typing indicator can be trusted any more. */
export function forgetTyping() {
  for (const r of allRooms()) {
    for (const t of r.typing.values()) clearTimeout(t.timer);
    r.typing.clear();
  }
  const r = openRoomState();
  if (r) renderTyping(r);
}

export function renderTyping(r) {
  if (!isOpen(r)) return;
  const names = [...r.typing.values()].map((t) => displayName(t.user));
  let t = '';
  if (names.length === 1) t = `${names[0]} is typing…`;
  else if (names.length === 2) t = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) t = 'Several people are typing…';
  dom.typing.textContent = t;
}
