/*
 * test_key.c - the HMAC key object against OpenSSL's own HMAC, and the
 * UUIDs that name sessions.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <asyncchat/asyncchat.h>

/* Precomputed-state MACs equal OpenSSL HMAC() for keys of every size class. */
static void
test_mac_matches_openssl(void **state)
{
	static const size_t	 key_lens[] = { 0, 1, 11, 63, 64, 65, 200 };
	static const size_t	 split[] = { 0, 1, 57, 300 };
	uint8_t			 secret[200], data[300], mine[32], theirs[32];
	unsigned int		 theirs_len;
	size_t			 i, j;
	struct ac_key		*key;

	(void)state;
	for (i = 0; i < sizeof secret; i++)
		secret[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 13 + 1);

	for (i = 0; i < sizeof key_lens / sizeof key_lens[0]; i++) {
		key = ac_key_new(secret, key_lens[i]);
		for (j = 0; j < sizeof split / sizeof split[0]; j++) {
			/* The MAC covers a || b, wherever the split is. */
			ac_key_mac(key, data, split[j], data + split[j],
			    sizeof data - split[j], mine);
			HMAC(EVP_sha256(), secret, (int)key_lens[i], data,
			    sizeof data, theirs, &theirs_len);
			assert_int_equal(theirs_len, 32);
			assert_memory_equal(mine, theirs, 32);
			assert_true(ac_key_verify(key, data, split[j],
			    data + split[j], sizeof data - split[j], theirs));
		}
		ac_key_free(key);
	}
}

/* Verification fails on any flipped bit of the MAC or the data. */
static void
test_verify_rejects_changes(void **state)
{
	struct ac_key	*key = ac_key_new("secret", 6);
	uint8_t		 mac[32], data[16] = "sixteen bytes..";
	size_t		 bit;

	(void)state;
	ac_key_mac(key, data, 8, data + 8, 8, mac);
	assert_true(ac_key_verify(key, data, 8, data + 8, 8, mac));
	for (bit = 0; bit < 256; bit++) {
		mac[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		assert_false(ac_key_verify(key, data, 8, data + 8, 8, mac));
		mac[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	data[3] ^= 1;
	assert_false(ac_key_verify(key, data, 8, data + 8, 8, mac));
	ac_key_free(key);
}

/* Only the exact bytes "default-key" count as the public default key. */
static void
test_default_key_detected(void **state)
{
	struct ac_key	*k;

	(void)state;
	k = ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));
	assert_true(ac_key_is_default(k));
	ac_key_free(k);
	k = ac_key_new("default-key ", 12);
	assert_false(ac_key_is_default(k));
	ac_key_free(k);
	k = ac_key_new("", 0);
	assert_false(ac_key_is_default(k));
	ac_key_free(k);
}

/* Generated UUIDs are valid v4, RFC 4122 variant, and distinct. */
static void
test_uuid_generate(void **state)
{
	char	ids[1000][AC_UUID_STRLEN + 1];
	size_t	i, j;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(ac_uuid_generate(ids[i]), 0);
		assert_true(ac_uuid_is_valid(ids[i]));
		assert_int_equal(ids[i][14], '4');
		assert_non_null(strchr("89ab", ids[i][19]));
		for (j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

/* Validation accepts only the 8-4-4-4-12 hex form. */
static void
test_uuid_validation(void **state)
{
	(void)state;
	assert_true(ac_uuid_is_valid("6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90"));
	assert_true(ac_uuid_is_valid("6F1C2A1E-3B7D-4C55-9A0E-2D4B8F1E7C90"));
	assert_false(ac_uuid_is_valid(NULL));
	assert_false(ac_uuid_is_valid(""));
	assert_false(ac_uuid_is_valid("6f1c2a1e3b7d4c559a0e2d4b8f1e7c90"));
	assert_false(ac_uuid_is_valid("6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c9"));
	assert_false(ac_uuid_is_valid("6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c900"));
	assert_false(ac_uuid_is_valid("6f1c2a1e-3b7d-4c55-9a0e+2d4b8f1e7c90"));
	assert_false(ac_uuid_is_valid("6f1c2a1g-3b7d-4c55-9a0e-2d4b8f1e7c90"));
}

/* Run the key and UUID cases. */
int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac_matches_openssl),
		cmocka_unit_test(test_verify_rejects_changes),
		cmocka_unit_test(test_default_key_detected),
		cmocka_unit_test(test_uuid_generate),
		cmocka_unit_test(test_uuid_validation),
	};

	return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
