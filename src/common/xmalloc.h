/*
 * xmalloc.h - allocators that never return NULL.
 *
 * Running out of memory ends the program with a message, so callers do not
 * check. The price: every size that comes from the network must be capped
 * before it reaches these functions, so that no peer can cause that exit.
 */
#ifndef AC_XMALLOC_H
#define AC_XMALLOC_H

#include <stddef.h>

/* malloc that exits on failure. */
void	*ac_xmalloc(size_t size);

/* calloc that exits on failure or overflow. */
void	*ac_xcalloc(size_t nmemb, size_t size);

/* realloc that exits on failure or overflow of nmemb * size. */
void	*ac_xreallocarray(void *ptr, size_t nmemb, size_t size);

/* strdup that exits on failure. */
char	*ac_xstrdup(const char *s);

/* asprintf that exits on failure. */
int	 ac_xasprintf(char **ret, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif /* AC_XMALLOC_H */
