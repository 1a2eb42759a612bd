// Message text as a small Markdown subset, built as DOM nodes (never innerHTML): **bold**,
// *italic* / _italic_, `code`, ``` code blocks ```, [text](https://…) and bare http(s) URLs
// (a new tab, rel="noopener noreferrer"), and @mentions. Everything else - HTML tags,
// other link schemes (javascript:, data:), unclosed markers - stays literal text.
// No dependency on the rest of the client: tests load it on its own.

const MAX_DEPTH = 4; // bold inside italic inside bold…: deeper nesting stays text
const FENCE = /```([^\n`]*)\n?([\s\S]*?)```/g;
const SPECIAL = /[`*_[@h]/g;
const URL_AT = /^https?:\/\/[^\s<>"'`]+/i;
const LINK_AT = /^\[([^\]\n]{1,500})\]\(([^()\s]{1,2000})\)/;
const MENTION_AT = /^@([A-Za-z0-9_.-]{3,64})/;
const WORD = /[A-Za-z0-9]/;
const NAME_CHAR = /[A-Za-z0-9_.@-]/;
const SPACE = /\s/;

/** An http(s) URL as a safe href, or null. */
export function safeHref(raw) {
  let url;
  try { url = new URL(raw); } catch { return null; }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

function link(href, label) {
  const a = document.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = label;
  return a;
}

function wrap(tag, className, children) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  el.append(...children);
  return el;
}

/** Where the marker closing one opened at `from` is: its text not empty nor edged by spaces. */
function closing(text, marker, from) {
  if (from >= text.length || SPACE.test(text[from])) return -1;
  let at = text.indexOf(marker, from + 1);
  while (at !== -1) {
    if (marker.length === 1 && text[at + 1] === marker) { // a "**" run inside "*…*": skip it
      at = text.indexOf(marker, at + 2);
      continue;
    }
    if (!SPACE.test(text[at - 1])) return at; // no slices here: a long line stays linear-ish
    at = text.indexOf(marker, at + 1);
  }
  return -1;
}

/**
 * Inline Markdown of `text` as nodes. `mention(name)` answers the class of an @name token
 * ('mention' / 'mention mention-me') or null to leave it as text.
 */
function inline(text, options, depth) {
  const out = [];
  let plain = '';
  const flush = () => { if (plain) { out.push(document.createTextNode(plain)); plain = ''; } };
  let i = 0;
  while (i < text.length) {
    SPECIAL.lastIndex = i;
    const found = SPECIAL.exec(text);
    if (!found) { plain += text.slice(i); break; }
    plain += text.slice(i, found.index);
    i = found.index;
    const ch = text[i];
    const rest = text.slice(i);
    const before = i > 0 ? text[i - 1] : '';
    let node = null;
    let used = 1;
    if (ch === '`') {
      const end = text.indexOf('`', i + 1);
      if (end > i + 1) { node = wrap('code', 'md-code', [text.slice(i + 1, end)]); used = end + 1 - i; }
    } else if (ch === '*' || ch === '_') {
      const marker = ch === '*' && text[i + 1] === '*' ? '**' : ch;
      const open = i + marker.length;
      // _ inside words (snake_case) is not emphasis
      const wordy = ch === '_' && WORD.test(before);
      const end = wordy || depth >= MAX_DEPTH ? -1 : closing(text, marker, open);
      if (end !== -1 && !(ch === '_' && WORD.test(text[end + 1] || ''))) {
        node = wrap(marker === '**' ? 'strong' : 'em', '', inline(text.slice(open, end), options, depth + 1));
        used = end + marker.length - i;
      } else used = marker.length;
    } else if (ch === '[') {
      const m = LINK_AT.exec(rest);
      const href = m && safeHref(m[2]);
      if (href) { node = link(href, m[1]); used = m[0].length; }
    } else if (ch === 'h') {
      const m = !WORD.test(before) && URL_AT.exec(rest);
      if (m) {
        const raw = m[0].replace(/[.,;:!?)\]}'"]+$/, '');
        const href = safeHref(raw);
        if (href) { node = link(href, raw); used = raw.length; }
      }
    } else if (ch === '@' && options.mention && !NAME_CHAR.test(before)) {
      const m = MENTION_AT.exec(rest);
      if (m) {
        // "@bob." at a sentence's end: the name without its trailing dots or dashes
        for (const name of [m[1], m[1].replace(/[.-]+$/, '')]) {
          const cls = name.length >= 3 && options.mention(name);
          if (cls) { node = wrap('span', cls, [`@${name}`]); used = name.length + 1; break; }
        }
      }
    }
    if (node) { flush(); out.push(node); } else plain += text.slice(i, i + used);
    i += used;
  }
  flush();
  return out;
}

/** `text` rendered: a DocumentFragment of text nodes and the few elements above. */
export function renderMarkdown(text, options = {}) {
  const frag = document.createDocumentFragment();
  let last = 0;
  FENCE.lastIndex = 0;
  for (let m = FENCE.exec(text); m; m = FENCE.exec(text)) {
    frag.append(...inline(text.slice(last, m.index), options, 0));
    const code = wrap('code', '', [m[2].replace(/\n$/, '')]);
    const lang = m[1].trim();
    if (/^[\w+#.-]{1,20}$/.test(lang)) code.dataset.lang = lang;
    frag.append(wrap('pre', 'md-pre', [code]));
    last = m.index + m[0].length;
  }
  frag.append(...inline(text.slice(last), options, 0));
  return frag;
}
