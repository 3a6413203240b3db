/* Backups, the pure part (backup_plan.h). */
#include "core/backup_plan.h"
#include "util/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void backup_label(int64_t t, char out[BACKUP_LABEL_MAX])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, BACKUP_LABEL_MAX, BACKUP_PREFIX "%Y%m%d-%H%M%S", &tm);
}

bool backup_label_time(const char *label, int64_t *t)
{
	size_t pl = strlen(BACKUP_PREFIX);
	if (!label || strncmp(label, BACKUP_PREFIX, pl) != 0 || strlen(label) != pl + 15)
		return false;
	const char *s = label + pl;
	for (int i = 0; i < 15; i++)
		if (i == 8 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return false;
	struct tm tm = {0};
	tm.tm_year =
		(s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
	tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
	tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
	tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
	tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	*t = (int64_t)timegm(&tm);
	return true;
}

struct item {
	size_t i;
	int64_t t;
};

static int newest_first(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->t != y->t)
		return x->t > y->t ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* The period a time falls in, per tier: its day, the Monday of its ISO week, its month. */
static int64_t period(int tier, int64_t t)
{
	int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	if (tier == 0)
		return day;
	if (tier == 1) {
		/* 1970-01-01 was a Thursday: Monday is 0. */
		int64_t wd = ((day + 3) % 7 + 7) % 7;
		return day - wd;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	return (int64_t)tm.tm_year * 12 + tm.tm_mon;
}

size_t backup_prune(const char *const *labels, size_t n, const struct backup_keep *k, bool *keep)
{
	struct item *v = xcalloc(n ? n : 1, sizeof(*v));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t t;
		keep[i] = true;
		if (backup_label_time(labels[i], &t)) {
			v[m++] = (struct item){i, t};
			keep[i] = false;
		}
	}
	qsort(v, m, sizeof(*v), newest_first);
	if (m > 0)
		keep[v[0].i] = true;
	const int counts[3] = {k->daily, k->weekly, k->monthly};
	for (int tier = 0; tier < 3; tier++) {
		int kept = 0;
		bool have = false;
		int64_t last = 0;
		for (size_t j = 0; j < m && kept < counts[tier]; j++) {
			int64_t p = period(tier, v[j].t);
			if (have && p == last)
				continue;
			keep[v[j].i] = true;
			kept++;
			have = true;
			last = p;
		}
	}
	size_t drop = 0;
	for (size_t j = 0; j < m; j++)
		drop += keep[v[j].i] ? 0 : 1;
	free(v);
	return drop;
}

long backup_pick(const char *const *labels, size_t n, int64_t at)
{
	long best = -1;
	int64_t bt = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t t;
		if (!backup_label_time(labels[i], &t) || t > at)
			continue;
		if (best < 0 || t > bt) {
			best = (long)i;
			bt = t;
		}
	}
	return best;
}

void backup_chain_needed(const struct backup_entry *e, size_t n, const bool *keep, bool *needed)
{
	for (size_t i = 0; i < n; i++)
		needed[i] = false;
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		/* At most n steps: a cycle in a damaged index cannot loop. */
		size_t j = i, steps = 0;
		while (!needed[j] && steps++ <= n) {
			needed[j] = true;
			if (e[j].base < 0 || (size_t)e[j].base >= n)
				break;
			j = (size_t)e[j].base;
		}
	}
}

size_t backup_chain(const struct backup_entry *e, size_t n, size_t i, size_t *out)
{
	size_t k = 0;
	for (size_t j = i; k <= n;) {
		out[k++] = j;
		if (e[j].base < 0 || (size_t)e[j].base >= n || k == n)
			break;
		j = (size_t)e[j].base;
	}
	/* Full first. */
	for (size_t a = 0, b = k ? k - 1 : 0; a < b; a++, b--) {
		size_t x = out[a];
		out[a] = out[b];
		out[b] = x;
	}
	return k;
}

static bool ssh_host_ok(const char *h)
{
	if (!*h || h[0] == '-' || h[strlen(h) - 1] == '@')
		return false;
	for (const char *c = h; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("@.-_[]:", *c)))
			return false;
	return true;
}

bool backup_dest_parse(const char *s, struct backup_dest *out, char *why, size_t whylen)
{
	struct backup_dest d = {0};
	if (strncmp(s, "ssh://", 6) == 0) {
		const char *p = s + 6;
		const char *slash = strchr(p, '/');
		autofree char *hp = slash ? xstrndup(p, (size_t)(slash - p)) : xstrdup(p);
		char *at = strrchr(hp, '@');
		char *colon = strrchr(at ? at : hp, ':');
		if (colon && !strchr(colon, ']')) {
			*colon = '\0';
			char *end;
			long port = strtol(colon + 1, &end, 10);
			if (!colon[1] || *end || port < 1 || port > 65535) {
				snprintf(why, whylen, "a port from 1 to 65535 after the host");
				return false;
			}
			d.port = xstrdup(colon + 1);
		}
		if (!ssh_host_ok(hp)) {
			snprintf(why, whylen,
				 "ssh://[user@]host[:port][/path/to/socket] (a host of letters, "
				 "digits and .-_)");
			free(d.port);
			return false;
		}
		if (slash && slash[1]) {
			if (!fs_path_is_clean_abs(slash)) {
				snprintf(why, whylen,
					 "a clean absolute socket path after the host");
				free(d.port);
				return false;
			}
			d.path = xstrdup(slash);
		}
		d.kind = BACKUP_DEST_SSH;
		d.host = xstrdup(hp);
		*out = d;
		return true;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (!fs_path_is_clean_abs(s + 5)) {
			snprintf(why, whylen, "unix:/absolute/path/to/clbsd.sock");
			return false;
		}
		d.kind = BACKUP_DEST_UNIX;
		d.path = xstrdup(s + 5);
		*out = d;
		return true;
	}
	const char *p = strncmp(s, "file://", 7) == 0 ? s + 7 : s;
	if (!fs_path_is_clean_abs(p) || strcmp(p, "/") == 0) {
		snprintf(why, whylen,
			 "ssh://[user@]host[:port][/socket], unix:/path/to/socket, or a clean "
			 "absolute directory (or file:///dir) other than /");
		return false;
	}
	d.kind = BACKUP_DEST_DIR;
	d.path = xstrdup(p);
	*out = d;
	return true;
}

void backup_dest_release(struct backup_dest *d)
{
	free(d->path);
	free(d->host);
	free(d->port);
	*d = (struct backup_dest){0};
}

static void sh_quote(struct buf *b, const char *w)
{
	buf_addc(b, '\'');
	for (; *w; w++) {
		if (*w == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addc(b, *w);
	}
	buf_addc(b, '\'');
}

void backup_dest_ssh_argv(const struct backup_dest *d, const char *const *args,
			  const char *const *opts, struct strv *argv)
{
	struct buf cmd = BUF_INIT;
	const char *exe = getenv("CLBSD_REMOTE");
	sh_quote(&cmd, exe && *exe ? exe : "clbsd");
	if (d->path) {
		buf_adds(&cmd, " --socket ");
		sh_quote(&cmd, d->path);
	}
	for (size_t i = 0; args[i]; i++) {
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, args[i]);
	}
	buf_addc(&cmd, '\0');
	const char *sshcmd = getenv("CLBSD_SSH_COMMAND");
	if (sshcmd && *sshcmd) {
		strv_push(argv, "/bin/sh");
		strv_push(argv, "-c");
		strv_push_owned(argv, xasprintf("%s \"$@\"", sshcmd));
	}
	strv_push(argv, "ssh");
	strv_push(argv, "-o");
	strv_push(argv, "BatchMode=yes");
	for (size_t i = 0; opts && opts[i]; i++)
		strv_push(argv, opts[i]);
	if (d->port) {
		strv_push(argv, "-p");
		strv_push(argv, d->port);
	}
	strv_push(argv, "--");
	strv_push(argv, d->host);
	strv_push(argv, cmd.data);
	buf_release(&cmd);
}
