/*
 * Blocking jobs (copying image trees, building the forge) run on their own
 * thread so the loop keeps serving; completion comes back to the loop thread
 * through an event activated from the worker (libevent is set up for
 * pthreads in main). Jobs touch no daemon state until done() runs on the loop.
 */
#include "daemon.h"
#include "util/util.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct job {
	work_fn run;
	work_fn done;
	void *arg;
	struct event *ev;
	struct job *next; /* in the background queue */
	bool background;
	struct job *fin_next; /* a background job run, its done() not yet */
};

/*
 * Jobs run whose done() the loop has not run yet: work_release() runs it
 * when the loop stopped first. inflight counts the ordinary jobs whose
 * run() has not returned: work_release() waits for them a little (an
 * Engine API call, say), and a job that returns after that (released)
 * leaves its event alone, since the loop is gone.
 */
static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_cond = PTHREAD_COND_INITIALIZER;
static struct job *fin_head;
static int inflight;
static bool released;
#define RELEASE_WAIT_S 5

static void job_done(evutil_socket_t fd, short what, void *p)
{
	struct job *j = p;
	pthread_mutex_lock(&fin_lock);
	struct job **pp = &fin_head;
	while (*pp && *pp != j)
		pp = &(*pp)->fin_next;
	if (*pp)
		*pp = j->fin_next;
	pthread_mutex_unlock(&fin_lock);
	event_free(j->ev);
	j->done(j->arg);
	free(j);
}

static struct job *job_new(struct daemon *d, work_fn run, work_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = arg;
	j->ev = event_new(d->base, -1, 0, job_done, j);
	return j;
}

/* Run it here; done() follows on the loop. */
static void job_run(struct job *j)
{
	j->run(j->arg);
	pthread_mutex_lock(&fin_lock);
	if (!j->background)
		inflight--;
	if (released) {
		/* Too late: the loop and its events are gone; the process is ending. */
		pthread_mutex_unlock(&fin_lock);
		return;
	}
	j->fin_next = fin_head;
	fin_head = j;
	pthread_cond_broadcast(&fin_cond);
	/*
	 * Under the lock: once it is released, work_release may take j from
	 * fin_head and free it. (The loop's job_done takes the lock only in a
	 * callback, where libevent holds no lock of its own.)
	 */
	event_active(j->ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&fin_lock);
}

static bool start_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	bool ok = pthread_create(&t, &attr, fn, arg) == 0;
	pthread_attr_destroy(&attr);
	return ok;
}

static void *job_thread(void *p)
{
	job_run(p);
	return NULL;
}

void work_submit(struct daemon *d, work_fn run, work_fn done, void *arg)
{
	struct job *j = job_new(d, run, done, arg);
	pthread_mutex_lock(&fin_lock);
	inflight++;
	pthread_mutex_unlock(&fin_lock);
	if (!start_detached(job_thread, j)) {
		/* No thread: do it inline rather than fail the request. */
		log_warn("work", NULL, "no worker thread; running a job on the loop");
		job_run(j);
	}
}

/*
 * Background jobs go to one thread that lives as long as the daemon, one
 * after the other at nice 19 (its own nice value: Linux keeps one per
 * thread): no thread to make (and for the loop to wait on) for each removed
 * container.
 */
static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t bg_idle = PTHREAD_COND_INITIALIZER;
static struct job *bg_head, **bg_tail = &bg_head;
static bool bg_started, bg_busy, bg_stop;

static void *bg_thread(void *p)
{
	(void)p;
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	for (;;) {
		pthread_mutex_lock(&bg_lock);
		while (!bg_head || bg_stop)
			pthread_cond_wait(&bg_cond, &bg_lock);
		struct job *j = bg_head;
		bg_head = j->next;
		if (!bg_head)
			bg_tail = &bg_head;
		bg_busy = true;
		pthread_mutex_unlock(&bg_lock);
		job_run(j);
		pthread_mutex_lock(&bg_lock);
		bg_busy = false;
		pthread_cond_broadcast(&bg_idle);
		pthread_mutex_unlock(&bg_lock);
	}
	return NULL;
}

void work_submit_background(struct daemon *d, work_fn run, work_fn done, void *arg)
{
	struct job *j = job_new(d, run, done, arg);
	j->background = true;
	pthread_mutex_lock(&bg_lock);
	if (!bg_started)
		bg_started = start_detached(bg_thread, NULL);
	bool queued = bg_started;
	if (queued) {
		*bg_tail = j;
		bg_tail = &j->next;
		pthread_cond_signal(&bg_cond);
	}
	pthread_mutex_unlock(&bg_lock);
	if (!queued) {
		/* No thread for it: an ordinary job, at the loop's priority. */
		if (!start_detached(job_thread, j))
			job_run(j);
	}
}

static void job_finish(struct job *j)
{
	event_free(j->ev);
	j->done(j->arg);
	free(j);
}

/*
 * At exit, after the loop: the background job running ends first (it uses
 * the daemon's storage, which goes next), the done() of those run since the
 * loop stopped runs, and those not started are dropped (what they would have
 * deleted is deleted at the next start): their done() runs without their
 * run(), and frees their argument.
 */
void work_release(struct daemon *d)
{
	(void)d;
	pthread_mutex_lock(&bg_lock);
	bg_stop = true;
	struct job *queued = bg_head;
	bg_head = NULL;
	bg_tail = &bg_head;
	while (bg_busy)
		pthread_cond_wait(&bg_idle, &bg_lock);
	pthread_mutex_unlock(&bg_lock);
	/* Ordinary jobs still running: a little time to end, then they are left. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RELEASE_WAIT_S;
	pthread_mutex_lock(&fin_lock);
	while (inflight > 0 && pthread_cond_timedwait(&fin_cond, &fin_lock, &until) == 0)
		;
	if (inflight > 0)
		log_warn("work", NULL, "%d jobs still running at exit are left", inflight);
	released = true;
	pthread_mutex_unlock(&fin_lock);
	for (;;) {
		pthread_mutex_lock(&fin_lock);
		struct job *j = fin_head;
		if (j)
			fin_head = j->fin_next;
		pthread_mutex_unlock(&fin_lock);
		if (!j)
			break;
		job_finish(j);
	}
	while (queued) {
		struct job *j = queued;
		queued = j->next;
		job_finish(j);
	}
}
