#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void clbsd_err_init(struct clbsd_err *err)
{
	err->code = 0;
	err->kind = CLBSD_E_NONE;
	err->msg[0] = '\0';
}

static int vset(struct clbsd_err *err, enum clbsd_err_kind kind, int code, int with_errno,
		const char *fmt, va_list ap)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	err->code = code;
	err->kind = kind;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
	}
	return -code;
}

int clbsd_err_set(struct clbsd_err *err, enum clbsd_err_kind kind, int code, const char *fmt, ...)
{
	va_list ap;
	int with_errno = code != 0;
	va_start(ap, fmt);
	int r = vset(err, kind, code, with_errno, fmt, ap);
	va_end(ap);
	return r;
}

int clbsd_err_setmsg(struct clbsd_err *err, enum clbsd_err_kind kind, int code, const char *fmt,
		     ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vset(err, kind, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int clbsd_err_prefix(struct clbsd_err *err, const char *fmt, ...)
{
	char old[CLBSD_ERR_MSG_MAX];
	char pre[CLBSD_ERR_MSG_MAX];
	va_list ap;

	memcpy(old, err->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	size_t n = strlen(pre);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, pre, n);
	memcpy(err->msg + n, ": ", 2);
	size_t left = sizeof(err->msg) - n - 3;
	size_t ol = strlen(old);
	if (ol > left)
		ol = left;
	memcpy(err->msg + n + 2, old, ol);
	err->msg[n + 2 + ol] = '\0';
	if (err->code == 0)
		err->code = EIO;
	if (err->kind == CLBSD_E_NONE)
		err->kind = CLBSD_E_INTERNAL;
	return -err->code;
}

const char *clbsd_err_kind_name(enum clbsd_err_kind kind)
{
	switch (kind) {
	case CLBSD_E_NONE:
		return "none";
	case CLBSD_E_INTERNAL:
		return "internal";
	case CLBSD_E_INVALID:
		return "invalid";
	case CLBSD_E_NOTFOUND:
		return "not_found";
	case CLBSD_E_CONFLICT:
		return "conflict";
	case CLBSD_E_FORBIDDEN:
		return "forbidden";
	case CLBSD_E_TIMEOUT:
		return "timeout";
	case CLBSD_E_UNAVAIL:
		return "unavailable";
	}
	return "internal";
}
