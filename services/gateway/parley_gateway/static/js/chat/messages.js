// A room's history: folding messages into its record, the newest page when it opens, older
// pages as you scroll up, and the status line at the top of the list.
import { api, describeError, enc } from '../api.js';
import { $, toTime } from '../util.js';
import { me, isMine } from './state.js';
import { removeRoom } from './conversations.js';
import { isOpen, openRoomState, viewing } from './room.js';
import { renderSidebar } from './sidebar.js';
import { listShorterThanView, prependMessages, upsertMessageEl } from './message-list.js';
import { scheduleReceipts } from './receipts.js';

const PAGE = 50;

let dom = {};

export function setupMessages() {
  dom = { history: $('#history-status') };
}

/** Fold a message into a room's state. Returns true if it is newer than anything seen. */
export function absorb(r, m, live) {
  let fresh = false;
  if (m.seq > r.lastSeq) {
    fresh = true;
    r.lastSeq = m.seq;
    r.room.last_seq = Math.max(r.room.last_seq || 0, m.seq);
    if (toTime(m.created_at) > toTime(r.room.last_activity_at)) r.room.last_activity_at = m.created_at;
    if (live) {
      if (isMine(m)) { r.unread = 0; r.mentionCount = 0; } // posting moves your read marker to your message
      else if (!m.deleted && !viewing(r)) r.unread += 1;
    }
  }
  if (!r.lastMessage || m.seq >= r.lastMessage.seq) r.lastMessage = m;
  if (m.seq > r.resumeSeq) r.resumeSeq = m.seq;
  if (isMine(m) && r.members) {
    const mine = r.members.get(me.id);
    if (mine) mine.last_read_seq = Math.max(mine.last_read_seq || 0, m.seq);
  }
  if (r.loaded || r.loading) r.messages.set(m.seq, m);
  return fresh;
}

export async function loadLatest(r) {
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
export async function refreshLatest(r) {
  try {
    const data = await api('GET', `/rooms/${enc(r.room.id)}/messages?limit=${PAGE}`);
    for (const m of data.messages || []) {
      absorb(r, m, false);
      if (isOpen(r) && r.loaded) upsertMessageEl(r, m);
    }
    scheduleReceipts();
    renderSidebar();
  } catch { /* the live stream still works */ }
}

export async function loadOlder() {
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
    if (isOpen(r)) prependMessages(r, msgs);
  } catch (e) {
    r.historyError = `${describeError(e)} Scroll up to retry.`;
  } finally {
    r.loadingOlder = false;
    updateHistoryStatus(r);
  }
  if (isOpen(r)) fillViewport(r);
}

/** Too few messages to scroll: load older ones until the list fills the pane. */
export function fillViewport(r) {
  if (!isOpen(r) || !r.hasMore || r.loadingOlder || r.historyError) return;
  if (listShorterThanView()) loadOlder();
}

export function showHistoryLoading() {
  dom.history.textContent = 'Loading messages…';
}

export function updateHistoryStatus(r) {
  if (!isOpen(r)) return;
  let t = '';
  if (r.historyError) t = r.historyError;
  else if (r.loadingOlder) t = 'Loading older messages…';
  else if (r.loaded && !r.hasMore) t = r.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
  dom.history.textContent = t;
}
