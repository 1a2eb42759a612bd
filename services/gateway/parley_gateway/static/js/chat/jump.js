// Jumping to a message: open its room, make sure its part of the history is loaded, scroll it
// into the middle of the pane and highlight it for a moment (search results use it).
//
// A room's loaded history is one unbroken run of seqs up to the newest (messages.js pages it
// back 50 at a time as you scroll). A message older than that run is reached by loading the
// whole gap at once: seqs are gap-free per room (deleted messages keep theirs), so the pages
// `after_seq=a&limit=100` that cover it are known in advance and fetched a few at a time in
// parallel, then shown in one go; the run stays unbroken, and scrolling works as before.
import { api, describeError, enc } from '../api.js';
import { toast } from '../util.js';
import { fetchAndAddRoom, getRoom } from './conversations.js';
import { isOpen, openRoom } from './room.js';
import { updateHistoryStatus } from './messages.js';
import { messageElement, prependMessages } from './message-list.js';

const PAGE = 100; // the API's largest page
const PARALLEL = 4; // pages in flight at once
const CONTEXT = 20; // older messages loaded above the target, so it is not the first one shown
const MAX_GAP = 10000; // further back than this: too much to load into the page at once
const HIGHLIGHT_MS = 2500;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function oldestLoaded(r) {
  let oldest = Infinity;
  for (const seq of r.messages.keys()) if (seq < oldest) oldest = seq;
  return oldest;
}

async function fetchPages(roomId, starts, until) {
  const pages = [];
  for (let i = 0; i < starts.length; i += PARALLEL) {
    const batch = starts.slice(i, i + PARALLEL).map((after) => api('GET',
      `/rooms/${enc(roomId)}/messages?after_seq=${after}&limit=${Math.min(PAGE, until - after)}`));
    pages.push(...await Promise.all(batch));
  }
  return pages;
}

/** Load the history between `seq` (with some context above it) and what is loaded already. */
async function loadBackTo(r, seq) {
  while (r.loadingOlder) await sleep(50); // an older page on its way: let it land first
  const oldest = oldestLoaded(r);
  if (oldest === Infinity || seq >= oldest) return true;
  if (oldest - seq > MAX_GAP) {
    toast('That message is too far back to show here; scroll up to reach it.', 'error');
    return false;
  }
  const from = Math.max(0, seq - CONTEXT - 1);
  const starts = [];
  for (let after = from; after < oldest - 1; after += PAGE) starts.push(after);
  r.loadingOlder = true; // messages.js stays out of the way meanwhile
  r.historyError = '';
  updateHistoryStatus(r);
  try {
    const pages = await fetchPages(r.room.id, starts, oldest - 1);
    const msgs = pages.flatMap((page) => (page && page.messages) || [])
      .filter((m) => m.seq < oldest && !r.messages.has(m.seq))
      .sort((a, b) => a.seq - b.seq);
    for (const m of msgs) r.messages.set(m.seq, m);
    r.hasMore = from > 0;
    if (isOpen(r)) prependMessages(r, msgs);
    return true;
  } catch (e) {
    r.historyError = `${describeError(e)} Scroll up to retry.`;
    return false;
  } finally {
    r.loadingOlder = false;
    updateHistoryStatus(r);
  }
}

function highlight(li) {
  li.classList.add('jump-target');
  li.tabIndex = -1;
  li.scrollIntoView({ block: 'center' });
  li.focus({ preventScroll: true });
  setTimeout(() => li.classList.remove('jump-target'), HIGHLIGHT_MS);
}

/**
 * Open room `roomId` and show message `seq` in its history: loaded if need be, scrolled to the
 * middle of the pane, highlighted briefly and focused. Resolves true when it is on screen.
 */
export async function jumpToMessage(roomId, seq) {
  let r = getRoom(roomId);
  if (!r) {
    await fetchAndAddRoom(roomId);
    r = getRoom(roomId);
    if (!r) {
      toast('That room is no longer available to you.', 'error');
      return false;
    }
  }
  if (!isOpen(r) || !r.loaded) await openRoom(roomId);
  if (!isOpen(r) || !r.loaded) return false; // another room was opened meanwhile, or no history
  if (!r.messages.has(seq) && !await loadBackTo(r, seq)) return false;
  const li = isOpen(r) ? messageElement(seq) : null;
  if (!li) {
    if (isOpen(r)) toast('That message is not in this room any more.', 'error');
    return false;
  }
  highlight(li);
  return true;
}
