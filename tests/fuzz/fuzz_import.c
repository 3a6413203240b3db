/*
 * libFuzzer target: the header of a `clbsd import` archive, through the
 * daemon's own ctr_import (transfer.c, linked from libclbsdd.a) on a
 * throwaway root with one tiny image.
 *
 * The input is the header's JSON object. The harness frames it as an
 * export does (header_xxh3 first, padded to the 4096-byte block, its
 * checksum computed) and appends a real stream, exported once at start, so
 * the fuzzer reaches what comes after the checksums: the record's checks
 * and the container's creation. stream_bytes and stream_xxh3 are the real
 * stream's unless the input sets them.
 *
 * Beyond not crashing: every refusal says why, and a container imported
 * without allow_host has no bind of a host path (every volume is its own,
 * under <root>/volumes/NAME/) and no host networking. Whatever is imported
 * is destroyed again, so every input starts from the same state.
 */
#include "fuzz.h"
#include "daemon/daemon.h"
#include "net/net.h"
#include "util/hash.h"
#include "util/util.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 4096
#define SUM_TAG	    "{\"header_xxh3\":\""
#define SUM_OFF	    (sizeof(SUM_TAG) - 1)

static int no_destroy(const struct rt_spec *spec, struct clbsd_err *err)
{
	return 0;
}

static struct rt_ops rt = {.name = "fuzz", .destroy = no_destroy};
static struct daemon d;
static char *archive; /* where each input's archive is written */
static char *stream;  /* the real stream, exported at start */
static size_t stream_len;
static char stream_sum[33];
static char forge_id[65]; /* the image's id */

static void remove_root(void)
{
	struct clbsd_err err;
	fs_rm_rf(d.root, &err);
}

static void stuck(evutil_socket_t fd, short what, void *arg)
{
	abort(); /* a worker never finished */
}

/* Run the loop until *done (a callback's flag), or abort after 30 s. */
static void run_until(const bool *done)
{
	struct timeval tv = {30, 0};
	struct event *watchdog = evtimer_new(d.base, stuck, NULL);
	evtimer_add(watchdog, &tv);
	while (!*done)
		event_base_loop(d.base, EVLOOP_ONCE);
	event_free(watchdog);
}

static void destroy(struct container *c)
{
	struct clbsd_err err;
	autofree char *vols = xasprintf("%s/volumes/%s", d.root, c->name);
	int r = ctr_destroy(c, &err);
	if (r < 0 || (r == CTR_DESTROY_SLOW && ctr_destroy_files(c, &err) < 0))
		abort();
	struct container **p = &d.ctrs;
	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	ctr_free(c);
	if (r == 0) {
		/* The removal's done() runs on the loop: one pass after its worker. */
		struct timeval tv = {30, 0};
		struct event *watchdog = evtimer_new(d.base, stuck, NULL);
		evtimer_add(watchdog, &tv);
		event_base_loop(d.base, EVLOOP_ONCE);
		event_free(watchdog);
	}
	fs_rm_rf(vols, &err);
}

struct result {
	bool framed; /* false: the header is larger than its block, never imported */
	bool done;
	struct container *c;
	struct clbsd_err err;
};

static void imported(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct result *r = arg;
	r->done = true;
	r->c = c;
	if (err)
		r->err = *err;
}

static void exported(json_t *summary, const struct clbsd_err *err, void *arg)
{
	if (err)
		abort();
	json_decref(summary); /* the callback's to keep or free */
	*(bool *)arg = true;
}

/* The 4096-byte block of header object h, as an export writes it; false if too big. */
static bool frame(json_t *h, char block[HEADER_SIZE])
{
	autofree char *line = json_dumps(h, JSON_COMPACT);
	size_t n = strlen(line);
	if (n >= HEADER_SIZE)
		return false;
	memset(block, ' ', HEADER_SIZE);
	memcpy(block, line, n);
	block[HEADER_SIZE - 1] = '\n';
	if (strncmp(block, SUM_TAG, SUM_OFF) == 0) {
		char hex[33];
		struct xxh3_stream *x = hash_xxh3_begin();
		hash_xxh3_add(x, block, HEADER_SIZE); /* the digits are all '0' here */
		hash_xxh3_end(x, hex);
		memcpy(block + SUM_OFF, hex, 32);
	}
	return true;
}

/* Import the header object h with the real stream; the result. */
static void import(json_t *h, struct result *res)
{
	char block[HEADER_SIZE];
	struct clbsd_err err;
	memset(res, 0, sizeof(*res));
	if (!frame(h, block))
		return;
	res->framed = true;
	int fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, block, HEADER_SIZE) != HEADER_SIZE ||
	    write(fd, stream, stream_len) != (ssize_t)stream_len || close(fd) < 0)
		abort();
	if (ctr_import(&d, archive, NULL, false, imported, res, &err) < 0) {
		res->done = true;
		res->err = err;
		return;
	}
	run_until(&res->done);
}

static bool is_forge(const json_t *v)
{
	return json_is_string(v) && strcmp(json_string_value(v), "@forge") == 0;
}

/* h with header_xxh3 first (as zeros), the real stream's fields unless set. */
static json_t *as_header(json_t *in)
{
	json_t *h = json_pack("{s:s}", "header_xxh3", "00000000000000000000000000000000");
	const char *k;
	json_t *v;
	json_object_foreach(in, k, v)
	{
		if (strcmp(k, "header_xxh3") != 0)
			json_object_set(h, k, v);
	}
	/* "@forge" stands for the id of the image made at start (it differs each run). */
	json_t *img = json_object_get(h, "image");
	if (json_is_object(img) && is_forge(json_object_get(img, "id"))) {
		img = json_deep_copy(img);
		json_object_set_new(img, "id", json_string(forge_id));
		json_object_set_new(h, "image", img);
	}
	json_t *rec = json_object_get(h, "container");
	if (json_is_object(rec) && is_forge(json_object_get(rec, "image_id"))) {
		rec = json_deep_copy(rec);
		json_object_set_new(rec, "image_id", json_string(forge_id));
		json_object_set_new(h, "container", rec);
	}
	if (!json_object_get(h, "stream_bytes"))
		json_object_set_new(h, "stream_bytes", json_integer((json_int_t)stream_len));
	if (!json_object_get(h, "stream_xxh3") && !json_object_get(h, "stream_sha256"))
		json_object_set_new(h, "stream_xxh3", json_string(stream_sum));
	return h;
}

static void make_image(void)
{
	struct clbsd_err err;
	char *staging;
	struct image_config cfg = {0};
	if (image_staging_new(&d.images, &staging, &err) < 0)
		abort();
	autofree char *etc = xasprintf("%s/rootfs/etc", staging);
	if (fs_mkdir_p(etc, 0755, &err) < 0)
		abort();
	autofree char *passwd = xasprintf("%s/passwd", etc);
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
	snprintf(forge_id, sizeof(forge_id), "%s", img->id);
	image_config_release(&cfg);
	free(staging);
}

/*
 * Export one container once: its stream is every input's stream. Returns
 * the export's header without header_xxh3 and the stream's fields.
 */
static json_t *make_stream(void)
{
	struct clbsd_err err;
	struct ctr_spec spec = {.name = (char *)"orig", .image = (char *)"forge"};
	struct container *c;
	if (ctr_create(&d, &spec, &c, &err) < 0)
		abort();
	autofree char *path = xasprintf("%s/orig.clbsd", d.root);
	struct export_opts o = {0};
	bool done = false;
	if (ctr_export(c, path, &o, exported, &done, &err) < 0)
		abort();
	run_until(&done);
	autofree char *text = NULL;
	size_t n;
	if (fs_read_file(path, &text, &n, &err) < 0 || n < HEADER_SIZE)
		abort();
	stream_len = n - HEADER_SIZE;
	stream = xmalloc(stream_len + 1);
	memcpy(stream, text + HEADER_SIZE, stream_len);
	json_t *h = json_loadb(text, HEADER_SIZE, JSON_DISABLE_EOF_CHECK, NULL);
	const char *sum = json_string_value(json_object_get(h, "stream_xxh3"));
	if (!sum || strlen(sum) != 32)
		abort(); /* the dir driver's streams carry a checksum */
	memcpy(stream_sum, sum, 33);
	json_object_del(h, "header_xxh3");
	json_object_del(h, "stream_bytes");
	json_object_del(h, "stream_xxh3");
	destroy(c);
	unlink(path);
	return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Under $TMPDIR, which scripts/fuzz.sh removes even after a crash. */
	const char *tmp = getenv("TMPDIR");
	char *root = xasprintf("%s/clbsd-fuzz-import-XXXXXX", tmp && *tmp ? tmp : "/tmp");
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
	archive = xasprintf("%s/in.clbsd", root);
	atexit(remove_root);
	/* Exports and imports finish on the loop after a worker, as in the daemon. */
	/* The engine's own event bus, without a journal: events stay in its ring. */
	events_init(&d.events, NULL);
	if (evthread_use_pthreads() < 0 || !(d.base = event_base_new()))
		abort();
	if (storage_dir_open(root, &d.storage, &err) < 0 ||
	    image_store_open(root, &d.images, &err) < 0 || dnet_init(&d, &err) < 0)
		abort();
	make_image();
	json_t *orig = make_stream();
	/*
	 * The export's own header, framed by frame(), imports: else the
	 * framing here no longer matches transfer.c's and every input would
	 * stop at the checksum.
	 */
	json_t *h = as_header(orig);
	struct result res;
	import(h, &res);
	if (!res.c) {
		fprintf(stderr, "fuzz_import: the export's own header is refused: %s\n",
			res.err.msg);
		abort();
	}
	destroy(res.c);
	if (getenv("FUZZ_IMPORT_PRINT_SEED")) {
		/* What the seed corpus starts from: the header without its checksums. */
		autofree char *t = json_dumps(orig, JSON_COMPACT);
		printf("%s\n", t);
		fflush(stdout);
	}
	json_decref(h);
	json_decref(orig);
	return 0;
}

/* A volume source under <root>/volumes/NAME/, one component below. */
static bool own_volume(const struct container *c, const char *src)
{
	autofree char *prefix = xasprintf("%s/volumes/%s/", d.root, c->name);
	size_t n = strlen(prefix);
	return strncmp(src, prefix, n) == 0 && src[n] && !strchr(src + n, '/') &&
	       strcmp(src + n, "..") != 0 && strcmp(src + n, ".") != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *in = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_object(in)) {
		json_decref(in);
		return 0;
	}
	json_t *h = as_header(in);
	json_decref(in);
	struct result res;
	import(h, &res);
	json_decref(h);
	if (res.c) {
		/* Imported without allow_host: nothing of the host's reaches it. */
		for (size_t i = 0; i < res.c->cfg.n_volumes; i++)
			if (!own_volume(res.c, res.c->cfg.volumes[i].source))
				abort();
		if (res.c->net.mode == NET_MODE_HOST)
			abort();
		destroy(res.c);
	} else if (res.framed && !*res.err.msg) {
		abort(); /* every refusal says why */
	}
	return 0;
}
