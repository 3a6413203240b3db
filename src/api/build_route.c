/*
 * POST /v1/build: a Cblockfile build (src/daemon/build_run.c), its progress
 * streamed as a chunked reply through the engine's struct progress_sink.
 */
#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

struct build_reply {
	struct evhttp_request *req; /* never used once gone */
	bool gone;
	/* The last line written (bounded): the build's result, for the audit log. */
	char last[4096];
	size_t last_len;
};

static size_t reply_pending(void *ctx)
{
	struct build_reply *r = ctx;
	return r->gone ? 0 : api_output_pending(r->req);
}

static void reply_write(void *ctx, const char *data, size_t n)
{
	struct build_reply *r = ctx;
	/* The result is the last line: {"image":...} or {"error":...}. */
	if (n > 1 && n < sizeof(r->last)) {
		memcpy(r->last, data, n);
		r->last_len = n;
	}
	if (r->gone)
		return;
	struct evbuffer *eb = evbuffer_new();
	evbuffer_add(eb, data, n);
	evhttp_send_reply_chunk(r->req, eb);
	evbuffer_free(eb);
}

static void reply_end(void *ctx)
{
	struct build_reply *r = ctx;
	if (!r->gone) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
		evhttp_send_reply_end(r->req);
	}
	json_t *result = json_loadb(r->last, r->last_len, 0, NULL);
	api_audit_end(r, 200, result,
		      r->gone ? "the client went away before the build ended" : NULL);
	json_decref(result);
	free(r);
}

static void on_closed(struct evhttp_connection *conn, void *arg)
{
	struct build_reply *r = arg;
	r->gone = true;
	api_request_abandon(r->req);
}

void api_build(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct build_reply *r = xcalloc(1, sizeof(*r));
	r->req = req;
	const struct progress_sink sink = {reply_pending, reply_write, reply_end, r};
	const char *kind = json_str(body, "kind");
	int rc;
	if (kind && strcmp(kind, "docker") == 0)
		rc = docker_build_start(d, body, &sink, &err);
	else if (kind && strcmp(kind, "native") != 0)
		rc = clbsd_err_setmsg(&err, CLBSD_E_INVALID, EINVAL,
				      "build: \"kind\" is native or docker");
	else
		rc = build_start(d, body, &sink, &err);
	if (rc < 0) {
		free(r);
		api_reply_err(req, &err);
	} else {
		/* Before the build's first line: those come from the loop, after this returns. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/x-ndjson");
		evhttp_send_reply_start(req, 200, "OK");
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_closed, r);
		/* The audit record waits for the build's end (reply_end). */
		api_audit_detach(req, r);
	}
	json_decref(body);
}
