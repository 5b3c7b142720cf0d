/*
 * asyncchat/asyncchat.h - everything libasyncchat offers, in one include.
 */
#ifndef ASYNCCHAT_ASYNCCHAT_H
#define ASYNCCHAT_ASYNCCHAT_H

#include <asyncchat/client.h>
#include <asyncchat/frame.h>
#include <asyncchat/key.h>
#include <asyncchat/option.h>
#include <asyncchat/utf8.h>
#include <asyncchat/uuid.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string, such as "0.1.0". */
const char *ac_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_ASYNCCHAT_H */
