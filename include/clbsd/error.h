/*
 * clbsd error contract.
 *
 * Fallible functions return 0 or a negative errno and take a
 * `struct clbsd_err *err` as their last parameter. The struct lives on the
 * caller's stack (no allocation), so it stays usable after fork() and under
 * memory pressure. Layers add context on the way up with clbsd_err_prefix();
 * the layer that decides what to do logs or reports it.
 */
#ifndef CLBSD_ERROR_H
#define CLBSD_ERROR_H

#include <stddef.h>

#define CLBSD_ERR_MSG_MAX 1024

/* Error classes, used by the API to choose an HTTP status. */
enum clbsd_err_kind {
	CLBSD_E_NONE = 0,
	CLBSD_E_INTERNAL,  /* 500: a bug or a host failure */
	CLBSD_E_INVALID,   /* 400: bad input */
	CLBSD_E_NOTFOUND,  /* 404 */
	CLBSD_E_CONFLICT,  /* 409: wrong state, name taken, in use */
	CLBSD_E_FORBIDDEN, /* 403 */
	CLBSD_E_TIMEOUT,   /* 504 */
	CLBSD_E_UNAVAIL,   /* 503: a needed part is missing on the host */
};

struct clbsd_err {
	int code;		  /* positive errno, 0 when none */
	enum clbsd_err_kind kind; /* class for API mapping */
	char msg[CLBSD_ERR_MSG_MAX];
};

/* Clear an error struct. */
void clbsd_err_init(struct clbsd_err *err);

/*
 * Record an error. `code` is a positive or negative errno (the sign is
 * ignored); when non-zero, ": strerror(code)" is appended to the message.
 * Returns the negative errno (or -EIO when code is 0) so callers can write
 * `return clbsd_err_set(err, CLBSD_E_INVALID, EINVAL, "bad %s", x);`.
 */
int clbsd_err_set(struct clbsd_err *err, enum clbsd_err_kind kind, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Like clbsd_err_set() without the strerror suffix. */
int clbsd_err_setmsg(struct clbsd_err *err, enum clbsd_err_kind kind, int code, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

/* Prepend context: "context: previous message". Returns -code. */
int clbsd_err_prefix(struct clbsd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Short stable name of an error kind ("invalid", "not_found", ...). */
const char *clbsd_err_kind_name(enum clbsd_err_kind kind);

#endif
