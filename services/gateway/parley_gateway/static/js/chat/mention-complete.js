// The composer's @mention autocomplete: typing "@" and the start of a name lists the open
// room's members (a listbox above the composer: the textarea keeps the focus and
// aria-activedescendant names the highlighted option). Arrow keys move, Enter or Tab
// picks, Escape closes; a click picks too.
import { $, h, displayName, avatar } from '../util.js';
import { me } from './state.js';
import { openRoomState } from './room.js';
import { ensureMembers } from './members.js';

const MAX_OPTIONS = 8;
// "@" + the start of a username, right before the caret, not inside a word or an e-mail address
const TYPED = /(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{0,32})$/;

let dom = {};
const state = { options: [], active: 0, start: -1 };

export function setupMentionComplete() {
  dom = { input: $('#composer-input'), list: $('#mention-list') };
  dom.input.setAttribute('aria-autocomplete', 'list');
  dom.input.setAttribute('aria-controls', 'mention-list');
  dom.input.addEventListener('input', update);
  dom.input.addEventListener('click', update);
  dom.input.addEventListener('blur', () => setTimeout(close, 150));
  // On the form, capturing: before the composer's own Enter-sends handler.
  $('#composer').addEventListener('keydown', onKey, true);
  dom.list.addEventListener('mousedown', (ev) => {
    const li = ev.target.closest('[role="option"]');
    if (!li) return;
    ev.preventDefault(); // keep the focus in the composer
    pick(Number(li.dataset.index));
  });
}

function typed() {
  const { value, selectionStart, selectionEnd } = dom.input;
  if (selectionStart !== selectionEnd) return null;
  const m = TYPED.exec(value.slice(0, selectionStart));
  return m ? { prefix: m[2].toLowerCase(), start: selectionStart - m[2].length - 1 } : null;
}

async function update() {
  const r = openRoomState();
  const at = r && typed();
  if (!at) { close(); return; }
  const members = r.members || await ensureMembers(r);
  if (!members || openRoomState() !== r) { close(); return; }
  const now = typed(); // the text may have moved on while members loaded
  if (!now) { close(); return; }
  const options = [...members.values()].map((m) => m.user)
    .filter((u) => u.username && u.id !== me.id
      && (u.username.toLowerCase().startsWith(now.prefix)
        || (u.display_name || '').toLowerCase().startsWith(now.prefix)))
    .sort((a, b) => a.username.localeCompare(b.username))
    .slice(0, MAX_OPTIONS);
  // Nothing to complete: the one name that fits is typed out already (Enter sends).
  if (!options.length || (options.length === 1 && options[0].username.toLowerCase() === now.prefix)) {
    close();
    return;
  }
  state.options = options;
  state.start = now.start;
  state.active = Math.min(state.active, options.length - 1);
  render();
}

function render() {
  dom.list.replaceChildren(...state.options.map((u, i) => h('li', {
    id: `mention-option-${i}`, role: 'option', class: 'mention-option',
    'aria-selected': String(i === state.active), dataset: { index: String(i) },
  }, avatar(u, 'avatar small'), h('span', { class: 'mention-option-name', text: displayName(u) }),
  h('span', { class: 'mention-option-user', text: `@${u.username}` }))));
  dom.list.hidden = false;
  dom.input.setAttribute('aria-activedescendant', `mention-option-${state.active}`);
}

function close() {
  if (!dom.list || dom.list.hidden) return;
  dom.list.hidden = true;
  dom.list.replaceChildren();
  state.options = [];
  state.active = 0;
  dom.input.removeAttribute('aria-activedescendant');
}

function onKey(ev) {
  if (ev.target !== dom.input || dom.list.hidden || !state.options.length || ev.isComposing) return;
  const n = state.options.length;
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    state.active = (state.active + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
    render();
  } else if (ev.key === 'Enter' || ev.key === 'Tab') {
    pick(state.active);
  } else if (ev.key === 'Escape') {
    close();
  } else return;
  ev.preventDefault();
  ev.stopPropagation();
}

function pick(index) {
  const u = state.options[index];
  if (!u) return;
  const { value, selectionStart } = dom.input;
  const insert = `@${u.username} `;
  dom.input.value = value.slice(0, state.start) + insert + value.slice(selectionStart);
  const caret = state.start + insert.length;
  dom.input.setSelectionRange(caret, caret);
  close();
  dom.input.focus();
}
