/*
 * Requests whose answer is read as it comes (a pull's or a build's
 * progress, a load's result) and whose body may be a file sent as it is
 * read (a build context, an image archive): nothing large is held in
 * memory. Errors are read whole, like dk_call's.
 */
#include "docker/dk_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The body of a non-2xx answer is an error message: kept, bounded. */
#define ERR_BODY_MAX (64 << 10)

struct stream {
	CURL *h;
	dk_data_fn fn;
	void *arg;
	long status;
	struct buf errbody;
	bool stopped;
	int fd; /* the upload, or -1 */
	int read_errno;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t k = size * n;
	if (!s->status)
		CL(curl_easy_getinfo)(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 304 && (s->status < 200 || s->status > 299)) {
		if (s->errbody.len + k <= ERR_BODY_MAX)
			buf_add(&s->errbody, p, k);
		return k;
	}
	if (s->fn(p, k, s->arg) != 0) {
		s->stopped = true;
		return 0; /* libcurl ends the transfer */
	}
	return k;
}

static size_t on_upload(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	for (;;) {
		ssize_t r = read(s->fd, p, size * n);
		if (r >= 0)
			return (size_t)r;
		if (errno != EINTR) {
			s->read_errno = errno;
			return CURL_READFUNC_ABORT;
		}
	}
}

int dk_request_stream(const struct dk_client *c, const char *method, const char *path,
		      const char *ctype, int upload_fd, dk_data_fn fn, void *arg,
		      struct clbsd_err *err)
{
	struct dk_conn conn = {0};
	CURL *h = dk_handle(c, &conn, err);
	if (!h)
		return -err->code;
	autofree char *url = xasprintf("%s%s", dk_client_base(c), path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct stream s = {.h = h, .fn = fn, .arg = arg, .errbody = BUF_INIT, .fd = upload_fd};
	struct curl_slist *hdrs = NULL;
	CL(curl_easy_setopt)(h, CURLOPT_URL, url);
	CL(curl_easy_setopt)(h, CURLOPT_ERRORBUFFER, errbuf);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, on_data);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEDATA, &s);
	if (ctype) {
		autofree char *ct = xasprintf("Content-Type: %s", ctype);
		hdrs = CL(curl_slist_append)(hdrs, ct);
	}
	hdrs = CL(curl_slist_append)(hdrs, "Expect:");
	hdrs = CL(curl_slist_append)(hdrs, "Connection: close");
	CL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, hdrs);
	CL(curl_easy_setopt)(h, CURLOPT_CUSTOMREQUEST, method);
	if (upload_fd >= 0) {
		struct stat st;
		curl_off_t size = fstat(upload_fd, &st) == 0 ? (curl_off_t)st.st_size : 0;
		CL(curl_easy_setopt)(h, CURLOPT_POST, 1L);
		CL(curl_easy_setopt)(h, CURLOPT_READFUNCTION, on_upload);
		CL(curl_easy_setopt)(h, CURLOPT_READDATA, &s);
		CL(curl_easy_setopt)(h, CURLOPT_POSTFIELDSIZE_LARGE, size);
	} else if (strcmp(method, "GET") != 0) {
		/* Nothing to send: an empty body. */
		CL(curl_easy_setopt)(h, CURLOPT_POSTFIELDS, "");
		CL(curl_easy_setopt)(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	CURLcode rc = CL(curl_easy_perform)(h);
	long status = 0;
	CL(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
	CL(curl_easy_cleanup)(h);
	CL(curl_slist_free_all)(hdrs);
	int r = 0;
	autofree char *what = xasprintf("docker %s %s", method, path);
	char *q = strchr(what, '?');
	if (q)
		*q = '\0';
	if (s.stopped) {
		r = 0;
	} else if (rc != CURLE_OK && status == 0) {
		r = clbsd_err_setmsg(
			err, CLBSD_E_UNAVAIL, ECONNREFUSED,
			"docker endpoint %s does not answer: %s (is dockerd running, "
			"and is the endpoint in (host :docker (:endpoint ...)) right?)",
			dk_client_endpoint(c)->text, *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
	} else if (s.read_errno) {
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, s.read_errno, "%s: read the upload", what);
	} else if (status != 304 && (status < 200 || status > 299)) {
		r = dk_err_status(status, s.errbody.data, s.errbody.len, what, err);
	} else if (rc != CURLE_OK) {
		r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO, "%s: %s", what,
				     *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
	}
	buf_release(&s.errbody);
	return r;
}

/* ---- newline-delimited JSON ---- */

int dk_lines_feed(struct dk_lines *l, const char *data, size_t n, int (*fn)(json_t *obj, void *arg),
		  void *arg)
{
	buf_add(&l->line, data, n);
	for (;;) {
		char *nl = l->line.len ? memchr(l->line.data, '\n', l->line.len) : NULL;
		if (!nl) {
			if (l->line.len > DK_LINE_MAX)
				return -EPROTO;
			return 0;
		}
		size_t k = (size_t)(nl - l->line.data);
		json_t *j = json_loadb(l->line.data, k, 0, NULL);
		buf_consume(&l->line, k + 1);
		int r = json_is_object(j) ? fn(j, arg) : 0;
		json_decref(j);
		if (r != 0)
			return r;
	}
}
