/*
 * Following GET /events on a thread of its own, with its own handle. Each
 * line is one JSON event. The stream is open as long as dockerd runs: when
 * it ends (dockerd restarted, the endpoint went away) the follower says
 * "down", waits, and reconnects with since= the last event's time, so
 * events in between are replayed (dockerd keeps the last 256). Events are
 * hints: the owner re-reads the truth (inspect) on "up".
 */
#include "docker/dk_internal.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A line longer than this is not an event (dockerd's are well under 4 KiB). */
#define LINE_MAX_BYTES (1 << 20)

struct dk_follow {
	struct dk_client *client;
	char *filters; /* escaped */
	int retry_ms;
	dk_follow_fn fn;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* the thread's own */
	struct buf line;
	CURL *h;
	bool up;
	bool told_down;
	int64_t last_ns; /* timeNano of the last event, 0: none yet */
};

static bool stopping(struct dk_follow *f)
{
	pthread_mutex_lock(&f->lock);
	bool s = f->stop;
	pthread_mutex_unlock(&f->lock);
	return s;
}

static void line_done(struct dk_follow *f)
{
	json_t *ev = json_loadb(f->line.data, f->line.len, 0, NULL);
	buf_reset(&f->line);
	if (!json_is_object(ev)) {
		json_decref(ev);
		return;
	}
	json_t *tn = json_object_get(ev, "timeNano");
	if (json_is_integer(tn))
		f->last_ns = json_integer_value(tn);
	f->fn(DK_FOLLOW_EVENT, ev, NULL, f->arg);
	json_decref(ev);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct dk_follow *f = arg;
	size_t len = size * n;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			if (f->line.len)
				line_done(f);
			continue;
		}
		if (f->line.len >= LINE_MAX_BYTES)
			return 0; /* not an event stream: give up this connection */
		buf_addc(&f->line, p[i]);
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct dk_follow *f = arg;
	size_t len = size * n;
	/* The blank line that ends the headers of a 200: the stream is open. */
	if (!f->up && len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) {
		long status = 0;
		CL(curl_easy_getinfo)(f->h, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			f->up = true;
			f->told_down = false;
			f->fn(DK_FOLLOW_UP, NULL, NULL, f->arg);
		}
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return stopping(arg) ? 1 : 0;
}

static void wait_retry(struct dk_follow *f)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += f->retry_ms / 1000;
	ts.tv_nsec += (long)(f->retry_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->lock);
	while (!f->stop && pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&f->lock);
}

static void *run(void *arg)
{
	struct dk_follow *f = arg;
	f->told_down = false;
	while (!stopping(f)) {
		struct dk_conn conn = {0};
		struct clbsd_err lerr;
		CURL *h = dk_handle(f->client, &conn, &lerr);
		if (!h) {
			/* No libcurl: said once, retried as an outage is. */
			if (!f->told_down) {
				f->fn(DK_FOLLOW_DOWN, NULL, lerr.msg, f->arg);
				f->told_down = true;
			}
			wait_retry(f);
			continue;
		}
		f->h = h;
		autofree char *since = NULL;
		if (f->last_ns)
			since = xasprintf("&since=%lld.%09lld",
					  (long long)(f->last_ns / 1000000000LL),
					  (long long)(f->last_ns % 1000000000LL));
		autofree char *url = xasprintf("%s/events?filters=%s%s", dk_client_base(f->client),
					       f->filters, since ? since : "");
		char errbuf[CURL_ERROR_SIZE] = "";
		f->up = false;
		buf_reset(&f->line);
		CL(curl_easy_setopt)(h, CURLOPT_URL, url);
		CL(curl_easy_setopt)(h, CURLOPT_ERRORBUFFER, errbuf);
		CL(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, on_data);
		CL(curl_easy_setopt)(h, CURLOPT_WRITEDATA, f);
		CL(curl_easy_setopt)(h, CURLOPT_HEADERFUNCTION, on_header);
		CL(curl_easy_setopt)(h, CURLOPT_HEADERDATA, f);
		CL(curl_easy_setopt)(h, CURLOPT_NOPROGRESS, 0L);
		CL(curl_easy_setopt)(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		CL(curl_easy_setopt)(h, CURLOPT_XFERINFODATA, f);
		/* The headers come at once; the answer then stays open. */
		struct curl_slist *hdrs = CL(curl_slist_append)(NULL, "Connection: close");
		CL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, hdrs);
		CURLcode rc = CL(curl_easy_perform)(h);
		long status = 0;
		CL(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
		CL(curl_easy_cleanup)(h);
		CL(curl_slist_free_all)(hdrs);
		if (stopping(f))
			break;
		autofree char *msg = NULL;
		if (status == 200)
			msg = xasprintf("docker endpoint %s: the event stream ended (%s)",
					dk_client_endpoint(f->client)->text,
					rc == CURLE_OK ? "dockerd closed it"
						       : CL(curl_easy_strerror)(rc));
		else if (status)
			msg = xasprintf("docker endpoint %s: GET /events answered %ld",
					dk_client_endpoint(f->client)->text, status);
		else
			msg = xasprintf("docker endpoint %s does not answer: %s",
					dk_client_endpoint(f->client)->text,
					*errbuf ? errbuf : CL(curl_easy_strerror)(rc));
		/* Say "down" once per outage, not at every retry. */
		if (f->up || !f->told_down) {
			f->fn(DK_FOLLOW_DOWN, NULL, msg, f->arg);
			f->told_down = true;
		}
		wait_retry(f);
	}
	return NULL;
}

struct dk_follow *dk_follow_start(const struct dk_endpoint *e, const char *filters, int retry_ms,
				  dk_follow_fn fn, void *arg)
{
	struct dk_follow *f = xcalloc(1, sizeof(*f));
	f->client = dk_client_new(e);
	f->filters = dk_query_escape(filters);
	f->retry_ms = retry_ms > 0 ? retry_ms : 1000;
	f->fn = fn;
	f->arg = arg;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	buf_init(&f->line);
	if (pthread_create(&f->thread, NULL, run, f) != 0)
		abort();
	return f;
}

void dk_follow_stop(struct dk_follow *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	buf_release(&f->line);
	dk_client_free(f->client);
	free(f->filters);
	free(f);
}
