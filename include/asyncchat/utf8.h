/*
 * asyncchat/utf8.h - well-formed UTF-8 (RFC 3629), checked one way for
 * the server, its plugins and clients: no overlong forms, no UTF-16
 * surrogates (U+D800 to U+DFFF), nothing above U+10FFFF, no sequence cut
 * off by the end of the bytes. U+0000 is well-formed; callers that want
 * no NUL say so themselves.
 */
#ifndef ASYNCCHAT_UTF8_H
#define ASYNCCHAT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The length (1 to 4) of the well-formed UTF-8 sequence that starts at s,
 * which has len bytes (len > 0), or 0 if none starts there. When cp is
 * not NULL and a sequence is found, *cp is its code point.
 */
size_t	ac_utf8_len(const void *s, size_t len, uint32_t *cp);

/*
 * 1 when the len bytes at s are well-formed UTF-8 from start to end, else
 * 0. Zero bytes are well-formed.
 */
int	ac_utf8_valid(const void *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_UTF8_H */
