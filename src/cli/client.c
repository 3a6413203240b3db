/*
 * The client library behind <clbsd/client.h>: libcurl over the daemon's Unix
 * socket, one reused easy handle per client so consecutive requests share a
 * connection.
 */
#include <clbsd/client.h>

#include "util/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

struct clbsd_client {
	CURL *curl;
	char *socket;
};

static void global_init(void)
{
	static int done;
	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

struct clbsd_client *clbsd_client_new(const char *socket_path)
{
	global_init();
	struct clbsd_client *c = xcalloc(1, sizeof(*c));
	c->socket = xstrdup(socket_path);
	c->curl = curl_easy_init();
	if (!c->curl)
		abort(); /* only fails when out of memory */
	return c;
}

void clbsd_client_free(struct clbsd_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->socket);
	free(c);
}

const char *clbsd_client_socket(const struct clbsd_client *c)
{
	return c->socket;
}

char *clbsd_client_escape(const char *s)
{
	struct buf b = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("._~:-", *p))
			buf_addc(&b, (char)*p);
		else
			buf_addf(&b, "%%%02X", *p);
	}
	return buf_detach(&b, NULL);
}

static enum clbsd_err_kind status_kind(long status, int *code)
{
	switch (status) {
	case 400:
		*code = EINVAL;
		return CLBSD_E_INVALID;
	case 403:
		*code = EACCES;
		return CLBSD_E_FORBIDDEN;
	case 404:
		*code = ENOENT;
		return CLBSD_E_NOTFOUND;
	case 409:
		*code = EBUSY;
		return CLBSD_E_CONFLICT;
	case 503:
		*code = EAGAIN;
		return CLBSD_E_UNAVAIL;
	case 504:
		*code = ETIMEDOUT;
		return CLBSD_E_TIMEOUT;
	default:
		*code = EIO;
		return CLBSD_E_INTERNAL;
	}
}

/* Turn a non-2xx answer into an error, preferring the daemon's own message. */
static int http_error(long status, const char *body, size_t len, struct clbsd_err *err)
{
	int code;
	enum clbsd_err_kind kind = status_kind(status, &code);
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *msg = NULL;
	if (j)
		msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	int r;
	if (msg && *msg) {
		r = clbsd_err_setmsg(err, kind, code, "%s", msg);
	} else {
		/* Not our error format: show a short, printable prefix of the body. */
		char snip[201];
		size_t n = 0;
		for (size_t i = 0; i < len && n < sizeof(snip) - 1; i++)
			snip[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
		while (n && snip[n - 1] == ' ')
			n--;
		snip[n] = '\0';
		r = clbsd_err_setmsg(err, kind, code, "clbsdd answered HTTP %ld%s%s", status,
				     n ? ": " : "", snip);
	}
	json_decref(j);
	return r;
}

/* A transport failure: say which socket and what to check. */
static int curl_error(struct clbsd_client *c, CURLcode cc, const char *errbuf,
		      struct clbsd_err *err)
{
	long oserr = 0;
	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
	if (cc == CURLE_COULDNT_CONNECT) {
		int e = oserr ? (int)oserr : ECONNREFUSED;
		if (e == EACCES || e == EPERM)
			return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, e,
						"cannot connect to clbsdd at %s: %s; run as root "
						"or as a member of group clbsd",
						c->socket, strerror(e));
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, e,
					"cannot connect to clbsdd at %s: %s; is clbsdd running? "
					"(set --socket or CLBSD_SOCKET for another daemon)",
					c->socket, strerror(e));
	}
	return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, oserr ? (int)oserr : EIO,
				"talking to clbsdd at %s: %s", c->socket,
				*errbuf ? errbuf : curl_easy_strerror(cc));
}

struct xfer {
	CURL *curl;
	struct buf body;   /* whole body, or the error body of a stream */
	clbsd_stream_fn fn; /* NULL: collect into body */
	void *ctx;
	long status;
	int stopped;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;
	if (!x->status)
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->fn && x->status >= 200 && x->status < 300) {
		if (x->fn(data, n, x->ctx) != 0) {
			x->stopped = 1;
			return 0; /* makes curl stop with CURLE_WRITE_ERROR */
		}
		return n;
	}
	buf_add(&x->body, data, n);
	return n;
}

static int perform(struct clbsd_client *c, const char *method, const char *path, const char *body,
		   struct xfer *x, struct clbsd_err *err)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	autofree char *url = xasprintf("http://localhost%s", path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Expect:");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");

	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "clbsd");
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		}
	}
	x->curl = h;
	CURLcode cc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (cc == CURLE_WRITE_ERROR && x->stopped)
		return 0;
	if (cc != CURLE_OK)
		return curl_error(c, cc, errbuf, err);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status < 200 || x->status >= 300)
		return http_error(x->status, x->body.data ? x->body.data : "", x->body.len, err);
	return 0;
}

int clbsd_client_request(struct clbsd_client *c, const char *method, const char *path,
			 const char *body, char **resp, long *status, struct clbsd_err *err)
{
	struct xfer x = {.body = BUF_INIT};
	int r = perform(c, method, path, body, &x, err);
	if (status)
		*status = x.status;
	if (r == 0 && resp)
		*resp = buf_detach(&x.body, NULL);
	buf_release(&x.body);
	return r;
}

int clbsd_client_stream(struct clbsd_client *c, const char *path, clbsd_stream_fn fn, void *ctx,
			long *status, struct clbsd_err *err)
{
	struct xfer x = {.body = BUF_INIT, .fn = fn, .ctx = ctx};
	int r = perform(c, "GET", path, NULL, &x, err);
	if (status)
		*status = x.status;
	buf_release(&x.body);
	return r;
}
