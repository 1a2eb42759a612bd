// The chat screen: conversation list, message pane, members, realtime frames. This module
// starts and stops it; each part lives in its own module here and owns its state and elements:
//   state.js          you (`me`), whether the chat runs, a room record's shape
//   connection.js     the WebSocket and the connection status line
//   conversations.js  the room records (one map), loaded and kept current
//   sidebar.js        you, the new-conversation buttons, the conversation list
//   room.js           which room is open; opening, closing, its header
//   members.js        the details panel, members and presence
//   room-actions.js   mute, edit, add a member, leave, delete
//   messages.js       a room's history: absorb, pages, the status line
//   message-list.js   the open room's message elements, scrolling
//   receipts.js       read markers and "Seen by"
//   frames.js         live frames, one handler per type
//   typing.js         who is typing
//   composer.js       the composer and messages on their way
//   editing.js        edit / delete / retry / discard on a message
//   search.js         the message search box and its results dialog
//   jump.js           jumping to a message in its room's history
//   markdown.js       message text's Markdown subset as DOM nodes
//   mentions.js       @mentions: rendering, mention frames, the Mentions view, notifications
//   mention-complete.js  the composer's @name autocomplete
//   reactions.js      the reaction bar under each message, the emoji picker, live counts
//   replies.js        reply to a message: the composer's reply, the quote above a reply
import { describeError } from '../api.js';
import { $, toast } from '../util.js';
import { setupDialogs, openProfile, closeAllDialogs } from '../dialogs.js';
import { me, running, setMe, setRunning } from './state.js';
import { closeSocket, createSocket, startSocket } from './connection.js';
import { forgetConversations, loadConversations } from './conversations.js';
import { clearSidebar, renderMe, setupSidebar } from './sidebar.js';
import { closeRoomView, reopenLastRoom, setupRoomView } from './room.js';
import { setupMembers } from './members.js';
import { setupRoomActions } from './room-actions.js';
import { setupMessages } from './messages.js';
import { setupMessageList } from './message-list.js';
import { cancelRead, setupReceipts } from './receipts.js';
import { onFrame, onReady, onUserUpdated } from './frames.js';
import { setupTyping } from './typing.js';
import { setupComposer } from './composer.js';
import { setupSearch } from './search.js';
import { setupMentions } from './mentions.js';
import { setupMentionComplete } from './mention-complete.js';
import { setupReactions } from './reactions.js';
import { setupReplies } from './replies.js';

export { renewSocketToken } from './connection.js';

// The parts of the chat screen, each finding its elements and wiring its listeners once, at
// page load. A new panel of the chat screen adds its setup function here.
const PARTS = [
  setupSidebar, setupRoomView, setupMembers, setupRoomActions, setupMessages, setupMessageList,
  setupReceipts, setupTyping, setupComposer, setupSearch,
  setupMentions, setupMentionComplete, setupReactions, setupReplies,
];

let hooks = null; // app.js: onLogout, onAccountDeleted, onAuthLost(code)

export function setupChat(appHooks) {
  hooks = appHooks;
  setupDialogs();
  $('#logout-btn').addEventListener('click', () => hooks.onLogout());
  $('#profile-btn').addEventListener('click', () => openProfile(me, {
    onSaved: onProfileSaved,
    onDeleted: () => hooks.onAccountDeleted(),
  }));
  for (const setup of PARTS) setup();
}

export async function startChat(user) {
  setMe(user);
  setRunning(true);
  renderMe();
  closeRoomView(true);
  createSocket({ onReady, onFrame, onAuthLost: (code) => hooks.onAuthLost(code) });
  try {
    await loadConversations();
  } catch (e) {
    if (e.status === 401) return;
    toast(describeError(e), 'error');
  }
  if (!running) return;
  startSocket();
  reopenLastRoom();
}

export function stopChat() {
  setRunning(false);
  closeSocket();
  cancelRead();
  forgetConversations();
  setMe(null);
  closeAllDialogs();
  closeRoomView(true);
  clearSidebar();
  document.title = 'Parley';
}

function onProfileSaved(user) {
  if (running) onUserUpdated(user);
}
