/*
 * A streamed answer: the body handed over as it arrives, for answers that
 * stay open (GET /containers/ID/logs?follow=1 ends when the container
 * stops). Blocking, like the rest of client.c: never on the event loop.
 */
#include "dk_internal.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

struct stream {
	CURL *h;
	long status;
	dk_chunk_fn fn;
	dk_stop_fn stop;
	void *arg;
	struct buf errbody; /* the body of an answer that is not a 200 */
	bool stopped;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t len = size * n;
	if (!s->status)
		CL(curl_easy_getinfo)(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200) {
		if (s->errbody.len < 65536)
			buf_add(&s->errbody, p, len);
		return len;
	}
	if (!s->fn(p, len, s->arg)) {
		s->stopped = true;
		return 0; /* libcurl ends the transfer */
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct stream *s = arg;
	if (s->stop && s->stop(s->arg)) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

int dk_stream(const struct dk_client *c, const char *path, dk_chunk_fn fn, dk_stop_fn stop,
	      void *arg, struct clbsd_err *err)
{
	struct dk_conn conn = {0};
	CURL *h = dk_handle(c, &conn, err);
	if (!h)
		return -err->code;
	struct stream s = {.h = h, .fn = fn, .stop = stop, .arg = arg, .errbody = BUF_INIT};
	autofree char *url = xasprintf("%s%s", dk_client_base(c), path);
	char errbuf[CURL_ERROR_SIZE] = "";
	CL(curl_easy_setopt)(h, CURLOPT_URL, url);
	CL(curl_easy_setopt)(h, CURLOPT_ERRORBUFFER, errbuf);
	CL(curl_easy_setopt)(h, CURLOPT_HTTPGET, 1L);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, on_data);
	CL(curl_easy_setopt)(h, CURLOPT_WRITEDATA, &s);
	CL(curl_easy_setopt)(h, CURLOPT_NOPROGRESS, 0L);
	CL(curl_easy_setopt)(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	CL(curl_easy_setopt)(h, CURLOPT_XFERINFODATA, &s);
	struct curl_slist *hdrs = CL(curl_slist_append)(NULL, "Connection: close");
	CL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = CL(curl_easy_perform)(h);
	long status = 0;
	CL(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
	CL(curl_easy_cleanup)(h);
	CL(curl_slist_free_all)(hdrs);
	autofree char *what = xasprintf("docker GET %s", path);
	char *q = strchr(what, '?');
	if (q)
		*q = '\0';
	int r = 0;
	if (s.stopped)
		r = 0;
	else if (rc != CURLE_OK && status == 0)
		r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ECONNREFUSED,
				     "docker endpoint %s does not answer: %s",
				     dk_client_endpoint(c)->text,
				     *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
	else if (status != 200)
		r = dk_err_status(status, s.errbody.data ? s.errbody.data : "", s.errbody.len, what,
				  err);
	else if (rc != CURLE_OK)
		r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO, "%s: %s", what,
				     *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
	buf_release(&s.errbody);
	return r;
}
