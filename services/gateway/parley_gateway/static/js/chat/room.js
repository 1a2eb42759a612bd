// The open room: which one it is (remembered for the tab in sessionStorage), opening and
// closing it, and its header.
import { $, lockIcon } from '../util.js';
import { me, roomLabel } from './state.js';
import { getRoom, hasRoom } from './conversations.js';
import { renderSidebar } from './sidebar.js';
import { ensureMembers, renderMembers, setInfoOpen } from './members.js';
import { fillViewport, loadLatest, showHistoryLoading, updateHistoryStatus } from './messages.js';
import { clearMessageList, hideJump, renderAllMessages, scrollToBottom } from './message-list.js';
import { composerText, focusComposer, loadDraft, setComposerPlaceholder, setComposerReadOnly } from './composer.js';
import { renderTyping } from './typing.js';
import { scheduleRead } from './receipts.js';
import { renderReplyPreview } from './replies.js';

const OPEN_KEY = 'parley.openRoom';

let openId = null; // the open room's id

let dom = {};

export const openRoomState = () => (openId ? getRoom(openId) : null);
export const isOpen = (r) => openId === r.room.id;
export const viewing = (r) => isOpen(r) && document.visibilityState === 'visible';

export function setupRoomView() {
  dom = { roomView: $('#room-view'), noRoom: $('#no-room') };
  $('#back-btn').addEventListener('click', () => closeRoomView());
}

/** After a reload: the room this tab had open, if it is still yours. */
export function reopenLastRoom() {
  let last = null;
  try { last = sessionStorage.getItem(OPEN_KEY); } catch { /* ignore */ }
  if (last && hasRoom(last) && !openId) openRoom(last);
}

export async function openRoom(id) {
  const r = getRoom(id);
  if (!r) return;
  const prev = openRoomState();
  if (prev && prev !== r) prev.draft = composerText();
  openId = id;
  try { sessionStorage.setItem(OPEN_KEY, id); } catch { /* ignore */ }
  document.body.classList.add('room-open');
  dom.noRoom.hidden = true;
  dom.roomView.hidden = false;
  loadDraft(r.draft || '');
  renderReplyPreview(r);
  hideJump();
  renderRoomHeader(r);
  renderTyping(r);
  renderMembers(r);
  renderSidebar();
  clearMessageList();
  if (!r.loaded) {
    showHistoryLoading();
    await loadLatest(r);
    if (openId !== id) return;
  }
  renderAllMessages(r);
  scrollToBottom();
  updateHistoryStatus(r);
  ensureMembers(r);
  scheduleRead();
  fillViewport(r);
  if (window.matchMedia('(min-width: 761px)').matches) focusComposer();
}

export function closeRoomView(silent) {
  const r = openRoomState();
  if (r) r.draft = composerText();
  openId = null;
  try { if (!silent) sessionStorage.removeItem(OPEN_KEY); } catch { /* ignore */ }
  document.body.classList.remove('room-open');
  dom.roomView.hidden = true;
  dom.noRoom.hidden = false;
  clearMessageList();
  setInfoOpen(false);
  renderSidebar();
}

export function renderRoomHeader(r) {
  if (!isOpen(r)) return;
  const kind = r.room.kind;
  $('#room-title').replaceChildren(kind === 'private' ? lockIcon() : '', kind === 'public' ? '# ' : '', roomLabel(r));
  $('#room-title').title = kind === 'private' ? 'Private room' : '';
  setComposerPlaceholder(`Message ${kind === 'public' ? '#' : ''}${roomLabel(r)}`);
  setComposerReadOnly(Boolean(r.room.archived_at));
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
  const owner = me && r.room.owner_id === me.id;
  $('#edit-room-btn').hidden = !(owner && kind !== 'direct');
  $('#add-member-btn').hidden = kind !== 'private';
  $('#leave-btn').hidden = kind === 'direct';
  $('#delete-room-btn').hidden = !(owner && kind !== 'direct');
}
