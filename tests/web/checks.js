// checks.js - the web client's codec checked inside the browser, for
// tests/web/test_web.py: each function returns plain data (the verdicts)
// that the Python side prints as TAP.

import { ByteQueue, concat, fromHex, toHex, utf8 } from "/js/bytes.js";
import { crc32 } from "/js/crc32.js";
import { importKey } from "/js/hmac.js";
import { Decoder, Frame, FrameError, decodeOne, encode, encodeRaw,
    headerJson } from "/js/protocol.js";
import { pyJson } from "/js/pyjson.js";

// The test vectors, from the test server.
async function vectors() {
	const r = await fetch("/__data__/frames.json");
	return r.json();
}

// Compare two byte arrays.
function same(a, b) {
	return a.length === b.length && a.every((x, i) => x === b[i]);
}

/*
 * Every valid vector: encode(header_json, content) == frame_hex, decode
 * gives header_json and content back, and another key gives hmac.
 */
export async function checkValid() {
	const out = [];
	for (const v of (await vectors()).valid) {
		const key = await importKey(v.key);
		const raw = fromHex(v.frame_hex);
		const content = fromHex(v.content_hex);
		const got = await encodeRaw(key, utf8(v.header_json), content);
		const enc = toHex(got) === v.frame_hex;
		const f = await decodeOne(key, raw);
		const dec = f instanceof Frame &&
		    same(f.headerBytes, utf8(v.header_json)) &&
		    same(f.content, content) && same(f.raw, raw) &&
		    f.type === JSON.parse(v.header_json).type;
		const other = await decodeOne(await importKey(v.key + "x"), raw);
		// Built from members, as the client builds its frames, when
		// the vector is spelt as json.dumps() spells it.
		const h = JSON.parse(v.header_json);
		const extra = Object.fromEntries(Object.entries(h).filter(
		    ([k]) => !["type", "content_type", "session_id"].includes(k)));
		let members = null;
		if (headerJson(h.type, h.content_type, h.session_id, extra) ===
		    v.header_json) {
			const b = await encode(key, h.type, content, {
				sessionId: h.session_id,
				contentType: h.content_type, extra,
			});
			members = toHex(b) === v.frame_hex;
		}
		out.push({
			name: v.name, encode: enc, decode: dec,
			decodeDetail: f instanceof FrameError ? f.message :
			    (f instanceof Frame ? "" : String(f)),
			otherKey: other instanceof FrameError ? other.token :
			    "decoded",
			members,
			got: enc ? "" : toHex(got).slice(0, 200),
		});
	}
	return out;
}

/*
 * Every invalid vector gives its token; fed one byte at a time the fatal
 * ones fail on the 64th byte, before the rest of the frame is waited for.
 */
export async function checkInvalid() {
	const out = [];
	for (const v of (await vectors()).invalid) {
		const key = await importKey(v.key);
		const raw = fromHex(v.frame_hex);
		const d = new Decoder(key);
		d.feed(raw);
		const item = await d.next();
		const r = {
			name: v.name, want: v.error,
			got: item instanceof FrameError ? item.token : String(item),
			fatal: item instanceof FrameError ? item.fatal : null,
			at: null,
		};
		if (r.fatal) {
			const b = new Decoder(key);
			for (let i = 0; i < raw.length; i++) {
				b.feed(raw.subarray(i, i + 1));
				if (await b.next() !== null) {
					r.at = i + 1;
					break;
				}
			}
		}
		out.push(r);
	}
	return out;
}

// A small deterministic generator (xorshift32), so that a failing split is
// the same on every run.
function rng(seed) {
	let x = seed >>> 0 || 1;
	return () => {
		x ^= x << 13; x >>>= 0;
		x ^= x >>> 17;
		x ^= x << 5; x >>>= 0;
		return x / 4294967296;
	};
}

// Feed the pieces to a decoder; return everything it gives, in order.
async function run(key, pieces) {
	const d = new Decoder(key);
	const got = [];
	for (const p of pieces) {
		d.feed(p);
		for (let item; (item = await d.next()) !== null;)
			got.push(item);
	}
	return { got, pending: d.pending };
}

// Describe decoder output: frames as hex, errors as !token.
function describe(items) {
	return items.map((x) => x instanceof FrameError ? "!" + x.token :
	    toHex(x.raw));
}

/*
 * The stream of all default-key valid vectors, cut into pieces in many
 * ways, must decode to the same frames in the same order.
 */
export async function checkFraming() {
	const all = (await vectors()).valid.filter((v) =>
	    v.key === "default-key");
	const key = await importKey("default-key");
	const frames = all.map((v) => fromHex(v.frame_hex));
	const want = frames.map(toHex);
	const stream = concat(frames);
	const out = [];
	const verdict = (name, got) => {
		const g = describe(got);
		const ok = g.length === want.length &&
		    g.every((x, i) => x === want[i]);
		out.push({ name, ok, detail: ok ? "" :
		    "got " + g.length + " items: " + g.map((x) =>
		    x.slice(0, 40)).join(" ") });
	};

	verdict("all frames in one piece", (await run(key, [stream])).got);

	const small = frames.filter((f) => f.length < 2000);
	const smallStream = concat(small);
	const bytes = [];
	for (let i = 0; i < smallStream.length; i++)
		bytes.push(smallStream.subarray(i, i + 1));
	const g1 = describe((await run(key, bytes)).got);
	const w1 = small.map(toHex);
	out.push({ name: "one byte at a time (" + small.length + " frames)",
	    ok: g1.length === w1.length && g1.every((x, i) => x === w1[i]),
	    detail: g1.length + " items" });

	const next = rng(20261206);
	for (let trial = 0; trial < 8; trial++) {
		const cuts = new Set();
		while (cuts.size < 60)
			cuts.add(1 + Math.floor(next() * (stream.length - 1)));
		const sorted = [...cuts].sort((a, b) => a - b);
		const pieces = [];
		let at = 0;
		for (const c of sorted) {
			pieces.push(stream.subarray(at, c));
			at = c;
		}
		pieces.push(stream.subarray(at));
		verdict("random split " + trial + " (61 pieces)",
		    (await run(key, pieces)).got);
	}

	// Cuts exactly at and around every frame and fixed-header boundary.
	const edges = [];
	let off = 0;
	for (const f of frames) {
		for (const d of [-1, 0, 1, 63, 64, 65])
			edges.push(off + d);
		off += f.length;
	}
	const cuts = [...new Set(edges)].filter((c) => c > 0 &&
	    c < stream.length).sort((a, b) => a - b);
	const pieces = [];
	let at = 0;
	for (const c of cuts) {
		pieces.push(stream.subarray(at, c));
		at = c;
	}
	pieces.push(stream.subarray(at));
	verdict("cuts at every frame and fixed-header edge", (await run(key,
	    pieces)).got);

	const r63 = await run(key, [frames[0].subarray(0, 63)]);
	out.push({ name: "63 bytes: nothing yet, 63 pending",
	    ok: r63.got.length === 0 && r63.pending === 63,
	    detail: r63.got.length + " items, " + r63.pending + " pending" });

	// A frame failing check 4 between two good ones: framing goes on.
	const bad = frames[2].slice();
	bad[64] ^= 0x20;
	const r = describe((await run(key, [concat([frames[0], bad,
	    frames[1]])])).got);
	out.push({ name: "a corrupt frame between two: frame, !header_crc, " +
	    "frame", ok: r.length === 3 && r[0] === want[0] &&
	    r[1] === "!header_crc" && r[2] === want[1], detail: r.join(" ")
	    .slice(0, 300) });

	// A bad magic is fatal: nothing after it is framed.
	const junk = frames[0].slice();
	junk[0] = 0;
	const rf = await run(key, [concat([frames[0], junk, frames[1]])]);
	const df = describe(rf.got);
	out.push({ name: "bad magic: frame, !bad_magic, then nothing",
	    ok: df.length === 2 && df[0] === want[0] &&
	    df[1] === "!bad_magic" && rf.pending === 0,
	    detail: df.join(" ").slice(0, 300) });
	return out;
}

// pyJson() of each sample value, to compare with Python's json.dumps().
export function spell(samples) {
	return samples.map((v) => {
		try {
			return pyJson(v);
		} catch (e) {
			return "threw " + e.message;
		}
	});
}

// CRC-32 check values and the ByteQueue, in a few words each.
export function checkSmallParts() {
	const q = new ByteQueue();
	q.push(Uint8Array.of(1, 2, 3));
	q.push(Uint8Array.of());
	q.push(Uint8Array.of(4, 5));
	const a = q.take(2);
	const b = q.peek(3);
	q.skip(1);
	const c = q.take(2);
	return [
		{ name: "crc32('123456789') = cbf43926",
		    ok: crc32(utf8("123456789")) === 0xcbf43926 },
		{ name: "crc32('') = 0", ok: crc32(new Uint8Array(0)) === 0 },
		{ name: "ByteQueue takes and peeks across pieces",
		    ok: same(a, [1, 2]) && same(b, [3, 4, 5]) &&
		    same(c, [4, 5]) && q.length === 0 },
	];
}
