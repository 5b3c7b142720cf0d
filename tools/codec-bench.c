/*
 * codec-bench.c - how fast libasyncchat encodes and decodes frames, next to
 * the rate of OpenSSL's one-shot HMAC-SHA256 over the same bytes measured in
 * the same run (the cryptographic floor every verified frame pays).
 *
 * Usage: codec-bench [SECONDS_PER_POINT]   (default 0.5)
 * Prints one line per content size and a JSON line per size for scripts.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <asyncchat/asyncchat.h>

#define SID "6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90"

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Frames encoded per second for this content size. */
static double
bench_encode(const struct ac_key *key, const uint8_t *content, size_t len,
    double seconds)
{
	struct evbuffer	*out = evbuffer_new();
	double		 start = now(), elapsed;
	uint64_t	 n = 0;

	do {
		for (int i = 0; i < 256; i++) {
			if (ac_frame_encode(out, key, AC_MSG_MESSAGE,
			    "application/octet-stream", SID, NULL, content,
			    len) != 0)
				abort();
			evbuffer_drain(out, evbuffer_get_length(out));
		}
		n += 256;
	} while ((elapsed = now() - start) < seconds);
	evbuffer_free(out);
	return (double)n / elapsed;
}

/* Frames decoded and fully verified per second for this content size. */
static double
bench_decode(const struct ac_key *key, const uint8_t *content, size_t len,
    double seconds, size_t *frame_len)
{
	struct evbuffer		*out = evbuffer_new();
	struct ac_message	 msg;
	const uint8_t		*frame;
	size_t			 flen, consumed;
	double			 start, elapsed;
	uint64_t		 n = 0;

	ac_frame_encode(out, key, AC_MSG_MESSAGE, "application/octet-stream",
	    SID, NULL, content, len);
	flen = evbuffer_get_length(out);
	frame = evbuffer_pullup(out, -1);
	start = now();
	do {
		for (int i = 0; i < 256; i++) {
			if (ac_frame_decode(key, NULL, frame, flen, &consumed,
			    &msg) != AC_FRAME_OK)
				abort();
			ac_message_clear(&msg);
		}
		n += 256;
	} while ((elapsed = now() - start) < seconds);
	evbuffer_free(out);
	*frame_len = flen;
	return (double)n / elapsed;
}

/* OpenSSL one-shot HMAC-SHA256 computations per second over len bytes. */
static double
bench_openssl_hmac(const uint8_t *data, size_t len, double seconds)
{
	uint8_t		mac[EVP_MAX_MD_SIZE];
	unsigned int	maclen;
	double		start = now(), elapsed;
	uint64_t	n = 0;

	do {
		for (int i = 0; i < 256; i++)
			HMAC(EVP_sha256(), "default-key", 11, data, len, mac,
			    &maclen);
		n += 256;
	} while ((elapsed = now() - start) < seconds);
	return (double)n / elapsed;
}

/* Measure each size and print a table and JSON lines. */
int
main(int argc, char **argv)
{
	static const size_t	 sizes[] = { 64, 1024, 65536 };
	double			 seconds = argc > 1 ? atof(argv[1]) : 0.5;
	struct ac_key		*key = ac_key_new("default-key", 11);
	uint8_t			*content = malloc(65536 + 256);
	size_t			 i, flen;

	if (seconds <= 0 || content == NULL) {
		fprintf(stderr, "usage: codec-bench [seconds-per-point]\n");
		return 2;
	}
	for (i = 0; i < 65536 + 256; i++)
		content[i] = (uint8_t)(i * 31 + 7);

	printf("%-8s %14s %14s %16s %12s %12s\n", "content", "encode/s",
	    "decode+verify/s", "openssl hmac/s", "enc/hmac", "dec/hmac");
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t	len = sizes[i];
		double	enc = bench_encode(key, content, len, seconds);
		double	dec = bench_decode(key, content, len, seconds, &flen);
		/* The MAC covers header JSON + content: ~130 bytes more. */
		double	mac = bench_openssl_hmac(content, flen - 64, seconds);

		printf("%-8zu %14.0f %14.0f %16.0f %12.2f %12.2f\n", len, enc,
		    dec, mac, enc / mac, dec / mac);
		fprintf(stderr, "{\"content\": %zu, \"frame\": %zu, "
		    "\"encode_per_s\": %.0f, \"decode_verify_per_s\": %.0f, "
		    "\"openssl_hmac_per_s\": %.0f, \"encode_MBps\": %.1f, "
		    "\"decode_MBps\": %.1f}\n", len, flen, enc, dec, mac,
		    enc * (double)flen / 1e6, dec * (double)flen / 1e6);
	}
	free(content);
	ac_key_free(key);
	return 0;
}
