/*
 * codec-bench.c - how fast libasyncchat encodes and decodes frames, next to
 * the rate of OpenSSL's one-shot HMAC-SHA256 over the same bytes measured in
 * the same run (the cryptographic floor every verified frame pays).
 *
 * Usage: codec-bench [-l] [-n FRAMES] [-t SECONDS] [SIZE ...]
 *
 * Decoding is done as asyncchatd does it: ac_fixed_header_parse() on the
 * 64 bytes, ac_frame_decode_body() on the rest, then ac_message_clear().
 * Without -n, each content size (default 64, 1024, 4096 and 65536 bytes)
 * is measured for SECONDS (default 0.5) and printed as one table line, and
 * as one JSON line on stderr for scripts. With -n, exactly FRAMES frames of
 * each size are decoded and nothing else is done, in bench_decode_n(), so
 * that `valgrind --tool=callgrind --toggle-collect=bench_decode_n` counts
 * the instructions of FRAMES decodes and no set-up. -l decodes with
 * AC_DECODE_LAZY_HEADER (the header object left unbuilt, as a server that
 * does not need it asks).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <asyncchat/asyncchat.h>

#define SID		"6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90"
#define MAX_SIZES	16

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encode one message frame of len content bytes into out. */
static void
bench_frame(struct evbuffer *out, const struct ac_key *key,
    const uint8_t *content, size_t len)
{
	if (ac_frame_encode(out, key, AC_MSG_MESSAGE,
	    "application/octet-stream", SID, NULL, content, len) != 0) {
		fprintf(stderr, "codec-bench: cannot encode %zu bytes\n", len);
		exit(1);
	}
}

/* Frames encoded per second for this content size. */
static double
bench_encode(const struct ac_key *key, const uint8_t *content, size_t len,
    double seconds)
{
	struct evbuffer	*out = evbuffer_new();
	double		 start = now(), elapsed;
	uint64_t	 n = 0;
	int		 i;

	do {
		for (i = 0; i < 256; i++) {
			bench_frame(out, key, content, len);
			evbuffer_drain(out, evbuffer_get_length(out));
		}
		n += 256;
	} while ((elapsed = now() - start) < seconds);
	evbuffer_free(out);
	return (double)n / elapsed;
}

/* Decode one whole frame as asyncchatd does; abort if it does not pass. */
static void
bench_decode_one(const struct ac_key *key, const uint8_t *frame, int lazy)
{
	struct ac_fixed_header	fh;
	struct ac_message	msg;
	enum ac_frame_status	st;

	st = ac_fixed_header_parse(frame, NULL, &fh);
	if (st == AC_FRAME_OK) {
#ifdef AC_DECODE_LAZY_HEADER
		st = ac_frame_decode_body_flags(key, &fh,
		    frame + AC_FIXED_HEADER_LEN, &msg,
		    lazy ? AC_DECODE_LAZY_HEADER : 0);
#else
		st = ac_frame_decode_body(key, &fh,
		    frame + AC_FIXED_HEADER_LEN, &msg);
#endif
	}
	if (st != AC_FRAME_OK || msg.session_id == NULL) {
		fprintf(stderr, "codec-bench: decode: %s\n",
		    ac_frame_status_name(st));
		abort();
	}
	ac_message_clear(&msg);
}

/* Decode the frame n times and nothing else (what callgrind counts). */
__attribute__((noinline)) static void
bench_decode_n(const struct ac_key *key, const uint8_t *frame, uint64_t n,
    int lazy)
{
	uint64_t	i;

	for (i = 0; i < n; i++)
		bench_decode_one(key, frame, lazy);
}

/* Frames decoded and fully verified per second for this content size. */
static double
bench_decode(const struct ac_key *key, const uint8_t *frame, double seconds,
    int lazy)
{
	double		start = now(), elapsed;
	uint64_t	n = 0;

	do {
		bench_decode_n(key, frame, 256, lazy);
		n += 256;
	} while ((elapsed = now() - start) < seconds);
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
	int		i;

	do {
		for (i = 0; i < 256; i++)
			HMAC(EVP_sha256(), "default-key", 11, data, len, mac,
			    &maclen);
		n += 256;
	} while ((elapsed = now() - start) < seconds);
	return (double)n / elapsed;
}

/* Say how to run the program and exit. */
static void
usage(void)
{
	fprintf(stderr, "usage: codec-bench [-l] [-n frames] [-t seconds] "
	    "[size ...]\n");
	exit(2);
}

/* Measure each size and print a table and JSON lines. */
int
main(int argc, char **argv)
{
	size_t			 sizes[MAX_SIZES] = { 64, 1024, 4096, 65536 };
	size_t			 nsizes = 4, i, flen, maxlen = 0;
	double			 seconds = 0.5, enc, dec, mac;
	unsigned long long	 count = 0;
	struct ac_key		*key = ac_key_new("default-key", 11);
	struct evbuffer		*out;
	uint8_t			*content;
	const uint8_t		*frame;
	int			 ch, lazy = 0;
	char			*end;

	while ((ch = getopt(argc, argv, "ln:t:")) != -1) {
		switch (ch) {
		case 'l':
#ifndef AC_DECODE_LAZY_HEADER
			fprintf(stderr, "codec-bench: this libasyncchat "
			    "has no lazy header\n");
			return 2;
#endif
			lazy = 1;
			break;
		case 'n':
			count = strtoull(optarg, &end, 10);
			if (*end != '\0' || count == 0)
				usage();
			break;
		case 't':
			seconds = strtod(optarg, &end);
			if (*end != '\0' || !(seconds > 0))
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc > optind) {
		if (argc - optind > MAX_SIZES)
			usage();
		for (nsizes = 0; optind < argc; optind++) {
			sizes[nsizes] = strtoul(argv[optind], &end, 10);
			if (*end != '\0' || sizes[nsizes] == 0 ||
			    sizes[nsizes] > AC_DEFAULT_MAX_CONTENT)
				usage();
			nsizes++;
		}
	}
	for (i = 0; i < nsizes; i++)
		maxlen = sizes[i] > maxlen ? sizes[i] : maxlen;
	if ((content = malloc(maxlen)) == NULL)
		abort();
	for (i = 0; i < maxlen; i++)
		content[i] = (uint8_t)(i * 31 + 7);

	if (count == 0)
		printf("%-8s %14s %16s %16s %12s %12s\n", "content", "encode/s",
		    "decode+verify/s", "openssl hmac/s", "enc/hmac",
		    "dec/hmac");
	for (i = 0; i < nsizes; i++) {
		out = evbuffer_new();
		bench_frame(out, key, content, sizes[i]);
		flen = evbuffer_get_length(out);
		frame = evbuffer_pullup(out, -1);
		if (count > 0) {
			bench_decode_n(key, frame, count, lazy);
			printf("%zu: %llu frames of %zu bytes decoded\n",
			    sizes[i], count, flen);
			evbuffer_free(out);
			continue;
		}
		enc = bench_encode(key, content, sizes[i], seconds);
		dec = bench_decode(key, frame, seconds, lazy);
		/* The MAC covers header JSON + content: ~110 bytes more. */
		mac = bench_openssl_hmac(frame + AC_FIXED_HEADER_LEN,
		    flen - AC_FIXED_HEADER_LEN, seconds);
		printf("%-8zu %14.0f %16.0f %16.0f %12.2f %12.2f\n", sizes[i],
		    enc, dec, mac, enc / mac, dec / mac);
		fprintf(stderr, "{\"content\": %zu, \"frame\": %zu, "
		    "\"lazy\": %s, \"encode_per_s\": %.0f, "
		    "\"decode_verify_per_s\": %.0f, "
		    "\"openssl_hmac_per_s\": %.0f, \"encode_MBps\": %.1f, "
		    "\"decode_MBps\": %.1f}\n", sizes[i], flen,
		    lazy ? "true" : "false", enc, dec, mac,
		    enc * (double)flen / 1e6, dec * (double)flen / 1e6);
		evbuffer_free(out);
	}
	free(content);
	ac_key_free(key);
	return 0;
}
