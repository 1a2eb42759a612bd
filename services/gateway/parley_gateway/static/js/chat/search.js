// Message search: the search box in the sidebar opens the results dialog (GET /search, best
// matches first, "More results" for the next page); choosing a result jumps to the message in
// its room's history (jump.js). Snippets arrive as {text, match} parts and become text nodes
// and <mark> elements: message text is never parsed as HTML.
import { api, describeError, enc } from '../api.js';
import { $, h, displayName, fullTime, shortTime } from '../util.js';
import { closeDialog, openDialog } from '../dialogs.js';
import { roomLabel } from './state.js';
import { allRooms, getRoom } from './conversations.js';
import { jumpToMessage } from './jump.js';

const PAGE = 20;

let dom = {};
let search = { q: '', roomId: '', cursor: null, seq: 0 };

export function setupSearch() {
  dom = {
    box: $('#msg-search'), dialog: $('#search-dialog'), form: $('#search-form'), q: $('#search-q'),
    room: $('#search-room'), status: $('#search-status'), results: $('#search-results'),
    more: $('#search-more'),
  };
  $('#msg-search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    openSearch(dom.box.value);
  });
  dom.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    runSearch(true);
  });
  dom.room.addEventListener('change', () => { if (dom.q.value.trim()) runSearch(true); });
  dom.more.addEventListener('click', () => runSearch(false));
  dom.results.addEventListener('click', (ev) => {
    const hit = ev.target.closest('button.search-hit');
    if (!hit) return;
    closeDialog(dom.dialog);
    jumpToMessage(hit.dataset.room, Number(hit.dataset.seq));
  });
}

function roomName(result) {
  const r = getRoom(result.room.id);
  if (r) return roomLabel(r);
  return result.room.kind === 'direct' ? 'Direct message' : (result.room.name || 'Untitled room');
}

/** "In": every room of yours, or one of them (by name). */
function fillRoomChoices() {
  const choices = [...allRooms()].map((r) => [r.room.id, roomLabel(r)])
    .sort((a, b) => a[1].localeCompare(b[1]));
  dom.room.replaceChildren(h('option', { value: '', text: 'All your rooms' }),
    ...choices.map(([id, label]) => h('option', { value: id, text: label })));
}

/** Open the results dialog for `q` (the sidebar's box), searching at once if it has words. */
export function openSearch(q) {
  fillRoomChoices();
  dom.q.value = (q || '').trim();
  dom.results.replaceChildren();
  dom.status.textContent = '';
  dom.more.hidden = true;
  openDialog(dom.dialog);
  dom.q.focus();
  if (dom.q.value) runSearch(true);
}

async function runSearch(reset) {
  if (reset) {
    search = { ...search, q: dom.q.value.trim(), roomId: dom.room.value, cursor: null };
    if (!search.q) {
      dom.results.replaceChildren();
      dom.more.hidden = true;
      dom.status.textContent = 'Type the words to look for.';
      return;
    }
  }
  const mySeq = ++search.seq;
  dom.status.textContent = 'Searching…';
  let path = `/search?q=${enc(search.q)}&limit=${PAGE}`;
  if (search.roomId) path += `&room_id=${enc(search.roomId)}`;
  if (!reset && search.cursor) path += `&before=${enc(search.cursor)}`;
  try {
    const data = await api('GET', path);
    if (mySeq !== search.seq) return;
    if (reset) dom.results.replaceChildren();
    dom.results.append(...(data.results || []).map(resultItem));
    search.cursor = data.next_cursor || null;
    dom.more.hidden = !search.cursor;
    const n = dom.results.children.length;
    dom.status.textContent = n ? `${n}${search.cursor ? '+' : ''} message${n === 1 ? '' : 's'} found.`
      : 'No messages match.';
  } catch (e) {
    if (mySeq !== search.seq) return;
    dom.status.textContent = describeError(e);
  }
}

function snippet(parts) {
  return (parts || []).map((part) => (part.match ? h('mark', { text: part.text }) : part.text));
}

function resultItem(result) {
  const m = result.message;
  const where = roomName(result);
  return h('li', {},
    h('button', { type: 'button', class: 'search-hit', dataset: { room: result.room.id, seq: String(m.seq) } },
    h('span', { class: 'search-hit-head' },
      h('span', { class: 'search-hit-room', text: `${result.room.kind === 'public' ? '# ' : ''}${where}` }),
      h('span', { class: 'search-hit-author', text: displayName(m.author) }),
      h('time', { class: 'search-hit-time', datetime: m.created_at, title: fullTime(m.created_at), text: shortTime(m.created_at) })),
    h('span', { class: 'search-hit-text' }, ...snippet(result.snippet))));
}
