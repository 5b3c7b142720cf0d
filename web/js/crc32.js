// crc32.js - CRC-32 as zlib computes it (reflected polynomial 0xEDB88320),
// by a 256-entry table built once when the module loads.

const TABLE = makeTable();

// Build the table of the CRC of every byte value.
function makeTable() {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++)
			c = (c & 1) ? (0xedb88320 ^ (c >>> 1)) : (c >>> 1);
		table[n] = c >>> 0;
	}
	return table;
}

// Return the CRC-32 of the bytes (a Uint8Array) as an unsigned number.
export function crc32(bytes) {
	let c = 0xffffffff;
	for (let i = 0; i < bytes.length; i++)
		c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}
