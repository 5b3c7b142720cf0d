// bytes.js - byte helpers: UTF-8, hex, concatenation, and a queue that
// gathers a byte stream arriving in pieces of any size.

const encoder = new TextEncoder();
const lenientDecoder = new TextDecoder("utf-8");
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

// Encode a string as UTF-8 bytes.
export function utf8(text) {
	return encoder.encode(text);
}

// Decode UTF-8 bytes, replacing invalid sequences with U+FFFD.
export function fromUtf8(bytes) {
	return lenientDecoder.decode(bytes);
}

// Decode UTF-8 bytes, throwing a TypeError on invalid sequences.
export function fromUtf8Strict(bytes) {
	return strictDecoder.decode(bytes);
}

// Parse a string of hex digit pairs into bytes.
export function fromHex(hex) {
	if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex))
		throw new Error("not a hex string");
	const out = new Uint8Array(hex.length / 2);
	for (let i = 0; i < out.length; i++)
		out[i] = parseInt(hex.substr(i * 2, 2), 16);
	return out;
}

// Spell bytes as lower-case hex digit pairs.
export function toHex(bytes) {
	let s = "";
	for (let i = 0; i < bytes.length; i++)
		s += bytes[i].toString(16).padStart(2, "0");
	return s;
}

// Join byte arrays into one new Uint8Array.
export function concat(parts) {
	let n = 0;
	for (const p of parts)
		n += p.length;
	const out = new Uint8Array(n);
	let at = 0;
	for (const p of parts) {
		out.set(p, at);
		at += p.length;
	}
	return out;
}

/*
 * A FIFO of bytes kept as the pieces it was given, so that appending a
 * WebSocket message costs nothing and a frame is copied once, when it is
 * taken whole.
 */
export class ByteQueue {
	// Start empty.
	constructor() {
		this.pieces = [];
		this.head = 0;          // bytes of pieces[0] already taken
		this.length = 0;
	}

	// Append a piece (a Uint8Array; it must not be changed afterwards).
	push(bytes) {
		if (bytes.length === 0)
			return;
		this.pieces.push(bytes);
		this.length += bytes.length;
	}

	// Copy the first n bytes without removing them.
	peek(n) {
		if (n > this.length)
			throw new RangeError("peek past the end of the queue");
		const out = new Uint8Array(n);
		let at = 0, i = 0, off = this.head;
		while (at < n) {
			const p = this.pieces[i];
			const take = Math.min(p.length - off, n - at);
			out.set(p.subarray(off, off + take), at);
			at += take;
			i++;
			off = 0;
		}
		return out;
	}

	// Remove the first n bytes and return them.
	take(n) {
		const out = this.peek(n);
		this.skip(n);
		return out;
	}

	// Remove the first n bytes.
	skip(n) {
		if (n > this.length)
			throw new RangeError("skip past the end of the queue");
		this.length -= n;
		while (n > 0) {
			const left = this.pieces[0].length - this.head;
			if (n < left) {
				this.head += n;
				return;
			}
			n -= left;
			this.pieces.shift();
			this.head = 0;
		}
	}

	// Drop everything.
	clear() {
		this.pieces = [];
		this.head = 0;
		this.length = 0;
	}
}
