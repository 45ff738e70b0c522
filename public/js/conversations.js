// The client's model: conversations (rooms and private threads), their
// messages, unread counts and who is typing. No DOM here.

export const state = {
  me: null,             // my username, as the server spells it
  users: [],            // online usernames shown: everyone, or a page or search of them (people.js)
  numUsers: 0,          // how many are online
  usersComplete: true,  // `users` is everyone online
  usersNext: null,      // the `after` of the next page, if more follow
  userSearch: "",       // the sidebar's search: names starting with this
  rooms: [],            // [{ room, members }] known rooms
  conversations: new Map(),
  current: null,        // key of the open conversation
};

const same = (a, b) => a.toLowerCase() === b.toLowerCase();

export const roomKey = (room) => `room:${room}`;

/** Key of the private conversation with `others` (me excluded, any order). */
export function dmKey(others) {
  const names = others.map((n) => n.toLowerCase()).sort();
  return `dm:${JSON.stringify(names)}`;
}

/** The other participants of a private message, seen from me. */
export function participantsOf(message) {
  const to = Array.isArray(message.to) ? message.to : [message.to];
  const all = [message.from, ...to].filter((name) => !same(name, state.me));
  const unique = [];
  for (const name of all) if (!unique.some((u) => same(u, name))) unique.push(name);
  return unique.length ? unique : [state.me];
}

export function roomConversation(room) {
  const key = roomKey(room);
  if (!state.conversations.has(key)) {
    state.conversations.set(key, newConversation(key, { kind: "room", room, title: `#${room}`, members: [] }));
  }
  return state.conversations.get(key);
}

export function dmConversation(others) {
  const key = dmKey(others);
  if (!state.conversations.has(key)) {
    state.conversations.set(key, newConversation(key, { kind: "dm", with: others, title: others.join(", ") }));
  }
  return state.conversations.get(key);
}

function newConversation(key, fields) {
  return { key, messages: [], ids: new Set(), unread: 0, typing: new Map(), joined: false, ...fields };
}

/** The conversation an incoming message belongs to. */
export function conversationOf(message) {
  return message.room ? roomConversation(message.room) : dmConversation(participantsOf(message));
}

/** Adds messages (any order, duplicates ignored); returns those that were new. */
export function addMessages(conversation, messages) {
  const fresh = messages.filter((m) => !conversation.ids.has(m.id));
  for (const m of fresh) conversation.ids.add(m.id);
  conversation.messages.push(...fresh);
  conversation.messages.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return fresh;
}

/** Id of the newest message held, to ask the server for what came after. */
export function lastId(conversation) {
  for (let i = conversation.messages.length - 1; i >= 0; i--) {
    if (!conversation.messages[i].notice) return conversation.messages[i].id;
  }
  return null;
}

/** Adds a line such as "bob joined #general", placed after the newest message. */
export function addNotice(conversation, text) {
  // "0" sorts before every message id, so an early notice stays at the top.
  conversation.messages.push({ id: lastId(conversation) ?? "0", notice: text });
}

/** What the server's `to` (messages, typing) or `with` (history) should be. */
export function recipients(conversation) {
  return conversation.with.length === 1 ? conversation.with[0] : conversation.with;
}

/** Where a message or typing notice for this conversation goes. */
export function target(conversation) {
  return conversation.kind === "room" ? { room: conversation.room } : { to: recipients(conversation) };
}

export function joinedRooms() {
  return [...state.conversations.values()].filter((c) => c.kind === "room" && c.joined).map((c) => c.room);
}

export function isMe(name) {
  return state.me !== null && same(name, state.me);
}

/** Unread messages over every conversation (for the tab's title). */
export function totalUnread() {
  let total = 0;
  for (const c of state.conversations.values()) total += c.unread;
  return total;
}

/** Forgets everything (log out). */
export function resetState() {
  for (const c of state.conversations.values()) for (const timer of c.typing.values()) clearTimeout(timer);
  Object.assign(state, {
    me: null, users: [], numUsers: 0, usersComplete: true, usersNext: null, userSearch: "",
    rooms: [], conversations: new Map(), current: null,
  });
}
