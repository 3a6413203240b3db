/*
 * GET /v1/events: newline-delimited JSON, kept open. Buffered events newer
 * than ?since=SEQ are replayed first.
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
};

static void send_event(const struct event_rec *e, void *arg)
{
	struct evstream *s = arg;
	json_t *j = event_to_json(e);
	autofree char *line = json_line(j);
	json_decref(j);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\n", 1);
	evhttp_send_reply_chunk(s->req, out);
	evbuffer_free(out);
}

static void closed(struct evhttp_connection *conn, void *arg)
{
	struct evstream *s = arg;
	events_unsubscribe(&s->d->events, s->sub);
	free(s);
}

void api_events(struct daemon *d, struct evhttp_request *req)
{
	autofree char *since = api_query(req, "since");
	long long seq = -1;
	if (since && parse_int(since, 0, INT64_MAX, &seq) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"since=%s is not an event sequence number", since);
		return;
	}
	struct evstream *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->req = req;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/x-ndjson");
	evhttp_send_reply_start(req, 200, "OK");
	if (seq >= 0)
		events_replay(&d->events, (uint64_t)seq, send_event, s);
	s->sub = events_subscribe(&d->events, send_event, s);
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), closed, s);
}
