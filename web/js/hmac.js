// hmac.js - the shared key and HMAC-SHA256 by WebCrypto. crypto.subtle
// exists only in secure contexts: https, wss pages, and http on 127.0.0.1
// or localhost.

import { utf8 } from "./bytes.js";

// True if this page may use WebCrypto (a secure context).
export function hmacAvailable() {
	return typeof crypto !== "undefined" && crypto.subtle !== undefined;
}

// Turn the key text (UTF-8, not empty) into a CryptoKey for HMAC-SHA256.
export async function importKey(text) {
	if (!hmacAvailable())
		throw new Error("WebCrypto is not available: open the page over " +
		    "https, or over http on 127.0.0.1 or localhost");
	const raw = utf8(text);
	if (raw.length === 0)
		throw new Error("the key is empty");
	return crypto.subtle.importKey("raw", raw,
	    { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

// Return the 32-byte HMAC-SHA256 of the bytes.
export async function sign(key, bytes) {
	return new Uint8Array(await crypto.subtle.sign("HMAC", key, bytes));
}

// True if mac is the HMAC of the bytes (WebCrypto compares in constant time).
export async function verify(key, mac, bytes) {
	return crypto.subtle.verify("HMAC", key, mac, bytes);
}
