/*
 * Blocking Engine API requests with libcurl, one easy handle per request
 * (a Unix socket connect costs microseconds; a handle shared across worker
 * threads would need a lock around every call).
 *
 * ssh:// runs `ssh HOST docker system dial-stdio` per connection, as the
 * docker CLI does, with libcurl's connection as its stdin and stdout (see
 * ssh_open). The ssh process ends when libcurl closes its end.
 */
#include "docker/dk_internal.h"
#include "util/util.h"

#include "util/curl_lib.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct dk_client {
	struct dk_endpoint ep;
	char *base;
};

struct dk_client *dk_client_new(const struct dk_endpoint *e)
{
	struct dk_client *c = xcalloc(1, sizeof(*c));
	dk_endpoint_copy(&c->ep, e);
	c->base = dk_base_url(e);
	return c;
}

void dk_client_free(struct dk_client *c)
{
	if (!c)
		return;
	dk_endpoint_release(&c->ep);
	free(c->base);
	free(c);
}

const struct dk_endpoint *dk_client_endpoint(const struct dk_client *c)
{
	return &c->ep;
}

void dk_resp_release(struct dk_resp *r)
{
	free(r->body);
	*r = (struct dk_resp){0};
}

/* ---- ssh: a connection handed to `ssh ... docker system dial-stdio` ---- */

static int ssh_prereq(void *arg, char *ip, char *local_ip, int port, int local_port);

/*
 * libcurl opens the socket through ssh_open, which makes a listening Unix
 * socket of its own (abstract, a random name) and points the connection at
 * it, so libcurl's connect() succeeds at once, whatever address it resolved
 * "localhost" to; once connected, ssh_prereq accepts that connection and
 * hands it to ssh as its stdin and stdout. (A socketpair returned as
 * "already connected" would be simpler, but libcurl 7.88, Debian 12's,
 * connects it anyway and fails: curl issue 10626.)
 */
static curl_socket_t ssh_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct dk_conn *s = arg;
	if (s->pid > 0 || s->listener >= 0)
		return CURL_SOCKET_BAD;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	char rnd[17];
	random_hex(rnd, 8);
	int n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "clbsd-docker-ssh-%d-%s",
			 (int)getpid(), rnd);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return CURL_SOCKET_BAD;
	if (bind(l, (struct sockaddr *)&un, len) < 0 || listen(l, 1) < 0) {
		close(l);
		return CURL_SOCKET_BAD;
	}
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0) {
		close(l);
		return CURL_SOCKET_BAD;
	}
	addr->family = AF_UNIX;
	addr->addrlen = (unsigned int)len;
	memcpy(&addr->addr, &un, len);
	s->listener = l;
	s->fd = c;
	return c;
}

int dk_conn_spawn(struct dk_conn *s)
{
	return ssh_prereq(s, NULL, NULL, 0, 0) == CURL_PREREQFUNC_OK ? 0 : -ECONNREFUSED;
}

static int ssh_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct dk_conn *s = arg;
	if (!s->ep || s->ep->scheme != DK_SSH || s->pid > 0)
		return CURL_PREREQFUNC_OK; /* a connection libcurl kept */
	if (s->listener < 0)
		return CURL_PREREQFUNC_ABORT;
	int a = accept4(s->listener, NULL, NULL, SOCK_CLOEXEC);
	close(s->listener);
	s->listener = -1;
	if (a < 0)
		return CURL_PREREQFUNC_ABORT;
	char **argv = dk_ssh_argv(s->ep);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, a, 0);
	posix_spawn_file_actions_adddup2(&fa, a, 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	int r = posix_spawnp(&s->pid, "ssh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	strv_free(argv);
	close(a);
	if (r != 0) {
		s->pid = 0;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

static int ssh_close(void *arg, curl_socket_t fd)
{
	struct dk_conn *s = arg;
	close(fd);
	if (s->listener >= 0) {
		close(s->listener);
		s->listener = -1;
	}
	if (s->pid > 0) {
		/* dial-stdio ends at EOF on its stdin; do not wait on a hung ssh. */
		for (int i = 0; i < 200; i++) {
			if (waitpid(s->pid, NULL, WNOHANG) != 0)
				goto reaped;
			usleep(10000);
		}
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	reaped:
		s->pid = 0;
	}
	return 0;
}

/* ---- requests ---- */

struct upload {
	const char *data;
	size_t len, off;
};

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t k = size * n;
	if (k > u->len - u->off)
		k = u->len - u->off;
	memcpy(p, u->data + u->off, k);
	u->off += k;
	return k;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	buf_add(arg, p, size * n);
	return size * n;
}

/* What every handle needs: the endpoint's transport and TLS. */
static void setup(CURL *h, const struct dk_client *c, struct dk_conn *ssh)
{
	CL(curl_easy_setopt)(h, CURLOPT_NOSIGNAL, 1L);
	if (c->ep.scheme == DK_UNIX) {
		CL(curl_easy_setopt)(h, CURLOPT_UNIX_SOCKET_PATH, c->ep.path);
	} else if (c->ep.scheme == DK_SSH) {
		ssh->ep = &c->ep;
		ssh->pid = 0;
		ssh->fd = -1;
		ssh->listener = -1;
		CL(curl_easy_setopt)(h, CURLOPT_OPENSOCKETFUNCTION, ssh_open);
		CL(curl_easy_setopt)(h, CURLOPT_OPENSOCKETDATA, ssh);
		CL(curl_easy_setopt)(h, CURLOPT_PREREQFUNCTION, ssh_prereq);
		CL(curl_easy_setopt)(h, CURLOPT_PREREQDATA, ssh);
		CL(curl_easy_setopt)(h, CURLOPT_CLOSESOCKETFUNCTION, ssh_close);
		CL(curl_easy_setopt)(h, CURLOPT_CLOSESOCKETDATA, ssh);
	} else {
		if (c->ep.tls_ca)
			CL(curl_easy_setopt)(h, CURLOPT_CAINFO, c->ep.tls_ca);
		if (c->ep.tls_cert) {
			CL(curl_easy_setopt)(h, CURLOPT_SSLCERT, c->ep.tls_cert);
			CL(curl_easy_setopt)(h, CURLOPT_SSLKEY, c->ep.tls_key);
		}
	}
	CL(curl_easy_setopt)(h, CURLOPT_CONNECTTIMEOUT, 10L);
}

const char *dk_client_base(const struct dk_client *c)
{
	return c->base;
}

CURL *dk_handle(const struct dk_client *c, struct dk_conn *ssh, struct clbsd_err *err)
{
	if (curl_lib_load(err) < 0)
		return NULL;
	CURL *h = CL(curl_easy_init)();
	if (!h)
		abort();
	setup(h, c, ssh);
	return h;
}

static int unreachable(const struct dk_client *c, CURLcode rc, const char *errbuf,
		       struct clbsd_err *err)
{
	return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ECONNREFUSED,
				"docker endpoint %s does not answer: %s (is dockerd running, and "
				"is the endpoint in (host :docker (:endpoint ...)) right?)",
				c->ep.text, *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
}

int dk_request(const struct dk_client *c, const char *method, const char *path, const char *ctype,
	       const void *body, size_t len, int timeout_s, struct dk_resp *resp,
	       struct clbsd_err *err)
{
	struct dk_conn ssh = {0};
	CURL *h = dk_handle(c, &ssh, err);
	if (!h)
		return -err->code;
	autofree char *url = xasprintf("%s%s", c->base, path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct buf out = BUF_INIT;
	struct upload up = {body, len, 0};
	struct curl_slist *hdrs = NULL;
	CL(curl_easy_setopt)(h, CURLOPT_URL, url);
	CL(curl_easy_setopt)(h, CURLOPT_ERRORBUFFER, errbuf);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, on_write);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEDATA, &out);
	if (timeout_s > 0)
		CL(curl_easy_setopt)(h, CURLOPT_TIMEOUT, (long)timeout_s);
	if (ctype) {
		autofree char *ct = xasprintf("Content-Type: %s", ctype);
		hdrs = CL(curl_slist_append)(hdrs, ct);
	}
	/* No "Expect: 100-continue" round trip for uploads. */
	hdrs = CL(curl_slist_append)(hdrs, "Expect:");
	/*
	 * One handle per request, so nothing is gained by keeping the
	 * connection; and a hijacked answer (exec start) ends only when
	 * dockerd closes it.
	 */
	hdrs = CL(curl_slist_append)(hdrs, "Connection: close");
	CL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "GET") == 0) {
		CL(curl_easy_setopt)(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		CL(curl_easy_setopt)(h, CURLOPT_NOBODY, 1L);
	} else {
		CL(curl_easy_setopt)(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "POST") == 0) {
			CL(curl_easy_setopt)(h, CURLOPT_POST, 1L);
			CL(curl_easy_setopt)(h, CURLOPT_READFUNCTION, on_read);
			CL(curl_easy_setopt)(h, CURLOPT_READDATA, &up);
			CL(curl_easy_setopt)(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		}
	}
	CURLcode rc = CL(curl_easy_perform)(h);
	long status = 0;
	CL(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
	CL(curl_easy_cleanup)(h);
	CL(curl_slist_free_all)(hdrs);
	if (rc != CURLE_OK && status == 0) {
		buf_release(&out);
		return unreachable(c, rc, errbuf, err);
	}
	if (rc != CURLE_OK) {
		buf_release(&out);
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO, "docker %s %s: %s", method, path,
					*errbuf ? errbuf : CL(curl_easy_strerror)(rc));
	}
	buf_adds(&out, "");
	resp->status = status;
	resp->body = buf_detach(&out, &resp->len);
	return 0;
}

int dk_call(const struct dk_client *c, const char *method, const char *path, json_t *body,
	    int timeout_s, json_t **out, long *status, struct clbsd_err *err)
{
	autofree char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct dk_resp r = {0};
	int rc = dk_request(c, method, path, text ? "application/json" : NULL, text,
			    text ? strlen(text) : 0, timeout_s, &r, err);
	if (rc < 0)
		return rc;
	if (status)
		*status = r.status;
	if (r.status != 304 && (r.status < 200 || r.status > 299)) {
		autofree char *what = xasprintf("docker %s %s", method, path);
		/* Keep the path short in messages: no query. */
		char *q = strchr(what, '?');
		if (q)
			*q = '\0';
		rc = dk_err_status(r.status, r.body, r.len, what, err);
		dk_resp_release(&r);
		return rc;
	}
	if (out) {
		*out = NULL;
		if (r.len) {
			json_error_t je;
			*out = json_loadb(r.body, r.len, 0, &je);
			if (!*out) {
				dk_resp_release(&r);
				return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
							"docker %s %s: the answer is not JSON: %s",
							method, path, je.text);
			}
		}
	}
	dk_resp_release(&r);
	return 0;
}
