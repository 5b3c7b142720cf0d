/*
 * asyncchat/uuid.h - session identifiers: random (version 4) UUIDs in the
 * RFC 4122 text form, 36 characters such as 6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90.
 */
#ifndef ASYNCCHAT_UUID_H
#define ASYNCCHAT_UUID_H

#ifdef __cplusplus
extern "C" {
#endif

#define AC_UUID_STRLEN 36

/* Write a fresh random v4 UUID and its NUL into out (37 bytes); 0 or -1. */
int	ac_uuid_generate(char *out);

/* 1 when s is exactly a UUID in lower- or upper-case RFC 4122 text form. */
int	ac_uuid_is_valid(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_UUID_H */
