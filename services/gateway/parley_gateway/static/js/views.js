// The app's screens, one shown at a time: loading, sign-in, chat. A new screen (an admin
// console, say) is an element in index.html with `hidden`, one registerView() in app.js, and
// showView() where the app should switch to it; what it starts on showing and stops on
// leaving is its own business (app.js starts and stops the chat the same way).
import { $ } from './util.js';

const views = new Map(); // name -> element

export function registerView(name, selector) {
  views.set(name, $(selector));
}

/** Show one screen and hide every other. */
export function showView(name) {
  if (!views.has(name)) throw new Error(`no view named ${name}`);
  for (const [other, el] of views) el.hidden = other !== name;
}
