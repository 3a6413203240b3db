/*
 * clbsd client library: talk to clbsdd over its Unix socket (HTTP/1.1 +
 * JSON, see docs/api.md).
 *
 * Invariants: a client handle is used by one thread at a time. Bodies are
 * passed and returned as JSON text (NUL-terminated), so this header needs no
 * JSON library. Every fallible function follows <clbsd/error.h>; a failure
 * answered by the daemon carries the daemon's message, the error kind that
 * matches the HTTP status (400 -> CLBSD_E_INVALID, 404 -> CLBSD_E_NOTFOUND,
 * ...) and the status itself through the `status` out-parameter. A failure to
 * reach the daemon at all is CLBSD_E_UNAVAIL with status 0 and a message that
 * names the socket path.
 */
#ifndef CLBSD_CLIENT_H
#define CLBSD_CLIENT_H

#include <clbsd/error.h>

#include <stddef.h>

/* Default API socket; the environment variable CLBSD_SOCKET overrides it. */
#define CLBSD_DEFAULT_SOCKET "/run/clbsd/clbsd.sock"

/* An opaque connection handle (libcurl easy handle + socket path). */
struct clbsd_client;

/* Make a client for the daemon listening on `socket_path` (copied). Never NULL. */
struct clbsd_client *clbsd_client_new(const char *socket_path);
void clbsd_client_free(struct clbsd_client *c);
/* The socket path the client talks to (borrowed). */
const char *clbsd_client_socket(const struct clbsd_client *c);

/*
 * One request: `method` ("GET", "POST", "DELETE"), `path` below the API root
 * ("/v1/containers/web/start?hold=1"), `body` JSON text or NULL.
 * On a 2xx answer returns 0, sets *resp (when not NULL) to the body text
 * (caller frees; "" for an empty body) and *status (when not NULL).
 * On any other answer or failure returns a negative errno, fills `err`, and
 * sets *status (when not NULL) to the HTTP status (0 when no answer came).
 */
int clbsd_client_request(struct clbsd_client *c, const char *method, const char *path,
			 const char *body, char **resp, long *status, struct clbsd_err *err);

/*
 * clbsd_client_request() in two halves: send now, read the answer later
 * (`clbsd run` asks to hear of the exit before it attaches, so the answer is
 * ready when the container is done). clbsd_client_send() returns the
 * connection (or a negative errno); clbsd_client_finish() reads the answer
 * on it, closes it and returns as clbsd_client_request() does.
 */
int clbsd_client_send(struct clbsd_client *c, const char *method, const char *path,
		      const char *body, struct clbsd_err *err);
int clbsd_client_finish(struct clbsd_client *c, int fd, char **resp, long *status,
			struct clbsd_err *err);

/*
 * Called with each chunk of a streamed 2xx body as it arrives. Return 0 to
 * go on, anything else to stop the stream (clbsd_client_stream then returns 0).
 */
typedef int (*clbsd_stream_fn)(const char *data, size_t len, void *ctx);

/*
 * A GET whose body is handed to `fn` as it arrives (logs with follow, the
 * event stream). Returns 0 when the daemon ends the stream or `fn` stops it;
 * a non-2xx answer is an error as for clbsd_client_request().
 */
int clbsd_client_stream(struct clbsd_client *c, const char *path, clbsd_stream_fn fn, void *ctx,
			long *status, struct clbsd_err *err);
/* clbsd_client_stream() with another method and a body (a build's progress). */
int clbsd_client_stream_req(struct clbsd_client *c, const char *method, const char *path,
			    const char *body, clbsd_stream_fn fn, void *ctx, long *status,
			    struct clbsd_err *err);

/*
 * Percent-encode one path segment or query value (everything outside
 * [A-Za-z0-9._~:-]). Caller frees.
 */
char *clbsd_client_escape(const char *s);

#endif
