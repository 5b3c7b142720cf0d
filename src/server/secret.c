/*
 * secret.c - the shared key kept in a file: whether a file keeps a secret
 * (its owner and mode), and reading the key from hmac_key_file once.
 *
 * The configuration (config.c) asks both: of the key file, which is
 * refused if it does not keep the key, and of the configuration file
 * itself when hmac_key is written in it, which draws a warning.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <asyncchat/key.h>

#include "server.h"

#define SECRET_MAX_KEY_FILE	4096

/*
 * Can the file st describes keep a secret? Only if nobody but its owner
 * can change it, nobody else can read it (its group may, if root owns it:
 * root:asyncchat 0640 shares it with a service's group), and its owner is
 * root or the user the server runs as, who could change it anyway.
 * Returns 0, or -1 with the reason in why.
 */
int
secret_mode(const struct stat *st, char *why, size_t len)
{
	unsigned int	mode = st->st_mode & 07777;

	if (st->st_uid != 0 && st->st_uid != geteuid())
		snprintf(why, len, "belongs to uid %u, neither root nor the "
		    "server's user", (unsigned int)st->st_uid);
	else if (mode & (S_IRWXO))
		snprintf(why, len, "can be read or written by others (mode "
		    "%04o): chmod 600 it", mode);
	else if (mode & (S_IWGRP|S_IXGRP))
		snprintf(why, len, "can be written by its group (mode %04o): "
		    "chmod 600 it", mode);
	else if ((mode & S_IRGRP) && st->st_uid != 0)
		snprintf(why, len, "can be read by its group (mode %04o): "
		    "chmod 600 it (a file root owns may be 0640)", mode);
	else
		return (0);
	return (-1);
}

/*
 * Read the key file: the whole file is the key, less one trailing
 * newline. It must be a regular file named directly (not through a
 * symbolic link someone could point elsewhere) that keeps the secret
 * (secret_mode): a key others can read is no key, so such a file is
 * refused, not warned about. Returns the key, or NULL with the reason in
 * why.
 */
struct ac_key *
secret_read_file(const char *path, char *why, size_t whylen)
{
	struct ac_key	*key = NULL;
	struct stat	 st;
	char		 buf[SECRET_MAX_KEY_FILE + 1];
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	fd = open(path, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY);
	if (fd == -1) {
		snprintf(why, whylen, "%s", errno == ELOOP ? "is a symbolic "
		    "link (name the file itself)" : strerror(errno));
		return (NULL);
	}
	why[0] = '\0';
	if (fstat(fd, &st) == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, whylen, "not a regular file");
	else
		secret_mode(&st, why, whylen);
	if (why[0] != '\0') {
		close(fd);
		return (NULL);
	}
	for (;;) {
		n = read(fd, buf + len, sizeof buf - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (len == sizeof buf)
			break;
	}
	close(fd);
	if (n == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (len > SECRET_MAX_KEY_FILE)
		snprintf(why, whylen, "longer than %d bytes",
		    SECRET_MAX_KEY_FILE);
	else {
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len == 0)
			snprintf(why, whylen, "the key is empty");
		else
			key = ac_key_new(buf, len);
	}
	explicit_bzero(buf, sizeof buf);
	return (key);
}
