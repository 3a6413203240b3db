/*
 * GET /v1/events[?since=SEQ][&follow=1][&container=NAME][&type=T]:
 * newline-delimited JSON. Events after SEQ are replayed first (from the
 * ring, or the journal when older); without follow the stream then ends,
 * with follow it stays open for new events. Without since, follow starts
 * with new events only and a plain request replays what is buffered. type
 * matches an event type or a prefix of dotted parts ("container" matches
 * "container.started").
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

struct evstream {
	struct daemon *d;
	struct evhttp_request *req;
	struct events_sub *sub;
	char *container;
	char *type;
	bool live; /* replay done: events come from the bus as they happen */
	/* Events dropped for this reader while it was too slow, and their range. */
	uint64_t dropped, drop_first, drop_last;
	struct event *drain; /* polls for the reader to catch up while dropping */
};

static bool wanted(const struct evstream *s, const struct event_rec *e)
{
	if (s->container && (!e->container || strcmp(s->container, e->container) != 0))
		return false;
	if (s->type) {
		size_t n = strlen(s->type);
		if (strncmp(e->type, s->type, n) != 0 ||
		    (e->type[n] && e->type[n] != '.' && s->type[n - 1] != '.'))
			return false;
	}
	return true;
}

static void send_line(struct evstream *s, json_t *j)
{
	autofree char *line = json_line(j);
	json_decref(j);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\n", 1);
	evhttp_send_reply_chunk(s->req, out);
	evbuffer_free(out);
}

static void send_dropped(struct evstream *s)
{
	send_line(s, json_pack("{s:I,s:o,s:s,s:n,s:{s:I,s:I,s:I}}", "seq", (json_int_t)0, "time",
			       json_time(time_now_ns()), "type", "events.dropped", "container",
			       "attrs", "dropped", (json_int_t)s->dropped, "first_seq",
			       (json_int_t)s->drop_first, "last_seq", (json_int_t)s->drop_last));
	s->dropped = 0;
}

/* The reader caught up with no new event to carry the news: say it now. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct evstream *s = arg;
	if (!s->dropped)
		return;
	if (api_output_pending(s->req) > API_STREAM_LOW_WATER) {
		struct timeval tv = {0, 100000};
		evtimer_add(s->drain, &tv);
		return;
	}
	send_dropped(s);
}

/*
 * The bus never waits for a reader: one that does not keep up loses events
 * once API_STREAM_HIGH_WATER bytes are queued for it, until it is back under
 * the low mark; then an "events.dropped" line says how many and which
 * sequence numbers (a client can ask for them again with since=).
 */
static void send_event(const struct event_rec *e, void *arg)
{
	struct evstream *s = arg;
	if (!wanted(s, e))
		return;
	if (s->live) {
		size_t queued = api_output_pending(s->req);
		if (queued > (s->dropped ? API_STREAM_LOW_WATER : API_STREAM_HIGH_WATER)) {
			if (!s->dropped++) {
				s->drop_first = e->seq;
				/* Once per stretch of drops: the reader sets the pace. */
				log_debug("api", NULL,
					  "an event follower is %zu bytes behind: dropping its "
					  "events from seq %llu until it catches up",
					  queued, (unsigned long long)e->seq);
				struct timeval tv = {0, 100000};
				evtimer_add(s->drain, &tv);
			}
			s->drop_last = e->seq;
			return;
		}
		if (s->dropped)
			send_dropped(s);
	}
	send_line(s, event_to_json(e));
}

static void stream_free(struct evstream *s)
{
	if (s->sub)
		events_unsubscribe(&s->d->events, s->sub);
	if (s->drain)
		event_free(s->drain);
	free(s->container);
	free(s->type);
	free(s);
}

static void closed(struct evhttp_connection *conn, void *arg)
{
	struct evstream *s = arg;
	api_request_abandon(s->req);
	stream_free(s);
}

void api_events(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	autofree char *since = api_query(req, "since");
	long long seq = -1;
	if (since && parse_int(since, 0, INT64_MAX, &seq) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"since=%s is not an event sequence number", since);
		return;
	}
	bool follow = api_query_bool(req, "follow");
	struct evstream *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->req = req;
	s->container = api_query(req, "container");
	s->type = api_query(req, "type");
	if (s->type && !*s->type) {
		free(s->type);
		s->type = NULL;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/x-ndjson");
	evhttp_send_reply_start(req, 200, "OK");
	if (seq >= 0 || !follow)
		events_replay(&d->events, seq >= 0 ? (uint64_t)seq : 0, send_event, s);
	if (!follow) {
		evhttp_send_reply_end(req);
		stream_free(s);
		return;
	}
	s->live = true;
	s->drain = evtimer_new(d->base, on_drain, s);
	s->sub = events_subscribe(&d->events, send_event, s);
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), closed, s);
}
