// pyjson.js - JSON spelt exactly as Python's json.dumps() spells it with its
// defaults: ", " and ": " separators and every character outside printable
// ASCII escaped as \uXXXX (ensure_ascii). The wire accepts any spelling,
// since CRC and HMAC cover the bytes as sent, but this one makes our frames
// byte for byte those of the original Python peer (the test vectors).

// Spell a string as a JSON string literal with Python's escapes.
export function pyString(text) {
	let s = "\"";
	// UTF-16 code units: a character past U+FFFF comes out as its two
	// surrogate escapes, as Python writes it.
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		switch (c) {
		case 0x22: s += "\\\""; continue;
		case 0x5c: s += "\\\\"; continue;
		case 0x0a: s += "\\n"; continue;
		case 0x0d: s += "\\r"; continue;
		case 0x09: s += "\\t"; continue;
		case 0x08: s += "\\b"; continue;
		case 0x0c: s += "\\f"; continue;
		}
		if (c >= 0x20 && c <= 0x7e)
			s += text[i];
		else
			s += "\\u" + c.toString(16).padStart(4, "0");
	}
	return s + "\"";
}

/*
 * Spell a finite non-integer number as Python's repr(float): the shortest
 * digits that read back as the same double (which toExponential() without
 * an argument gives too), in positional form unless the decimal point sits
 * more than 16 places right or 4 places left of the first digit.
 */
function pyFloat(x) {
	const [mantissa, expText] = x.toExponential().split("e");
	const negative = mantissa.startsWith("-");
	const digits = mantissa.replace("-", "").replace(".", "");
	const exp = parseInt(expText, 10);
	const point = exp + 1;          // digits before the decimal point
	let s;

	if (point <= -4 || point > 16) {
		s = digits[0];
		if (digits.length > 1)
			s += "." + digits.slice(1);
		s += "e" + (exp < 0 ? "-" : "+") +
		    String(Math.abs(exp)).padStart(2, "0");
	} else if (point <= 0)
		s = "0." + "0".repeat(-point) + digits;
	else if (point >= digits.length)
		s = digits + "0".repeat(point - digits.length) + ".0";
	else
		s = digits.slice(0, point) + "." + digits.slice(point);
	return (negative ? "-" : "") + s;
}

/*
 * Spell a value (null, boolean, number, string, array or plain object) as
 * json.dumps() would. A JavaScript number does not say whether it was an
 * int or a float in Python: integral values are spelt as ints.
 */
export function pyJson(value) {
	if (value === null || value === undefined)
		return "null";
	switch (typeof value) {
	case "boolean":
		return value ? "true" : "false";
	case "number":
		if (!Number.isFinite(value))
			throw new TypeError("NaN and Infinity are not JSON");
		if (Number.isInteger(value))
			return BigInt(value).toString();
		return pyFloat(value);
	case "string":
		return pyString(value);
	case "object":
		if (Array.isArray(value))
			return "[" + value.map(pyJson).join(", ") + "]";
		return "{" + Object.keys(value).map((k) =>
		    pyString(k) + ": " + pyJson(value[k])).join(", ") + "}";
	}
	throw new TypeError("cannot spell a " + typeof value + " as JSON");
}
