/*
 * Hooks and per-container actors: the mechanism daemon/hook_run.c runs the
 * configuration's :on hooks with.
 *
 * A hook is a command the configuration attaches to an event (`:on`): a
 * string runs with /bin/sh -c on the host, a list runs as argv. It runs as a
 * child process of the daemon, never blocking the loop: its output is read
 * through a pipe (bounded), a timer kills its process group at the timeout,
 * and a callback on the loop thread gets the result.
 *
 * An actor serialises the work of one container: jobs queued on it run one
 * after another, while different containers' actors run in parallel. A hook
 * that hangs delays only its own container's later hooks, never another
 * container or the API.
 */
#ifndef CLBSD_HOOKS_H
#define CLBSD_HOOKS_H

#include <clbsd/error.h>

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#define HOOK_OUTPUT_MAX (64u << 10)

struct hook_result {
	int exit_code; /* shell convention: 128 + signal when killed */
	bool timed_out;
	char *output; /* stdout and stderr, interleaved, at most HOOK_OUTPUT_MAX bytes */
	size_t output_len;
	bool truncated;
	int64_t duration_ns;
};

typedef void (*hook_done_fn)(const struct hook_result *r, void *arg);

/*
 * Start argv (argv[0] looked up on PATH; for a shell hook pass
 * {"/bin/sh", "-c", CMD, NULL}) with env added to the daemon's environment.
 * done() runs on the loop thread when the process has exited and its output
 * is read, or after timeout_ns (then the whole process group is killed).
 * Fails only when the process cannot be started.
 */
int hook_run(struct event_base *base, char *const argv[], char *const env[], int64_t timeout_ns,
	     hook_done_fn done, void *arg, struct clbsd_err *err);
/*
 * At exit: forget the hooks of base still running, without their done():
 * free_arg (when not NULL) frees each one's arg. Their processes go on (each
 * leads its own process group), as they did before this existed.
 */
void hook_forget_all(struct event_base *base, void (*free_arg)(void *arg));

/* ---- actors ---- */

struct actor;
/* A job gets a completion to call exactly once when its work is done. */
typedef void (*actor_job_fn)(struct actor *a, void *arg);

struct actor *actor_new(const char *name);
/* Queue a job; it runs now when the actor is idle, else after the others. */
void actor_post(struct actor *a, actor_job_fn fn, void *arg);
/* Called by a job when it has finished; starts the next one. */
void actor_done(struct actor *a);
/* Jobs waiting (not counting the running one). */
size_t actor_pending(const struct actor *a);
bool actor_busy(const struct actor *a);
const char *actor_name(const struct actor *a);
/* Free an actor; queued jobs are dropped (their fn is not called). */
void actor_free(struct actor *a);
/* The same, freeing each waiting job's arg with free_arg. */
void actor_free_with(struct actor *a, void (*free_arg)(void *arg));

#endif
