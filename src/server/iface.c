/*
 * iface.c - the named interfaces plugins publish for each other
 * (host->interface_publish, host->interface_get): one small table per
 * plugin chain, so that a lookup only ever finds a plugin of the same
 * chain, which is loaded and unloaded together with the one asking.
 *
 * The host never looks inside an interface: it keeps the pointer, the
 * version and who published it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "server.h"

/* One published interface. */
struct iface {
	char			*name;
	unsigned int		 version;
	const void		*ptr;
	struct ac_plugin	*owner;
};

/* Non-zero when name is 1 to AC_INTERFACE_NAME_MAX of a-z 0-9 . _ -. */
static int
iface_valid_name(const char *name)
{
	size_t	len;

	for (len = 0; name[len] != '\0'; len++) {
		if (len == AC_INTERFACE_NAME_MAX)
			return (0);
		if ((name[len] < 'a' || name[len] > 'z') &&
		    (name[len] < '0' || name[len] > '9') &&
		    name[len] != '.' && name[len] != '_' && name[len] != '-')
			return (0);
	}
	return (len != 0);
}

/* The interface published under name, or NULL. */
static const struct iface *
iface_find(const struct iface_table *t, const char *name)
{
	size_t	i;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].name, name) == 0)
			return (&t->v[i]);
	}
	return (NULL);
}

/*
 * Publish ptr under name for owner. Returns 0, or -1 with *why set to a
 * static reason (bad name, NULL pointer, name taken).
 */
int
iface_publish(struct iface_table *t, struct ac_plugin *owner,
    const char *name, unsigned int version, const void *ptr,
    const char **why)
{
	struct iface	*f;

	if (name == NULL || !iface_valid_name(name)) {
		*why = "not a valid interface name (1 to 64 of a-z 0-9 . _ -)";
		return (-1);
	}
	if (ptr == NULL) {
		*why = "no interface given";
		return (-1);
	}
	if (iface_find(t, name) != NULL) {
		*why = "already published in this chain";
		return (-1);
	}
	t->v = ac_xreallocarray(t->v, t->n + 1, sizeof *t->v);
	f = &t->v[t->n++];
	f->name = ac_xstrdup(name);
	f->version = version;
	f->ptr = ptr;
	f->owner = owner;
	return (0);
}

/*
 * The interface under name with at least min_version, or NULL; *version
 * and *owner (either may be NULL) say what was found, even when too old.
 */
const void *
iface_get(const struct iface_table *t, const char *name,
    unsigned int min_version, unsigned int *version,
    struct ac_plugin **owner)
{
	const struct iface	*f;

	if (version != NULL)
		*version = 0;
	if (owner != NULL)
		*owner = NULL;
	if (name == NULL || (f = iface_find(t, name)) == NULL)
		return (NULL);
	if (version != NULL)
		*version = f->version;
	if (owner != NULL)
		*owner = f->owner;
	if (f->version < min_version)
		return (NULL);
	return (f->ptr);
}

/* Forget every interface of a table (their owners are being freed). */
void
iface_free(struct iface_table *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}
