// Edit and delete a message in place, and retry or discard one that was not sent (the
// buttons on each message of the list).
import { api, describeError, enc } from '../api.js';
import { h, displayName, charCount, toast } from '../util.js';
import { isMine } from './state.js';
import { isOpen, openRoomState } from './room.js';
import { dropPendingEl, messageElement, replacePendingEl, upsertMessageEl } from './message-list.js';
import { scheduleReceipts } from './receipts.js';
import { onDeleted, onEdited } from './frames.js';
import { dispatchPending } from './composer.js';

export function onMessageAction(ev) {
  const b = ev.target.closest('button[data-act]');
  if (!b) return;
  const li = b.closest('li.msg');
  const r = openRoomState();
  if (!li || !r) return;
  const act = b.dataset.act;
  if (li.dataset.pending) {
    const p = r.pending.get(li.dataset.pending);
    if (!p) return;
    if (act === 'retry') {
      const fresh = { ...p, failed: false, error: '' };
      r.pending.set(p.client_id, fresh);
      replacePendingEl(li, fresh);
      dispatchPending(r, fresh);
    } else if (act === 'discard') {
      r.pending.delete(p.client_id);
      dropPendingEl(p.client_id);
    }
    return;
  }
  const m = r.messages.get(Number(li.dataset.seq));
  if (!m) return;
  if (act === 'edit') startEdit(r, li, m);
  else if (act === 'delete') deleteMessage(r, m);
}

function startEdit(r, li, m) {
  if (li.classList.contains('editing')) return;
  const textDiv = li.querySelector('.msg-text');
  const ta = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', maxlength: '4000', rows: '2' });
  ta.value = m.text;
  const err = h('p', { class: 'field-error', role: 'alert' });
  const cancel = h('button', { type: 'button', class: 'small', text: 'Cancel' });
  const form = h('form', { class: 'edit-form' }, ta,
    h('div', { class: 'edit-actions' },
      h('button', { type: 'submit', class: 'small primary', text: 'Save' }), cancel,
      h('span', { class: 'hint', text: 'Enter to save · Esc to cancel' })),
    err);
  li.classList.add('editing');
  textDiv.replaceWith(form);
  ta.focus();
  ta.setSelectionRange(ta.value.length, ta.value.length);

  const finish = () => {
    const cur = r.messages.get(m.seq) || m;
    if (isOpen(r) && messageElement(m.seq) === li) upsertMessageEl(r, cur, true);
    scheduleReceipts();
  };
  const save = async () => {
    const text = ta.value.trim();
    if (!text) { err.textContent = 'A message cannot be empty; delete it instead.'; return; }
    if (charCount(text) > 4000) { err.textContent = 'A message can be at most 4000 characters.'; return; }
    if (text === m.text) { finish(); return; }
    ta.disabled = true;
    try {
      const res = await api('PATCH', `/rooms/${enc(r.room.id)}/messages/${enc(m.id)}`, { text });
      if (res && res.message) onEdited(res.message);
      finish();
    } catch (e) {
      ta.disabled = false;
      err.textContent = describeError(e);
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); save(); });
  cancel.addEventListener('click', finish);
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(); }
    else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); save(); }
  });
}

async function deleteMessage(r, m) {
  const whose = isMine(m) ? 'your message' : `${displayName(m.author)}'s message`;
  if (!window.confirm(`Delete ${whose}?`)) return;
  try {
    await api('DELETE', `/rooms/${enc(r.room.id)}/messages/${enc(m.id)}`);
    onDeleted({ room_id: r.room.id, message_id: m.id, seq: m.seq });
  } catch (e) {
    toast(describeError(e), 'error');
  }
}
