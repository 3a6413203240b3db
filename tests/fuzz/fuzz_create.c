/*
 * libFuzzer target: the HTTP/JSON input of POST /v1/containers, through the
 * daemon's own validation and creation code (linked from the daemon's
 * objects, libclbsdd.a, with its own event bus), on a throwaway root with
 * one tiny image. Whatever is created is
 * destroyed again, so every input starts from the same state.
 */
#include "fuzz.h"
#include "daemon/daemon.h"
#include "util/util.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int no_destroy(const struct rt_spec *spec, struct clbsd_err *err)
{
	return 0;
}

static struct rt_ops rt = {.name = "fuzz", .destroy = no_destroy};
static struct daemon d;

static void remove_root(void)
{
	struct clbsd_err err;
	fs_rm_rf(d.root, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Under $TMPDIR, which scripts/fuzz.sh removes even after a crash. */
	const char *tmp = getenv("TMPDIR");
	char *root = xasprintf("%s/clbsd-fuzz-create-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	struct clbsd_err err;
	if (!mkdtemp(root))
		abort();
	setenv("CLBSD_NO_OVERLAY", "1", 1);
	d.root = root;
	/* <run> apart from <root>, as in the daemon: a container's run-time files go. */
	d.run = xasprintf("%s/run", root);
	if (mkdir(d.run, 0700) < 0)
		abort();
	d.cgroup_parent = "clbsd-fuzz";
	d.rt = &rt;
	/* Removal finishes on the loop after a worker thread, as in the daemon. */
	/* The engine's own event bus, without a journal: events stay in its ring. */
	events_init(&d.events, NULL);
	if (evthread_use_pthreads() < 0 || !(d.base = event_base_new()))
		abort();
	atexit(remove_root);
	/* The daemon's network state as at its start: no network configured. */
	if (storage_dir_open(root, &d.storage, &err) < 0 ||
	    image_store_open(root, &d.images, &err) < 0 || dnet_init(&d, &err) < 0)
		abort();
	char *staging;
	struct image_config cfg = {0};
	if (image_staging_new(&d.images, &staging, &err) < 0)
		abort();
	char *etc = xasprintf("%s/rootfs/etc", staging);
	if (fs_mkdir_p(etc, 0755, &err) < 0)
		abort();
	char *passwd = xasprintf("%s/passwd", etc);
	const char *users = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
	fs_write_atomic(passwd, users, strlen(users), 0644, &err);
	cfg.entrypoint = xcalloc(1, sizeof(char *));
	cfg.cmd = xcalloc(2, sizeof(char *));
	cfg.cmd[0] = xstrdup("/bin/sh");
	cfg.env = xcalloc(2, sizeof(char *));
	cfg.env[0] = xstrdup("PATH=/bin");
	cfg.workdir = xstrdup("/");
	cfg.user = xstrdup("");
	struct image *img;
	if (image_commit(&d.images, staging, &cfg, "forge", NULL, NULL, &img, &err) < 0)
		abort();
	image_config_release(&cfg);
	free(staging), free(etc), free(passwd);
	return 0;
}

static void stuck(evutil_socket_t fd, short what, void *arg)
{
	abort(); /* the worker never finished removing the container */
}

/* Run the loop until the removal's done() has run on it (or 30 s passed). */
static void wait_removed(void)
{
	struct timeval tv = {30, 0};
	struct event *watchdog = evtimer_new(d.base, stuck, NULL);
	evtimer_add(watchdog, &tv);
	event_base_loop(d.base, EVLOOP_ONCE);
	event_free(watchdog);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = json_loadb((const char *)data, size, 0, NULL);
	if (!req)
		return 0;
	struct container *c;
	struct clbsd_err err;
	clbsd_err_init(&err);
	/* What POST /v1/containers does: decode into a spec, then create from it. */
	struct ctr_spec *spec = NULL;
	int made = ctr_spec_from_json(req, &spec, &err);
	if (made == 0) {
		made = ctr_create(&d, spec, &c, &err);
		ctr_spec_free(spec);
	}
	if (made == 0) {
		int r = ctr_destroy(c, &err);
		if (r < 0 || (r == CTR_DESTROY_SLOW && ctr_destroy_files(c, &err) < 0))
			abort();
		d.ctrs = c->next;
		ctr_free(c);
		if (r == 0)
			wait_removed();
	} else if (!*err.msg) {
		abort(); /* every refusal must say why */
	}
	json_decref(req);
	return 0;
}
