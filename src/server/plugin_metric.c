/*
 * plugin_metric.c - the counters, gauges and histograms plugins register
 * (host->metric_new), shown on /metrics as NAME{plugin="NAME"} after the
 * server's own families.
 *
 * Each metric belongs to one plugin instance. When the instance is
 * unloaded its metrics are hidden at once (a reload's new instance has
 * registered its own by then, from zero) and freed after its fini, so a
 * plugin may update them until fini returns. Updates may come from any
 * thread (a worker, a plugin's own threads), so each metric has a mutex;
 * an update is a lock, an add and an unlock, some tens of nanoseconds.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

#define PLUGIN_METRIC_NAME_MAX	100
#define PLUGIN_METRIC_HELP_MAX	300
#define PLUGIN_METRIC_PREFIX	"asyncchat_"

/* One registered metric: the body of plugin.h's struct ac_metric. */
struct ac_metric {
	struct ac_plugin	*p;
	char			*plugin;	/* the plugin label's value */
	enum ac_metric_type	 type;
	char			*name;
	char			*help;		/* escaped for a HELP line */
	double			*bounds;	/* histogram */
	size_t			 nbounds;
	int			 hidden;	/* its plugin is unloading */

	pthread_mutex_t		 mu;
	double			 value;		/* counter, gauge */
	uint64_t		*buckets;	/* histogram, not cumulative */
	uint64_t		 count;
	double			 sum;

	TAILQ_ENTRY(ac_metric)	 entry;
};

/* Latency buckets in seconds, for histograms registered without bounds. */
static const double plugin_metric_default_bounds[] = {
	1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5,
	1, 5, 10,
};

/* Non-zero when name is [a-zA-Z_][a-zA-Z0-9_]* and short enough. */
static int
plugin_metric_valid_name(const char *name)
{
	size_t	i;

	for (i = 0; name[i] != '\0'; i++) {
		if (i == PLUGIN_METRIC_NAME_MAX)
			return (0);
		if ((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') || name[i] == '_')
			continue;
		if (i > 0 && name[i] >= '0' && name[i] <= '9')
			continue;
		return (0);
	}
	return (i != 0);
}

/* Non-zero when s ends with suffix. */
static int
plugin_metric_ends_with(const char *s, const char *suffix)
{
	size_t	len = strlen(s), slen = strlen(suffix);

	return (len >= slen && strcmp(s + len - slen, suffix) == 0);
}

/* The help text as one HELP line wants it: no control characters, and
 * backslashes doubled (the exposition format's only escape there). */
static char *
plugin_metric_help(const char *help, const char *name)
{
	char	*out, *o;
	size_t	 i;

	if (help == NULL || *help == '\0')
		help = name;
	o = out = ac_xmalloc(2 * PLUGIN_METRIC_HELP_MAX + 1);
	for (i = 0; help[i] != '\0' && i < PLUGIN_METRIC_HELP_MAX; i++) {
		if ((unsigned char)help[i] < ' ' || help[i] == 0x7f)
			*o++ = ' ';
		else if (help[i] == '\\') {
			*o++ = '\\';
			*o++ = '\\';
		} else
			*o++ = help[i];
	}
	*o = '\0';
	return (out);
}

/* Non-zero when two bound lists are the same. */
static int
plugin_metric_same_bounds(const double *a, size_t na, const double *b,
    size_t nb)
{
	return (na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0));
}

/*
 * Register a metric for plugin p; NULL with *why set (a static string)
 * when the name, type or bounds are not acceptable.
 */
struct ac_metric *
plugin_metric_new(struct server *srv, struct ac_plugin *p,
    enum ac_metric_type type, const char *name, const char *help,
    const double *bounds, size_t nbounds, const char **why)
{
	struct ac_metric	*m, *other;
	size_t			 i;

	if (type != AC_METRIC_COUNTER && type != AC_METRIC_GAUGE &&
	    type != AC_METRIC_HISTOGRAM) {
		*why = "unknown metric type";
		return (NULL);
	}
	if (name == NULL || !plugin_metric_valid_name(name)) {
		*why = "a name is 1 to 100 of [a-zA-Z0-9_], not starting with "
		    "a digit";
		return (NULL);
	}
	if (strncmp(name, PLUGIN_METRIC_PREFIX,
	    strlen(PLUGIN_METRIC_PREFIX)) == 0) {
		*why = "names starting with asyncchat_ are the server's";
		return (NULL);
	}
	if (type == AC_METRIC_COUNTER &&
	    !plugin_metric_ends_with(name, "_total")) {
		*why = "a counter's name ends in _total";
		return (NULL);
	}
	if (type == AC_METRIC_HISTOGRAM) {
		if (bounds == NULL) {
			bounds = plugin_metric_default_bounds;
			nbounds = sizeof plugin_metric_default_bounds /
			    sizeof plugin_metric_default_bounds[0];
		}
		if (nbounds == 0 || nbounds > AC_METRIC_BUCKETS_MAX) {
			*why = "a histogram has 1 to 32 bucket bounds";
			return (NULL);
		}
		for (i = 0; i < nbounds; i++) {
			if (!isfinite(bounds[i]) ||
			    (i > 0 && bounds[i] <= bounds[i - 1])) {
				*why = "bucket bounds must be finite and "
				    "increasing";
				return (NULL);
			}
		}
	} else
		nbounds = 0;

	/*
	 * Another instance of the same plugin (the one a reload replaces)
	 * leaves /metrics before the next scrape, so only other plugins'
	 * families constrain this one.
	 */
	TAILQ_FOREACH(other, &srv->plugin_metrics, entry) {
		if (other->hidden || strcmp(other->name, name) != 0)
			continue;
		if (other->p == p) {
			*why = "registered twice";
			return (NULL);
		}
		if (strcmp(other->plugin, p->name) == 0)
			continue;
		if (other->type != type || !plugin_metric_same_bounds(
		    other->bounds, other->nbounds, bounds, nbounds)) {
			*why = "another plugin registered this name with "
			    "another type or other bounds";
			return (NULL);
		}
	}

	m = ac_xcalloc(1, sizeof *m);
	m->p = p;
	m->plugin = ac_xstrdup(p->name);
	m->type = type;
	m->name = ac_xstrdup(name);
	m->help = plugin_metric_help(help, name);
	if (nbounds != 0) {
		m->bounds = ac_xreallocarray(NULL, nbounds, sizeof *m->bounds);
		memcpy(m->bounds, bounds, nbounds * sizeof *m->bounds);
		m->buckets = ac_xcalloc(nbounds, sizeof *m->buckets);
		m->nbounds = nbounds;
	}
	pthread_mutex_init(&m->mu, NULL);
	TAILQ_INSERT_TAIL(&srv->plugin_metrics, m, entry);
	return (m);
}

/* Add v to a counter (v >= 0) or a gauge; anything else is ignored. */
void
plugin_metric_add(struct ac_metric *m, double v)
{
	if (m == NULL || isnan(v) || m->type == AC_METRIC_HISTOGRAM ||
	    (m->type == AC_METRIC_COUNTER && v < 0))
		return;
	pthread_mutex_lock(&m->mu);
	m->value += v;
	pthread_mutex_unlock(&m->mu);
}

/* Set a gauge or a counter. */
void
plugin_metric_set(struct ac_metric *m, double v)
{
	if (m == NULL || m->type == AC_METRIC_HISTOGRAM)
		return;
	pthread_mutex_lock(&m->mu);
	m->value = v;
	pthread_mutex_unlock(&m->mu);
}

/* Count one observation in a histogram. */
void
plugin_metric_observe(struct ac_metric *m, double v)
{
	size_t	i;

	if (m == NULL || m->type != AC_METRIC_HISTOGRAM || isnan(v))
		return;
	for (i = 0; i < m->nbounds; i++) {
		if (v <= m->bounds[i])
			break;
	}
	pthread_mutex_lock(&m->mu);
	if (i < m->nbounds)
		m->buckets[i]++;
	m->count++;
	m->sum += v;
	pthread_mutex_unlock(&m->mu);
}

/* Take plugin p's metrics off /metrics (it is being unloaded). */
void
plugin_metric_hide(struct server *srv, struct ac_plugin *p)
{
	struct ac_metric	*m;

	TAILQ_FOREACH(m, &srv->plugin_metrics, entry) {
		if (m->p == p)
			m->hidden = 1;
	}
}

/* Free plugin p's metrics (its fini has returned). */
void
plugin_metric_free(struct server *srv, struct ac_plugin *p)
{
	struct ac_metric	*m, *next;

	for (m = TAILQ_FIRST(&srv->plugin_metrics); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (m->p != p)
			continue;
		TAILQ_REMOVE(&srv->plugin_metrics, m, entry);
		pthread_mutex_destroy(&m->mu);
		free(m->plugin);
		free(m->name);
		free(m->help);
		free(m->bounds);
		free(m->buckets);
		free(m);
	}
}

/* Spell a sample value: the shortest of %.15g and %.17g that reads back
 * as v, or the format's words for the infinities and NaN. */
static void
plugin_metric_number(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "NaN");
	else if (isinf(v))
		snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
	else {
		snprintf(buf, len, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, len, "%.17g", v);
	}
}

/* Write the samples of one metric. */
static void
plugin_metric_samples(struct ac_metric *m, struct evbuffer *b)
{
	char		 num[64];
	uint64_t	 cum = 0;
	size_t		 i;

	pthread_mutex_lock(&m->mu);
	if (m->type != AC_METRIC_HISTOGRAM) {
		plugin_metric_number(m->value, num, sizeof num);
		evbuffer_add_printf(b, "%s{plugin=\"%s\"} %s\n", m->name,
		    m->plugin, num);
		pthread_mutex_unlock(&m->mu);
		return;
	}
	for (i = 0; i < m->nbounds; i++) {
		cum += m->buckets[i];
		plugin_metric_number(m->bounds[i], num, sizeof num);
		evbuffer_add_printf(b, "%s_bucket{plugin=\"%s\",le=\"%s\"} "
		    "%llu\n", m->name, m->plugin, num,
		    (unsigned long long)cum);
	}
	evbuffer_add_printf(b, "%s_bucket{plugin=\"%s\",le=\"+Inf\"} %llu\n",
	    m->name, m->plugin, (unsigned long long)m->count);
	plugin_metric_number(m->sum, num, sizeof num);
	evbuffer_add_printf(b, "%s_sum{plugin=\"%s\"} %s\n", m->name,
	    m->plugin, num);
	evbuffer_add_printf(b, "%s_count{plugin=\"%s\"} %llu\n", m->name,
	    m->plugin, (unsigned long long)m->count);
	pthread_mutex_unlock(&m->mu);
}

/*
 * Write every visible plugin metric into b, one family per name (HELP and
 * TYPE from the first registered), after letting the running plugins
 * bring theirs up to date (their collect callbacks).
 */
void
plugin_metric_write(struct server *srv, struct evbuffer *b)
{
	static const char	*types[] = { "counter", "gauge", "histogram" };
	struct ac_metric	*m, *o, *prev;

	plugin_set_collect(srv);
	TAILQ_FOREACH(m, &srv->plugin_metrics, entry) {
		if (m->hidden)
			continue;
		/* Written already with an earlier one of its name? */
		for (prev = TAILQ_FIRST(&srv->plugin_metrics); prev != m;
		    prev = TAILQ_NEXT(prev, entry)) {
			if (!prev->hidden && strcmp(prev->name, m->name) == 0)
				break;
		}
		if (prev != m)
			continue;
		evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
		    m->name, m->help, m->name, types[m->type]);
		for (o = m; o != NULL; o = TAILQ_NEXT(o, entry)) {
			if (!o->hidden && strcmp(o->name, m->name) == 0)
				plugin_metric_samples(o, b);
		}
	}
}
