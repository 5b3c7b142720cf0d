/*
 * xmalloc.c - allocators that exit on failure instead of returning NULL.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* Print why and exit: there is nothing sensible left to do. */
static void
out_of_memory(size_t size)
{
	fprintf(stderr, "fatal: out of memory (%zu bytes)\n", size);
	exit(1);
}

/* malloc that exits on failure. */
void *
ac_xmalloc(size_t size)
{
	void	*p;

	if (size == 0)
		size = 1;
	if ((p = malloc(size)) == NULL)
		out_of_memory(size);
	return p;
}

/* calloc that exits on failure or overflow. */
void *
ac_xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if ((p = calloc(nmemb, size)) == NULL)
		out_of_memory(size);
	return p;
}

/* realloc that exits on failure or overflow of nmemb * size. */
void *
ac_xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void	*p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		out_of_memory(SIZE_MAX);
	if (nmemb * size == 0)
		nmemb = size = 1;
	if ((p = realloc(ptr, nmemb * size)) == NULL)
		out_of_memory(nmemb * size);
	return p;
}

/* strdup that exits on failure. */
char *
ac_xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		out_of_memory(strlen(s) + 1);
	return p;
}

/* asprintf that exits on failure. */
int
ac_xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(0);
	return n;
}
