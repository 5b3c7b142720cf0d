/*
 * chmod_race.c - an LD_PRELOAD module for tests/e2e/test_files.py that
 * plays a local attacker who wins a race: when the process calls chmod()
 * on the path in AC_TEST_RACE_PATH, the file there is first replaced by a
 * symbolic link to AC_TEST_RACE_TARGET, as someone able to write the
 * directory (/tmp) could do between the server's bind() and its chmod().
 * A server that sets its socket's mode without chmod() by path is not
 * affected; one that calls chmod() changes the target's mode.
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int	chmod(const char *, mode_t);

/* chmod(2), with the swap first when path is the watched one. */
int
chmod(const char *path, mode_t mode)
{
	int		(*real)(const char *, mode_t);
	const char	*watch = getenv("AC_TEST_RACE_PATH");
	const char	*target = getenv("AC_TEST_RACE_TARGET");

	if (watch != NULL && target != NULL && strcmp(path, watch) == 0) {
		unlink(path);
		if (symlink(target, path) == -1)
			abort();
	}
	real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "chmod");
	if (real == NULL)
		abort();
	return (real(path, mode));
}
