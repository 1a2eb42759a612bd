// Your conversations: the room records (the one map of them), loaded from /conversations and
// kept up to date as rooms are created, joined, left and deleted.
import { api, enc } from '../api.js';
import { toast } from '../util.js';
import { refreshBrowseIfOpen } from '../dialogs.js';
import { newRoomState, running } from './state.js';
import { sendFrame } from './connection.js';
import { renderSidebar } from './sidebar.js';
import { closeRoomView, isOpen, openRoomState, renderRoomHeader } from './room.js';
import { ensureMembers } from './members.js';
import { scheduleRead } from './receipts.js';

const rooms = new Map(); // room id -> room record (state.js, newRoomState)
let loaded = false; // the first full load of /conversations has answered

export const getRoom = (id) => rooms.get(id);
export const hasRoom = (id) => rooms.has(id);
export const allRooms = () => rooms.values();
export const roomCount = () => rooms.size;
export const conversationsLoaded = () => loaded;

export async function loadConversations() {
  const seen = new Set();
  let cursor = null;
  let pages = 0;
  do {
    const data = await api('GET', `/conversations?limit=100${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    if (!running) return;
    for (const c of data.conversations || []) {
      if (!c || !c.room) continue;
      seen.add(c.room.id);
      mergeConversation(c);
    }
    cursor = data.next_cursor || null;
    pages += 1;
  } while (cursor && pages < 20);
  if (!cursor) {
    for (const id of [...rooms.keys()]) if (!seen.has(id)) removeRoom(id, 'You are no longer a member of this room.');
  }
  loaded = true;
  renderSidebar();
  for (const r of rooms.values()) if (r.room.kind === 'direct' && !r.peer) ensureMembers(r);
  const open = openRoomState();
  if (open) { renderRoomHeader(open); scheduleRead(); }
}

function mergeConversation(c) {
  let r = rooms.get(c.room.id);
  if (!r) {
    r = newRoomState(c.room);
    rooms.set(c.room.id, r);
  } else {
    r.room = { ...r.room, ...c.room, last_seq: Math.max(r.room.last_seq || 0, c.room.last_seq || 0) };
  }
  r.muted = !!c.muted;
  r.unread = c.unread_count || 0;
  r.mentionCount = c.mention_count || 0;
  if (c.last_message && (!r.lastMessage || c.last_message.seq >= r.lastMessage.seq)) r.lastMessage = c.last_message;
  r.lastSeq = Math.max(r.lastSeq, c.room.last_seq || 0, (c.last_message && c.last_message.seq) || 0);
}

export function addRoom(room, extra) {
  let r = rooms.get(room.id);
  if (r) {
    r.room = { ...r.room, ...room, last_seq: Math.max(r.room.last_seq || 0, room.last_seq || 0) };
  } else {
    r = newRoomState(room);
    rooms.set(room.id, r);
    subscribe(r);
  }
  if (extra && extra.peer) r.peer = extra.peer;
  if (room.kind === 'direct' && !r.peer) ensureMembers(r);
  renderSidebar();
  return r;
}

export async function fetchAndAddRoom(id) {
  try {
    const res = await api('GET', `/rooms/${enc(id)}`);
    if (res && res.room && running) addRoom(res.room);
  } catch { /* not visible to us after all */ }
}

export function removeRoom(id, notice) {
  const r = rooms.get(id);
  if (!r) return;
  clearRoomTimers(r);
  rooms.delete(id);
  if (isOpen(r)) {
    closeRoomView();
    if (notice) toast(notice);
  }
  renderSidebar();
  refreshBrowseIfOpen();
}

/** The chat stopped: drop every room (and its timers). */
export function forgetConversations() {
  for (const r of rooms.values()) clearRoomTimers(r);
  rooms.clear();
  loaded = false;
}

function clearRoomTimers(r) {
  for (const t of r.typing.values()) clearTimeout(t.timer);
  for (const p of r.pending.values()) clearTimeout(p.timer);
}

export function subscribe(r) {
  const after = r.loaded || r.loading ? r.resumeSeq : r.lastSeq;
  sendFrame({ type: 'subscribe', room_id: r.room.id, after_seq: after, ref: `sub:${r.room.id}` });
}
