// Who is chatting, and the shape of a room's record. Every chat module reads `me` and
// `running`; only startChat / stopChat and profile updates change them, through the setters.
import { displayName, toTime } from '../util.js';

/** The signed-in user (null when the chat is stopped). */
export let me = null;
/** True between startChat and stopChat: late answers of a stopped chat are dropped. */
export let running = false;

export function setMe(user) { me = user; }
export function setRunning(on) { running = on; }

/**
 * A room's record, one per conversation (conversations.js holds them). Its fields are the
 * model the chat modules share: each updates the fields of its own concern.
 */
export function newRoomState(room) {
  const seq = room.last_seq || 0;
  return {
    room,
    muted: false,
    unread: 0,
    mentionCount: 0, // unread messages that mention you (mentions.js)
    lastMessage: null,
    lastSeq: seq, // newest seq known for the room (list preview, unread bookkeeping)
    resumeSeq: seq, // newest seq actually received as a message (subscribe after_seq)
    members: null, // Map user id -> {user, role, joined_at, last_read_seq, online}
    membersPromise: null,
    peer: null, // the other user of a direct room
    messages: new Map(), // seq -> message (only while loaded)
    loaded: false,
    loading: null,
    hasMore: true,
    loadingOlder: false,
    historyError: '',
    pending: new Map(), // client_id -> {client_id, text, failed, error, timer}
    typing: new Map(), // user id -> {user, timer}
    sentReadSeq: 0,
    lastTypingSent: 0,
    draft: '',
    replyTo: null, // the message the composer replies to (replies.js)
  };
}

export const isMine = (m) => !!(m && m.author && me && m.author.id === me.id);

export function roomLabel(r) {
  if (r.room.kind === 'direct') return r.peer ? displayName(r.peer) : (r.room.name || 'Direct message');
  return r.room.name || 'Untitled room';
}

export function activity(r) {
  return Math.max(toTime(r.room.last_activity_at), toTime(r.lastMessage && r.lastMessage.created_at),
    toTime(r.room.created_at));
}
