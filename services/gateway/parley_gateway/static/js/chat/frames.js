// Live frames from the socket (DESIGN.md §4): 'ready' (connected, or connected again), and
// one handler per frame type, dispatched by onFrame.
import { toast } from '../util.js';
import { rememberAvatar } from '../avatar.js';
import { refreshBrowseIfOpen } from '../dialogs.js';
import { me, setMe, isMine } from './state.js';
import {
  addRoom, allRooms, conversationsLoaded, getRoom, hasRoom, loadConversations, removeRoom, subscribe,
} from './conversations.js';
import { socketReady } from './connection.js';
import { isOpen, openRoomState, renderRoomHeader } from './room.js';
import { renderMe, renderSidebar } from './sidebar.js';
import { ensureMembers, onMemberJoined, onMemberLeft, onPresence, renderMembers } from './members.js';
import { absorb, refreshLatest, updateHistoryStatus } from './messages.js';
import { dropPendingEl, isShown, nearBottom, scrollToBottom, showJump, upsertMessageEl } from './message-list.js';
import { onRead, scheduleRead, scheduleReceipts } from './receipts.js';
import { clearTyping, onTyping } from './typing.js';
import { dispatchPending, failPending, resolvePending } from './composer.js';
import { notifyMessage, onMention } from './mentions.js';
import { keepMyReactions, onReactionFrame } from './reactions.js';
import { onOriginalDeleted } from './replies.js';

export function onFrame(f) {
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
    case 'mention': onMention(f); break;
    case 'reaction_added': case 'reaction_removed': onReactionFrame(f); break;
    case 'error': onError(f); break;
    default: break; // subscribed, unsubscribed and future frame types
  }
}

/** Authenticated; `reconnect` when this socket had been ready before (connection.js). */
export async function onReady(f, reconnect) {
  if (f.user && me && f.user.id === me.id) { setMe({ ...me, ...f.user }); renderMe(); }
  if (reconnect || !conversationsLoaded()) {
    // Edits and deletions missed while offline: drop cached history of rooms not on screen.
    for (const r of allRooms()) {
      if (!isOpen(r) && !r.loading) { r.loaded = false; r.messages.clear(); r.hasMore = true; }
      if (!isOpen(r) && r.room.kind !== 'direct') r.members = null;
    }
    try { await loadConversations(); } catch (e) { if (e.status === 401) return; }
    if (!socketReady()) return;
  }
  for (const r of allRooms()) subscribe(r);
  for (const r of allRooms()) {
    for (const p of r.pending.values()) if (!p.failed && !p.viaHttp) dispatchPending(r, p);
  }
  const open = openRoomState();
  if (open) {
    if (reconnect && open.loaded) refreshLatest(open);
    ensureMembers(open, reconnect);
  }
  scheduleRead();
}

export function onMessage(m) {
  const r = getRoom(m.room_id);
  if (!r) return;
  resolvePending(r, m);
  const open = isOpen(r);
  const stick = open && (nearBottom() || isMine(m));
  const fresh = absorb(r, m, true);
  if (m.author) clearTyping(r, m.author.id);
  notifyMessage(r, m, fresh);
  if (open && r.loaded) {
    upsertMessageEl(r, m);
    if (fresh) updateHistoryStatus(r);
    if (stick) scrollToBottom();
    else if (fresh) showJump();
    scheduleReceipts();
    if (fresh) scheduleRead();
  }
  renderSidebar();
}

function onAck(f) {
  if (f.message) { onMessage(f.message); return; }
  for (const r of allRooms()) {
    const p = r.pending.get(f.client_id);
    if (p) { clearTimeout(p.timer); r.pending.delete(f.client_id); dropPendingEl(f.client_id); }
  }
}

export function onEdited(edited) {
  const r = getRoom(edited.room_id);
  if (!r) return;
  const m = keepMyReactions(r.messages.get(edited.seq), edited);
  if (r.messages.has(m.seq) || r.loaded) r.messages.set(m.seq, m);
  if (r.lastMessage && r.lastMessage.seq === m.seq) { r.lastMessage = m; renderSidebar(); }
  if (isOpen(r) && isShown(m.seq)) upsertMessageEl(r, m);
}

export function onDeleted(f) {
  const r = getRoom(f.room_id);
  if (!r) return;
  const mark = (m) => ({ ...m, deleted: true, text: '' });
  const cur = r.messages.get(f.seq);
  if (cur) {
    const d = mark(cur);
    r.messages.set(f.seq, d);
    if (isOpen(r) && isShown(f.seq)) { upsertMessageEl(r, d, true); scheduleReceipts(); }
  }
  if (r.lastMessage && (r.lastMessage.seq === f.seq || r.lastMessage.id === f.message_id)) {
    r.lastMessage = mark(r.lastMessage);
    renderSidebar();
  }
  onOriginalDeleted(f.room_id, f.message_id);
}

function onRoomCreated(room) {
  if (hasRoom(room.id)) { onRoomUpdated(room); return; }
  // Public rooms are announced to everyone; only rooms we belong to join the list.
  if (room.kind !== 'public' || room.owner_id === me.id) addRoom(room);
  else refreshBrowseIfOpen();
}

export function onRoomUpdated(room) {
  const r = getRoom(room.id);
  if (!r) { refreshBrowseIfOpen(); return; }
  r.room = { ...r.room, ...room, last_seq: Math.max(r.room.last_seq || 0, room.last_seq || 0) };
  renderSidebar();
  renderRoomHeader(r);
}

/** Someone's new display name or avatar (yours included): everywhere it is shown. */
export function onUserUpdated(user) {
  rememberAvatar(user); // message authors carry no picture: their avatars follow from here
  const profile = { display_name: user.display_name, avatar_url: user.avatar_url };
  if (me && user.id === me.id) { setMe({ ...me, ...profile }); renderMe(); }
  for (const r of allRooms()) {
    const m = r.members && r.members.get(user.id);
    if (m) m.user = { ...m.user, ...profile };
    if (r.peer && r.peer.id === user.id) r.peer = { ...r.peer, ...profile };
    const authored = (msg) => msg && msg.author && msg.author.id === user.id;
    if (authored(r.lastMessage)) r.lastMessage = { ...r.lastMessage, author: { ...r.lastMessage.author, ...profile } };
    for (const msg of r.messages.values()) {
      if (!authored(msg)) continue;
      msg.author = { ...msg.author, display_name: user.display_name };
      if (isOpen(r) && isShown(msg.seq)) upsertMessageEl(r, msg); // not while editing it
    }
  }
  renderSidebar();
  const r = openRoomState();
  if (r) { renderRoomHeader(r); renderMembers(r); }
}

function onError(f) {
  const ref = f.ref || '';
  if (ref.startsWith('sub:')) {
    const id = ref.slice(4);
    if (f.code === 'not_found' || f.code === 'forbidden') removeRoom(id, 'This room is no longer available.');
    return;
  }
  for (const r of allRooms()) {
    const p = ref && r.pending.get(ref);
    if (p) { failPending(r, p, f.message || f.code); return; }
  }
  if (f.code === 'rate_limited') toast(f.message || 'Slow down a little.', 'error');
  else if (f.message) toast(f.message, 'error');
}
