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
#include <unistd.h>

struct job {
	work_fn run;
	work_fn done;
	void *arg;
	struct event *ev;
	bool background;
};

static void job_done(evutil_socket_t fd, short what, void *p)
{
	struct job *j = p;
	event_free(j->ev);
	j->done(j->arg);
	free(j);
}

static void *job_thread(void *p)
{
	struct job *j = p;
	/* The thread's own nice value (Linux: per thread); best effort. */
	if (j->background)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	j->run(j->arg);
	event_active(j->ev, EV_TIMEOUT, 0);
	return NULL;
}

static void submit(struct daemon *d, work_fn run, work_fn done, void *arg, bool background)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = arg;
	j->background = background;
	j->ev = event_new(d->base, -1, 0, job_done, j);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, job_thread, j) != 0) {
		/* No thread: do it inline rather than fail the request. */
		log_warn("work", NULL, "no worker thread; running a job on the loop");
		j->run(j->arg);
		event_active(j->ev, EV_TIMEOUT, 0);
	}
	pthread_attr_destroy(&attr);
}

void work_submit(struct daemon *d, work_fn run, work_fn done, void *arg)
{
	submit(d, run, done, arg, false);
}

/*
 * Background jobs go to one thread that lives as long as the daemon, one
 * after the other: no thread to make (and for the loop to wait on) for each
 * removed container.
 */
static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cond = PTHREAD_COND_INITIALIZER;
static struct bg_item {
	struct job *job;
	struct bg_item *next;
} *bg_head, **bg_tail = &bg_head;
static bool bg_started;

static void *bg_thread(void *p)
{
	(void)p;
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	for (;;) {
		pthread_mutex_lock(&bg_lock);
		while (!bg_head)
			pthread_cond_wait(&bg_cond, &bg_lock);
		struct bg_item *it = bg_head;
		bg_head = it->next;
		if (!bg_head)
			bg_tail = &bg_head;
		pthread_mutex_unlock(&bg_lock);
		struct job *j = it->job;
		free(it);
		j->run(j->arg);
		event_active(j->ev, EV_TIMEOUT, 0);
	}
	return NULL;
}

void work_submit_background(struct daemon *d, work_fn run, work_fn done, void *arg)
{
	pthread_mutex_lock(&bg_lock);
	if (!bg_started) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		bg_started = pthread_create(&t, &attr, bg_thread, NULL) == 0;
		pthread_attr_destroy(&attr);
	}
	bool queued = bg_started;
	if (queued) {
		struct job *j = xcalloc(1, sizeof(*j));
		j->run = run;
		j->done = done;
		j->arg = arg;
		j->background = true;
		j->ev = event_new(d->base, -1, 0, job_done, j);
		struct bg_item *it = xcalloc(1, sizeof(*it));
		it->job = j;
		*bg_tail = it;
		bg_tail = &it->next;
		pthread_cond_signal(&bg_cond);
	}
	pthread_mutex_unlock(&bg_lock);
	if (!queued)
		submit(d, run, done, arg, true);
}
