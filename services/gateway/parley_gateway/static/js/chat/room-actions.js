// What you can do to the open room from its header and details panel: mute, edit, add a
// member, leave, delete.
import { api, describeError, enc } from '../api.js';
import { $, displayName, toast } from '../util.js';
import { openEditRoom, openUserPicker } from '../dialogs.js';
import { me, roomLabel } from './state.js';
import { removeRoom } from './conversations.js';
import { openRoomState, renderRoomHeader } from './room.js';
import { renderSidebar } from './sidebar.js';
import { onMemberJoined } from './members.js';
import { onRoomUpdated } from './frames.js';
import { sendFrame } from './connection.js';

export function setupRoomActions() {
  $('#mute-btn').addEventListener('click', toggleMute);
  $('#edit-room-btn').addEventListener('click', () => {
    const r = openRoomState();
    if (r) openEditRoom(r.room, onRoomUpdated);
  });
  $('#add-member-btn').addEventListener('click', addMemberFlow);
  $('#leave-btn').addEventListener('click', leaveRoom);
  $('#delete-room-btn').addEventListener('click', deleteRoom);
}

async function toggleMute() {
  const r = openRoomState();
  if (!r) return;
  const button = $('#mute-btn');
  button.disabled = true;
  try {
    const res = await api('PUT', `/rooms/${enc(r.room.id)}/mute`, { muted: !r.muted });
    r.muted = res && typeof res.muted === 'boolean' ? res.muted : !r.muted;
    renderRoomHeader(r);
    renderSidebar();
  } catch (e) {
    toast(describeError(e), 'error');
  } finally {
    button.disabled = false;
  }
}

function addMemberFlow() {
  const r = openRoomState();
  if (!r) return;
  const exclude = r.members ? [...r.members.keys()] : [me.id];
  openUserPicker({
    title: `Add someone to ${roomLabel(r)}`,
    actionLabel: 'Add',
    exclude,
    onPick: async (user) => {
      const res = await api('POST', `/rooms/${enc(r.room.id)}/members`, { user_id: user.id });
      if (res && res.room) r.room = { ...r.room, ...res.room };
      onMemberJoined({ room_id: r.room.id, user });
      toast(`${displayName(user)} was added.`);
    },
  });
}

async function leaveRoom() {
  const r = openRoomState();
  if (!r) return;
  if (!window.confirm(`Leave “${roomLabel(r)}”?`)) return;
  r.leaving = true;
  try {
    await api('POST', `/rooms/${enc(r.room.id)}/leave`);
    sendFrame({ type: 'unsubscribe', room_id: r.room.id });
    removeRoom(r.room.id, `You left ${roomLabel(r)}.`);
  } catch (e) {
    r.leaving = false;
    toast(describeError(e), 'error');
  }
}

async function deleteRoom() {
  const r = openRoomState();
  if (!r) return;
  if (!window.confirm(`Delete “${roomLabel(r)}” and all of its messages for everyone? This cannot be undone.`)) return;
  try {
    await api('DELETE', `/rooms/${enc(r.room.id)}`);
    removeRoom(r.room.id, `Deleted ${roomLabel(r)}.`);
  } catch (e) {
    toast(describeError(e), 'error');
  }
}
