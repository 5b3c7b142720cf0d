// protocol.js - the asyncchat wire protocol, version 1 (PROTOCOL.md): a
// 64-byte fixed header, the header JSON, the content; encoding, the
// receiver's checks in their order with their error tokens, and a decoder
// that frames a byte stream arriving in pieces of any size.

import { ByteQueue, concat, fromUtf8, fromUtf8Strict, utf8 } from "./bytes.js";
import { crc32 } from "./crc32.js";
import { sign, verify } from "./hmac.js";
import { pyJson, pyString } from "./pyjson.js";

export const MAGIC = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0e, 0x0b,
    0x1b, 0x0b);
export const VERSION = 1;
export const FIXED_SIZE = 64;
export const MAX_HEADER_LEN = 65536;
export const MAX_CONTENT_LEN = 10485760;
export const TEXT_UTF8 = "text/plain; charset=utf-8";
export const OCTETS = "application/octet-stream";
export const TYPES = ["session_init", "session_ack", "heartbeat", "message",
    "chunk", "error", "disconnect"];

// PROTOCOL.md "Checks a receiver makes, in this order".
export const CHECK_ORDER = ["bad_magic", "bad_version", "header_too_large",
    "content_too_large", "header_crc", "content_crc", "hmac", "bad_header",
    "empty_content"];

// After checks 1-3 fail the stream can no longer be framed.
const FATAL = new Set(CHECK_ORDER.slice(0, 4));

// Members of the header JSON that headerJson() writes itself.
const FIXED_MEMBERS = new Set(["type", "content_type", "session_id"]);

/* A frame that failed one of the receiver's checks. */
export class FrameError extends Error {
	// Name the failed check by its token, with an optional detail.
	constructor(token, detail) {
		super(detail ? token + ": " + detail : token);
		this.token = token;
		this.fatal = FATAL.has(token);
	}
}

/* A decoded frame that passed every check. */
export class Frame {
	// Keep the exact bytes and the parsed header.
	constructor(raw, headerBytes, content, header, msgType) {
		this.raw = raw;
		this.headerBytes = headerBytes;
		this.content = content;
		this.header = header;
		this.msgType = msgType;
	}

	// The frame's type (session_init, message, ...).
	get type() {
		return this.header.type;
	}

	// The session_id member, or null.
	get sessionId() {
		const id = this.header.session_id;
		return typeof id === "string" ? id : null;
	}

	// The content_type member, or null.
	get contentType() {
		const ct = this.header.content_type;
		return typeof ct === "string" ? ct : null;
	}

	// A header member if it is a string, else null.
	str(name) {
		const v = Object.hasOwn(this.header, name) ?
		    this.header[name] : undefined;
		return typeof v === "string" ? v : null;
	}

	// The content as text (invalid UTF-8 shown as U+FFFD).
	text() {
		return fromUtf8(this.content);
	}
}

/*
 * Spell the header JSON as Python's json.dumps() does: type, content_type
 * and session_id first, then the extra members in their order (any extra
 * member named like a fixed one is left out: it would be ambiguous).
 */
export function headerJson(type, contentType, sessionId, extra) {
	if (!TYPES.includes(type))
		throw new TypeError("unknown frame type " + String(type));
	let s = "{\"type\": " + pyString(type) +
	    ", \"content_type\": " + pyJson(contentType ?? null) +
	    ", \"session_id\": " + pyJson(sessionId ?? null);
	if (extra) {
		for (const name of Object.keys(extra)) {
			if (!FIXED_MEMBERS.has(name))
				s += ", " + pyString(name) + ": " + pyJson(extra[name]);
		}
	}
	return s + "}";
}

// Build a frame from the exact header JSON bytes and content bytes.
export async function encodeRaw(key, headerBytes, content) {
	if (headerBytes.length > MAX_HEADER_LEN)
		throw new RangeError("header JSON longer than " + MAX_HEADER_LEN);
	if (content.length > MAX_CONTENT_LEN)
		throw new RangeError("content longer than " + MAX_CONTENT_LEN);
	const mac = await sign(key, concat([headerBytes, content]));
	const fixed = new Uint8Array(FIXED_SIZE);
	const view = new DataView(fixed.buffer);
	fixed.set(MAGIC, 0);
	view.setUint16(8, VERSION);
	view.setUint16(10, 0);          // msg_type: a sender writes 0
	view.setUint32(12, headerBytes.length);
	view.setUint32(16, crc32(headerBytes));
	view.setBigUint64(20, BigInt(content.length));
	view.setUint32(28, crc32(content));
	fixed.set(mac, 32);
	return concat([fixed, headerBytes, content]);
}

/*
 * Build a frame of the given type; content is a string (sent as UTF-8) or a
 * Uint8Array, and must not be empty.
 */
export async function encode(key, type, content,
    { sessionId = null, contentType = OCTETS, extra = null } = {}) {
	const body = typeof content === "string" ? utf8(content) : content;
	if (body.length === 0)
		throw new RangeError("a frame's content may not be empty");
	const header = utf8(headerJson(type, contentType, sessionId, extra));
	return encodeRaw(key, header, body);
}

/*
 * Read the fixed header and make checks 1-3 on it alone; return its fields
 * or a (fatal) FrameError.
 */
function readFixed(fixed, maxHeader, maxContent) {
	const view = new DataView(fixed.buffer, fixed.byteOffset, FIXED_SIZE);
	for (let i = 0; i < MAGIC.length; i++) {
		if (fixed[i] !== MAGIC[i])
			return new FrameError("bad_magic");
	}
	const version = view.getUint16(8);
	if (version !== VERSION)
		return new FrameError("bad_version", "version " + version);
	const headerLen = view.getUint32(12);
	if (headerLen > maxHeader)
		return new FrameError("header_too_large",
		    headerLen + " > " + maxHeader);
	const contentLen = view.getBigUint64(20);
	if (contentLen > BigInt(maxContent))
		return new FrameError("content_too_large",
		    contentLen + " > " + maxContent);
	return {
		msgType: view.getUint16(10),
		headerLen,
		headerCrc: view.getUint32(16),
		contentLen: Number(contentLen),
		contentCrc: view.getUint32(28),
		mac: fixed.slice(32, 64),
	};
}

// Make checks 4-7 on a whole frame; return a Frame or a FrameError.
async function checkFrame(key, raw, f) {
	const headerBytes = raw.subarray(FIXED_SIZE, FIXED_SIZE + f.headerLen);
	const content = raw.subarray(FIXED_SIZE + f.headerLen);
	if (crc32(headerBytes) !== f.headerCrc)
		return new FrameError("header_crc");
	if (crc32(content) !== f.contentCrc)
		return new FrameError("content_crc");
	if (!await verify(key, f.mac, raw.subarray(FIXED_SIZE)))
		return new FrameError("hmac");
	let header;
	try {
		header = JSON.parse(fromUtf8Strict(headerBytes));
	} catch (e) {
		return new FrameError("bad_header", "not JSON");
	}
	if (header === null || typeof header !== "object" ||
	    Array.isArray(header))
		return new FrameError("bad_header", "not an object");
	const type = Object.hasOwn(header, "type") ? header.type : undefined;
	if (typeof type !== "string" || !TYPES.includes(type))
		return new FrameError("bad_header", "no known type");
	if (content.length === 0)
		return new FrameError("empty_content");
	return new Frame(raw, headerBytes, content, header, f.msgType);
}

/*
 * Frames a byte stream whatever its segmentation. feed() takes the pieces;
 * next() gives each complete frame as a Frame, or a FrameError for a frame
 * that failed checks 4-7 (framing goes on), or once a fatal FrameError for
 * checks 1-3, after which the decoder is dead; null when it needs more.
 */
export class Decoder {
	// Start with the shared CryptoKey and the receiver's limits.
	constructor(key, { maxHeader = MAX_HEADER_LEN,
	    maxContent = MAX_CONTENT_LEN } = {}) {
		this.key = key;
		this.maxHeader = maxHeader;
		this.maxContent = maxContent;
		this.queue = new ByteQueue();
		this.dead = null;
	}

	// Append received bytes (ignored once the decoder is dead).
	feed(bytes) {
		if (this.dead === null)
			this.queue.push(bytes);
	}

	// How many bytes wait for the rest of their frame.
	get pending() {
		return this.queue.length;
	}

	/*
	 * Take the next whole frame off the stream without verifying it:
	 * {raw, fixed}, a fatal FrameError, or null. The size checks are made
	 * on the fixed header before the rest is waited for.
	 */
	take() {
		if (this.dead !== null || this.queue.length < FIXED_SIZE)
			return null;
		const f = readFixed(this.queue.peek(FIXED_SIZE), this.maxHeader,
		    this.maxContent);
		if (f instanceof FrameError) {
			this.dead = f;
			this.queue.clear();
			return f;
		}
		const total = FIXED_SIZE + f.headerLen + f.contentLen;
		if (this.queue.length < total)
			return null;
		return { raw: this.queue.take(total), fixed: f };
	}

	// Verify what take() gave: a Frame or a FrameError.
	async check(taken) {
		if (taken instanceof FrameError)
			return taken;
		return checkFrame(this.key, taken.raw, taken.fixed);
	}

	// The next Frame or FrameError, or null when more bytes are needed.
	async next() {
		const taken = this.take();
		return taken === null ? null : this.check(taken);
	}
}

// Decode exactly one frame from bytes: a Frame or a FrameError.
export async function decodeOne(key, bytes) {
	const d = new Decoder(key);
	d.feed(bytes);
	const item = await d.next();
	return item ?? new FrameError("incomplete", bytes.length + " bytes");
}
