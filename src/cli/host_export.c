/*
 * `clbsd host export -o FILE` (docs/host.md): one snapshot of every
 * container at one moment (POST /v1/host/snapshot, zfs), the per-container
 * exports of that snapshot, the image exports and the configuration files,
 * which the CLI reads itself (it runs as root on the daemon's host), in
 * one ustar file (host_tar.c) whose last member, manifest.json, lists
 * every other member with its size and XXH3-128 and carries its own
 * checksum.
 */
#include "cli.h"
#include "core/backup_plan.h"
#include "core/config.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct exporter {
	const char *path; /* the archive; NULL: standard output */
	const char *label, *since;
	json_t *snaps; /* --snapshots: each container's (name -> "all" or "L1,L2"), or NULL */
	bool stop;
	json_t *host;	  /* GET /v1/host */
	json_t *manifest; /* built as members are added */
	json_t *restart;  /* names --stop stopped, to start again */
	struct host_tarw w;
	/* the configuration files, read before the plan and written after it */
	struct pending {
		char *member, *text;
		size_t len;
	} * pend;
	size_t npend;
};

static int add_member(struct exporter *x, const char *name, const char *file, const void *mem,
		      size_t len, struct clbsd_err *err)
{
	char hex[33];
	uint64_t size = len;
	int r = file ? host_tar_add_file(&x->w, name, file, hex, &size, err)
		     : host_tar_add_mem(&x->w, name, mem, len, hex, err);
	if (r < 0)
		return r;
	json_array_append_new(
		json_object_get(x->manifest, "members"),
		json_pack("{s:s,s:I,s:s}", "name", name, "size", (json_int_t)size, "xxh3", hex));
	return 0;
}

/* A configuration file, read now (it travels as it is at the start), written after the plan. */
static void add_text_file(struct exporter *x, const char *member, const char *path, json_t *cfg,
			  const char *role)
{
	char *text = NULL;
	size_t len = 0;
	struct clbsd_err e;
	if (fs_read_file(path, &text, &len, &e) < 0)
		return; /* not there: nothing to carry */
	x->pend = xrealloc(x->pend, (x->npend + 1) * sizeof(*x->pend));
	x->pend[x->npend++] = (struct pending){xstrdup(member), text, len};
	json_array_append_new(
		cfg, json_pack("{s:s,s:s,s:s}", "member", member, "role", role, "path", path));
}

static void pending_free(struct exporter *x)
{
	for (size_t i = 0; i < x->npend; i++) {
		free(x->pend[i].member);
		free(x->pend[i].text);
	}
	free(x->pend);
	x->pend = NULL;
	x->npend = 0;
}

/*
 * The host files the configuration's routes serve as their own
 * certificates and keys (:tls (:cert :key)): carried, for import to put
 * at the same paths (docs/host.md "Ingress and TLS").
 */
static void export_tls(struct exporter *x, json_t *cfg)
{
	struct conf_source *src = xcalloc(x->npend + 1, sizeof(*src));
	size_t n = 0, i;
	json_t *c;
	json_array_foreach(cfg, i, c)
	{
		const char *role = json_string_value(json_object_get(c, "role"));
		const char *member = json_string_value(json_object_get(c, "member"));
		if (strcmp(role, "main") != 0 && strcmp(role, "confd") != 0)
			continue;
		for (size_t k = 0; k < x->npend; k++)
			if (strcmp(x->pend[k].member, member) == 0)
				src[n++] = (struct conf_source){member, x->pend[k].text,
								x->pend[k].len};
	}
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	struct strv certs = STRV_INIT, keys = STRV_INIT;
	if (conf_build(src, n, &conf, &d) == 0) {
		conf_tls_files(conf, &certs, &keys);
		conf_free(conf);
	}
	conf_diags_release(&d);
	free(src);
	for (i = 0; i < certs.n; i++) {
		autofree char *m = xasprintf("tls/cert-%zu.pem", i + 1);
		add_text_file(x, m, certs.v[i], cfg, "tls_cert");
	}
	for (i = 0; i < keys.n; i++) {
		autofree char *m = xasprintf("tls/key-%zu.pem", i + 1);
		add_text_file(x, m, keys.v[i], cfg, "tls_key");
	}
	strv_release(&certs);
	strv_release(&keys);
}

static void export_config(struct exporter *x)
{
	json_t *cfg = json_array();
	json_object_set_new(x->manifest, "config", cfg);
	const char *main = json_string_value(json_object_get(x->host, "config"));
	const char *confd = json_string_value(json_object_get(x->host, "confd"));
	const char *init = json_string_value(json_object_get(x->host, "lisp_init"));
	if (main)
		add_text_file(x, "config/main.conf", main, cfg, "main");
	DIR *d = confd ? opendir(confd) : NULL;
	struct dirent *e;
	struct strv names = STRV_INIT;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] != '.' && n > 5 && n < 80 &&
		    strcmp(e->d_name + n - 5, ".conf") == 0)
			strv_push(&names, e->d_name);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < names.n; i++) {
		autofree char *p = xasprintf("%s/%s", confd, names.v[i]);
		autofree char *m = xasprintf("config/conf.d/%s", names.v[i]);
		add_text_file(x, m, p, cfg, "confd");
	}
	strv_release(&names);
	if (init)
		add_text_file(x, "config/lisp-init.lisp", init, cfg, "lisp_init");
	/* The ingress CA (:tls (:ca auto)): the same CA signs the same names there. */
	const char *ca = json_string_value(json_object_get(x->host, "ingress_ca"));
	static const char *const ca_files[] = {"ca.pem", "ca.key"};
	for (size_t i = 0; ca && i < ARRAY_SIZE(ca_files); i++) {
		autofree char *p = xasprintf("%s/%s", ca, ca_files[i]);
		autofree char *m = xasprintf("ca/%s", ca_files[i]);
		add_text_file(x, m, p, cfg, "ca");
	}
	export_tls(x, cfg);
}

/*
 * The plan (HOST_PLAN), the first member: the manifest as it is before
 * any data (what the archive holds and in which order, the configuration
 * members with their sizes and checksums), with its own checksum, so that
 * an import reading a stream checks everything it checks before making
 * anything; then the configuration members.
 */
static int write_plan(struct exporter *x, struct clbsd_err *err)
{
	json_t *p = json_deep_copy(x->manifest), *members = json_array();
	for (size_t i = 0; i < x->npend; i++) {
		char hex[33];
		host_xxh3_hex(x->pend[i].text, x->pend[i].len, hex);
		json_array_append_new(members,
				      json_pack("{s:s,s:I,s:s}", "name", x->pend[i].member, "size",
						(json_int_t)x->pend[i].len, "xxh3", hex));
	}
	json_object_set_new(p, "members", members);
	json_object_set_new(p, "plan", json_true());
	autofree char *text = host_manifest_text(p);
	json_decref(p);
	int r = add_member(x, HOST_PLAN, NULL, text, strlen(text), err);
	for (size_t i = 0; r == 0 && i < x->npend; i++)
		r = add_member(x, x->pend[i].member, NULL, x->pend[i].text, x->pend[i].len, err);
	pending_free(x);
	return r;
}

/*
 * What an export in progress has changed on the daemon: the containers it
 * stopped (--stop) and the containers its snapshot label is on (zfs), in
 * <root>/host-export.json with its pid. A run that ends undoes them and
 * removes the file; one killed leaves it, and the next `host export`
 * starts those containers again and removes that label first
 * (marker_recover), unless the export that wrote it still runs.
 */
static char marker[4096];

static void marker_write(const struct exporter *x, const json_t *snap)
{
	if (!marker[0])
		return;
	json_t *m = json_pack("{s:I,s:s,s:O,s:O?}", "pid", (json_int_t)getpid(), "label", x->label,
			      "stopped", x->restart, "snapshot",
			      snap ? json_object_get(snap, "containers") : NULL);
	autofree char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	struct clbsd_err e;
	if (fs_write_atomic(marker, text, strlen(text), 0600, &e) < 0)
		host_say("record what this export changes in %s: %s", marker, e.msg);
}

/*
 * Start a container a killed export stopped. The daemon may still be
 * copying its files for that export (the start is refused as busy until
 * it is done): asked again for up to two minutes. Running already is done.
 */
static int start_again(const char *name, struct clbsd_err *e)
{
	autofree char *p = xasprintf("/v1/containers/%s/start", name);
	autofree char *q = xasprintf("/v1/containers/%s", name);
	for (int i = 0;; i++) {
		if (cli_call("POST", p, NULL, NULL, e) == 0)
			return 0;
		json_t *have = NULL;
		struct clbsd_err e2;
		bool running =
			cli_call("GET", q, NULL, &have, &e2) == 0 &&
			json_is_string(json_object_get(have, "state")) &&
			strcmp(json_string_value(json_object_get(have, "state")), "running") == 0;
		json_decref(have);
		if (running)
			return 0;
		if (e->kind != CLBSD_E_CONFLICT || i >= 240)
			return -1;
		usleep(500 * 1000);
	}
}

/* Start the stopped containers and remove the label's snapshots; false when one failed. */
static bool undo_export(const json_t *stopped, const json_t *snapped, const char *label)
{
	bool ok = true;
	size_t i;
	json_t *n;
	json_array_foreach(stopped, i, n)
	{
		struct clbsd_err e;
		if (start_again(json_string_value(n), &e) < 0) {
			host_say("start %s again: %s", json_string_value(n), e.msg);
			ok = false;
		}
	}
	json_array_foreach(snapped, i, n)
	{
		struct clbsd_err e;
		autofree char *p =
			xasprintf("/v1/containers/%s/snapshots/%s", json_string_value(n), label);
		if (cli_call("DELETE", p, NULL, NULL, &e) < 0 && e.kind != CLBSD_E_NOTFOUND) {
			host_say("remove snapshot %s of %s: %s", label, json_string_value(n),
				 e.msg);
			ok = false;
		}
	}
	return ok;
}

/* What a killed export left (its marker): undone before this one starts. */
static int marker_recover(struct clbsd_err *err)
{
	autofree char *text = NULL;
	size_t len;
	struct clbsd_err e;
	if (fs_read_file(marker, &text, &len, &e) < 0)
		return 0;
	json_t *m = json_loadb(text, len, 0, NULL);
	pid_t pid = (pid_t)json_integer_value(json_object_get(m, "pid"));
	const char *label = json_string_value(json_object_get(m, "label"));
	if (pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)) {
		json_decref(m);
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"another host export runs (pid %d, %s)", (int)pid, marker);
	}
	bool ok = true;
	if (label && host_valid_label(label)) {
		host_say("an export killed before it ended (pid %d) left containers stopped or "
			 "snapshot %s: undone",
			 (int)pid, label);
		ok = undo_export(json_object_get(m, "stopped"), json_object_get(m, "snapshot"),
				 label);
	}
	json_decref(m);
	if (ok)
		unlink(marker);
	return 0;
}

/* Stop what runs (dir --stop); they are started again by restart_stopped(). */
static int stop_all(struct exporter *x, const json_t *ctrs, struct clbsd_err *err)
{
	size_t i;
	json_t *c;
	json_array_foreach(ctrs, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *st = json_string_value(json_object_get(c, "state"));
		if (!name || !st || strcmp(st, "running") != 0)
			continue;
		autofree char *p = xasprintf("/v1/containers/%s/stop", name);
		/* Recorded first: a kill between the two leaves it listed, never stopped unlisted. */
		json_array_append_new(x->restart, json_string(name));
		marker_write(x, NULL);
		if (cli_call("POST", p, NULL, NULL, err) < 0)
			return clbsd_err_prefix(err, "stop %s for a consistent copy", name);
	}
	return 0;
}

static bool restart_stopped(struct exporter *x)
{
	bool ok = undo_export(x->restart, NULL, NULL);
	json_array_clear(x->restart);
	return ok;
}

/*
 * --snapshots for each container: "all" for all; for labels, those of
 * them each container has (GET .../snapshots), and a label none of them
 * has is refused before anything is made. *out: name -> spec.
 */
static int snaps_plan(const char *spec, const json_t *ctrs, json_t **out, struct clbsd_err *err)
{
	*out = NULL;
	if (!spec || strcmp(spec, "none") == 0)
		return 0;
	json_t *plan = json_object();
	bool all = strcmp(spec, "all") == 0;
	struct strv want = STRV_INIT;
	autofree char *copy = xstrdup(spec);
	char *save = NULL;
	for (char *l = strtok_r(copy, ",", &save); !all && l; l = strtok_r(NULL, ",", &save))
		strv_push(&want, l);
	bool *found = xcalloc(want.n + 1, sizeof(bool));
	size_t i;
	json_t *c;
	int r = 0;
	json_array_foreach(ctrs, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		if (!name || r < 0)
			continue;
		if (all) {
			json_object_set_new(plan, name, json_string("all"));
			continue;
		}
		autofree char *p = xasprintf("/v1/containers/%s/snapshots", name);
		json_t *have = NULL;
		if ((r = cli_call("GET", p, NULL, &have, err)) < 0) {
			clbsd_err_prefix(err, "snapshots of container %s", name);
			break;
		}
		struct buf b = BUF_INIT;
		for (size_t k = 0; k < want.n; k++) {
			size_t h;
			json_t *s;
			json_array_foreach(have, h, s)
			{
				const char *l = json_string_value(json_object_get(s, "label"));
				if (l && strcmp(l, want.v[k]) == 0) {
					buf_addf(&b, "%s%s", b.len ? "," : "", l);
					found[k] = true;
					break;
				}
			}
		}
		json_decref(have);
		if (b.len)
			json_object_set_new(plan, name, json_string(b.data));
		buf_release(&b);
	}
	for (size_t k = 0; r == 0 && k < want.n; k++)
		if (!found[k])
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "--snapshots: no container has a snapshot %s (clbsd "
					     "snapshots NAME lists them)",
					     want.v[k]);
	free(found);
	strv_release(&want);
	if (r < 0)
		json_decref(plan);
	else
		*out = plan;
	return r;
}

/*
 * Each container's manifest entry, in the order import makes them
 * (host_import_order), which is the order their members are written in:
 * an import reading a stream imports each as it comes.
 */
static void container_entries(struct exporter *x, const json_t *ctrs)
{
	json_t *list = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(ctrs, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *kind = json_string_value(json_object_get(c, "kind"));
		const char *st = json_string_value(json_object_get(c, "state"));
		if (!name)
			continue;
		autofree char *member = xasprintf("containers/%s.clbsd", name);
		json_t *e = json_pack("{s:s,s:s,s:s,s:O?,s:b,s:b}", "name", name, "member", member,
				      "kind", kind ? kind : "native", "image_id",
				      json_object_get(c, "image_id"), "managed",
				      json_is_true(json_object_get(c, "managed")), "running",
				      st && strcmp(st, "running") == 0);
		/* A declared container's effective form: the import goes into it. */
		json_t *full = NULL;
		struct clbsd_err e2;
		autofree char *self = xasprintf("/v1/containers/%s", name);
		if (json_is_true(json_object_get(c, "managed")) &&
		    cli_call("GET", self, NULL, &full, &e2) == 0) {
			json_object_set(e, "declaration", json_object_get(full, "declaration"));
			json_object_set(e, "depends_on", json_object_get(full, "depends_on"));
		}
		json_decref(full);
		json_array_append_new(list, e);
	}
	json_object_set_new(x->manifest, "containers", host_import_order(list));
	json_decref(list);
}

/*
 * Containers are exported two at a time, each by the daemon into its own
 * file, while the main thread copies the one before into the archive (or
 * the pipe) in order: the daemon's sends run while the copy waits for the
 * reader. Each job only makes its API call.
 */
#define EXPORT_JOBS 2

struct export_job {
	char *url, *file;
	json_t *body;
	pthread_t t;
	bool on;
	int r;
	json_t *res;
	struct clbsd_err err;
};

static void *export_job_run(void *arg)
{
	struct export_job *j = arg;
	clbsd_err_init(&j->err);
	j->r = cli_call("POST", j->url, j->body, &j->res, &j->err);
	return NULL;
}

static void export_job_release(struct export_job *j)
{
	if (j->on) {
		pthread_join(j->t, NULL);
		j->on = false;
	}
	if (j->file)
		unlink(j->file);
	free(j->url);
	free(j->file);
	json_decref(j->body);
	json_decref(j->res);
	*j = (struct export_job){0};
}

static int export_containers(struct exporter *x, bool atomic, struct clbsd_err *err)
{
	json_t *list = json_object_get(x->manifest, "containers"), *saved = json_object();
	size_t n = json_array_size(list);
	struct export_job *jobs = xcalloc(n + 1, sizeof(*jobs));
	size_t i;
	json_t *e;
	/* Each request first, in order: a docker image travels once, with the first container of it. */
	json_array_foreach(list, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *img = json_string_value(json_object_get(e, "image_id"));
		bool docker = kind && strcmp(kind, "docker") == 0;
		jobs[i].file = xasprintf("%s/%s.clbsd", host_stage_dir, name);
		jobs[i].body = json_pack("{s:s}", "path", jobs[i].file);
		if (atomic)
			json_object_set_new(jobs[i].body, "at", json_string(x->label));
		if (x->since)
			json_object_set_new(jobs[i].body, "from", json_string(x->since));
		if (docker && !x->since && img && !json_object_get(saved, img)) {
			json_object_set_new(jobs[i].body, "with_image", json_true());
			json_object_set_new(saved, img, json_true());
		}
		/* Labels checked by snaps_plan: nothing to escape. */
		const char *snaps = json_string_value(json_object_get(x->snaps, name));
		jobs[i].url =
			snaps ? xasprintf("/v1/containers/%s/export?snapshots=%s", name, snaps)
			      : xasprintf("/v1/containers/%s/export", name);
	}
	json_decref(saved);
	int r = 0;
	for (i = 0; r == 0 && i < n; i++) {
		for (size_t k = i; k < n && k < i + EXPORT_JOBS; k++) {
			if (jobs[k].on || jobs[k].res || jobs[k].r)
				continue;
			jobs[k].on =
				pthread_create(&jobs[k].t, NULL, export_job_run, &jobs[k]) == 0;
			if (!jobs[k].on)
				export_job_run(&jobs[k]);
		}
		struct export_job *j = &jobs[i];
		if (j->on) {
			pthread_join(j->t, NULL);
			j->on = false;
		}
		e = json_array_get(list, i);
		if (j->r < 0) {
			*err = j->err;
			r = clbsd_err_prefix(err, "export container %s",
					     json_string_value(json_object_get(e, "name")));
			break;
		}
		/* The older snapshots its stream carries (import makes them again). */
		json_t *carried = json_object_get(j->res, "snapshots");
		if (json_array_size(carried))
			json_object_set(e, "snapshots", carried);
		r = add_member(x, json_string_value(json_object_get(e, "member")), j->file, NULL, 0,
			       err);
		export_job_release(j);
	}
	/* Those still running or done after a failure: their files go. */
	for (i = 0; i < n; i++)
		export_job_release(&jobs[i]);
	free(jobs);
	return r;
}

/* The images that travel, by id (an increment's are there already): listed in the plan. */
static int image_entries(struct exporter *x, struct clbsd_err *err)
{
	json_t *imgs = NULL, *list = json_array();
	json_object_set_new(x->manifest, "images", list);
	if (x->since)
		return 0;
	if (cli_call("GET", "/v1/images", NULL, &imgs, err) < 0)
		return -err->code;
	size_t i;
	json_t *im;
	json_array_foreach(imgs, i, im)
	{
		const char *id = json_string_value(json_object_get(im, "id"));
		if (!id || json_array_size(json_object_get(im, "names")) == 0 ||
		    host_is_routing_image(x->host, im))
			continue;
		autofree char *member = xasprintf("images/%s.tar", id);
		json_array_append_new(list, json_pack("{s:s,s:s,s:O}", "id", id, "member", member,
						      "names", json_object_get(im, "names")));
	}
	json_decref(imgs);
	return 0;
}

static int export_images(struct exporter *x, struct clbsd_err *err)
{
	size_t i;
	json_t *e;
	int r = 0;
	json_array_foreach(json_object_get(x->manifest, "images"), i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		autofree char *file = xasprintf("%s/image-%s.tar", host_stage_dir, id);
		json_t *body = json_pack("{s:s}", "path", file);
		autofree char *p = xasprintf("/v1/images/%s/export", id);
		json_t *res = NULL;
		r = cli_call("POST", p, body, &res, err);
		json_decref(body);
		if (r < 0) {
			clbsd_err_prefix(err, "export image %.12s", id);
			break;
		}
		r = add_member(x, json_string_value(json_object_get(e, "member")), file, NULL, 0,
			       err);
		unlink(file);
		if (json_object_get(res, "digest"))
			json_object_set(e, "digest", json_object_get(res, "digest"));
		json_decref(res);
		if (r < 0)
			break;
	}
	return r;
}

static int export_networks(struct exporter *x, struct clbsd_err *err)
{
	json_t *nets = NULL, *list = json_array();
	json_object_set_new(x->manifest, "networks", list);
	if (cli_call("GET", "/v1/networks", NULL, &nets, err) < 0)
		return -err->code;
	size_t i;
	json_t *n;
	/* Those of the configuration travel with it; the API's are made again. */
	json_array_foreach(nets, i, n)
	{
		const char *src = json_string_value(json_object_get(n, "source"));
		if (src && strcmp(src, "api") == 0)
			json_array_append_new(list,
					      json_pack("{s:O,s:O,s:O?,s:O?}", "name",
							json_object_get(n, "name"), "subnet",
							json_object_get(n, "subnet"), "subnet6",
							json_object_get(n, "subnet6"), "internal",
							json_object_get(n, "internal")));
	}
	json_decref(nets);
	return 0;
}

int cmd_host_export(const struct cli_args *a)
{
	const char *out = cli_get(a, "output"), *since = cli_get(a, "since");
	const char *label = cli_get(a, "label"), *snaps = cli_get(a, "snapshots");
	char made[64];
	if (!label) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(made, sizeof(made), "host-%Y%m%d-%H%M%S", &tm);
		label = made;
	}
	if (!out)
		return cli_usage("-o FILE is needed (-o -: standard output)");
	bool to_stdout = strcmp(out, "-") == 0;
	if (to_stdout && isatty(STDOUT_FILENO))
		return cli_usage(
			"-o -: standard output is a terminal; pipe it (clbsd host export -o "
			"- | clbsd host import -) or give a FILE");
	int ur = cli_check_snapshots(snaps);
	if (ur)
		return ur;
	bool with_snaps = snaps && strcmp(snaps, "none") != 0;
	if (since && with_snaps)
		return cli_usage("--snapshots goes with a whole export, not with --since (the "
				 "changes since a snapshot hold no older ones)");
	if (!host_valid_label(label) || (since && !host_valid_label(since)))
		return cli_usage("invalid snapshot label \"%s\": letters, digits and _.:- (64 at "
				 "most, starting with a letter or digit)",
				 host_valid_label(label) ? since : label);
	autofree char *path = to_stdout ? NULL : cli_abs_target(out);
	if (!to_stdout && !path)
		return cli_usage("cannot write \"%s\": its directory does not exist", out);
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (path && access(path, F_OK) == 0)
		return cli_usage("%s exists already; host export does not overwrite", path);
	struct exporter x = {.path = path,
			     .label = label,
			     .since = since,
			     .stop = cli_has(a, "stop"),
			     .w = {.fd = -1}};
	json_t *ctrs = NULL, *snap = NULL;
	if (cli_call("GET", "/v1/host", NULL, &x.host, &err) < 0)
		return cli_fail(&err);
	const char *root = json_string_value(json_object_get(x.host, "root"));
	if (root)
		snprintf(marker, sizeof(marker), "%s/host-export.json", root);
	if ((root && marker_recover(&err) < 0) ||
	    cli_call("GET", "/v1/containers?all=1", NULL, &ctrs, &err) < 0) {
		json_decref(x.host);
		return cli_fail(&err);
	}
	/* The target makes its own routing container, from its nginx: not stopped, not carried. */
	for (size_t i = json_array_size(ctrs); i-- > 0;)
		if (host_is_routing_ctr(x.host, json_array_get(ctrs, i)))
			json_array_remove(ctrs, i);
	bool atomic = json_is_true(json_object_get(x.host, "snapshot_all"));
	const char *driver = json_string_value(json_object_get(x.host, "driver"));
	if (since && !atomic) {
		json_decref(x.host);
		json_decref(ctrs);
		return cli_usage("--since: the %s storage driver has no incremental exports (zfs "
				 "has)",
				 driver ? driver : "?");
	}
	if (with_snaps && !atomic) {
		json_decref(x.host);
		json_decref(ctrs);
		return cli_usage("--snapshots: the %s storage driver's snapshots are copies and do "
				 "not travel in an export (zfs sends them); use --snapshots none",
				 driver ? driver : "?");
	}
	if (snaps_plan(snaps, ctrs, &x.snaps, &err) < 0) {
		json_decref(x.host);
		json_decref(ctrs);
		return cli_fail(&err);
	}
	host_catch_signals();
	/* A reader that goes away is an error to undo the export by, not a death. */
	if (to_stdout)
		signal(SIGPIPE, SIG_IGN);
	x.restart = json_array();
	x.manifest = json_pack("{s:s,s:i,s:o,s:s,s:s?,s:s,s:O,s:o}", "format", "clbsd-host",
			       "version", 1, "created_at", json_time(time_now_ns()), "label", label,
			       "since", since, "consistency",
			       atomic	? "atomic"
			       : x.stop ? "stopped"
					: "per-container",
			       "source", x.host, "members", json_array());
	if (path)
		snprintf(host_tmp_out, sizeof(host_tmp_out), "%s.clbsd-tmp-host", path);
	int r = host_stage_make(path, &err);
	if (r == 0 && to_stdout) {
		x.w.fd = STDOUT_FILENO;
		x.w.path = "standard output";
	} else if (r == 0) {
		x.w.fd = open(host_tmp_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		x.w.path = host_tmp_out;
		if (x.w.fd < 0)
			r = clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "create %s", host_tmp_out);
	}
	/*
	 * What the archive holds, known first and written as its plan; then
	 * the configuration and the images, then the containers (the
	 * snapshot, or the stop, as late as it can be).
	 */
	if (r == 0) {
		export_config(&x);
		r = image_entries(&x, &err);
	}
	if (r == 0)
		r = export_networks(&x, &err);
	if (r == 0) {
		container_entries(&x, ctrs);
		r = write_plan(&x, &err);
	}
	if (r == 0)
		r = export_images(&x, &err);
	if (r == 0 && atomic) {
		/* One `zfs snapshot -r`: every container at the same moment, none stopped. */
		json_t *body = json_pack("{s:s}", "label", label);
		/* Before: killed during the call, the label may be on any of them. */
		json_t *all = json_pack("{s:[]}", "containers");
		size_t i;
		json_t *c;
		json_array_foreach(ctrs, i, c)
		{
			json_array_append(json_object_get(all, "containers"),
					  json_object_get(c, "name"));
		}
		marker_write(&x, all);
		json_decref(all);
		r = cli_call("POST", "/v1/host/snapshot", body, &snap, &err);
		if (r == 0)
			marker_write(&x, snap);
		json_decref(body);
		if (r == 0 && json_object_get(snap, "docker"))
			json_object_set(json_object_get(x.manifest, "source"), "docker_version",
					json_object_get(snap, "docker"));
	} else if (r == 0 && x.stop) {
		r = stop_all(&x, ctrs, &err);
	} else if (r == 0 && json_array_size(ctrs) > 1) {
		host_say("the %s storage driver copies each container at its own moment; --stop "
			 "stops them for one consistent point",
			 driver ? driver : "?");
	}
	if (r == 0)
		r = export_containers(&x, atomic, &err);
	bool undone = restart_stopped(&x);
	/* What host diff compares with this file later. */
	json_t *state = r == 0 ? host_state(NULL, &err) : NULL;
	if (r == 0 && !state)
		r = -err.code;
	if (r == 0) {
		json_object_set_new(x.manifest, "state", state);
		autofree char *text = host_manifest_text(x.manifest);
		r = host_tar_add_mem(&x.w, HOST_MANIFEST, text, strlen(text), NULL, &err);
	}
	if (r == 0)
		r = host_tar_end(&x.w, &err);
	if (x.w.fd >= 0 && close(x.w.fd) < 0 && r == 0)
		r = clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "write %s", x.w.path);
	if (r == 0 && path && rename(host_tmp_out, path) < 0)
		r = clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "rename %s", host_tmp_out);
	if (r == 0)
		host_tmp_out[0] = 0;
	/* The snapshot stays as the base of a later --since; a failed export's goes. */
	if (r < 0 && snap && !undo_export(NULL, json_object_get(snap, "containers"), label))
		undone = false;
	/* The snapshot call failed: whether the label was made is not known here; the next run looks. */
	if (r < 0 && atomic && !snap)
		undone = false;
	/* All undone (or kept: a whole export's snapshot): nothing for the next run to undo. */
	if (marker[0] && undone)
		unlink(marker);
	host_stage_rm();
	size_t nc = json_array_size(json_object_get(x.manifest, "containers"));
	size_t ni = json_array_size(json_object_get(x.manifest, "images"));
	json_decref(x.manifest);
	json_decref(x.snaps);
	json_decref(x.host);
	json_decref(x.restart);
	pending_free(&x);
	json_decref(ctrs);
	json_decref(snap);
	if (r < 0)
		return cli_fail(&err);
	host_say("%zu containers, %zu images%s%s", nc, ni, atomic ? "; snapshot " : "",
		 atomic ? label : "");
	if (path)
		printf("%s\n", path);
	return 0;
}
