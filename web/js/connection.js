// connection.js - one chat session over a WebSocket to /ws (PROTOCOL.md
// "Session life"): answer a verified session_init, ping every 5 s, send
// disconnect on leaving, and reconnect by itself with backoff when the
// connection is lost.

import { importKey } from "./hmac.js";
import { Decoder, FrameError, OCTETS, TEXT_UTF8, encode } from "./protocol.js";
import { pyString } from "./pyjson.js";

const PING_INTERVAL = 5000;              // as the Python client
const HANDSHAKE_TIMEOUT = 15000;         // open, but no session_init yet
const SILENCE_TIMEOUT = 20000;           // online, but no verified frame
const BACKOFF_FIRST = 500;
const BACKOFF_MAX = 30000;

// The URL of /ws on the page's own origin, ws: or wss: as the page.
export function socketUrl(loc) {
	const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
	return scheme + "//" + loc.host + "/ws";
}

// A disconnect frame's content, spelt as the Python peer spells it.
export function disconnectContent(reason) {
	return "{\"message\": \"Disconnecting\", \"reason\": " +
	    pyString(reason) + "}";
}

/*
 * A session that survives the loss of its connection. The owner gives:
 *   hello()            the extra members of each session_ack (nick, rooms)
 *   onOnline(id)       a handshake completed with this session id
 *   onFrame(frame)     a verified message, chunk or error frame
 *   onStatus(s, text)  connecting | online | waiting | stopped, with words
 *   onNotice(text)     something the user should read
 *   onFatal(text)      the session cannot work (wrong key): it has stopped
 */
export class Connection {
	// Keep the URL, the key text and the owner's callbacks.
	constructor(url, keyText, callbacks) {
		this.url = url;
		this.keyText = keyText;
		this.cb = callbacks;
		this.key = null;
		this.link = null;       // the current WebSocket and its state
		this.stopped = true;
		this.backoff = BACKOFF_FIRST;
		this.retryTimer = null;
	}

	// Import the key and open the first connection.
	async start() {
		this.key = await importKey(this.keyText);
		this.stopped = false;
		this.open();
	}

	// The session id of the live session, or null.
	get sessionId() {
		return this.link !== null && this.link.online ?
		    this.link.sessionId : null;
	}

	// Open a WebSocket and wait for the server's session_init.
	open() {
		this.retryTimer = null;
		const ws = new WebSocket(this.url);
		ws.binaryType = "arraybuffer";
		const link = {
			ws,
			decoder: new Decoder(this.key),
			sessionId: null,
			online: false,
			rx: Promise.resolve(),
			tx: Promise.resolve(),
			lastHeard: Date.now(),
			timer: null,
			ping: null,
			why: null,
		};
		this.link = link;
		this.cb.onStatus("connecting", "connecting…");
		ws.onopen = () => {
			link.timer = setTimeout(() => this.drop(link,
			    "no session_init from the server"),
			    HANDSHAKE_TIMEOUT);
		};
		ws.onmessage = (ev) => this.received(link, ev.data);
		ws.onclose = (ev) => this.closed(link, ev);
	}

	// Queue a WebSocket message's bytes for the decoder.
	received(link, data) {
		if (this.link !== link)
			return;
		if (typeof data === "string") {
			this.drop(link, "the server sent a text message");
			return;
		}
		link.decoder.feed(new Uint8Array(data));
		link.rx = link.rx.then(() => this.drain(link));
	}

	// Verify and handle every whole frame buffered, in order.
	async drain(link) {
		while (this.link === link) {
			const taken = link.decoder.take();
			if (taken === null)
				return;
			const item = await link.decoder.check(taken);
			if (this.link !== link)
				return;
			if (item instanceof FrameError)
				this.refused(link, item);
			else
				this.handle(link, item);
		}
	}

	// React to a frame that failed the receiver's checks.
	refused(link, err) {
		if (err.fatal) {
			this.drop(link, "the stream from the server cannot be " +
			    "framed (" + err.token + ")");
		} else if (err.token === "hmac" && link.sessionId === null) {
			// The first frame is the session_init: if it does not
			// verify, the two sides hold different keys.
			this.stop(null);
			this.cb.onFatal("The server's frames do not verify with " +
			    "this key (hmac): check the key.");
		} else {
			this.cb.onNotice("Dropped a frame from the server (" +
			    err.token + ").");
		}
	}

	// Handle a verified frame from the server.
	handle(link, frame) {
		link.lastHeard = Date.now();
		switch (frame.type) {
		case "session_init":
			if (link.sessionId === null)
				this.handshake(link, frame);
			return;
		case "heartbeat":
			return;         // the pong: life is all it tells
		case "disconnect":
			link.why = "the server disconnected: " +
			    disconnectReason(frame);
			this.cb.onNotice("The server closed the session: " +
			    disconnectReason(frame) + ".");
			return;
		case "message":
		case "chunk":
		case "error":
			if (link.online)
				this.cb.onFrame(frame);
			return;
		}
		// session_ack: only clients send it.
	}

	// Answer a verified session_init and start the heartbeat.
	handshake(link, frame) {
		const id = frame.sessionId;
		if (id === null || id.length === 0) {
			this.drop(link, "session_init without a session id");
			return;
		}
		clearTimeout(link.timer);
		link.sessionId = id;
		this.sendOn(link, "session_ack", "Session acknowledged",
		    OCTETS, this.cb.hello());
		link.online = true;
		this.backoff = BACKOFF_FIRST;
		link.ping = setInterval(() => this.tick(link), PING_INTERVAL);
		this.cb.onStatus("online", "connected");
		this.cb.onOnline(id);
	}

	// Send the heartbeat, and give up on a server that stopped answering.
	tick(link) {
		if (Date.now() - link.lastHeard > SILENCE_TIMEOUT) {
			this.drop(link, "the server stopped answering");
			return;
		}
		this.sendOn(link, "heartbeat", "ping", OCTETS, null);
	}

	/*
	 * Encode and send a frame on this link, after the frames queued
	 * before it (signing is asynchronous); resolves to true if it was
	 * handed to the WebSocket.
	 */
	sendOn(link, type, content, contentType, extra) {
		const step = link.tx.then(async () => {
			const bytes = await encode(this.key, type, content, {
				sessionId: link.sessionId, contentType, extra,
			});
			if (this.link !== link ||
			    link.ws.readyState !== WebSocket.OPEN)
				return false;
			link.ws.send(bytes);
			return true;
		});
		link.tx = step.catch(() => false);
		return link.tx;
	}

	// Send a text message with extra header members; false if offline.
	sendText(text, extra) {
		const link = this.link;
		if (link === null || !link.online)
			return Promise.resolve(false);
		return this.sendOn(link, "message", text, TEXT_UTF8, extra);
	}

	// Close this link; the close event schedules the reconnection.
	drop(link, why) {
		if (this.link !== link)
			return;
		link.why = why;
		link.ws.close();
		this.closed(link, null);
	}

	// Forget a closed link and, unless stopped, try again after a while.
	closed(link, ev) {
		if (this.link !== link)
			return;
		clearTimeout(link.timer);
		clearInterval(link.ping);
		this.link = null;
		if (this.stopped) {
			this.cb.onStatus("stopped", "disconnected");
			return;
		}
		let why = link.why;
		if (why === null)
			why = ev !== null && ev.code !== 1005 && ev.code !== 1006 ?
			    "connection closed (" + ev.code + ")" :
			    "connection lost";
		const delay = Math.round(this.backoff * (0.8 + 0.4 * Math.random()));
		this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX);
		this.retryTimer = setTimeout(() => this.open(), delay);
		this.cb.onStatus("waiting", why + "; reconnecting in " +
		    Math.max(1, Math.round(delay / 1000)) + " s");
	}

	// Reconnect now instead of waiting for the backoff.
	retryNow() {
		if (this.retryTimer === null)
			return;
		clearTimeout(this.retryTimer);
		this.open();
	}

	/*
	 * End the session: send disconnect with the reason (when one is given
	 * and the session is live), close, and stop reconnecting.
	 */
	async stop(reason) {
		this.stopped = true;
		clearTimeout(this.retryTimer);
		this.retryTimer = null;
		const link = this.link;
		if (link === null) {
			this.cb.onStatus("stopped", "disconnected");
			return;
		}
		if (reason !== null && link.online)
			await this.sendOn(link, "disconnect",
			    disconnectContent(reason), "application/json", null);
		link.why = "left";
		link.ws.close(1000);
		this.closed(link, null);
	}
}

// The reason given in a disconnect frame's JSON content, or its raw text.
function disconnectReason(frame) {
	try {
		const c = JSON.parse(frame.text());
		if (c !== null && typeof c.reason === "string")
			return c.reason;
	} catch (e) {
		// not JSON: show it as it is
	}
	return frame.text();
}
