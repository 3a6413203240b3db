/*
 * Docker endpoints as the docker CLI spells them (pure): unix://, tcp://
 * (TLS with client certificates), ssh://. A host or user reaches ssh's argv,
 * so both are checked to a strict alphabet and may not start with '-'.
 */
#include "docker/docker.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int bad(struct clbsd_err *err, const char *uri, const char *why)
{
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"docker endpoint \"%s\": %s (expected unix:///PATH, "
				"tcp://HOST:PORT or ssh://[USER@]HOST[:PORT])",
				uri, why);
}

static bool host_ok(const char *h)
{
	if (!*h || *h == '-' || strlen(h) > 253)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == ':'))
			return false;
	return true;
}

static bool user_ok(const char *u)
{
	if (!*u || *u == '-' || strlen(u) > 32)
		return false;
	for (const char *p = u; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

/* "HOST[:PORT]" or "[V6][:PORT]" into host and port (0 when absent). */
static bool split_host_port(const char *s, char **host, int *port)
{
	const char *colon;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			return false;
		*host = xstrndup(s + 1, (size_t)(end - s - 1));
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon) {
			free(*host);
			return false;
		}
	} else {
		colon = strrchr(s, ':');
		*host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
	}
	*port = 0;
	if (colon) {
		long long v;
		if (parse_int(colon + 1, 1, 65535, &v) < 0) {
			free(*host);
			return false;
		}
		*port = (int)v;
	}
	if (!host_ok(*host)) {
		free(*host);
		return false;
	}
	return true;
}

int dk_endpoint_parse(const char *uri, const char *tls_ca, const char *tls_cert,
		      const char *tls_key, struct dk_endpoint *out, struct clbsd_err *err)
{
	struct dk_endpoint e = {0};
	bool tls = tls_ca || tls_cert || tls_key;
	if (!uri || !*uri)
		return bad(err, "", "empty");
	if (strncmp(uri, "unix://", 7) == 0) {
		const char *p = uri + 7;
		if (!fs_path_is_clean_abs(p) || strcmp(p, "/") == 0)
			return bad(err, uri, "a unix socket needs a clean absolute path");
		if (tls)
			return bad(err, uri, "TLS certificates go with tcp:// only");
		e.scheme = DK_UNIX;
		e.path = xstrdup(p);
	} else if (strncmp(uri, "tcp://", 6) == 0) {
		const char *p = uri + 6;
		size_t n = strlen(p);
		if (n && p[n - 1] == '/')
			n--;
		autofree char *hp = xstrndup(p, n);
		if (strchr(hp, '/') || strchr(hp, '@'))
			return bad(err, uri, "tcp:// takes HOST:PORT and nothing else");
		if (!split_host_port(hp, &e.host, &e.port))
			return bad(err, uri, "bad host or port");
		if (!e.port)
			e.port = tls ? 2376 : 2375; /* the docker CLI's defaults */
		if ((tls_cert != NULL) != (tls_key != NULL)) {
			free(e.host);
			return bad(err, uri,
				   "a TLS client certificate needs its key (:tls-cert and "
				   ":tls-key together)");
		}
		e.scheme = DK_TCP;
	} else if (strncmp(uri, "ssh://", 6) == 0) {
		const char *p = uri + 6;
		if (tls)
			return bad(err, uri, "TLS certificates go with tcp:// only");
		const char *at = strchr(p, '@');
		if (at) {
			e.user = xstrndup(p, (size_t)(at - p));
			if (!user_ok(e.user)) {
				free(e.user);
				return bad(err, uri, "bad user name");
			}
			p = at + 1;
		}
		if (strchr(p, '/') || !split_host_port(p, &e.host, &e.port)) {
			free(e.user);
			return bad(err, uri, "bad host or port");
		}
		e.scheme = DK_SSH;
	} else {
		return bad(err, uri, "unknown scheme");
	}
	e.text = xstrdup(uri);
	if (e.scheme == DK_TCP) {
		e.tls_ca = tls_ca ? xstrdup(tls_ca) : NULL;
		e.tls_cert = tls_cert ? xstrdup(tls_cert) : NULL;
		e.tls_key = tls_key ? xstrdup(tls_key) : NULL;
	}
	*out = e;
	return 0;
}

void dk_endpoint_release(struct dk_endpoint *e)
{
	free(e->text);
	free(e->path);
	free(e->host);
	free(e->user);
	free(e->tls_ca);
	free(e->tls_cert);
	free(e->tls_key);
	*e = (struct dk_endpoint){0};
}

static char *dup0(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void dk_endpoint_copy(struct dk_endpoint *dst, const struct dk_endpoint *src)
{
	*dst = (struct dk_endpoint){
		.scheme = src->scheme,
		.text = dup0(src->text),
		.path = dup0(src->path),
		.host = dup0(src->host),
		.port = src->port,
		.user = dup0(src->user),
		.tls_ca = dup0(src->tls_ca),
		.tls_cert = dup0(src->tls_cert),
		.tls_key = dup0(src->tls_key),
	};
}

char *dk_base_url(const struct dk_endpoint *e)
{
	if (e->scheme != DK_TCP)
		return xstrdup("http://localhost/" DK_API_VERSION);
	bool v6 = strchr(e->host, ':') != NULL;
	return xasprintf("%s://%s%s%s:%d/" DK_API_VERSION,
			 e->tls_ca || e->tls_cert ? "https" : "http", v6 ? "[" : "", e->host,
			 v6 ? "]" : "", e->port);
}

char **dk_ssh_argv(const struct dk_endpoint *e)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "ssh");
	/* No prompt can be answered: fail instead of hanging a worker. */
	strv_push(&v, "-o");
	strv_push(&v, "BatchMode=yes");
	if (e->port) {
		strv_push(&v, "-p");
		strv_push_owned(&v, xasprintf("%d", e->port));
	}
	if (e->user) {
		strv_push(&v, "-l");
		strv_push(&v, e->user);
	}
	strv_push(&v, "--");
	strv_push(&v, e->host);
	strv_push(&v, "docker");
	strv_push(&v, "system");
	strv_push(&v, "dial-stdio");
	return v.v;
}
