// @mentions and desktop notifications: how a message's @names render (yours highlighted),
// `mention` frames (the sidebar's mention count), the Mentions view (GET /mentions, newest
// first, jump to the room), and browser notifications for mentions and direct messages while
// the tab is hidden - asked for from a button (a user gesture), never for muted rooms.
import { api, describeError, enc } from '../api.js';
import { $, h, displayName, fullTime, shortTime, toast } from '../util.js';
import { openDialog, closeDialog } from '../dialogs.js';
import { me, isMine, roomLabel } from './state.js';
import { getRoom } from './conversations.js';
import { openRoom, viewing } from './room.js';
import { renderSidebar } from './sidebar.js';
import { jumpToMessage } from './jump.js';
import { renderMarkdown } from './markdown.js';

const NOTIFY_KEY = 'parley.notify'; // "on" once you turned them on here (off until then)
const PAGE = 30;

let dom = {};
const view = { cursor: null, seq: 0 };
// Mention frames already counted, by message id: a relayed event (at-least-once) counts once.
const counted = new Set();

export function setupMentions() {
  dom = {
    notifyBtn: $('#notify-btn'), dialog: $('#mentions-dialog'), list: $('#mentions-list'),
    status: $('#mentions-status'), more: $('#mentions-more'),
  };
  $('#mentions-btn').addEventListener('click', openMentions);
  dom.more.addEventListener('click', () => loadMentions(false));
  dom.notifyBtn.addEventListener('click', onNotifyClick);
  dom.list.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-room]');
    if (b) jumpTo(b.dataset.room, Number(b.dataset.seq));
  });
  renderNotifyButton();
}

// --------------------------------------------------------------- rendering @names

/** The markdown renderer's `mention` option for message `m` of room record `r`. */
export function mentionClass(r, m) {
  const ids = (m && m.mentions) || [];
  if (!ids.length || !me) return null;
  const names = new Map(); // lower-cased username -> class
  if (ids.includes(me.id) && me.username) names.set(me.username.toLowerCase(), 'mention mention-me');
  for (const id of ids) {
    const member = r && r.members && r.members.get(id);
    if (member && member.user.username && id !== me.id) names.set(member.user.username.toLowerCase(), 'mention');
  }
  // Members not loaded yet: any other @name of a message that mentions someone.
  const loose = !(r && r.members);
  return (name) => names.get(name.toLowerCase()) || (loose && name.toLowerCase() !== (me.username || '').toLowerCase() ? 'mention' : null);
}

export const mentionsMe = (m) => !!(m && me && m.mentions && m.mentions.includes(me.id));

// --------------------------------------------------------------- frames

/** A `mention` frame: one more unread mention (unless you are looking), and a notification. */
export function onMention(f) {
  const m = f.message;
  const r = m && getRoom(m.room_id);
  if (!r || isMine(m) || counted.has(m.id)) return;
  if (counted.size > 1000) counted.clear();
  counted.add(m.id);
  if (!viewing(r)) { r.mentionCount = (r.mentionCount || 0) + 1; renderSidebar(); }
  if (r.room.kind !== 'direct') notify(r, m, `${displayName(m.author)} mentioned you in ${roomLabel(r)}`);
}

/** A new message: direct messages notify (mentions notify through their own frame). */
export function notifyMessage(r, m, fresh) {
  if (fresh && r.room.kind === 'direct' && !isMine(m) && !m.deleted) notify(r, m, displayName(m.author));
}

// --------------------------------------------------------------- notifications

const supported = () => typeof window.Notification === 'function';
const wanted = () => { try { return localStorage.getItem(NOTIFY_KEY) === 'on'; } catch { return false; } };

export function notificationsOn() {
  return supported() && Notification.permission === 'granted' && wanted();
}

function notify(r, m, title) {
  if (!document.hidden || r.muted || !notificationsOn()) return;
  try {
    const n = new Notification(title, { body: (m.text || '').slice(0, 200), tag: `parley-${m.id}` });
    n.onclick = () => { window.focus(); openRoom(r.room.id); n.close(); };
  } catch { /* e.g. a browser that wants a service worker for notifications */ }
}

async function onNotifyClick() {
  if (!supported()) { toast('This browser cannot show notifications.', 'error'); return; }
  if (Notification.permission === 'denied') {
    toast('Notifications are blocked for this site in your browser settings.', 'error');
  } else if (Notification.permission === 'granted') {
    try { localStorage.setItem(NOTIFY_KEY, wanted() ? 'off' : 'on'); } catch { /* ignore */ }
  } else {
    const answer = await Notification.requestPermission(); // from this click: a user gesture
    if (answer === 'granted') { try { localStorage.setItem(NOTIFY_KEY, 'on'); } catch { /* ignore */ } }
  }
  renderNotifyButton();
}

function renderNotifyButton() {
  const b = dom.notifyBtn;
  if (!b) return;
  const on = notificationsOn();
  b.setAttribute('aria-pressed', String(on));
  b.textContent = on ? 'Notifications on' : 'Notifications off';
  b.title = !supported() ? 'This browser cannot show notifications'
    : Notification.permission === 'denied' ? 'Blocked in your browser settings'
      : 'Desktop notifications for mentions and direct messages while this tab is hidden (never for muted rooms)';
}

// --------------------------------------------------------------- the Mentions view

function openMentions() {
  openDialog(dom.dialog);
  loadMentions(true);
}

async function loadMentions(reset) {
  if (reset) { view.cursor = null; dom.list.replaceChildren(); }
  const mySeq = ++view.seq;
  dom.status.textContent = 'Loading…';
  dom.more.hidden = true;
  let path = `/mentions?limit=${PAGE}`;
  if (!reset && view.cursor) path += `&cursor=${enc(view.cursor)}`;
  try {
    const data = await api('GET', path);
    if (mySeq !== view.seq) return;
    dom.list.append(...(data.mentions || []).map(mentionItem));
    view.cursor = data.next_cursor || null;
    dom.more.hidden = !view.cursor;
    dom.status.textContent = dom.list.children.length ? '' : 'Nobody has mentioned you yet.';
  } catch (e) {
    if (mySeq === view.seq) dom.status.textContent = describeError(e);
  }
}

function mentionItem(item) {
  const m = item.message;
  const r = getRoom(item.room.id);
  const where = r ? roomLabel(r) : (item.room.name || 'Direct message');
  return h('li', { class: `pick-item mention-item${item.unread ? ' unread' : ''}` },
    h('div', { class: 'pick-main' },
      h('div', { class: 'pick-sub' },
        h('span', { text: `${displayName(m.author)} in ${where} · ` }),
        h('time', { datetime: m.created_at, title: fullTime(m.created_at), text: shortTime(m.created_at) })),
      h('div', { class: 'msg-text mention-text' }, renderMarkdown(m.text, { mention: mentionClass(r, m) }))),
    h('button', {
      type: 'button', class: 'small', dataset: { room: item.room.id, seq: String(m.seq) },
      'aria-label': `Jump to this message in ${where}`, text: 'Jump',
    }));
}

async function jumpTo(roomId, seq) {
  if (!getRoom(roomId)) { toast('You are no longer in that room.', 'error'); return; }
  closeDialog(dom.dialog);
  await jumpToMessage(roomId, seq); // loads history back to an older mention too
}
