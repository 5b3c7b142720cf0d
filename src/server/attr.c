/*
 * attr.c - a session's attributes: small string values under string keys
 * that every plugin can read and the plugin that set a key first (its
 * owner, by plugin name) can change or remove (plugin.h, session_attr*).
 *
 * A session holds at most AC_ATTR_MAX of them, so a plain array in the
 * order they were first set is both the smallest and the fastest form,
 * and that order is the one the logger writes them in.
 *
 * Values often come from clients (a nick), so everything is checked here
 * once: keys are short tokens, values are bounded UTF-8 without NUL, and
 * nothing a client sends can make a set grow past its bound.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <asyncchat/utf8.h>

#include "xmalloc.h"
#include "server.h"

/* One attribute. */
struct attr {
	char	*key;
	char	*value;
	char	*owner;		/* plugin name */
};

/* A session's attributes, in the order first set. */
struct attr_set {
	struct attr	 v[AC_ATTR_MAX];
	size_t		 n;
};

/* Non-zero when key is 1 to AC_ATTR_KEY_MAX bytes of A-Z a-z 0-9 . _ -. */
static int
attr_valid_key(const char *key)
{
	size_t	len;

	for (len = 0; key[len] != '\0'; len++) {
		if (len == AC_ATTR_KEY_MAX)
			return (0);
		if ((key[len] < 'a' || key[len] > 'z') &&
		    (key[len] < 'A' || key[len] > 'Z') &&
		    (key[len] < '0' || key[len] > '9') &&
		    key[len] != '.' && key[len] != '_' && key[len] != '-')
			return (0);
	}
	return (len != 0);
}

/*
 * Non-zero when value is at most AC_ATTR_VALUE_MAX bytes of well-formed
 * UTF-8 (libasyncchat's ac_utf8_valid: no overlong forms, surrogates or
 * code points past U+10FFFF).
 */
static int
attr_valid_value(const char *value)
{
	size_t	len = strnlen(value, AC_ATTR_VALUE_MAX + 1);

	return (len <= AC_ATTR_VALUE_MAX && ac_utf8_valid(value, len));
}

/* The attribute under key, or NULL. */
static struct attr *
attr_find(const struct attr_set *set, const char *key)
{
	size_t	i;

	if (set == NULL)
		return (NULL);
	for (i = 0; i < set->n; i++) {
		if (strcmp(set->v[i].key, key) == 0)
			return ((struct attr *)&set->v[i]);
	}
	return (NULL);
}

/* Free one attribute's strings. */
static void
attr_clear(struct attr *a)
{
	free(a->key);
	free(a->value);
	free(a->owner);
}

/* Take attribute i out of a set, keeping the order of the others. */
static void
attr_remove(struct attr_set *set, size_t i)
{
	attr_clear(&set->v[i]);
	memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) *
	    sizeof set->v[0]);
	set->n--;
}

/* The value under key in a set (may be NULL), or NULL. */
const char *
attr_get(const struct attr_set *set, const char *key)
{
	const struct attr	*a;

	if (key == NULL || (a = attr_find(set, key)) == NULL)
		return (NULL);
	return (a->value);
}

/*
 * Set key to value (NULL: remove it) on behalf of the plugin named owner,
 * making *setp when needed. Returns AC_ATTR_OK or a negative AC_ATTR_*.
 */
int
attr_set(struct attr_set **setp, const char *owner, const char *key,
    const char *value)
{
	struct attr_set	*set = *setp;
	struct attr	*a;
	char		*copy;

	if (key == NULL || !attr_valid_key(key) ||
	    (value != NULL && !attr_valid_value(value)))
		return (AC_ATTR_INVALID);
	if ((a = attr_find(set, key)) != NULL) {
		if (strcmp(a->owner, owner) != 0)
			return (AC_ATTR_NOT_OWNER);
		if (value == NULL) {
			attr_remove(set, a - set->v);
			return (AC_ATTR_OK);
		}
		copy = ac_xstrdup(value);
		free(a->value);
		a->value = copy;
		return (AC_ATTR_OK);
	}
	if (value == NULL)
		return (AC_ATTR_OK);
	if (set == NULL)
		set = *setp = ac_xcalloc(1, sizeof *set);
	if (set->n == AC_ATTR_MAX)
		return (AC_ATTR_FULL);
	a = &set->v[set->n++];
	a->key = ac_xstrdup(key);
	a->value = ac_xstrdup(value);
	a->owner = ac_xstrdup(owner);
	return (AC_ATTR_OK);
}

/* Call cb for each attribute in order until it returns non-zero. */
int
attr_foreach(const struct attr_set *set, int (*cb)(const char *,
    const char *, const char *, void *), void *arg)
{
	size_t	i;
	int	r;

	if (set == NULL)
		return (0);
	for (i = 0; i < set->n; i++) {
		r = cb(set->v[i].key, set->v[i].value, set->v[i].owner, arg);
		if (r != 0)
			return (r);
	}
	return (0);
}

/* Remove every attribute whose owner keep() refuses. */
void
attr_prune(struct attr_set *set, int (*keep)(const char *, void *),
    void *arg)
{
	size_t	i = 0;

	if (set == NULL)
		return;
	while (i < set->n) {
		if (keep(set->v[i].owner, arg))
			i++;
		else
			attr_remove(set, i);
	}
}

/* Free a set and everything in it; NULL is allowed. */
void
attr_free(struct attr_set *set)
{
	size_t	i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		attr_clear(&set->v[i]);
	free(set);
}
