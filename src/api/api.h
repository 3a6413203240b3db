/*
 * The HTTP/JSON API (docs/api.md) on the daemon's Unix socket. server.c owns
 * the listener, peer credential checks and reply helpers; routes.def is the
 * route table, router.c dispatches through it (route.c matches, pure);
 * req_decode.c decodes queries and bodies (pure); the other files hold the
 * handlers for one resource each.
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

/*
 * Routing (router.c, routes.def): a handler is called with the route's
 * decoded path parameters and, for a route whose {name} is a container,
 * that container (found by the router, which answers 404 when it is not).
 * Parameters live until the handler returns: keep a copy to use later.
 */
struct route_match;
struct api_args {
	struct container *c; /* CTR routes: the container named by {name} */
	const struct route_match *match;
};
typedef void api_handler(struct daemon *d, struct evhttp_request *req, const struct api_args *a);
/* Route and answer a request whose peer is admitted. */
void api_dispatch(struct daemon *d, struct evhttp_request *req);
/*
 * The labels of req for the metrics (metrics_api_request): its method name
 * and its route's pattern ("unmatched" when no route matches); both
 * strings live as long as the program.
 */
void api_route_label(struct evhttp_request *req, const char **method, const char **route);
/* A path parameter of the route ("name", "ref", "label"), NULL when it has none. */
const char *api_param(const struct api_args *a, const char *name);
/* Query parameter t-like seconds: def when absent; 400 sent and -1 when bad. */
int api_query_seconds(struct evhttp_request *req, const char *key, int def, int *out);
/*
 * The fields= selection (req_decode.h): 0 when absent, 1 with out filled
 * (the caller releases it), -1 with a 400 sent when it does not decode.
 */
struct api_fields;
int api_query_fields(struct evhttp_request *req, struct api_fields *out);

/* The handlers of routes.def, by file. */
/* containers.c */
api_handler api_info, api_stats_all, api_ctr_list, api_ctr_create, api_ctr_get, api_ctr_remove,
	api_ctr_start, api_ctr_stop, api_ctr_restart, api_ctr_kill, api_ctr_wait, api_ctr_undo,
	api_ctr_stats;
/*
 * The container as the API shows it (containers.c): its record, health and
 * undo state; with a selection f (NULL: everything), only the members it
 * names, and "stats" (api_container_stats, null when not running) when it
 * names that.
 */
json_t *api_ctr_json(struct container *c);
json_t *api_ctr_json_fields(struct container *c, const struct api_fields *f);
/* patch_route.c: PATCH /v1/containers/NAME */
api_handler api_ctr_patch, api_decl_create, api_decl_remove, api_config_diff;
/* exec_route.c, logs.c */
api_handler api_container_exec, api_container_attach, api_container_logs;
/* snapshots.c: snapshots, rollback, clone, export, import */
api_handler api_snapshot_list, api_snapshot_create, api_snapshot_destroy, api_ctr_rollback,
	api_ctr_clone, api_ctr_export, api_import, api_import_commit, api_import_abort,
	api_decl_moved, api_decl_unmoved;
/* host_route.c: GET /v1/host, POST /v1/host/snapshot (clbsd host export). */
api_handler api_host_get, api_host_snapshot;
/* backup_route.c */
api_handler api_ctr_backup, api_backup_list, api_restore;
/* build_route.c */
api_handler api_build;
/* integrity_route.c */
api_handler api_ctr_verify;
/* networks.c */
api_handler api_net_list, api_net_create, api_net_inspect, api_net_remove, api_container_doctor;
/* images.c */
api_handler api_image_list, api_image_get, api_image_remove, api_image_import, api_image_forge,
	api_image_load, api_image_pull, api_image_prune, api_image_export, api_image_tag;
/* event_route.c, plan_route.c */
api_handler api_events, api_plan, api_apply, api_status;

/*
 * audit_route.c: the audit record of a request that changes something
 * (every method but GET; docs/audit.md). server.c begins it with the
 * peer's credentials and ends it with the reply; the router adds the route
 * and the container; a handler may add fields (api_audit_set takes v).
 */
void api_audit_begin(struct daemon *d, struct evhttp_request *req, uid_t uid, gid_t gid, pid_t pid);
void api_audit_route(struct evhttp_request *req, const char *pattern, const struct api_args *a);
void api_audit_set(struct evhttp_request *req, const char *key, json_t *v);
/* The reply is going out with status (body: the JSON answer, or NULL). */
void api_audit_reply(struct evhttp_request *req, int status, const json_t *body);
/* The handler returned: a streamed reply that has started is the answer. */
void api_audit_dispatched(struct evhttp_request *req);
/* The client of req is gone: the record waits under key for the result. */
void api_audit_detach(struct evhttp_request *req, const void *key);
/* The result of the request whose record waits under key (status 0: none). */
void api_audit_keyed(const void *key, int status, const json_t *body);
/*
 * A streamed answer under key (detached from its request when the stream
 * started) is over: status, the JSON of its last line (body; an "error"
 * member is the error), a note when there is no error but something to say.
 */
void api_audit_end(const void *key, int status, const json_t *body, const char *note);
/* req is being given up: its record, if it still has one, says so. */
void api_audit_abandon(struct evhttp_request *req);
/* At shutdown: the records of requests never answered are written as such. */
void api_audit_release_all(void);
/*
 * A request refused before it was read (its peer may not use the socket):
 * an "api.refused" record, at most a few a second per uid, the rest
 * counted in one "suppressed" record. uid (uid_t)-1: the kernel did not say.
 */
void api_audit_refused(struct daemon *d, uid_t uid, gid_t gid, pid_t pid, int status,
		       const char *why);
api_handler api_audit;

json_t *api_container_stats(struct daemon *d, const struct container *c, struct clbsd_err *err);

#endif
