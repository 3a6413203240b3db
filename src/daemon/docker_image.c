/*
 * Images in dockerd: pull through it, build with it, list what it holds.
 * docker_ctr.c runs containers; this file gives them their images.
 *
 * - Pull: POST /images/create?fromImage=&tag= on a worker. dockerd's
 *   progress lines become the same image.progress events a clbsd pull
 *   makes (the CLI prints them), ending with "done: ..." or "failed: ...";
 *   dockerd reports a failed pull inside its answer ({"error"}), not by
 *   its status.
 * - Build, a Dockerfile: the context directory as a tar (src/docker/
 *   context.c, written to an unlinked file under <root>/build/tmp) to
 *   POST /build; its {"stream"} lines become the build's {"output"} lines
 *   and its result the last line, as a clbsd build streams them.
 * - Build, a Cblockfile: clbsd builds it (build_run.c), exports the image
 *   as an OCI archive (image_jobs.c) and loads that into dockerd (POST
 *   /images/load). The image is then in both stores under one name.
 * - Declared (image NAME :build DIR :kind docker): built once per daemon
 *   start and again whenever the form changes (not every pass: a docker
 *   build costs a tar of the context and dockerd's cache look-up).
 *
 * Every Engine API call runs on a worker with a client of its own; the
 * progress a client sees is written on the loop (a mutex'd buffer and an
 * event, as build_run.c does).
 */
#include "daemon.h"
#include "core/config.h"
#include "docker/docker.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dockerd's {"errorDetail":{"message"}} or {"error"}, or NULL. */
static const char *line_error(json_t *j)
{
	const char *m = json_str(json_object_get(j, "errorDetail"), "message");
	return m ? m : json_str(j, "error");
}

/* The image as clbsd shows one: from GET /images/NAME/json. */
static json_t *image_json(json_t *ins, const char *name)
{
	json_t *names = json_object_get(ins, "RepoTags");
	json_t *o =
		json_pack("{s:s,s:s,s:O,s:I}", "id", json_str(ins, "Id") ? json_str(ins, "Id") : "",
			  "kind", "docker", "names", json_is_array(names) ? names : json_array(),
			  "size", (json_int_t)json_int(ins, "Size", 0));
	if (json_array_size(json_object_get(o, "names")) == 0 && name)
		json_array_append_new(json_object_get(o, "names"), json_string(name));
	const char *dg = json_string_value(json_array_get(json_object_get(ins, "RepoDigests"), 0));
	const char *at = dg ? strchr(dg, '@') : NULL;
	if (at)
		json_object_set_new(o, "digest", json_string(at + 1));
	/* Inspect's Created is a time with nanoseconds, in clbsd's form. */
	int64_t ct = dk_time_ns(json_str(ins, "Created"));
	if (ct) {
		char t[64];
		time_fmt_rfc3339(ct, t, sizeof(t));
		json_object_set_new(o, "created", json_string(t));
	}
	return o;
}

static int inspect_image(struct dk_client *cl, const char *name, json_t **out,
			 struct clbsd_err *err)
{
	autofree char *path = xasprintf("/images/%s/json", name);
	json_t *ins = NULL;
	if (dk_call(cl, "GET", path, NULL, 30, &ins, NULL, err) < 0)
		return -err->code;
	*out = image_json(ins, name);
	json_decref(ins);
	return 0;
}

/* ---- pull ---- */

struct dpull {
	struct daemon *d;
	char *ref;
	struct dk_client *cl;
	struct dprogress *pr;
	dimage_fn fn;
	void *arg;
	struct dk_lines lines;
	char *failed; /* dockerd's error line */
	json_t *result;
	struct clbsd_err err;
	int rc;
};

static int pull_line(json_t *j, void *arg)
{
	struct dpull *p = arg;
	const char *e = line_error(j);
	if (e) {
		free(p->failed);
		p->failed = xstrdup(e);
		return 0;
	}
	const char *st = json_str(j, "status");
	/* Progress bars ("Downloading", with progressDetail) would be a line per chunk. */
	json_t *pd = json_object_get(j, "progressDetail");
	if (!st || (json_is_object(pd) && json_object_size(pd)))
		return 0;
	const char *id = json_str(j, "id");
	autofree char *msg = id ? xasprintf("%s: %s", id, st) : xstrdup(st);
	dprogress_line(p->pr, msg);
	return 0;
}

static int pull_data(const char *data, size_t n, void *arg)
{
	struct dpull *p = arg;
	return dk_lines_feed(&p->lines, data, n, pull_line, p) == -EPROTO ? 1 : 0;
}

/* "host:5000/a/b:tag" -> from "host:5000/a/b", tag "tag"; a digest stays in from; no tag: latest. */
static void split_ref(const char *ref, char **from, char **tag)
{
	const char *slash = strrchr(ref, '/');
	const char *last = slash ? slash + 1 : ref;
	const char *colon = strchr(last, ':');
	if (strchr(ref, '@')) {
		*from = xstrdup(ref);
		*tag = NULL;
	} else if (colon) {
		*from = xstrndup(ref, (size_t)(colon - ref));
		*tag = xstrdup(colon + 1);
	} else {
		*from = xstrdup(ref);
		*tag = xstrdup("latest");
	}
}

static void pull_run(void *arg)
{
	struct dpull *p = arg;
	autofree char *from = NULL, *tag = NULL;
	split_ref(p->ref, &from, &tag);
	autofree char *efrom = dk_query_escape(from);
	autofree char *etag = tag ? dk_query_escape(tag) : NULL;
	autofree char *path = etag ? xasprintf("/images/create?fromImage=%s&tag=%s", efrom, etag)
				   : xasprintf("/images/create?fromImage=%s", efrom);
	p->rc = dk_request_stream(p->cl, "POST", path, NULL, -1, pull_data, p, &p->err);
	if (p->rc == 0 && p->failed)
		p->rc = clbsd_err_setmsg(&p->err, CLBSD_E_NOTFOUND, ENOENT, "docker pull %s: %s",
					 p->ref, p->failed);
	if (p->rc == 0) {
		autofree char *want = tag ? xasprintf("%s:%s", from, tag) : xstrdup(from);
		p->rc = inspect_image(p->cl, want, &p->result, &p->err);
	}
}

static void pull_done(void *arg)
{
	struct dpull *p = arg;
	if (p->rc < 0) {
		log_error("image", NULL, "docker pull %s: %s", p->ref, p->err.msg);
		autofree char *msg = xasprintf("failed: %s", p->err.msg);
		dprogress_line(p->pr, msg);
		dprogress_free(p->pr);
		p->fn(NULL, &p->err, p->arg);
	} else {
		autofree char *msg = xasprintf("done: %s in dockerd", p->ref);
		dprogress_line(p->pr, msg);
		dprogress_free(p->pr);
		daemon_event(p->d, "image.pulled", NULL,
			     json_pack("{s:s,s:s,s:s}", "name", p->ref, "id",
				       json_str(p->result, "id"), "kind", "docker"));
		log_info("image", NULL, "pulled %s into dockerd", p->ref);
		p->fn(p->result, NULL, p->arg);
		p->result = NULL;
	}
	dk_client_free(p->cl);
	buf_release(&p->lines.line);
	json_decref(p->result);
	free(p->failed);
	free(p->ref);
	free(p);
}

int docker_image_pull(struct daemon *d, const char *ref, dimage_fn fn, void *arg,
		      struct clbsd_err *err)
{
	if (!ref || !*ref || strlen(ref) > 512 || *ref == '-' || strpbrk(ref, " \t\n\r?&#"))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"\"ref\" must be an image reference like "
					"registry:5000/repo/name:tag");
	struct dk_client *cl = docker_client_new(d, err);
	if (!cl)
		return -err->code;
	struct dpull *p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->ref = xstrdup(ref);
	p->cl = cl;
	p->fn = fn;
	p->arg = arg;
	p->lines.line = (struct buf)BUF_INIT;
	p->pr = dprogress_new(d, ref);
	clbsd_err_init(&p->err);
	work_submit(d, pull_run, pull_done, p);
	return 0;
}

/* ---- list ---- */

struct dlist {
	struct dk_client *cl;
	dimage_fn fn;
	void *arg;
	json_t *result;
	struct clbsd_err err;
	int rc;
};

static void list_run(void *arg)
{
	struct dlist *l = arg;
	json_t *arr = NULL;
	l->rc = dk_call(l->cl, "GET", "/images/json", NULL, 30, &arr, NULL, &l->err);
	if (l->rc < 0)
		return;
	l->result = json_array();
	size_t i;
	json_t *im;
	json_array_foreach(arr, i, im)
	{
		json_t *o = image_json(im, NULL);
		/* The list has Created as seconds, inspect as a time. */
		char t[64];
		time_fmt_rfc3339((int64_t)json_int(im, "Created", 0) * 1000000000LL, t, sizeof(t));
		json_object_set_new(o, "created", json_string(t));
		json_array_append_new(l->result, o);
	}
	json_decref(arr);
}

static void list_done(void *arg)
{
	struct dlist *l = arg;
	if (l->rc < 0)
		l->fn(NULL, &l->err, l->arg);
	else
		l->fn(l->result, NULL, l->arg);
	dk_client_free(l->cl);
	free(l);
}

int docker_image_list(struct daemon *d, dimage_fn fn, void *arg, struct clbsd_err *err)
{
	struct dk_client *cl = docker_client_new(d, err);
	if (!cl)
		return -err->code;
	struct dlist *l = xcalloc(1, sizeof(*l));
	l->cl = cl;
	l->fn = fn;
	l->arg = arg;
	clbsd_err_init(&l->err);
	work_submit(d, list_run, list_done, l);
	return 0;
}

/* ---- build ---- */

struct dbuild {
	struct daemon *d;
	struct progress_sink sink; /* the client's; none for a declared build */
	bool streamed;
	void (*decl_fn)(struct daemon *d, const char *tag, const struct clbsd_err *err);
	pthread_mutex_t mu;
	struct buf out; /* lines from the worker, not yet written */
	struct event *flush_ev;
	/* inputs */
	char *context, *dockerfile, *tag, *network, *buildargs;
	bool no_cache;
	char *tmp; /* <root>/build/tmp */
	/* a Cblockfile: the archive clbsd's build was exported to */
	bool cblock;
	char *archive;
	struct dk_client *cl;
	/* the worker's */
	struct dk_lines lines;
	char *failed;
	char *id;
	json_t *result;
	struct clbsd_err err;
	int rc;
};

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct dbuild *b = arg;
	pthread_mutex_lock(&b->mu);
	struct buf out = b->out;
	b->out = (struct buf)BUF_INIT;
	pthread_mutex_unlock(&b->mu);
	if (b->streamed && out.len)
		b->sink.write(b->sink.ctx, out.data, out.len);
	buf_release(&out);
}

/* A line for the client, from any thread (taken). */
static void emit(struct dbuild *b, json_t *j)
{
	if (!b->streamed) {
		json_decref(j);
		return;
	}
	autofree char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	pthread_mutex_lock(&b->mu);
	buf_adds(&b->out, text);
	buf_addc(&b->out, '\n');
	pthread_mutex_unlock(&b->mu);
	event_active(b->flush_ev, EV_TIMEOUT, 0);
}

static void build_free(struct dbuild *b)
{
	if (b->flush_ev)
		event_free(b->flush_ev);
	pthread_mutex_destroy(&b->mu);
	buf_release(&b->out);
	buf_release(&b->lines.line);
	dk_client_free(b->cl);
	if (b->archive)
		unlink(b->archive);
	free(b->archive);
	free(b->context);
	free(b->dockerfile);
	free(b->tag);
	free(b->network);
	free(b->buildargs);
	free(b->tmp);
	free(b->failed);
	free(b->id);
	json_decref(b->result);
	free(b);
}

static int build_line(json_t *j, void *arg)
{
	struct dbuild *b = arg;
	const char *e = line_error(j);
	if (e) {
		free(b->failed);
		b->failed = xstrdup(e);
		return 0;
	}
	const char *s = json_str(j, "stream");
	const char *st = json_str(j, "status");
	const char *id = json_str(json_object_get(j, "aux"), "ID");
	if (id) {
		free(b->id);
		b->id = xstrdup(id);
	}
	if (s && *s)
		emit(b, json_pack("{s:s}", "output", s));
	else if (st && !json_object_size(json_object_get(j, "progressDetail")))
		emit(b, json_pack("{s:s++}", "output", st, "\n"));
	return 0;
}

static int build_data(const char *data, size_t n, void *arg)
{
	struct dbuild *b = arg;
	return dk_lines_feed(&b->lines, data, n, build_line, b) == -EPROTO ? 1 : 0;
}

/* A file that goes when closed: under <root>/build/tmp. -1 with err. */
static int tmp_file(const char *dir, struct clbsd_err *err)
{
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "a temporary file in %s", dir);
	return fd;
}

static void dockerfile_run(void *arg)
{
	struct dbuild *b = arg;
	autoclose int fd = tmp_file(b->tmp, &b->err);
	if (fd < 0) {
		b->rc = -b->err.code;
		return;
	}
	b->rc = dk_context_tar(b->context, fd, &b->err);
	if (b->rc < 0)
		return;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		b->rc = clbsd_err_set(&b->err, CLBSD_E_INTERNAL, errno, "build context: rewind");
		return;
	}
	struct buf q = BUF_INIT;
	autofree char *et = dk_query_escape(b->tag);
	autofree char *ef = dk_query_escape(b->dockerfile);
	buf_addf(&q, "/build?t=%s&dockerfile=%s&rm=1&forcerm=1", et, ef);
	if (b->no_cache)
		buf_adds(&q, "&nocache=1");
	if (b->network) {
		autofree char *en = dk_query_escape(b->network);
		buf_addf(&q, "&networkmode=%s", en);
	}
	if (b->buildargs) {
		autofree char *ea = dk_query_escape(b->buildargs);
		buf_addf(&q, "&buildargs=%s", ea);
	}
	autofree char *path = buf_detach(&q, NULL);
	b->rc = dk_request_stream(b->cl, "POST", path, "application/x-tar", fd, build_data, b,
				  &b->err);
	if (b->rc == 0 && b->failed)
		b->rc = clbsd_err_setmsg(&b->err, CLBSD_E_INVALID, EINVAL, "docker build %s: %s",
					 b->tag, b->failed);
	if (b->rc == 0)
		b->rc = inspect_image(b->cl, b->tag, &b->result, &b->err);
}

/* The archive clbsd's build was exported to, into dockerd. */
static void load_run(void *arg)
{
	struct dbuild *b = arg;
	autoclose int fd = open(b->archive, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		b->rc = clbsd_err_set(&b->err, CLBSD_E_INTERNAL, errno, "open %s", b->archive);
		return;
	}
	b->rc = dk_request_stream(b->cl, "POST", "/images/load", "application/x-tar", fd,
				  build_data, b, &b->err);
	if (b->rc == 0 && b->failed)
		b->rc = clbsd_err_setmsg(&b->err, CLBSD_E_INVALID, EINVAL,
					 "docker load of the clbsd build of %s: %s", b->tag,
					 b->failed);
	if (b->rc == 0)
		b->rc = inspect_image(b->cl, b->tag, &b->result, &b->err);
}

static void build_done(void *arg)
{
	struct dbuild *b = arg;
	struct daemon *d = b->d;
	if (b->rc < 0) {
		log_error("build", NULL, "docker build %s: %s", b->tag, b->err.msg);
		daemon_event(d, "image.build_failed", NULL,
			     json_pack("{s:s,s:s,s:s}", "name", b->tag, "error", b->err.msg, "kind",
				       "docker"));
		emit(b, json_pack("{s:{s:s,s:s}}", "error", "code", "build_failed", "message",
				  b->err.msg));
	} else {
		log_info("build", NULL, "built %s in dockerd (%s)", b->tag,
			 json_str(b->result, "id"));
		daemon_event(d, "image.built", NULL,
			     json_pack("{s:s,s:s,s:s}", "name", b->tag, "id",
				       json_str(b->result, "id"), "kind", "docker"));
		emit(b, json_pack("{s:O}", "image", b->result));
	}
	on_flush(-1, 0, b);
	if (b->streamed)
		b->sink.end(b->sink.ctx);
	if (b->decl_fn)
		b->decl_fn(d, b->tag, b->rc < 0 ? &b->err : NULL);
	build_free(b);
}

/* Refuse on the loop, after the stream began: an error line and the end. */
static void build_fail_now(struct dbuild *b, const struct clbsd_err *err)
{
	b->rc = -err->code;
	b->err = *err;
	build_done(b);
}

/* ---- a Cblockfile: clbsd's build, its OCI export, a load into dockerd ---- */

static size_t chain_pending(void *ctx)
{
	struct dbuild *b = ctx;
	return b->streamed ? b->sink.pending(b->sink.ctx) : 0;
}

static void chain_write(void *ctx, const char *data, size_t n)
{
	struct dbuild *b = ctx;
	if (b->streamed)
		b->sink.write(b->sink.ctx, data, n);
}

/* clbsd's build ended its stream; ours goes on (chain_built comes next). */
static void chain_end(void *ctx)
{
}

static void chain_exported(json_t *result, const struct clbsd_err *err, void *arg)
{
	struct dbuild *b = arg;
	json_decref(result);
	if (err) {
		build_fail_now(b, err);
		return;
	}
	emit(b, json_pack("{s:s}", "output", "loading the image into dockerd\n"));
	work_submit(b->d, load_run, build_done, b);
}

static void chain_built(struct daemon *d, const struct image *img, const struct clbsd_err *err,
			void *arg)
{
	struct dbuild *b = arg;
	if (!img) {
		/* clbsd's build said why on the stream already; this ends ours. */
		b->rc = -err->code;
		b->err = *err;
		log_error("build", NULL, "docker build %s: %s", b->tag, err->msg);
		if (b->streamed)
			b->sink.end(b->sink.ctx);
		if (b->decl_fn)
			b->decl_fn(d, b->tag, err);
		build_free(b);
		return;
	}
	char rnd[17];
	random_hex(rnd, 8);
	b->archive = xasprintf("%s/docker-load-%s.tar", b->tmp, rnd);
	struct clbsd_err e;
	clbsd_err_init(&e);
	if (fs_mkdir_p(b->tmp, 0700, &e) < 0 ||
	    dimage_export(d, b->tag, b->archive, chain_exported, b, &e) < 0) {
		free(b->archive);
		b->archive = NULL;
		build_fail_now(b, &e);
	}
}

/* ---- the request ---- */

/* "K=V" strings as dockerd's buildargs {"K":"V"}; NULL for none. */
static char *buildargs_of(json_t *args)
{
	if (!json_array_size(args))
		return NULL;
	json_t *o = json_object();
	size_t i;
	json_t *v;
	json_array_foreach(args, i, v)
	{
		const char *s = json_string_value(v);
		const char *eq = s ? strchr(s, '=') : NULL;
		if (eq) {
			autofree char *k = xstrndup(s, (size_t)(eq - s));
			json_object_set_new(o, k, json_string(eq + 1));
		}
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* Which file builds: a Dockerfile (dockerd) or a Cblockfile (clbsd, then a load). */
static int pick_file(const char *context, const char *file, char **rel, bool *cblock,
		     struct clbsd_err *err)
{
	if (!file) {
		autofree char *df = xasprintf("%s/Dockerfile", context);
		autofree char *cf = xasprintf("%s/Cblockfile", context);
		if (fs_exists(df)) {
			*rel = xstrdup("Dockerfile");
			*cblock = false;
		} else if (fs_exists(cf)) {
			*rel = xstrdup("Cblockfile");
			*cblock = true;
		} else {
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
						"build: %s has neither a Dockerfile nor a "
						"Cblockfile (give one with -f)",
						context);
		}
		return 0;
	}
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	*cblock = strncmp(base, "Cblockfile", 10) == 0;
	if (*cblock) {
		*rel = xstrdup(file);
		return 0;
	}
	/* dockerd reads the Dockerfile from the context: it must be in it. */
	size_t n = strlen(context);
	if (file[0] != '/') {
		*rel = xstrdup(file);
	} else if (strncmp(file, context, n) == 0 && file[n] == '/') {
		*rel = xstrdup(file + n + 1);
	} else {
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"build: the Dockerfile %s is outside the context %s; "
					"dockerd reads it from the context (move it there)",
					file, context);
	}
	if (strstr(*rel, "..")) {
		free(*rel);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"build: \"file\" may not hold \"..\"");
	}
	return 0;
}

static int begin(struct daemon *d, json_t *body, const struct progress_sink *sink,
		 void (*decl_fn)(struct daemon *, const char *, const struct clbsd_err *),
		 struct clbsd_err *err)
{
	const char *context = json_str(body, "context");
	const char *tag = json_str(body, "tag");
	const char *network = json_str(body, "network");
	if (!context || !fs_path_is_clean_abs(context) || !fs_is_dir(context))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"build: \"context\" must be an existing directory (an "
					"absolute path)");
	if (!tag || !valid_image_ref(tag))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"build: \"tag\" must be NAME[:TAG]");
	if (network && strcmp(network, "host") != 0 && strcmp(network, "none") != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"build: \"network\" is host or none");
	char *rel = NULL;
	bool cblock = false;
	if (pick_file(context, json_str(body, "file"), &rel, &cblock, err) < 0)
		return -err->code;
	struct dk_client *cl = docker_client_new(d, err);
	if (!cl) {
		free(rel);
		return -err->code;
	}
	struct dbuild *b = xcalloc(1, sizeof(*b));
	b->d = d;
	b->cl = cl;
	b->decl_fn = decl_fn;
	if (sink) {
		b->sink = *sink;
		b->streamed = true;
	}
	pthread_mutex_init(&b->mu, NULL);
	b->out = (struct buf)BUF_INIT;
	b->lines.line = (struct buf)BUF_INIT;
	b->flush_ev = event_new(d->base, -1, 0, on_flush, b);
	b->context = xstrdup(context);
	b->dockerfile = rel;
	b->tag = image_ref_normalise(tag);
	b->network = network ? xstrdup(network) : NULL;
	b->buildargs = buildargs_of(json_object_get(body, "args"));
	b->no_cache = json_bool(body, "no_cache", false);
	b->tmp = xasprintf("%s/build/tmp", d->root);
	b->cblock = cblock;
	clbsd_err_init(&b->err);
	if (!cblock) {
		work_submit(d, dockerfile_run, build_done, b);
		return 0;
	}
	/* clbsd builds it into its own store first; its lines go to our client. */
	json_t *nb = json_deep_copy(body);
	json_object_set_new(nb, "file", json_string(rel));
	json_object_del(nb, "kind");
	const struct progress_sink chain = {chain_pending, chain_write, chain_end, b};
	int r = build_start_then(d, nb, &chain, chain_built, b, err);
	json_decref(nb);
	if (r < 0) {
		b->streamed = false;
		build_free(b);
		return r;
	}
	return 0;
}

int docker_build_start(struct daemon *d, json_t *body, const struct progress_sink *sink,
		       struct clbsd_err *err)
{
	return begin(d, body, sink, NULL, err);
}

/* ---- declared images ---- */

/* What a declared docker image was last built from: name -> key, in d->docker_builds. */
static char *decl_key(const struct conf_image *im)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s\n%s", im->build, im->file ? im->file : "");
	for (size_t i = 0; i < im->nargs; i++)
		buf_addf(&b, "\n%s=%s", im->args[i].key, im->args[i].value);
	return buf_detach(&b, NULL);
}

static void decl_done(struct daemon *d, const char *tag, const struct clbsd_err *err)
{
	if (err) {
		/* Try again at a later pass. */
		json_object_del(d->docker_builds, tag);
		return;
	}
	reconcile_trigger(d);
}

void docker_image_decl(struct daemon *d, const struct conf_image *im)
{
	if (!d->docker_builds)
		d->docker_builds = json_object();
	autofree char *tag = image_ref_normalise(im->name);
	autofree char *key = decl_key(im);
	const char *had = json_str(d->docker_builds, tag);
	if ((had && strcmp(had, key) == 0) || docker_down(d))
		return;
	json_t *args = json_array();
	for (size_t k = 0; k < im->nargs; k++)
		json_array_append_new(args,
				      json_sprintf("%s=%s", im->args[k].key, im->args[k].value));
	json_t *body = json_pack("{s:s,s:s,s:o}", "context", im->build, "tag", tag, "args", args);
	if (im->file)
		json_object_set_new(body, "file", json_string(im->file));
	json_object_set_new(d->docker_builds, tag, json_string(key));
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (begin(d, body, NULL, decl_done, &err) < 0) {
		json_object_del(d->docker_builds, tag);
		log_error("reconcile", NULL, "image %s :kind docker: %s", im->name, err.msg);
		daemon_event(d, "image.build_failed", NULL,
			     json_pack("{s:s,s:s,s:s}", "name", tag, "error", err.msg, "kind",
				       "docker"));
	}
	json_decref(body);
}
