// Read state: "Seen by N" under your messages, other members' read markers (read frames), and
// your own marker, sent when the open room is on screen.
import { api, enc } from '../api.js';
import { displayName } from '../util.js';
import { me, isMine } from './state.js';
import { getRoom } from './conversations.js';
import { isOpen, openRoomState } from './room.js';
import { renderSidebar } from './sidebar.js';
import { messageElement, shownSeqs } from './message-list.js';

let receiptsTimer = null;
let readTimer = null;

export function setupReceipts() {
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') scheduleRead(); });
  window.addEventListener('focus', scheduleRead);
}

export function scheduleReceipts() {
  if (receiptsTimer) return;
  receiptsTimer = setTimeout(() => { receiptsTimer = null; updateReceipts(); }, 50);
}

/** "Seen by N" on your newest message, and on older ones where the count differs. */
function updateReceipts() {
  const r = openRoomState();
  if (!r || !r.members) return;
  const others = [...r.members.values()].filter((m) => m.user.id !== me.id);
  const own = shownSeqs().filter((s) => { const m = r.messages.get(s); return m && !m.deleted && isMine(m); })
    .sort((a, b) => b - a);
  let shown = -1;
  for (const seq of own) {
    const rc = messageElement(seq).querySelector('.receipt');
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

export function onRead(f) {
  const r = getRoom(f.room_id);
  if (!r) return;
  if (r.members) {
    const m = r.members.get(f.user_id);
    if (m) m.last_read_seq = Math.max(m.last_read_seq || 0, f.seq || 0);
  }
  if (f.user_id === me.id) {
    r.sentReadSeq = Math.max(r.sentReadSeq, f.seq || 0);
    if ((f.seq || 0) >= r.lastSeq && (r.unread || r.mentionCount)) { r.unread = 0; r.mentionCount = 0; renderSidebar(); }
  }
  if (isOpen(r)) scheduleReceipts();
}

export function scheduleRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 300);
}

export function cancelRead() {
  clearTimeout(readTimer);
}

function markRead() {
  const r = openRoomState();
  if (!r || !r.loaded || document.visibilityState !== 'visible') return;
  if (r.unread || r.mentionCount) { r.unread = 0; r.mentionCount = 0; renderSidebar(); }
  const seq = r.lastSeq;
  if (!seq || seq <= r.sentReadSeq) return;
  r.sentReadSeq = seq;
  if (r.members) {
    const mine = r.members.get(me.id);
    if (mine) mine.last_read_seq = Math.max(mine.last_read_seq || 0, seq);
  }
  api('POST', `/rooms/${enc(r.room.id)}/read`, { seq }).then((res) => {
    if (res && !isOpen(r) && typeof res.unread_count === 'number') {
      r.unread = res.unread_count;
      r.mentionCount = res.mention_count || 0;
      renderSidebar();
    }
  }).catch(() => { if (r.sentReadSeq === seq) r.sentReadSeq = 0; });
}
