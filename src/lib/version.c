/*
 * version.c - the library's version, for programs that want to print it.
 */
#include "config.h"

#include <asyncchat/asyncchat.h>

/* The library's version string, such as "0.1.0". */
const char *
ac_version(void)
{
	return PACKAGE_VERSION;
}
