/*
 * webroot.c - the files a ws:// or wss:// listener serves: web_root, read
 * into memory with the configuration (at start and on SIGHUP) and looked
 * up by name when a request comes.
 *
 * Why in memory: the page is a dozen small files (about 100 KB), and the
 * event loop must never wait for a disk. Reading them with the
 * configuration, as the TLS files are, makes a missing or unreadable
 * web_root an error `asyncchatd -t` reports, and a request costs a
 * lookup; the bodies are added to the responses by reference, without a
 * copy. Bounded: at most WEBROOT_MAX_FILES files, WEBROOT_MAX_BYTES bytes
 * in all, WEBROOT_MAX_DEPTH directories deep.
 *
 * Why nothing can escape it: a request names an entry of the table this
 * file builds, and the table holds only regular files found under
 * web_root by a walk that opens every directory and file relative to its
 * parent (openat) with O_NOFOLLOW, and never follows a symbolic link
 * (they are left out, and said so), so no name in it leads outside. Names
 * starting with a dot (".git", ".htaccess") are left out too, and so are
 * names a URL could not spell unambiguously (with %, ?, #, \ or control
 * characters). What a request may be is http.c's business; whatever it
 * decodes to, it can only find a file of this table.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xmalloc.h"
#include "server.h"

/* A walk in progress. */
struct webroot_walk {
	struct webroot	*w;
	char		*cause;		/* the first error */
};

/* Content types by file name extension. */
static const struct {
	const char	*ext;
	const char	*type;
} webroot_types[] = {
	{ ".html",		"text/html; charset=utf-8" },
	{ ".htm",		"text/html; charset=utf-8" },
	{ ".css",		"text/css; charset=utf-8" },
	{ ".js",		"text/javascript; charset=utf-8" },
	{ ".mjs",		"text/javascript; charset=utf-8" },
	{ ".json",		"application/json" },
	{ ".webmanifest",	"application/manifest+json" },
	{ ".svg",		"image/svg+xml" },
	{ ".png",		"image/png" },
	{ ".ico",		"image/x-icon" },
	{ ".jpg",		"image/jpeg" },
	{ ".jpeg",		"image/jpeg" },
	{ ".gif",		"image/gif" },
	{ ".webp",		"image/webp" },
	{ ".woff2",		"font/woff2" },
	{ ".txt",		"text/plain; charset=utf-8" },
};

static int	webroot_dir(struct webroot_walk *, int, const char *, int);

/* The Content-Type for a file name, by its extension. */
const char *
webroot_type(const char *name)
{
	const char	*dot = strrchr(name, '.');
	size_t		 i;

	if (dot == NULL || strchr(dot, '/') != NULL)
		return ("application/octet-stream");
	for (i = 0; i < sizeof webroot_types / sizeof webroot_types[0]; i++) {
		if (strcasecmp(dot, webroot_types[i].ext) == 0)
			return (webroot_types[i].type);
	}
	return ("application/octet-stream");
}

/* Remember an entry that is not served, and why (the first one only). */
static void
webroot_skip(struct webroot_walk *ww, const char *rel, const char *why)
{
	if (ww->w->skipped++ == 0)
		ac_xasprintf(&ww->w->skipped_first, "%s: %s", rel, why);
}

/*
 * Non-zero if a URL path can name this entry as it is: no control
 * characters, spaces, or characters a URL gives another meaning.
 */
static int
webroot_name_ok(const char *name)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '?' ||
		    *p == '#' || *p == '\\')
			return (0);
	}
	return (1);
}

/* An ETag for a body: FNV-1a, 64 bits, as a quoted string. */
static void
webroot_etag(const uint8_t *data, size_t len, char *out, size_t outlen)
{
	uint64_t	h = 0xcbf29ce484222325ull;
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ull;
	}
	snprintf(out, outlen, "\"%016llx\"", (unsigned long long)h);
}

/* Read the regular file name of directory dfd into the table; -1 with
 * ww->cause set on an error that refuses the whole web_root. */
static int
webroot_file(struct webroot_walk *ww, int dfd, const char *name,
    const char *rel)
{
	struct webroot		*w = ww->w;
	struct webroot_file	*f;
	struct stat		 st;
	uint8_t			*data;
	size_t			 got = 0;
	ssize_t			 n;
	int			 fd;

	fd = openat(dfd, name, O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|
	    O_CLOEXEC);
	if (fd == -1) {
		ac_xasprintf(&ww->cause, "%s/%s: %s", w->path, rel,
		    strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		webroot_skip(ww, rel, "not a regular file");
		return (0);
	}
	if (w->nfiles >= WEBROOT_MAX_FILES) {
		ac_xasprintf(&ww->cause, "%s: more than %d files (they are "
		    "held in memory)", w->path, WEBROOT_MAX_FILES);
		close(fd);
		return (-1);
	}
	if ((uint64_t)st.st_size > WEBROOT_MAX_BYTES - w->bytes) {
		ac_xasprintf(&ww->cause, "%s: more than %d bytes of files "
		    "(they are held in memory; %s is %lld bytes)", w->path,
		    WEBROOT_MAX_BYTES, rel, (long long)st.st_size);
		close(fd);
		return (-1);
	}
	data = ac_xmalloc(st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, data + got, st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			ac_xasprintf(&ww->cause, "%s/%s: %s", w->path, rel,
			    strerror(errno));
			free(data);
			close(fd);
			return (-1);
		}
		if (n == 0)
			break;	/* it shrank as we read: what is there */
		got += n;
	}
	close(fd);

	w->files = ac_xreallocarray(w->files, w->nfiles + 1, sizeof *w->files);
	f = &w->files[w->nfiles++];
	memset(f, 0, sizeof *f);
	f->name = ac_xstrdup(rel);
	f->type = webroot_type(rel);
	f->data = data;
	f->len = got;
	webroot_etag(data, got, f->etag, sizeof f->etag);
	w->bytes += got;
	return (0);
}

/* Add one entry of directory dfd (rel is its path under web_root). */
static int
webroot_entry(struct webroot_walk *ww, int dfd, const char *name,
    const char *rel, int depth)
{
	struct stat	st;
	int		fd, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		ac_xasprintf(&ww->cause, "%s/%s: %s", ww->w->path, rel,
		    strerror(errno));
		return (-1);
	}
	if (S_ISLNK(st.st_mode)) {
		webroot_skip(ww, rel, "a symbolic link (never followed)");
		return (0);
	}
	if (S_ISREG(st.st_mode))
		return (webroot_file(ww, dfd, name, rel));
	if (!S_ISDIR(st.st_mode)) {
		webroot_skip(ww, rel, "not a regular file");
		return (0);
	}
	if (depth >= WEBROOT_MAX_DEPTH) {
		webroot_skip(ww, rel, "too deep");
		return (0);
	}
	fd = openat(dfd, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
	if (fd == -1) {
		ac_xasprintf(&ww->cause, "%s/%s: %s", ww->w->path, rel,
		    strerror(errno));
		return (-1);
	}
	r = webroot_dir(ww, fd, rel, depth + 1);
	return (r);
}

/* Add every entry of the directory open on fd (closed here); prefix is
 * its path under web_root, "" for web_root itself. */
static int
webroot_dir(struct webroot_walk *ww, int fd, const char *prefix, int depth)
{
	DIR		*d;
	struct dirent	*de;
	char		*rel;
	int		 r = 0;

	if ((d = fdopendir(fd)) == NULL) {
		ac_xasprintf(&ww->cause, "%s/%s: %s", ww->w->path, prefix,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				ac_xasprintf(&ww->cause, "%s/%s: %s",
				    ww->w->path, prefix, strerror(errno));
				r = -1;
			}
			break;
		}
		if (de->d_name[0] == '.')
			continue;	/* ., .., and hidden files */
		if (*prefix != '\0')
			ac_xasprintf(&rel, "%s/%s", prefix, de->d_name);
		else
			rel = ac_xstrdup(de->d_name);
		if (!webroot_name_ok(de->d_name)) {
			webroot_skip(ww, rel, "a name a URL cannot spell");
			free(rel);
			continue;
		}
		r = webroot_entry(ww, dirfd(d), de->d_name, rel, depth);
		free(rel);
		if (r == -1)
			break;
	}
	closedir(d);
	return (r);
}

/* Order files by name. */
static int
webroot_cmp(const void *a, const void *b)
{
	const struct webroot_file	*fa = a, *fb = b;

	return (strcmp(fa->name, fb->name));
}

/*
 * Read every file under path into a new table with one reference, or
 * return -1 with *cause (a heap string naming the file and what is
 * wrong). This reads from disk: at start, or on SIGHUP with the rest of
 * the configuration, never while a request waits.
 */
int
webroot_load(const char *path, struct webroot **wp, char **cause)
{
	struct webroot_walk	 ww;
	struct webroot		*w;
	int			 fd;

	*wp = NULL;
	*cause = NULL;
	if ((fd = open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC)) == -1) {
		ac_xasprintf(cause, "%s: %s", path, errno == ENOTDIR ?
		    "not a directory" : strerror(errno));
		return (-1);
	}
	w = ac_xcalloc(1, sizeof *w);
	w->refs = 1;
	w->path = ac_xstrdup(path);
	memset(&ww, 0, sizeof ww);
	ww.w = w;
	if (webroot_dir(&ww, fd, "", 0) == -1) {
		*cause = ww.cause;
		webroot_unref(w);
		return (-1);
	}
	if (w->nfiles != 0)
		qsort(w->files, w->nfiles, sizeof *w->files, webroot_cmp);
	*wp = w;
	return (0);
}

/* The file called name ("index.html", "js/ui.js"), or NULL. */
const struct webroot_file *
webroot_find(const struct webroot *w, const char *name)
{
	struct webroot_file	key;

	if (w == NULL || w->nfiles == 0)
		return (NULL);
	key.name = (char *)name;
	return (bsearch(&key, w->files, w->nfiles, sizeof *w->files,
	    webroot_cmp));
}

/* Take a reference to a table. */
struct webroot *
webroot_ref(struct webroot *w)
{
	w->refs++;
	return (w);
}

/* Drop a reference; the last one frees the table and its files. */
void
webroot_unref(struct webroot *w)
{
	size_t	i;

	if (w == NULL || --w->refs != 0)
		return;
	for (i = 0; i < w->nfiles; i++) {
		free(w->files[i].name);
		free(w->files[i].data);
	}
	free(w->files);
	free(w->skipped_first);
	free(w->path);
	free(w);
}
