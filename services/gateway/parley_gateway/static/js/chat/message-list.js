// The open room's message list: the one owner of its elements (seq -> <li>, and client_id ->
// <li> of messages still on their way), grouping, scrolling and the "new messages" button.
import { $, h, displayName, toTime, shortTime, fullTime, avatar } from '../util.js';
import { me, isMine } from './state.js';
import { loadOlder } from './messages.js';
import { scheduleReceipts } from './receipts.js';
import { onMessageAction } from './editing.js';
import { renderMarkdown } from './markdown.js';
import { mentionClass, mentionsMe } from './mentions.js';
import { reactionBar } from './reactions.js';
import { replyButton, replyQuote } from './replies.js';

const GROUP_MS = 5 * 60 * 1000;

const els = new Map(); // seq -> <li>
const pendingEls = new Map(); // client_id -> <li>
let dom = {};

export function setupMessageList() {
  dom = { messages: $('#messages'), list: $('#message-list'), jump: $('#jump-btn') };
  dom.messages.addEventListener('scroll', () => {
    if (dom.messages.scrollTop < 150) loadOlder();
    if (nearBottom()) dom.jump.hidden = true;
  }, { passive: true });
  dom.jump.addEventListener('click', () => { scrollToBottom(); dom.jump.hidden = true; });
  dom.list.addEventListener('click', onMessageAction);
}

export function clearMessageList() {
  dom.list.replaceChildren();
  els.clear();
  pendingEls.clear();
}

export const isShown = (seq) => els.has(seq);
export const messageElement = (seq) => els.get(seq);
export const shownSeqs = () => [...els.keys()];

export function showJump() { dom.jump.hidden = false; }
export function hideJump() { dom.jump.hidden = true; }

/** Less than a screenful of history (plus a margin): older messages should be loaded. */
export function listShorterThanView() {
  return dom.messages.scrollHeight <= dom.messages.clientHeight + 150;
}

function isCont(prev, m) {
  return !!(prev && m && prev.author && m.author && prev.author.id === m.author.id
    && !prev.deleted && toTime(m.created_at) - toTime(prev.created_at) < GROUP_MS);
}

function prevMessage(r, seq) {
  let best = null;
  for (const [s, m] of r.messages) if (s < seq && (!best || s > best.seq)) best = m;
  return best;
}

function messageEl(r, m, prev) {
  const mine = isMine(m);
  const cls = ['msg'];
  if (mine) cls.push('own');
  if (m.deleted) cls.push('deleted');
  if (isCont(prev, m)) cls.push('cont');
  if (mentionsMe(m)) cls.push('mentions-me');
  const li = h('li', { class: cls.join(' '), dataset: { seq: String(m.seq), id: m.id } });
  const text = m.deleted
    ? h('div', { class: 'msg-text deleted-text', text: 'message deleted' })
    : h('div', { class: 'msg-text' },
      h('span', {}, renderMarkdown(m.text, { mention: mentionClass(r, m) })),
      m.edited_at ? h('span', { class: 'msg-edited', title: `Edited ${fullTime(m.edited_at)}`, text: ' (edited)' }) : null);
  li.append(
    avatar(m.author, 'avatar msg-avatar'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author', text: displayName(m.author) }),
        h('time', { class: 'msg-time', datetime: m.created_at, title: fullTime(m.created_at), text: shortTime(m.created_at) })),
      replyQuote(m),
      text,
      m.deleted ? null : h('div', { class: 'msg-tools' }, reactionBar(m), replyButton(m)),
      mine && !m.deleted ? h('div', { class: 'receipt' }) : null),
  );
  const canEdit = mine && !m.deleted;
  const canDelete = !m.deleted && (mine || (me && r.room.owner_id === me.id));
  if (canEdit || canDelete) {
    li.append(h('div', { class: 'msg-actions' },
      canEdit ? h('button', { type: 'button', class: 'small ghost', 'data-act': 'edit', 'aria-label': 'Edit message', text: 'Edit' }) : null,
      canDelete ? h('button', { type: 'button', class: 'small ghost', 'data-act': 'delete', 'aria-label': 'Delete message', text: 'Delete' }) : null));
  }
  return li;
}

function pendingEl(p) {
  const li = h('li', { class: `msg own pending${p.failed ? ' failed' : ''}`, dataset: { pending: p.client_id } },
    avatar(me, 'avatar msg-avatar'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author', text: displayName(me) }),
        h('span', { class: 'msg-time', text: p.failed ? 'not sent' : 'sending…' })),
      h('div', { class: 'msg-text' }, h('span', { text: p.text })),
      p.failed ? h('div', { class: 'pending-error' },
        h('span', { text: p.error || 'Not sent.' }),
        h('button', { type: 'button', class: 'small', 'data-act': 'retry', text: 'Retry' }),
        h('button', { type: 'button', class: 'small ghost', 'data-act': 'discard', text: 'Discard' })) : null));
  return li;
}

export function renderAllMessages(r) {
  els.clear();
  pendingEls.clear();
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of [...r.messages.values()].sort((a, b) => a.seq - b.seq)) {
    const li = messageEl(r, m, prev);
    els.set(m.seq, li);
    frag.append(li);
    prev = m;
  }
  for (const p of r.pending.values()) {
    const li = pendingEl(p);
    pendingEls.set(p.client_id, li);
    frag.append(li);
  }
  dom.list.replaceChildren(frag);
  scheduleReceipts();
}

function regroupAfter(r, li) {
  const next = li.nextElementSibling;
  if (!next || !next.dataset.seq) return;
  const nm = r.messages.get(Number(next.dataset.seq));
  next.classList.toggle('cont', isCont(r.messages.get(Number(li.dataset.seq)), nm));
}

export function upsertMessageEl(r, m, force) {
  const old = els.get(m.seq);
  if (old) {
    if (old.classList.contains('editing') && !force) return;
    const li = messageEl(r, m, prevMessage(r, m.seq));
    old.replaceWith(li);
    els.set(m.seq, li);
    regroupAfter(r, li);
    return;
  }
  let before = null;
  for (let c = dom.list.lastElementChild; c; c = c.previousElementSibling) {
    if (c.dataset.pending || Number(c.dataset.seq) > m.seq) before = c;
    else break;
  }
  const li = messageEl(r, m, prevMessage(r, m.seq));
  dom.list.insertBefore(li, before);
  els.set(m.seq, li);
  regroupAfter(r, li);
}

export function prependMessages(r, msgs) {
  if (!msgs.length) return;
  const box = dom.messages;
  const beforeH = box.scrollHeight;
  const beforeTop = box.scrollTop;
  const frag = document.createDocumentFragment();
  let prev = prevMessage(r, msgs[0].seq);
  let lastLi = null;
  for (const m of msgs) {
    const li = messageEl(r, m, prev);
    els.set(m.seq, li);
    frag.append(li);
    prev = m;
    lastLi = li;
  }
  let anchor = dom.list.firstElementChild;
  while (anchor && anchor.dataset.seq && Number(anchor.dataset.seq) < msgs[0].seq) anchor = anchor.nextElementSibling;
  dom.list.insertBefore(frag, anchor);
  if (lastLi) regroupAfter(r, lastLi);
  box.scrollTop = beforeTop + (box.scrollHeight - beforeH);
  scheduleReceipts();
}

/** A message you just wrote, at the end of the list until the server has it. */
export function showPending(p) {
  const li = pendingEl(p);
  pendingEls.set(p.client_id, li);
  dom.list.append(li);
}

export const pendingElement = (clientId) => pendingEls.get(clientId);

/** Redraw a pending message in place (it failed, or is sent again). */
export function replacePendingEl(old, p) {
  const li = pendingEl(p);
  old.replaceWith(li);
  pendingEls.set(p.client_id, li);
}

export function dropPendingEl(clientId) {
  const li = pendingEls.get(clientId);
  if (li) li.remove();
  pendingEls.delete(clientId);
}

export function nearBottom() {
  const b = dom.messages;
  return b.scrollHeight - b.scrollTop - b.clientHeight < 80;
}

export function scrollToBottom() {
  dom.messages.scrollTop = dom.messages.scrollHeight;
}
