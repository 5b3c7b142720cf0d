// chat.js - the chat layer's state as this client sees it (CHAT.md): the
// views (rooms, direct conversations, the server's own lines), their
// members and last seq, and the lines to show. No DOM here: whoever shows
// it listens for changes.

const MAX_LINES = 2000;                 // per view; older lines are dropped

// Commands whose success the events they cause show well enough.
const QUIET_REPLIES = new Set(["join", "part", "who", "nick"]);

// Fold ASCII letters to lower case, as CHAT.md compares names.
export function asciiLower(s) {
	return s.replace(/[A-Z]/g, (c) => String.fromCharCode(
	    c.charCodeAt(0) + 32));
}

// Why a nick is not valid per CHAT.md, or null if it is.
export function nickProblem(nick) {
	const n = [...nick].length;
	if (n < 1)
		return "a nick needs at least one character";
	if (n > 32)
		return "a nick has at most 32 characters";
	if (/[\s\p{Cc}]/u.test(nick))
		return "a nick has no spaces or control characters";
	if (/^[#/@]/.test(nick))
		return "a nick may not begin with #, / or @";
	return null;
}

// A room as typed by the user, without its leading #.
function bareRoom(arg) {
	return arg.startsWith("#") ? arg.slice(1) : arg;
}

/* One thing the user can look at: a room, a conversation or the server. */
class View {
	// Make an empty view; kind is "room", "dm" or "server".
	constructor(kind, name) {
		this.kind = kind;
		this.name = name;
		this.lines = [];
		this.members = new Map();       // session id -> nick
		this.lastSeq = 0;               // rooms: the last seq shown
		this.unread = 0;
	}

	// The key of this view among all views.
	get key() {
		return viewKey(this.kind, this.name);
	}

	// The name shown for this view: #room, @nick or "server".
	get label() {
		if (this.kind === "room")
			return "#" + this.name;
		if (this.kind === "dm")
			return "@" + this.name;
		return "server";
	}
}

// The key of a view, case-folded as CHAT.md compares names.
function viewKey(kind, name) {
	return kind + ":" + asciiLower(name);
}

/*
 * Everything the client knows of the chat. listener(change, detail) hears
 * "line" {view, line}, "views" (the list, the active view or a count
 * changed), "members" {view} and "me" (the nick changed).
 */
export class Chat {
	// Start with the nick the user asked for.
	constructor(nick, listener) {
		this.wantedNick = nick;
		this.nick = nick;
		this.sessionId = null;
		this.ownSessions = new Set();   // every id this page has had
		this.views = new Map();
		this.active = null;
		this.listener = listener;
		this.pendingJoins = new Set();  // rooms the user asked to join
		this.pendingWho = 0;            // names events the user asked for
		this.restored = [];             // rooms to rejoin after a reload
	}

	// Tell the listener something changed.
	emit(change, detail) {
		this.listener(change, detail || {});
	}

	// The views in the order shown: rooms, conversations, the server.
	ordered() {
		const order = { room: 0, dm: 1, server: 2 };
		return [...this.views.values()].sort((a, b) =>
		    order[a.kind] - order[b.kind]);
	}

	// The view of that kind and name, made (at the end) if missing.
	view(kind, name) {
		const key = viewKey(kind, name);
		let v = this.views.get(key);
		if (v === undefined) {
			v = new View(kind, name);
			this.views.set(key, v);
			if (this.active === null)
				this.active = key;
			this.emit("views");
		}
		return v;
	}

	// The active view, or null before any exists.
	activeView() {
		return this.active === null ? null :
		    this.views.get(this.active) ?? null;
	}

	// Make the view with this key the one shown.
	activate(key) {
		const v = this.views.get(key);
		if (v === undefined)
			return;
		this.active = key;
		v.unread = 0;
		this.emit("views");
	}

	// Add a line to a view (the active one when v is null).
	add(v, line) {
		if (v === null)
			v = this.activeView() ?? this.view("server", "server");
		v.lines.push(line);
		if (v.lines.length > MAX_LINES)
			v.lines.splice(0, v.lines.length - MAX_LINES);
		if (v.key !== this.active && line.kind === "message") {
			v.unread++;
			this.emit("views");
		}
		this.emit("line", { view: v, line });
	}

	// Show a line of the client's own in the active view.
	notice(text, kind) {
		this.add(null, { kind: kind || "notice", time: new Date(),
		    text });
	}

	// A handshake completed: this is now our session.
	online(sessionId) {
		this.sessionId = sessionId;
		this.ownSessions.add(sessionId);
	}

	// True if the session id is one this page has had.
	own(sessionId) {
		return sessionId !== null && this.ownSessions.has(sessionId);
	}

	/*
	 * The extra members of a session_ack (CHAT.md "Joining at the
	 * handshake"): the nick wanted, and every room we are in with its last
	 * seq so that only what we missed is replayed; the room shown goes
	 * last, as the last joined becomes the current room.
	 */
	hello() {
		const rooms = [];
		const active = this.activeView();
		for (const v of this.ordered()) {
			if (v.kind === "room" && v !== active)
				rooms.push({ room: v.name, since: v.lastSeq });
		}
		if (active !== null && active.kind === "room")
			rooms.push({ room: active.name, since: active.lastSeq });
		for (const name of this.restored) {
			if (!this.views.has(viewKey("room", name)))
				rooms.push({ room: name });
		}
		this.restored = [];
		const extra = { nick: this.wantedNick };
		if (rooms.length > 0)
			extra.rooms = rooms;
		return extra;
	}

	// The names of the rooms we are in (to rejoin after a page reload).
	roomNames() {
		return this.ordered().filter((v) => v.kind === "room")
		    .map((v) => v.name);
	}

	/*
	 * What to send for a line the user typed: {content, extra}, or null
	 * for nothing. Commands go as text, as the terminal client sends them
	 * (CHAT.md); a room typed as #dev goes as dev, and /part or /who with
	 * no room name the room being looked at, not the server's current one.
	 */
	outgoing(text) {
		if (text.trim() === "")
			return null;
		const v = this.activeView();
		if (text.startsWith("/") && !text.startsWith("//"))
			return { content: this.command(text, v), extra: null };
		if (v === null || v.kind === "server")
			return { content: text, extra: null };
		if (v.kind === "room")
			return { content: text, extra: { room: v.name } };
		return { content: text, extra: { to: v.name } };
	}

	// Rewrite a command's room argument as CHAT.md wants it sent.
	command(text, v) {
		const m = /^\/(\S+)(?:\s+(\S+))?(.*)$/s.exec(text);
		if (m === null)
			return text;
		const name = asciiLower(m[1]);
		const arg = m[2] === undefined ? null : bareRoom(m[2]);
		const rest = m[3];
		switch (name) {
		case "join":
			if (arg === null)
				return text;
			this.pendingJoins.add(asciiLower(arg));
			return "/" + m[1] + " " + arg + rest;
		case "part":
		case "who":
			if (name === "who")
				this.pendingWho++;
			if (arg !== null)
				return "/" + m[1] + " " + arg + rest;
			if (v !== null && v.kind === "room")
				return "/" + m[1] + " " + v.name;
			return text;
		}
		return text;
	}

	// Take a verified message, chunk or error frame from the server.
	receive(frame) {
		if (frame.type === "error") {
			this.notice("error from the server: " + frame.text(),
			    "error");
			return;
		}
		const event = frame.str("event");
		if (event !== null)
			this.event(event, frame);
		else
			this.message(frame);
	}

	// Show a message from a room, a conversation or (without the chat
	// layer) the server, dropping one already shown.
	message(frame) {
		const room = frame.str("room");
		const to = frame.str("to");
		const own = this.own(frame.sessionId);
		let from = frame.str("from");
		if (from === null)
			from = own ? this.nick : "unknown";
		let v;
		if (room !== null) {
			v = this.view("room", room);
			const seq = frame.header.seq;
			if (Number.isSafeInteger(seq) && seq > 0) {
				if (seq <= v.lastSeq)
					return;
				v.lastSeq = seq;
			}
		} else if (to !== null)
			v = this.view("dm", own ? to : from);
		else
			v = this.view("server", "server");
		let text;
		const ct = frame.contentType ?? "";
		if (frame.type === "message" && ct.startsWith("text/"))
			text = frame.text();
		else
			text = "[" + (frame.type === "chunk" ? "chunk, " : "") +
			    (ct || "no content type") + ", " +
			    frame.content.length + " bytes]";
		this.add(v, { kind: "message", time: frameTime(frame), from,
		    own, text, seq: frame.header.seq });
	}

	// Handle an event the server made for us (CHAT.md "Events").
	event(event, frame) {
		const h = frame.header;
		const text = frame.text();
		const time = frameTime(frame);
		const line = { kind: "event", time, text };
		const session = frame.str("session");
		const nick = frame.str("nick");
		const room = frame.str("room");
		switch (event) {
		case "reply":
			if (frame.str("status") === "error")
				line.kind = "error";
			else if (QUIET_REPLIES.has(frame.str("command")))
				return;         // the events it caused say it
			this.add(null, line);
			return;
		case "join":
			if (room === null)
				break;
			this.joined(room, session, nick, line);
			return;
		case "part":
			if (room === null)
				break;
			this.parted(room, session, line);
			return;
		case "quit":
			this.quit(session, line);
			return;
		case "nick":
			this.renamed(frame.str("old"), nick, session, line);
			return;
		case "names":
			if (room === null || !Array.isArray(h.names))
				break;
			this.names(room, h.names, line);
			return;
		case "history-end":
			if (room === null)
				break;
			this.historyEnd(room, h, line);
			return;
		}
		this.add(room !== null && this.views.has(viewKey("room", room)) ?
		    this.view("room", room) : null, line);
	}

	// Someone, maybe us, joined a room.
	joined(room, session, nick, line) {
		const v = this.view("room", room);
		if (session !== null)
			v.members.set(session, nick ?? "?");
		if (session !== null && session === this.sessionId) {
			if (nick !== null && nick !== this.nick) {
				this.nick = nick;
				this.emit("me");
			}
			if (this.pendingJoins.delete(asciiLower(room)))
				this.activate(v.key);
		}
		this.add(v, line);
		this.emit("members", { view: v });
	}

	// Someone left a room; when it is us, the room's view goes.
	parted(room, session, line) {
		const key = viewKey("room", room);
		const v = this.views.get(key);
		if (v === undefined)
			return;
		if (session !== null && session === this.sessionId) {
			this.views.delete(key);
			if (this.active === key) {
				const next = this.ordered()[0];
				this.active = next === undefined ? null : next.key;
			}
			this.emit("views");
			this.add(null, line);
			return;
		}
		v.members.delete(session);
		this.add(v, line);
		this.emit("members", { view: v });
	}

	// A session closed: it leaves every room it shared with us.
	quit(session, line) {
		let shown = false;
		for (const v of this.views.values()) {
			if (v.kind === "room" && v.members.delete(session)) {
				this.add(v, line);
				this.emit("members", { view: v });
				shown = true;
			}
		}
		if (!shown)
			this.add(null, line);
	}

	// A session, maybe ours, changed its nick.
	renamed(old, nick, session, line) {
		let shown = false;
		if (nick === null)
			return;
		if (session !== null && session === this.sessionId) {
			this.nick = nick;
			this.wantedNick = nick;
			this.emit("me");
		}
		for (const v of this.views.values()) {
			if (v.kind === "room" && v.members.has(session)) {
				v.members.set(session, nick);
				this.add(v, line);
				this.emit("members", { view: v });
				shown = true;
			}
		}
		// A conversation follows its peer's new nick.
		const oldKey = old === null ? null : viewKey("dm", old);
		const dm = oldKey === null ? undefined : this.views.get(oldKey);
		if (dm !== undefined && !this.views.has(viewKey("dm", nick))) {
			this.views.delete(oldKey);
			dm.name = nick;
			this.views.set(dm.key, dm);
			if (this.active === oldKey)
				this.active = dm.key;
			this.add(dm, line);
			this.emit("views");
			shown = true;
		}
		if (!shown)
			this.add(null, line);
	}

	// The members of a room, in full.
	names(room, names, line) {
		const v = this.view("room", room);
		v.members.clear();
		for (const n of names) {
			if (n !== null && typeof n === "object" &&
			    typeof n.session === "string")
				v.members.set(n.session, typeof n.nick === "string" ?
				    n.nick : "?");
		}
		this.emit("members", { view: v });
		if (this.pendingWho > 0) {
			this.pendingWho--;
			this.add(v, line);
		}
	}

	// The replay of a room's history ended.
	historyEnd(room, h, line) {
		const v = this.view("room", room);
		if (Number.isSafeInteger(h.seq) && h.seq > v.lastSeq)
			v.lastSeq = h.seq;
		if (h.truncated === true) {
			line.kind = "error";
			line.text = "Some messages of #" + v.name +
			    " are no longer stored and were not replayed.";
			this.add(v, line);
		} else if (Number.isSafeInteger(h.replayed) && h.replayed > 0) {
			line.kind = "history";
			this.add(v, line);
		}
	}
}

// When the server received a frame (its time member), else now.
function frameTime(frame) {
	const t = frame.str("time");
	if (t !== null) {
		const d = new Date(t);
		if (!Number.isNaN(d.getTime()))
			return d;
	}
	return new Date();
}
