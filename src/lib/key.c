/*
 * key.c - the shared HMAC-SHA256 key, with its pad states computed once.
 *
 * HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)). The two pad blocks depend
 * only on the key, so the SHA-256 state after absorbing each is kept here;
 * a frame's MAC then starts from copies of those states. OpenSSL 3's EVP
 * interfaces would allocate a context per copy, which a server that checks
 * every frame cannot afford, so the (still supported, deprecated) SHA256_*
 * functions are used: their state is a plain struct that copies for free and
 * they run the same SHA-NI/AVX code as EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <asyncchat/frame.h>
#include <asyncchat/key.h>

#define SHA256_BLOCK	64

struct ac_key {
	SHA256_CTX	inner;		/* state after (K ^ ipad) */
	SHA256_CTX	outer;		/* state after (K ^ opad) */
	int		is_default;	/* the public "default-key" */
};

/* Make a key from len bytes (any length, may be 0). Never returns NULL. */
struct ac_key *
ac_key_new(const void *secret, size_t len)
{
	struct ac_key	*key;
	uint8_t		 block[SHA256_BLOCK], pad[SHA256_BLOCK];
	size_t		 i;

	if ((key = calloc(1, sizeof *key)) == NULL)
		abort();

	/* A key longer than a block is replaced by its digest (RFC 2104). */
	memset(block, 0, sizeof block);
	if (len > SHA256_BLOCK)
		SHA256(secret, len, block);
	else if (len > 0)
		memcpy(block, secret, len);

	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = block[i] ^ 0x36;
	SHA256_Init(&key->inner);
	SHA256_Update(&key->inner, pad, sizeof pad);

	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = block[i] ^ 0x5c;
	SHA256_Init(&key->outer);
	SHA256_Update(&key->outer, pad, sizeof pad);

	key->is_default = (len == strlen(AC_DEFAULT_KEY) &&
	    memcmp(secret, AC_DEFAULT_KEY, len) == 0);

	OPENSSL_cleanse(block, sizeof block);
	OPENSSL_cleanse(pad, sizeof pad);
	return key;
}

/* Destroy a key and wipe its state; NULL is allowed. */
void
ac_key_free(struct ac_key *key)
{
	if (key == NULL)
		return;
	OPENSSL_cleanse(key, sizeof *key);
	free(key);
}

/* Non-zero when the key's bytes are the well-known AC_DEFAULT_KEY. */
int
ac_key_is_default(const struct ac_key *key)
{
	return key->is_default;
}

/* HMAC-SHA256 over a followed by b into mac (32 bytes). */
void
ac_key_mac(const struct ac_key *key, const void *a, size_t alen,
    const void *b, size_t blen, uint8_t *mac)
{
	SHA256_CTX	ctx;
	uint8_t		inner[SHA256_DIGEST_LENGTH];

	ctx = key->inner;
	if (alen > 0)
		SHA256_Update(&ctx, a, alen);
	if (blen > 0)
		SHA256_Update(&ctx, b, blen);
	SHA256_Final(inner, &ctx);

	ctx = key->outer;
	SHA256_Update(&ctx, inner, sizeof inner);
	SHA256_Final(mac, &ctx);
	OPENSSL_cleanse(&ctx, sizeof ctx);
}

/*
 * 1 when the two MACs are equal, in time that does not depend on where
 * they differ. CRYPTO_memcmp() does the same a byte at a time, which was
 * a twentieth of a small frame's decoding; this goes a word at a time and
 * branches only on the OR of every difference. The accumulator is volatile
 * so that no compiler may stop at the first word that differs.
 */
static int
key_mac_equal(const uint8_t *x, const uint8_t *y)
{
	volatile uint64_t	diff = 0;
	uint64_t		u, v;
	size_t			i;

	for (i = 0; i < AC_HMAC_LEN; i += sizeof u) {
		memcpy(&u, x + i, sizeof u);
		memcpy(&v, y + i, sizeof v);
		diff |= u ^ v;
	}
	return diff == 0;
}

/* 1 when mac matches HMAC(a || b); the comparison takes constant time. */
int
ac_key_verify(const struct ac_key *key, const void *a, size_t alen,
    const void *b, size_t blen, const uint8_t *mac)
{
	uint8_t	expect[AC_HMAC_LEN];

	ac_key_mac(key, a, alen, b, blen, expect);
	return key_mac_equal(expect, mac);
}
