/*
 * asyncchat/option.h - reading option values the way asyncchat does, so
 * that plugins accept the same spellings as the server's own keys.
 */
#ifndef ASYNCCHAT_OPTION_H
#define ASYNCCHAT_OPTION_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse a yes/no value: yes, true, on or 1, and no, false, off or 0, in any
 * case. Returns 0 and sets *out to 1 or 0, or returns -1 (and leaves *out
 * alone) when value is none of them.
 */
int	ac_option_bool(const char *value, int *out);

/*
 * Parse a whole decimal number from min to max (digits only: no sign, no
 * spaces, no suffix). Returns 0 and sets *out, or returns -1 (and leaves
 * *out alone) when value is not one or is out of range.
 */
int	ac_option_uint(const char *value, unsigned long long min,
	    unsigned long long max, unsigned long long *out);

#ifdef __cplusplus
}
#endif

#endif /* ASYNCCHAT_OPTION_H */
