#include "core/event_bus.h"
#include "test.h"
#include "util/json.h"
#include "util/util.h"

#include <unistd.h>

struct seen {
	int n;
	uint64_t last;
	char types[8][32];
};

static void collect(const struct event_rec *e, void *ctx)
{
	struct seen *s = ctx;
	if (s->n < 8)
		snprintf(s->types[s->n], sizeof(s->types[0]), "%s", e->type);
	s->n++;
	s->last = e->seq;
}

TEST(publish_and_subscribe)
{
	struct events ev;
	events_init(&ev, NULL);
	struct seen s = {0};
	struct events_sub *sub = events_subscribe(&ev, collect, &s);
	events_publish(&ev, "container.started", "web", json_pack("{s:i}", "pid", 7));
	events_publish(&ev, "container.exited", "web", NULL);
	CHECK_INT(s.n, 2);
	CHECK_INT(s.last, 2);
	CHECK_STR(s.types[0], "container.started");
	events_unsubscribe(&ev, sub);
	events_publish(&ev, "container.removed", "web", NULL);
	CHECK_INT(s.n, 2);
	events_release(&ev);
}

TEST(replay_since)
{
	struct events ev;
	events_init(&ev, NULL);
	for (int i = 0; i < 5; i++)
		events_publish(&ev, "timer.fired", NULL, NULL);
	struct seen s = {0};
	events_replay(&ev, 3, collect, &s);
	CHECK_INT(s.n, 2);
	CHECK_INT(s.last, 5);
	events_release(&ev);
}

TEST(ring_keeps_the_newest)
{
	struct events ev;
	events_init(&ev, NULL);
	for (int i = 0; i < EVENTS_RING + 10; i++)
		events_publish(&ev, "timer.fired", NULL, NULL);
	struct seen s = {0};
	events_replay(&ev, 0, collect, &s);
	CHECK_INT(s.n, EVENTS_RING);
	CHECK_INT(s.last, EVENTS_RING + 10);
	events_release(&ev);
}

TEST(journal_continues_sequence)
{
	char path[] = "/tmp/clbsd-events-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	struct events ev;
	events_init(&ev, path);
	events_publish(&ev, "daemon.started", NULL, NULL);
	events_publish(&ev, "container.created", "db", json_pack("{s:s}", "image", "forge"));
	events_release(&ev);
	events_init(&ev, path);
	struct seen s = {0};
	events_subscribe(&ev, collect, &s);
	events_publish(&ev, "daemon.started", NULL, NULL);
	CHECK_INT(s.last, 3);
	events_release(&ev);
	char *text;
	struct clbsd_err err;
	CHECK_INT(fs_read_file(path, &text, NULL, &err), 0);
	CHECK(strstr(text, "\"container\":\"db\"") != NULL);
	CHECK(strstr(text, "\"seq\":3") != NULL);
	free(text);
	unlink(path);
}

TEST(replay_from_journal_after_restart)
{
	char path[] = "/tmp/clbsd-events-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	struct events ev;
	events_init(&ev, path);
	events_publish(&ev, "container.created", "a", json_pack("{s:s}", "image", "forge"));
	events_publish(&ev, "container.started", "a", NULL);
	events_publish(&ev, "container.exited", "a", NULL);
	events_release(&ev);
	/* A new run: its ring is empty, the journal is not. */
	events_init(&ev, path);
	events_publish(&ev, "daemon.started", NULL, NULL);
	struct seen s = {0};
	events_replay(&ev, 1, collect, &s);
	CHECK_INT(s.n, 3);
	CHECK_STR(s.types[0], "container.started");
	CHECK_STR(s.types[2], "daemon.started");
	CHECK_INT(s.last, 4);
	events_release(&ev);
	unlink(path);
}

TEST_MAIN_BEGIN("events")
RUN(publish_and_subscribe);
RUN(replay_since);
RUN(ring_keeps_the_newest);
RUN(journal_continues_sequence);
RUN(replay_from_journal_after_restart);
TEST_MAIN_END
