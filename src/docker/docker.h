/*
 * The Docker Engine API client (API 1.41, what Debian's docker.io serves):
 * the driver clbsdd drives Docker containers with. The engine
 * (src/daemon/docker_ctr.c) decides what to ask; this folder only speaks
 * the protocol.
 *
 * Layers, and what each may do:
 * - endpoint.c (pure): "unix:///path", "tcp://host:port" (TLS with client
 *   certificates when given), "ssh://[user@]host[:port]".
 * - proto.c (pure): stdcopy framing, label filters, query escaping, and the
 *   mapping of an HTTP status and dockerd's {"message"} to a clbsd_err.
 * - client.c: blocking requests with libcurl. Never called on the event
 *   loop thread: the engine calls it from work_submit() jobs.
 * - stream.c: a blocking request whose answer stays open (a log
 *   follower), handed over piece by piece as it arrives.
 * - reqstream.c: requests whose answer is read as it comes (pull and
 *   build progress), with a body sent from a file as it is read.
 * - context.c: a build context directory as the tar POST /build reads.
 * - hijack.c: exec start's hijacked stream, both ways, on any transport.
 * - follow.c: a thread of its own following GET /events, handing each
 *   event (and "up"/"down" of the endpoint) to a callback ON THAT THREAD;
 *   the callback's owner moves them to its loop.
 *
 * Imports: util/ only. Nothing here knows a container spec.
 *
 * Invariants:
 * - Every request goes to /v1.41/...; the Host header is "localhost" (Go's
 *   server refuses a socket path there).
 * - A 304 answer (start of a running container, stop of a stopped one) is
 *   success.
 * - Errors carry dockerd's message, prefixed with the request and status
 *   ("docker POST /containers/create: 404: No such image: x"); dk_call
 *   hands the status out beside them.
 */
#ifndef CLBSD_DOCKER_H
#define CLBSD_DOCKER_H

#include <clbsd/error.h>
#include "util/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DK_API_VERSION	    "v1.41"
#define DK_DEFAULT_ENDPOINT "unix:///run/docker.sock"

/* The labels that mark what clbsd owns (the Compose way). */
#define DK_LABEL_MANAGED  "org.clbsd.managed"
#define DK_LABEL_NAME	  "org.clbsd.name"
#define DK_LABEL_HASH	  "org.clbsd.spec-hash"
#define DK_LABEL_INSTANCE "org.clbsd.instance"

/* ---- endpoint.c ---- */

enum dk_scheme { DK_UNIX, DK_TCP, DK_SSH };

struct dk_endpoint {
	enum dk_scheme scheme;
	char *text; /* as given */
	char *path; /* UNIX: the socket */
	char *host; /* TCP, SSH */
	int port;   /* TCP: required; SSH: 0 = ssh's default */
	char *user; /* SSH: NULL = ssh's default */
	/* TCP: TLS when ca or cert is set (https); NULL: none. */
	char *tls_ca, *tls_cert, *tls_key;
};

/*
 * Parse an endpoint. tls_* (may be NULL) are only accepted with tcp://; a
 * cert needs its key. 0 with *out filled, or -EINVAL with err saying what
 * was wrong and what is accepted.
 */
int dk_endpoint_parse(const char *uri, const char *tls_ca, const char *tls_cert,
		      const char *tls_key, struct dk_endpoint *out, struct clbsd_err *err);
void dk_endpoint_release(struct dk_endpoint *e);
void dk_endpoint_copy(struct dk_endpoint *dst, const struct dk_endpoint *src);
/* "http://localhost/v1.41" (unix, ssh) or "http[s]://HOST:PORT/v1.41" (tcp); caller frees. */
char *dk_base_url(const struct dk_endpoint *e);
/* The ssh command line for an ssh endpoint (NULL-terminated; strv_free). */
char **dk_ssh_argv(const struct dk_endpoint *e);

/* ---- proto.c ---- */

/*
 * The stdcopy demuxer: [stream, 0, 0, 0, size uint32 BE][payload]. Frames
 * straddle reads: feed whatever arrived; fn gets payload pieces as they
 * come (a frame's payload may come in several calls).
 */
struct dk_demux {
	unsigned char hdr[8];
	size_t hlen;
	uint32_t left;
	int stream;
};
typedef void (*dk_frame_fn)(int stream, const char *data, size_t n, void *arg);
/* 0, or -EPROTO when a header is not stdcopy (a stream byte above 3, nonzero padding). */
int dk_demux_feed(struct dk_demux *m, const char *data, size_t n, dk_frame_fn fn, void *arg);
/* At a frame boundary (nothing half read). */
bool dk_demux_idle(const struct dk_demux *m);

/* {"label":["K=V",...]} for ?filters= (escape it with dk_query_escape); caller frees. */
char *dk_label_filters(char *const *labels);
/* Percent-encode for a query value; caller frees. */
char *dk_query_escape(const char *s);

/*
 * An error from a status and dockerd's body: 400 invalid, 404 not found,
 * 409 conflict, others internal; the message is "WHAT: STATUS: MESSAGE"
 * (the body's "message", or the body itself when it is not JSON). Returns
 * a negative errno.
 */
int dk_err_status(long status, const char *body, size_t len, const char *what,
		  struct clbsd_err *err);
/* dockerd's "0001-01-01T00:00:00Z" and other times to ns (0 for "never"). */
int64_t dk_time_ns(const char *s);

/* ---- client.c ---- */

struct dk_client;
struct dk_client *dk_client_new(const struct dk_endpoint *e);
void dk_client_free(struct dk_client *c);
const struct dk_endpoint *dk_client_endpoint(const struct dk_client *c);

struct dk_resp {
	long status; /* 0 when the endpoint did not answer */
	char *body;  /* NUL-terminated */
	size_t len;
};
void dk_resp_release(struct dk_resp *r);

/*
 * One request, any status. body may be NULL; ctype names its type.
 * timeout_s 0: none. 0 with *resp filled, or -errno with err (kind
 * UNAVAIL) when the endpoint did not answer.
 */
int dk_request(const struct dk_client *c, const char *method, const char *path, const char *ctype,
	       const void *body, size_t len, int timeout_s, struct dk_resp *resp,
	       struct clbsd_err *err);
/*
 * A JSON request: body (may be NULL) encoded, the answer decoded into *out
 * (may be NULL; an empty answer gives NULL). 2xx and 304 are success; other
 * statuses are errors per dk_err_status. *status (may be NULL) gets the status.
 */
int dk_call(const struct dk_client *c, const char *method, const char *path, json_t *body,
	    int timeout_s, json_t **out, long *status, struct clbsd_err *err);

/* ---- stream.c: an answer that stays open ---- */

/* A piece of the body as it came; false stops the transfer. */
typedef bool (*dk_chunk_fn)(const char *data, size_t n, void *arg);
/* Asked about once a second and at each piece: true stops the transfer. */
typedef bool (*dk_stop_fn)(void *arg);
/*
 * GET path and hand its 200 body to fn as it arrives, until dockerd ends
 * it (a logs?follow=1 ends when the container stops) or fn or stop (may be
 * NULL) says to stop: 0 then. An error status is an error per
 * dk_err_status; -errno (kind UNAVAIL) when the endpoint did not answer.
 * No timeout: the answer may rightly stay open for days.
 */
int dk_stream(const struct dk_client *c, const char *path, dk_chunk_fn fn, dk_stop_fn stop,
	      void *arg, struct clbsd_err *err);

/* ---- reqstream.c: answers read as they come, bodies from a file ---- */

/* Gets each piece of a 2xx answer's body; nonzero stops the transfer (and dk_request_stream returns 0). */
typedef int (*dk_data_fn)(const char *data, size_t n, void *arg);
/*
 * One request whose body, when upload_fd >= 0, is that file from its
 * offset to its end (its size from fstat), and whose 2xx answer goes to fn
 * as it arrives. A non-2xx answer is an error as dk_call makes it. No
 * timeout: pulls and builds take what they take.
 */
int dk_request_stream(const struct dk_client *c, const char *method, const char *path,
		      const char *ctype, int upload_fd, dk_data_fn fn, void *arg,
		      struct clbsd_err *err);

/* Newline-delimited JSON (a pull's or build's progress) split into objects. */
#define DK_LINE_MAX (1 << 20)
struct dk_lines {
	struct buf line;
};
/*
 * Feed what arrived; fn gets each complete line that is a JSON object (others
 * are skipped). fn's nonzero return stops and is returned; -EPROTO for a
 * line longer than DK_LINE_MAX.
 */
int dk_lines_feed(struct dk_lines *l, const char *data, size_t n, int (*fn)(json_t *obj, void *arg),
		  void *arg);

/* ---- context.c ---- */

/* The tar of build context dir (see context.c) written to fd. */
int dk_context_tar(const char *dir, int fd, struct clbsd_err *err);

/* ---- hijack.c: a hijacked connection (exec start with a terminal or stdin) ---- */

struct dk_hijack;
/*
 * POST path with the JSON body and "Upgrade: tcp"; on a 101 or 200 answer
 * *out is the connection, whose bytes are the process's stream both ways.
 */
int dk_hijack_open(const struct dk_client *c, const char *path, const char *body,
		   struct dk_hijack **out, struct clbsd_err *err);
/* The descriptor to poll (readable: call dk_hijack_read). */
int dk_hijack_fd(const struct dk_hijack *k);
/* Bytes that arrived with the answer's headers are waiting: read before polling. */
bool dk_hijack_pending(const struct dk_hijack *k);
/* > 0 bytes read, 0 at dockerd's end of stream, -EAGAIN nothing now, -EIO. */
ssize_t dk_hijack_read(struct dk_hijack *k, char *buf, size_t n);
/* All of data, waiting while the socket is full; 0 or -errno. */
int dk_hijack_write(struct dk_hijack *k, const char *data, size_t n);
void dk_hijack_free(struct dk_hijack *k);

/* ---- follow.c: GET /events on a thread ---- */

enum dk_follow_what {
	DK_FOLLOW_UP,	 /* the stream is open (after a start or a reconnect) */
	DK_FOLLOW_DOWN,	 /* it ended or could not be opened; msg says why */
	DK_FOLLOW_EVENT, /* ev is one event (borrowed for the call) */
};
/* Called on the follower's thread. */
typedef void (*dk_follow_fn)(enum dk_follow_what what, json_t *ev, const char *msg, void *arg);
struct dk_follow;
/*
 * Follow events matching filters (JSON as dk_label_filters makes it),
 * reconnecting with since= the last event
 * seen, retry_ms apart while the endpoint is down.
 */
struct dk_follow *dk_follow_start(const struct dk_endpoint *e, const char *filters, int retry_ms,
				  dk_follow_fn fn, void *arg);
/* Stop and join (within about a second). */
void dk_follow_stop(struct dk_follow *f);

#endif
