/*
 * asyncchat/key.h - the shared HMAC-SHA256 key of a chat.
 *
 * The key object keeps the SHA-256 states after the inner and outer pads are
 * hashed, so computing a frame's MAC costs two short state copies and no key
 * set-up. A key is immutable once made and may be used from several threads.
 */
#ifndef ASYNCCHAT_KEY_H
#define ASYNCCHAT_KEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Python peer's built-in key: public, accepted for compatibility only. */
#define AC_DEFAULT_KEY "default-key"

struct ac_key;

/* Make a key from len bytes (any length, may be 0). Never returns NULL. */
struct ac_key	*ac_key_new(const void *secret, size_t len);

/* Destroy a key and wipe its state; NULL is allowed. */
void		 ac_key_free(struct ac_key *key);

/* Non-zero when the key's bytes are the well-known AC_DEFAULT_KEY. */
int		 ac_key_is_default(const struct ac_key *key);

/* HMAC-SHA256 over a followed by b into mac (32 bytes). */
void		 ac_key_mac(const struct ac_key *key, const void *a, size_t alen,
		    const void *b, size_t blen, uint8_t *mac);

/* 1 when mac matches HMAC(a || b); the comparison takes constant time. */
int		 ac_key_verify(const struct ac_key *key, const void *a,
		    size_t alen, const void *b, size_t blen, const uint8_t *mac);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_KEY_H */
