// Avatars: a person's picture (served by the gateway from this origin: the CSP allows images
// from 'self' only) or, without one, their initial on a stable colour. Messages name their
// author without a picture, so the pictures seen in profiles (members, peers, you, live
// user_updated frames) are remembered by user id, and every avatar already on the page for
// that person follows when theirs changes. The profile dialog's picture controls live here too.
import { api, describeError } from './api.js';
import { $, h, displayName } from './util.js';

const OWN_AVATAR = /^\/api\/v1\/users\/[^/?#]+\/avatar(\?v=[0-9a-f]+)?$/;
const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp'];
const MAX_BYTES = 1024 * 1024;
const known = new Map(); // user id -> our avatar address, or null for "none"

/** Our own avatar address, else null: a profile never makes the page load a remote image. */
function ownAddress(url) {
  return typeof url === 'string' && OWN_AVATAR.test(url) ? url : null;
}

/** Learn a profile's avatar (when it says one, even "none"); redraw that person's avatars. */
export function rememberAvatar(user) {
  if (!user || !user.id || !Object.prototype.hasOwnProperty.call(user, 'avatar_url')) return;
  const url = ownAddress(user.avatar_url);
  if (known.has(user.id) && known.get(user.id) === url) return;
  known.set(user.id, url);
  for (const el of document.querySelectorAll('[data-avatar-user]')) {
    if (el.dataset.avatarUser === user.id) fill(el, url);
  }
}

/** A person's avatar: their picture, or their initial with a stable colour (set through the
 *  CSSOM: CSP-safe). Decorative (aria-hidden): the name is always written beside it. */
export function avatar(user, cls = 'avatar') {
  rememberAvatar(user);
  const name = displayName(user);
  const el = h('span', { class: cls, 'aria-hidden': 'true' });
  el.dataset.initial = name.trim().charAt(0).toUpperCase() || '?';
  let hash = 0;
  for (const ch of String((user && user.id) || name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  el.style.backgroundColor = `hsl(${hash % 360} 45% 45%)`;
  if (user && user.id) el.dataset.avatarUser = user.id;
  fill(el, user && user.id ? known.get(user.id) || null : null);
  return el;
}

function fill(el, url) {
  if (!url) {
    el.classList.remove('has-picture');
    el.replaceChildren(el.dataset.initial);
    return;
  }
  const img = h('img', { class: 'avatar-img', src: url, alt: '', decoding: 'async' });
  img.addEventListener('error', () => fill(el, null), { once: true }); // the initial instead
  el.classList.add('has-picture');
  el.replaceChildren(img);
}

// ---------------------------------------------------------------- the profile dialog

let current = { me: null, onSaved: null };

function pictureError(msg) {
  $('#profile-picture-error').textContent = msg || '';
  $('#profile-picture').setAttribute('aria-invalid', msg ? 'true' : 'false');
}

function showPicture(me) {
  current.me = me;
  $('#profile-picture-preview').replaceChildren(avatar(me, 'avatar large'));
  $('#profile-picture-remove').hidden = !ownAddress(me.avatar_url);
}

/** As the profile dialog opens: your picture, no error. ``onSaved(user)`` after a change. */
export function openProfilePicture(me, onSaved) {
  current.onSaved = onSaved;
  $('#profile-picture').value = '';
  pictureError('');
  showPicture(me);
}

async function change(method, file) {
  const input = $('#profile-picture');
  const remove = $('#profile-picture-remove');
  input.disabled = remove.disabled = true;
  try {
    const res = await api(method, '/users/me/avatar', file);
    showPicture(res.user);
    if (current.onSaved) current.onSaved(res.user);
  } catch (e) {
    const detail = e.details && (e.details.image || e.details.avatar_url);
    pictureError(typeof detail === 'string' ? detail : describeError(e));
  } finally {
    input.disabled = remove.disabled = false;
    input.value = '';
  }
}

export function wireProfilePicture() {
  const input = $('#profile-picture');
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    pictureError('');
    if (!file) return;
    if (!ACCEPTED.includes(file.type)) { pictureError('Choose a PNG, JPEG or WebP picture.'); input.value = ''; return; }
    if (file.size > MAX_BYTES) { pictureError('Choose a picture of at most 1 MiB.'); input.value = ''; return; }
    change('PUT', file);
  });
  $('#profile-picture-remove').addEventListener('click', () => {
    pictureError('');
    change('DELETE');
  });
}
