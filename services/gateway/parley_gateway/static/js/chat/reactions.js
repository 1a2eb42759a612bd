// Emoji reactions under each message: the counts (pressed when you reacted), a click toggles
// yours, "Add reaction" opens a small picker of common emoji. Live updates come as
// reaction_added / reaction_removed frames, which carry everyone's counts and who reacted;
// whether *you* reacted (`me`) is kept here from your own actions and frames.
import { api, describeError, enc } from '../api.js';
import { $, h, toast } from '../util.js';
import { me } from './state.js';
import { getRoom } from './conversations.js';
import { isOpen, openRoomState } from './room.js';
import { messageElement } from './message-list.js';

export const COMMON_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

export function setupReactions() {
  $('#message-list').addEventListener('click', onReactionClick);
}

/** The reaction bar of a message (null for a deleted one). */
export function reactionBar(m) {
  if (m.deleted) return null;
  const bar = h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' });
  for (const x of m.reactions || []) {
    const who = x.count === 1 ? '1 reaction' : `${x.count} reactions`;
    bar.append(h('button', {
      type: 'button', class: 'reaction', 'aria-pressed': x.me ? 'true' : 'false',
      'aria-label': `${x.emoji} ${who}${x.me ? ', including yours' : ''}`,
      dataset: { react: x.emoji },
    }, h('span', { class: 'reaction-emoji', text: x.emoji }), h('span', { class: 'reaction-count', text: String(x.count) })));
  }
  bar.append(h('button', {
    type: 'button', class: 'reaction-add small ghost', 'aria-label': 'Add reaction',
    'aria-expanded': 'false', title: 'Add reaction', dataset: { reactPicker: '1' }, text: '☺+',
  }));
  return bar;
}

function picker() {
  return h('div', { class: 'reaction-picker', role: 'group', 'aria-label': 'Pick a reaction' },
    COMMON_EMOJI.map((e) => h('button', {
      type: 'button', class: 'reaction-choice', 'aria-label': `React with ${e}`, dataset: { react: e }, text: e,
    })));
}

function onReactionClick(ev) {
  const b = ev.target.closest('button[data-react], button[data-react-picker]');
  const li = b && b.closest('li.msg');
  const r = openRoomState();
  if (!li || !r || li.dataset.pending) return;
  const m = r.messages.get(Number(li.dataset.seq));
  if (!m) return;
  if (b.dataset.reactPicker) { togglePicker(li, b); return; }
  const open = li.querySelector('.reaction-picker');
  if (open) open.remove();
  toggleReaction(r, m, b.dataset.react);
}

function togglePicker(li, button) {
  const open = li.querySelector('.reaction-picker');
  if (open) { open.remove(); button.setAttribute('aria-expanded', 'false'); return; }
  const p = picker();
  button.after(p);
  button.setAttribute('aria-expanded', 'true');
  p.firstElementChild.focus();
  p.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); p.remove(); button.setAttribute('aria-expanded', 'false'); button.focus(); }
  });
}

/** Add your reaction, or take it back if you had it. */
export async function toggleReaction(r, m, emoji) {
  const mine = (m.reactions || []).some((x) => x.emoji === emoji && x.me);
  const path = `/rooms/${enc(r.room.id)}/messages/${enc(m.id)}/reactions/${enc(emoji)}`;
  try {
    const res = await api(mine ? 'DELETE' : 'PUT', path);
    if (res && res.reactions) setReactions(r, m.seq, res.reactions);
  } catch (e) {
    toast(describeError(e), 'error');
  }
}

/** reaction_added / reaction_removed: everyone's counts; `me` changes only if it was you. */
export function onReactionFrame(f) {
  const r = getRoom(f.room_id);
  const m = r && r.messages.get(f.seq);
  if (!m || m.id !== f.message_id) return;
  const mineBefore = new Set((m.reactions || []).filter((x) => x.me).map((x) => x.emoji));
  if (me && f.user_id === me.id) {
    if (f.type === 'reaction_added') mineBefore.add(f.emoji);
    else mineBefore.delete(f.emoji);
  }
  setReactions(r, f.seq, (f.reactions || []).map((x) => ({ ...x, me: mineBefore.has(x.emoji) })));
}

/** A message as a frame brought it (no `me`): your reactions as you had them. */
export function keepMyReactions(old, m) {
  if (!old || !m.reactions || m.reactions.some((x) => 'me' in x)) return m;
  const mine = new Set((old.reactions || []).filter((x) => x.me).map((x) => x.emoji));
  return { ...m, reactions: m.reactions.map((x) => ({ ...x, me: mine.has(x.emoji) })) };
}

function setReactions(r, seq, reactions) {
  const m = r.messages.get(seq);
  if (!m) return;
  m.reactions = reactions;
  const li = isOpen(r) && messageElement(seq);
  const old = li && li.querySelector('.reactions');
  if (!old) return;
  const hadFocus = old.contains(document.activeElement) ? document.activeElement.dataset.react : null;
  const bar = reactionBar(m);
  old.replaceWith(bar);
  if (hadFocus) {
    const again = [...bar.querySelectorAll('button[data-react]')].find((b) => b.dataset.react === hadFocus);
    (again || bar.querySelector('.reaction-add')).focus();
  }
}
