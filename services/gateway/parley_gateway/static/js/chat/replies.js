// Replies: the "Reply" action on a message, what the composer replies to (shown above it,
// Escape or × cancels), and the quoted original above a reply (its author and first words,
// or "deleted message"), which jumps to the original when clicked.
import { $, h, displayName } from '../util.js';
import { isOpen, openRoomState } from './room.js';
import { getRoom } from './conversations.js';
import { isShown, upsertMessageEl } from './message-list.js';
import { focusComposer } from './composer.js';
import { jumpToMessage } from './jump.js';

let dom = {};

export function setupReplies() {
  dom = { preview: $('#reply-preview'), input: $('#composer-input') };
  $('#message-list').addEventListener('click', onReplyClick);
  dom.input.addEventListener('keydown', (ev) => {
    const r = openRoomState();
    if (ev.key === 'Escape' && r && r.replyTo) { ev.preventDefault(); cancelReply(r); }
  });
}

function excerptOf(q) {
  return q.deleted ? 'deleted message' : q.excerpt;
}

/** The quote above a reply (null for other messages). */
export function replyQuote(m) {
  const q = m.reply_to;
  if (!q || m.deleted) return null;
  const hidden = (text) => h('span', { class: 'sr-only', text });
  // The accessible name is the visible text with its context: "In reply to Ann: lunch?".
  const body = q.deleted
    ? [hidden('In reply to a '), h('span', { class: 'reply-excerpt', text: excerptOf(q) })]
    : [hidden('In reply to '), h('span', { class: 'reply-author', text: displayName(q.author) }), hidden(': '),
      h('span', { class: 'reply-excerpt', text: excerptOf(q) })];
  return h('button', {
    type: 'button', class: `reply-quote${q.deleted ? ' gone' : ''}`, title: q.deleted ? null : 'Show the original',
    dataset: { replySeq: q.seq == null ? '' : String(q.seq) },
  }, body);
}

/** The "Reply" button of a message's tools (null where one cannot reply). */
export function replyButton(m) {
  if (m.deleted) return null;
  return h('button', { type: 'button', class: 'small ghost reply-btn', 'aria-label': 'Reply to this message', dataset: { replyTo: '1' }, text: 'Reply' });
}

function onReplyClick(ev) {
  const b = ev.target.closest('button[data-reply-to], button[data-reply-seq]');
  const li = b && b.closest('li.msg');
  const r = openRoomState();
  if (!li || !r || li.dataset.pending) return;
  if (b.dataset.replySeq !== undefined) {
    if (b.dataset.replySeq) jumpToMessage(r.room.id, Number(b.dataset.replySeq));
    return;
  }
  const m = r.messages.get(Number(li.dataset.seq));
  if (m) startReply(r, m);
}

export function startReply(r, m) {
  r.replyTo = m;
  renderReplyPreview(r);
  focusComposer();
}

export function cancelReply(r) {
  r.replyTo = null;
  renderReplyPreview(r);
}

/** The reply_to of a message about to be sent (and the composer forgets it). */
export function takeReply(r) {
  const id = r.replyTo ? r.replyTo.id : null;
  if (id) cancelReply(r);
  return id;
}

/** What the open room's composer replies to, above it. */
export function renderReplyPreview(r) {
  const m = r && r.replyTo;
  dom.preview.hidden = !m;
  if (!m) { dom.preview.replaceChildren(); return; }
  dom.preview.replaceChildren(
    h('span', { class: 'reply-preview-label' }, 'Replying to ', h('strong', { text: displayName(m.author) })),
    h('span', { class: 'reply-excerpt', text: m.deleted ? 'deleted message' : m.text }),
    h('button', { type: 'button', class: 'small ghost', 'aria-label': 'Cancel reply (Escape)', text: '×', onclick: () => { cancelReply(r); focusComposer(); } }));
}

/** A message was deleted: the replies quoting it now say so. */
export function onOriginalDeleted(roomId, messageId) {
  const r = getRoom(roomId);
  if (!r) return;
  if (r.replyTo && r.replyTo.id === messageId) cancelReply(r);
  for (const m of r.messages.values()) {
    if (!m.reply_to || m.reply_to.id !== messageId) continue;
    m.reply_to = { ...m.reply_to, deleted: true, excerpt: '' };
    if (isOpen(r) && isShown(m.seq)) upsertMessageEl(r, m);
  }
}
