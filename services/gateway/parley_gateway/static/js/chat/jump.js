// Jump to a message of a room: open the room, load history back to that message if it is not
// loaded yet (page by page, so the list has no gap), scroll it into view and highlight it
// briefly. Self-contained: replies (the quote) and anything else that links to a message use it.
import { api, describeError, enc } from '../api.js';
import { toast } from '../util.js';
import { getRoom } from './conversations.js';
import { isOpen, openRoom } from './room.js';
import { messageElement, renderAllMessages } from './message-list.js';
import { updateHistoryStatus } from './messages.js';

const PAGE = 100;
const MAX_PAGES = 50; // 5000 messages back at most; further than that, say so
const HIGHLIGHT_MS = 2000;

export async function jumpToMessage(roomId, seq) {
  const r = getRoom(roomId);
  if (!r || !Number.isInteger(seq)) return false;
  if (!isOpen(r)) await openRoom(roomId);
  if (!isOpen(r) || !r.loaded) return false;
  if (!r.messages.has(seq)) {
    try {
      if (!(await loadBackTo(r, seq))) { toast('That message is too far back to show.', 'error'); return false; }
    } catch (e) {
      toast(describeError(e), 'error');
      return false;
    }
    if (!isOpen(r)) return false;
    renderAllMessages(r);
    updateHistoryStatus(r);
  }
  const li = messageElement(seq);
  if (!li) { toast('That message is no longer there.', 'error'); return false; }
  li.scrollIntoView({ block: 'center' });
  li.setAttribute('tabindex', '-1');
  li.focus({ preventScroll: true });
  li.classList.add('flash');
  setTimeout(() => li.classList.remove('flash'), HIGHLIGHT_MS);
  return true;
}

/** Older pages until `seq` is loaded; false when it is further back than MAX_PAGES. */
async function loadBackTo(r, seq) {
  for (let page = 0; page < MAX_PAGES; page += 1) {
    let oldest = Infinity;
    for (const s of r.messages.keys()) if (s < oldest) oldest = s;
    if (oldest <= seq || oldest <= 1) return r.messages.has(seq);
    const data = await api('GET', `/rooms/${enc(r.room.id)}/messages?before_seq=${oldest}&limit=${PAGE}`);
    const msgs = (data && data.messages) || [];
    for (const m of msgs) if (!r.messages.has(m.seq)) r.messages.set(m.seq, m);
    r.hasMore = !!(data && data.has_more) && msgs.length > 0;
    if (!msgs.length) return r.messages.has(seq);
  }
  return r.messages.has(seq);
}
