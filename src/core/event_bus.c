#include "event_bus.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

/* Find the last sequence number in the journal so numbering continues. */
static uint64_t journal_last_seq(const char *path)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size == 0)
		return 0;
	off_t off = st.st_size > 8192 ? st.st_size - 8192 : 0;
	char buf[8193];
	ssize_t n = pread(fd, buf, 8192, off);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The last complete line. */
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	json_t *j = json_loads(line, 0, NULL);
	uint64_t seq = (uint64_t)json_int(j, "seq", 0);
	json_decref(j);
	return seq;
}

void events_init(struct events *ev, const char *journal_path)
{
	memset(ev, 0, sizeof(*ev));
	ev->journal_fd = -1;
	ev->journal = journal_path ? xstrdup(journal_path) : NULL;
	ev->journal_max = 16LL << 20;
	ev->next_seq = 1;
	if (ev->journal) {
		uint64_t last = journal_last_seq(ev->journal);
		if (last == 0) {
			autofree char *old = xasprintf("%s.1", ev->journal);
			last = journal_last_seq(old);
		}
		ev->next_seq = last + 1;
	}
	ev->ring_first = ev->next_seq;
}

static void rec_release(struct event_rec *e)
{
	free(e->type);
	free(e->container);
	json_decref(e->attrs);
	memset(e, 0, sizeof(*e));
}

static void journal_close(struct events *ev)
{
	if (ev->journal_fd >= 0)
		close(ev->journal_fd);
	ev->journal_fd = -1;
}

void events_release(struct events *ev)
{
	for (size_t i = 0; i < EVENTS_RING; i++)
		rec_release(&ev->ring[i]);
	struct events_sub *s = ev->subs;
	while (s) {
		struct events_sub *n = s->next;
		free(s);
		s = n;
	}
	journal_close(ev);
	free(ev->journal);
	memset(ev, 0, sizeof(*ev));
	ev->journal_fd = -1;
}

json_t *event_to_json(const struct event_rec *e)
{
	json_t *j = json_pack("{s:I,s:o,s:s}", "seq", (json_int_t)e->seq, "time",
			      json_time(e->time_ns), "type", e->type);
	json_object_set_new(j, "container", e->container ? json_string(e->container) : json_null());
	json_object_set_new(j, "attrs", e->attrs ? json_incref(e->attrs) : json_object());
	return j;
}

/* The journal stays open between events (a start publishes three). */
static int journal_open(struct events *ev)
{
	if (ev->journal_fd >= 0)
		return 0;
	ev->journal_fd = open(ev->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (ev->journal_fd < 0)
		return -errno;
	struct stat st;
	ev->journal_size = fstat(ev->journal_fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void journal_append(struct events *ev, const struct event_rec *e)
{
	if (!ev->journal)
		return;
	int r = journal_open(ev);
	if (r == 0 && ev->journal_size > ev->journal_max) {
		autofree char *old = xasprintf("%s.1", ev->journal);
		rename(ev->journal, old);
		journal_close(ev);
		r = journal_open(ev);
	}
	if (r < 0) {
		log_warn("events", NULL, "journal %s: %s", ev->journal, strerror(-r));
		return;
	}
	json_t *j = event_to_json(e);
	autofree char *line = json_line(j);
	json_decref(j);
	size_t n = strlen(line);
	line[n] = '\n';
	if (write_all(ev->journal_fd, line, n + 1) < 0) {
		log_warn("events", NULL, "journal %s: %s", ev->journal, strerror(errno));
		journal_close(ev);
		return;
	}
	ev->journal_size += (int64_t)n + 1;
}

void events_publish(struct events *ev, const char *type, const char *container, json_t *attrs)
{
	struct event_rec *e = &ev->ring[ev->next_seq % EVENTS_RING];
	rec_release(e);
	e->seq = ev->next_seq++;
	e->time_ns = time_now_ns();
	e->type = xstrdup(type);
	e->container = container ? xstrdup(container) : NULL;
	e->attrs = attrs ? attrs : json_object();
	journal_append(ev, e);
	log_debug("events", container, "%s", type);
	struct events_sub *s = ev->subs;
	while (s) {
		/* A subscriber may unsubscribe itself from its callback. */
		struct events_sub *n = s->next;
		s->fn(e, s->ctx);
		s = n;
	}
}

struct events_sub *events_subscribe(struct events *ev, events_sub_fn fn, void *ctx)
{
	struct events_sub *s = xcalloc(1, sizeof(*s));
	s->fn = fn;
	s->ctx = ctx;
	s->next = ev->subs;
	ev->subs = s;
	return s;
}

void events_unsubscribe(struct events *ev, struct events_sub *sub)
{
	for (struct events_sub **p = &ev->subs; *p; p = &(*p)->next) {
		if (*p == sub) {
			*p = sub->next;
			free(sub);
			return;
		}
	}
}

/* Events with since < seq < below from one journal file, oldest first. */
static void replay_file(const char *path, uint64_t since, uint64_t below, events_sub_fn fn,
			void *ctx)
{
	autofclose FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		uint64_t seq = (uint64_t)json_int(j, "seq", 0);
		const char *type = json_str(j, "type");
		if (seq > since && seq < below && type) {
			struct event_rec e = {
				.seq = seq,
				.time_ns = json_time_get(j, "time"),
				.type = (char *)(uintptr_t)type,
				.container = (char *)(uintptr_t)json_str(j, "container"),
				.attrs = json_object_get(j, "attrs"),
			};
			if (!json_is_object(e.attrs))
				e.attrs = NULL;
			fn(&e, ctx);
		}
		json_decref(j);
	}
	free(line);
}

void events_replay(struct events *ev, uint64_t since, events_sub_fn fn, void *ctx)
{
	/* The oldest event the ring holds: none from before this daemon started. */
	uint64_t first = ev->next_seq > EVENTS_RING ? ev->next_seq - EVENTS_RING : 1;
	if (first < ev->ring_first)
		first = ev->ring_first;
	/* Older than the ring: the journal still has them, across restarts too. */
	if (since + 1 < first && ev->journal) {
		autofree char *old = xasprintf("%s.1", ev->journal);
		replay_file(old, since, first, fn, ctx);
		replay_file(ev->journal, since, first, fn, ctx);
	}
	if (since + 1 > first)
		first = since + 1;
	for (uint64_t s = first; s < ev->next_seq; s++) {
		struct event_rec *e = &ev->ring[s % EVENTS_RING];
		if (e->seq == s)
			fn(e, ctx);
	}
}
