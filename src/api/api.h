/*
 * The HTTP/JSON API (docs/api.md) on the daemon's Unix socket. server.c owns
 * the listener, peer credential checks, routing and reply helpers; the other
 * files hold the handlers for one resource each.
 *
 * Handlers run on the loop thread. A handler either replies before returning
 * or keeps the request in a struct api_pending and replies later; the
 * pending record notices a client that went away so no freed request is used.
 */
#ifndef CLBSD_API_H
#define CLBSD_API_H

#include "daemon/daemon.h"

#include <event2/http.h>
#include <jansson.h>

/*
 * Limits of the socket (docs/api.md, "Limits"). A connection is admitted only
 * after its peer credentials are checked; it must then send a whole request
 * (head and body) within API_REQUEST_TIMEOUT_S, and again after each reply
 * on a kept-alive connection. Past a connection limit the oldest idle
 * connection gives way; when none is idle the new one is refused with 503.
 */
#define API_HEADER_MAX	      (64 << 10) /* request line and headers, 413 past it */
#define API_BODY_MAX	      (4 << 20)	 /* JSON bodies; 413 past it */
#define API_REQUEST_TIMEOUT_S 10
#define API_CONN_MAX	      1024 /* all connections (root may use all) */
#define API_CONN_PER_UID      128  /* each uid other than root */
#define API_ACCEPT_BACKOFF_MS 200  /* accept paused after EMFILE and the like */
/* Streams (logs, events): the reply buffered for one slow reader. */
#define API_STREAM_HIGH_WATER (1 << 20)
#define API_STREAM_LOW_WATER  (256 << 10)
/* Bytes queued for the client of req (0 when it is gone). */
size_t api_output_pending(struct evhttp_request *req);
/*
 * For the close callback of a connection whose request is not answered yet:
 * frees req when evhttp left it behind (the client went away mid-reply).
 * req must not be used after.
 */
void api_request_abandon(struct evhttp_request *req);

struct api_pending {
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	bool gone;
	struct daemon *d;
	void *data;
	struct api_pending *prev, *next; /* every record not answered or freed yet */
};

int api_listen(struct daemon *d, struct clbsd_err *err);
void api_close(struct daemon *d);

/* Replies (take ownership of body). */
void api_reply_json(struct evhttp_request *req, int status, json_t *body);
void api_reply_err(struct evhttp_request *req, const struct clbsd_err *err);
void api_reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void api_reply_empty(struct evhttp_request *req, int status);
/* The request body as JSON (400 sent and NULL returned when it is not). */
json_t *api_body_json(struct evhttp_request *req);
/* A query parameter (NULL when absent); caller frees. */
char *api_query(struct evhttp_request *req, const char *key);
bool api_query_bool(struct evhttp_request *req, const char *key);

struct api_pending *api_pending_new(struct daemon *d, struct evhttp_request *req);
/* Reply through a pending record (no-op when the client is gone) and free it. */
void api_pending_json(struct api_pending *p, int status, json_t *body);
void api_pending_err(struct api_pending *p, const struct clbsd_err *err);
void api_pending_free(struct api_pending *p);
/*
 * At shutdown, after api_close and after everything that could still answer
 * has been released: frees the records nobody answered (a waiter list a
 * container dropped unfired, say). Their clients are gone with evhttp.
 */
void api_pending_release_all(void);

/* Handlers. `id` is the decoded path part after the collection (may be NULL). */
void api_info(struct daemon *d, struct evhttp_request *req);
void api_containers(struct daemon *d, struct evhttp_request *req, const char *id,
		    const char *action);
void api_container_logs(struct daemon *d, struct evhttp_request *req, struct container *c);
void api_container_exec(struct daemon *d, struct evhttp_request *req, struct container *c);
/* The container as the API shows it (containers.c): its record and health. */
json_t *api_ctr_json(struct container *c);
/* POST /v1/import (snapshots.c). */
void api_import(struct daemon *d, struct evhttp_request *req);
/* Snapshots, rollback, clone, export (snapshots.c): true when the request was one of them. */
bool api_container_storage(struct daemon *d, struct evhttp_request *req, struct container *c,
			   const char *action);
void api_stats_all(struct daemon *d, struct evhttp_request *req);
/* build_route.c */
void api_build(struct daemon *d, struct evhttp_request *req);
/* networks.c */
void api_networks(struct daemon *d, struct evhttp_request *req, const char *id);
void api_container_doctor(struct daemon *d, struct evhttp_request *req, struct container *c);
void api_images(struct daemon *d, struct evhttp_request *req, const char *ref);
void api_events(struct daemon *d, struct evhttp_request *req);
void api_plan(struct daemon *d, struct evhttp_request *req);
void api_apply(struct daemon *d, struct evhttp_request *req);
void api_status(struct daemon *d, struct evhttp_request *req);

json_t *api_container_stats(struct daemon *d, struct container *c, struct clbsd_err *err);

#endif
