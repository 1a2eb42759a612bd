// Sending: the composer (draft, typing notices, errors) and messages on their way, pending
// until the server answers (over the socket, or over REST while it is down; client_id makes
// a repeat harmless).
import { api, describeError, enc } from '../api.js';
import { $, uuid, charCount } from '../util.js';
import { isMine } from './state.js';
import { sendFrame } from './connection.js';
import { isOpen, openRoomState } from './room.js';
import { onMessage } from './frames.js';
import { dropPendingEl, pendingElement, replacePendingEl, scrollToBottom, showPending } from './message-list.js';
import { takeReply } from './replies.js';

const TYPING_SEND_MS = 2000;
const ACK_TIMEOUT_MS = 20000;

let dom = {};

export function setupComposer() {
  dom = { input: $('#composer-input'), composerError: $('#composer-error') };
  $('#composer').addEventListener('submit', (ev) => { ev.preventDefault(); submitComposer(); });
  dom.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submitComposer(); }
  });
  dom.input.addEventListener('input', onComposerInput);
}

/** What is typed now (kept as the room's draft when another room opens). */
export const composerText = () => dom.input.value;

/** A room opens: its draft, no error. */
export function loadDraft(text) {
  dom.input.value = text;
  autosize();
  showComposerError('');
}

export function focusComposer() { dom.input.focus(); }

export function setComposerPlaceholder(text) { dom.input.placeholder = text; }

/** An archived room is read-only: the composer says so and takes nothing (the server would
 * refuse with room_archived); it opens again when the room is unarchived (room_updated). */
export function setComposerReadOnly(readOnly) {
  dom.input.disabled = readOnly;
  $('#composer button[type="submit"]').disabled = readOnly;
  if (readOnly) dom.input.placeholder = 'This room is archived: you can read it, not write in it.';
}

function onComposerInput() {
  autosize();
  showComposerError('');
  const r = openRoomState();
  if (!r || !dom.input.value.trim()) return;
  const now = Date.now();
  if (now - r.lastTypingSent >= TYPING_SEND_MS && sendFrame({ type: 'typing', room_id: r.room.id })) {
    r.lastTypingSent = now;
  }
}

function autosize() {
  const t = dom.input;
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight + 2, 200)}px`;
}

function showComposerError(msg) {
  dom.composerError.textContent = msg;
  dom.composerError.hidden = !msg;
}

function submitComposer() {
  const r = openRoomState();
  if (!r || dom.input.disabled) return;
  const text = dom.input.value.trim();
  if (!text) return;
  if (charCount(text) > 4000) { showComposerError('A message can be at most 4000 characters.'); return; }
  const p = { client_id: uuid(), text, failed: false, error: '', timer: null, viaHttp: false, reply_to: takeReply(r) };
  r.pending.set(p.client_id, p);
  dom.input.value = '';
  r.draft = '';
  r.lastTypingSent = 0;
  autosize();
  showPending(p);
  scrollToBottom();
  dispatchPending(r, p);
}

export function dispatchPending(r, p) {
  p.failed = false;
  clearTimeout(p.timer);
  const replying = p.reply_to ? { reply_to: p.reply_to } : {};
  const frame = { type: 'send', room_id: r.room.id, text: p.text, client_id: p.client_id, ref: p.client_id, ...replying };
  if (sendFrame(frame)) {
    p.timer = setTimeout(() => {
      if (r.pending.get(p.client_id) === p && !p.failed) failPending(r, p, 'No answer from the server.');
    }, ACK_TIMEOUT_MS);
    return;
  }
  // Not connected: use REST instead (idempotent thanks to client_id).
  p.viaHttp = true;
  api('POST', `/rooms/${enc(r.room.id)}/messages`, { text: p.text, client_id: p.client_id, ...replying })
    .then((res) => { if (res && res.message) onMessage(res.message); })
    .catch((e) => failPending(r, p, describeError(e)))
    .finally(() => { p.viaHttp = false; });
}

/** The server has it (a message with our client_id): the pending copy goes. */
export function resolvePending(r, m) {
  if (!m.client_id || !isMine(m)) return;
  const p = r.pending.get(m.client_id);
  if (!p) return;
  clearTimeout(p.timer);
  r.pending.delete(m.client_id);
  dropPendingEl(m.client_id);
}

export function failPending(r, p, error) {
  clearTimeout(p.timer);
  p.failed = true;
  p.error = error;
  const old = pendingElement(p.client_id);
  if (old && isOpen(r)) replacePendingEl(old, p);
}
