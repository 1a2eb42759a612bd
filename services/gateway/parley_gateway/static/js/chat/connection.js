// The chat's one WebSocket (socket.js connects, authenticates and backs off): created by
// startChat, closed by stopChat; every other part sends through sendFrame().
import { getToken } from '../api.js';
import { ChatSocket } from '../socket.js';
import { $ } from '../util.js';
import { forgetTyping } from './typing.js';

let socket = null;
let everReady = false; // a later 'ready' is a reconnect

/** A socket for a new chat (not connected until startSocket). */
export function createSocket({ onReady, onFrame, onAuthLost }) {
  everReady = false;
  socket = new ChatSocket({
    getToken,
    onReady: (f) => {
      const reconnect = everReady;
      everReady = true;
      onReady(f, reconnect);
    },
    onFrame,
    onStatus,
    onAuthLost,
  });
}

export function startSocket() { socket.start(); }

export function closeSocket() {
  if (socket) socket.stop();
  socket = null;
}

/** Send a frame if the socket is authenticated; returns false otherwise. */
export function sendFrame(frame) {
  return socket ? socket.send(frame) : false;
}

/** A refreshed token: the open socket takes it too, or it would close when the old one expires. */
export function renewSocketToken(token) {
  sendFrame({ type: 'auth', token, ref: 'renew' });
}

export function socketReady() {
  return !!(socket && socket.ready);
}

function onStatus(state, info) {
  const el = $('#conn-status');
  el.dataset.state = state;
  if (state === 'online') el.textContent = 'Online';
  else if (state === 'connecting') el.textContent = 'Connecting…';
  else {
    const secs = Math.max(1, Math.round(((info && info.retryIn) || 1000) / 1000));
    el.textContent = `Offline — reconnecting in ${secs}s`;
    forgetTyping();
  }
}
