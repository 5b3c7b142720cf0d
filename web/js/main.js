// main.js - starts the page: the login prompt, then a Chat shown by the
// Ui and fed by a Connection to /ws of this page's origin.

import { Chat, nickProblem } from "./chat.js";
import { Connection, socketUrl } from "./connection.js";
import { hmacAvailable } from "./hmac.js";
import { Ui } from "./ui.js";

const DEFAULT_KEY = "default-key";

// Read a value kept in this tab's sessionStorage, or null.
function load(name) {
	try {
		return sessionStorage.getItem("asyncchat." + name);
	} catch (e) {
		return null;            // storage refused: keep nothing
	}
}

// Keep a value in this tab's sessionStorage (null removes it).
function save(name, value) {
	try {
		if (value === null)
			sessionStorage.removeItem("asyncchat." + name);
		else
			sessionStorage.setItem("asyncchat." + name, value);
	} catch (e) {
		// storage refused: the value is simply not kept
	}
}

// The rooms kept from before a reload of the page.
function loadRooms() {
	try {
		const rooms = JSON.parse(load("rooms") ?? "[]");
		return Array.isArray(rooms) ?
		    rooms.filter((r) => typeof r === "string") : [];
	} catch (e) {
		return [];
	}
}

const ui = new Ui(document);
let conn = null;

// Show the prompt, with what this tab used last.
function prompt(error) {
	ui.showLogin(load("nick") ?? "", load("key") ?? DEFAULT_KEY, error);
}

// Check the prompt's answers and start the chat.
function login(nick, key) {
	const problem = nickProblem(nick);
	if (problem !== null) {
		ui.loginError("Nick: " + problem + ".");
		return;
	}
	if (key === "") {
		ui.loginError("Key: the key may not be empty.");
		return;
	}
	if (!hmacAvailable()) {
		ui.loginError("This page must be opened over https, or over " +
		    "http on 127.0.0.1 or localhost: the browser offers its " +
		    "HMAC only there.");
		return;
	}
	save("nick", nick);
	save("key", key);
	start(nick, key);
}

// Start a session as nick with the key.
function start(nick, key) {
	const chat = new Chat(nick, (change, detail) => {
		ui.changed(change, detail);
		if (change === "views")
			save("rooms", JSON.stringify(chat.roomNames()));
	});
	chat.restored = loadRooms();
	const c = new Connection(socketUrl(location), key, {
		hello: () => chat.hello(),
		onOnline: (id) => chat.online(id),
		onFrame: (frame) => chat.receive(frame),
		onStatus: (state, text) => ui.status(state, text),
		onNotice: (text) => chat.notice(text),
		onFatal: (text) => stop(text),
	});
	conn = c;
	save("joined", "1");
	ui.showChat(chat, {
		send: async (text) => {
			const out = chat.outgoing(text);
			if (out === null)
				return true;
			if (c.sessionId === null) {
				chat.notice("Not connected: the message was " +
				    "not sent.", "error");
				return false;
			}
			return c.sendText(out.content, out.extra);
		},
		leave: () => stop(null, "Leaving"),
		retry: () => c.retryNow(),
	});
	c.start().catch((e) => stop(String(e.message || e)));
}

// End the session (sending disconnect with reason, if given) and show the prompt.
async function stop(error, reason) {
	const c = conn;
	conn = null;
	save("joined", null);
	save("rooms", null);
	if (c !== null)
		await c.stop(reason ?? null);
	prompt(error);
}

ui.onLogin = login;
// Best effort: a closing tab may not get to send it.
addEventListener("pagehide", () => conn?.stop("Page closed"));
// A page brought back from the back-forward cache starts afresh.
addEventListener("pageshow", (ev) => {
	if (ev.persisted)
		location.reload();
});

if (load("joined") === "1" && load("nick") !== null && load("key") !== null)
	start(load("nick"), load("key"));
else
	prompt(null);
