/*
 * no_entry.c - a loader test module that is a valid shared object but
 * exports no ac_plugin_entry (only a misspelt one), as a library named by
 * mistake would be.
 */
#include "config.h"

#include <asyncchat/plugin.h>

extern const int	ac_plugin_entri;

/* A symbol that is almost, but not quite, the entry point. */
__attribute__((visibility("default"))) const int ac_plugin_entri = 1;
