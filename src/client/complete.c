/*
 * complete.c - Tab completion in interactive mode (GNU readline): with a
 * chat server, command names at the start of a line, rooms after /join,
 * /part and /who (or any word that begins with #), and nicks everywhere
 * else, from what the join, part, quit, nick and names events said.
 * Without one, readline completes as it always did.
 *
 * Names come from other people. One that would need escaping to be shown
 * (a control character, say: the server refuses such nicks, but a name is
 * only as good as its source) is never offered, so completion cannot put
 * into the line something the user did not see.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <readline/readline.h>

#include "cli.h"
#include "xmalloc.h"

/* Readline's completion functions take no argument. */
static struct chat	*complete_chat;

/* The candidates of the completion under way (heap strings). */
static char		**complete_cands;
static size_t		  complete_n;
static size_t		  complete_i;

/* Forget the candidates of the last completion. */
static void
complete_reset(void)
{
	size_t	i;

	for (i = 0; i < complete_n; i++)
		free(complete_cands[i]);
	free(complete_cands);
	complete_cands = NULL;
	complete_n = complete_i = 0;
}

/* Offer a candidate, with a prefix (or ""), if it shows as it is. */
static void
complete_add(const char *prefix, const char *name)
{
	char	*shown;
	int	 safe;

	shown = output_escape(name, strlen(name));
	safe = strcmp(shown, name) == 0;
	free(shown);
	if (!safe)
		return;
	complete_cands = ac_xreallocarray(complete_cands, complete_n + 1,
	    sizeof *complete_cands);
	ac_xasprintf(&complete_cands[complete_n++], "%s%s", prefix, name);
}

/* Readline's generator: the next candidate that begins with text. */
static char *
complete_next(const char *text, int state)
{
	if (state == 0)
		complete_i = 0;
	while (complete_i < complete_n) {
		if (chat_fold_prefix(complete_cands[complete_i], text))
			return ac_xstrdup(complete_cands[complete_i++]);
		complete_i++;
	}
	return NULL;
}

/* Offer the rooms we know, with a # when the word typed has one. */
static void
complete_rooms(const char *text)
{
	char	**v;
	size_t	  n, i;

	v = chat_room_names(complete_chat, &n);
	for (i = 0; i < n; i++)
		complete_add(*text == '#' ? "#" : "", v[i]);
	free(v);
}

/* Offer the nicks we know. */
static void
complete_nicks(void)
{
	char	**v;
	size_t	  n, i;

	v = chat_nicks(complete_chat, &n);
	for (i = 0; i < n; i++)
		complete_add("", v[i]);
	free(v);
}

/*
 * Which word of the line begins at start: 0 for the first; and the
 * first word (the command, if the line is one) into cmd.
 */
static int
complete_position(int start, char *cmd, size_t cmdsize)
{
	const char	*line = rl_line_buffer, *p = line;
	size_t		 len;
	int		 words = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	len = strcspn(p, " \t");
	snprintf(cmd, cmdsize, "%.*s", (int)len, p);
	while (p - line < start && *p != '\0') {
		p += strcspn(p, " \t");
		p += strspn(p, " \t");
		if (p - line <= start)
			words++;
	}
	return words;
}

/* Readline asks for the matches of the word from start to end. */
static char **
complete_attempt(const char *text, int start, int end)
{
	char	cmd[16];
	int	word;

	if (complete_chat == NULL || !complete_chat->active)
		return NULL;	/* readline's own completion, as ever */
	rl_attempted_completion_over = 1;
	complete_reset();
	word = complete_position(start, cmd, sizeof cmd);
	if (word == 0 && *text == '/') {
		const char *const	*names = command_names();

		while (*names != NULL)
			complete_add("", *names++);
	} else if (*text == '#' || (word == 1 &&
	    (strcasecmp(cmd, "/join") == 0 || strcasecmp(cmd, "/part") == 0 ||
	    strcasecmp(cmd, "/who") == 0)))
		complete_rooms(text);
	else
		complete_nicks();
	return rl_completion_matches(text, complete_next);
}

/* Set readline up for our completion; NULL forgets the last candidates. */
void
complete_install(struct chat *chat)
{
	complete_reset();
	complete_chat = chat;
	if (chat == NULL)
		return;
	rl_attempted_completion_function = complete_attempt;
	rl_completer_word_break_characters = " \t\n";
	rl_variable_bind("completion-ignore-case", "on");
}
