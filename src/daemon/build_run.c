/*
 * Image builds from a Cblockfile (docs/cblockfile.md, docs/images.md).
 *
 * A build streams newline-delimited JSON to its client (POST /v1/build, through
 * a struct progress_sink that api/build_route.c adapts to HTTP) as it goes:
 *   {"stage":N,"from":"forge"}                      a stage begins
 *   {"step":N,"of":M,"instruction":"RUN ...","status":"cached"|"running"|"config"}
 *   {"output":"..."}                                what a RUN prints
 *   {"step":N,"status":"done","elapsed_ms":T}
 *   {"image":{...}} or {"error":{"code":...,"message":...}}  the last line
 *
 * The file is read, expanded and its base images resolved on the loop; the
 * plan (with the content hash of COPY sources), the steps and the final
 * copy run on a worker; the image is committed on the loop.
 *
 * The layer cache: the tree a file-changing step (RUN, COPY, ADD, WORKDIR,
 * ROOTPIVOT) leaves is kept in <root>/build/cache/<key>, the key of the plan
 * (parent key, instruction, content of its sources). A step whose layer
 * exists is not run again (unless no_cache); a step is made in a scratch
 * directory from its parent's tree and renamed into the cache only when it
 * succeeded. A failed build leaves no image (its staging directory goes) and
 * keeps the layers of the steps that succeeded.
 *
 * RUN runs in a native build container: `clbsd-shim --run-spec` with the
 * step's tree as its root (bind), the host's resolv.conf read-only, host or
 * no network, the stage's environment and ARGs, WORKDIR and USER, and its
 * own cgroup below the daemon's parent. Its output streams to the client.
 */
#include "daemon.h"
#include "core/config.h"
#include "image/cblockfile.h"
#include "image/oci.h"
#include "util/json.h"
#include "sys/sys.h"
#include "util/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct base_ref {
	char *ref;
	char id[65];
	char *rootfs;
	struct image_config cfg;
};

struct build {
	struct daemon *d;
	struct progress_sink sink; /* its client */
	bool streamed;		   /* false: a build the reconciler asked for (logged) */
	build_done_fn fn;
	void *fn_arg;
	pthread_mutex_t mu;
	struct buf out; /* lines the worker produced, not yet sent */
	size_t dropped; /* output lines dropped for a client that reads too slowly */
	struct event *flush_ev;
	/* inputs */
	char *context, *tag, *network;
	bool no_cache;
	struct cbf_file *cf;
	struct base_ref *bases;
	size_t nbases;
	char *cache, *tmp; /* <root>/build/cache, <root>/build/tmp */
	char *shim, *cgparent;
	char *staging;
	char *had_source; /* the source of the image the tag names now, or NULL */
	bool reuse;	  /* the build ends where that image came from: nothing to store */
	char final_key[65];
	/* results */
	struct image_config cfg;
	int rc;
	struct clbsd_err err;
};

static void emit(struct build *b, json_t *j)
{
	if (!b->streamed) {
		/* No client: the steps go to the log (RUN output at debug level). */
		const char *st = json_str(j, "status");
		if (st && strcmp(st, "running") == 0)
			log_info("build", b->tag, "step %d/%d: %s", (int)json_int(j, "step", 0),
				 (int)json_int(j, "of", 0), json_str(j, "instruction"));
		else if (json_str(j, "output"))
			log_debug("build", b->tag, "%s", json_str(j, "output"));
		json_decref(j);
		return;
	}
	bool output = json_str(j, "output") != NULL;
	autofree char *line = json_line(j);
	json_decref(j);
	pthread_mutex_lock(&b->mu);
	/* A RUN that writes faster than the client reads loses lines, not our memory. */
	if (output && b->out.len > PROGRESS_HIGH_WATER) {
		b->dropped++;
		pthread_mutex_unlock(&b->mu);
		return;
	}
	if (b->dropped) {
		buf_addf(&b->out,
			 "{\"output\":\"[clbsd: %zu lines of output dropped: the client read too "
			 "slowly]\\n\"}\n",
			 b->dropped);
		b->dropped = 0;
	}
	buf_adds(&b->out, line);
	buf_addc(&b->out, '\n');
	pthread_mutex_unlock(&b->mu);
	event_active(b->flush_ev, EV_TIMEOUT, 0);
}

/* Hand the worker's lines to the client while it keeps up (all of them when final). */
static void flush(struct build *b, bool final)
{
	if (!final && b->sink.pending(b->sink.ctx) > PROGRESS_HIGH_WATER) {
		struct timeval tv = {0, 50000};
		event_add(b->flush_ev, &tv);
		return;
	}
	pthread_mutex_lock(&b->mu);
	size_t n = b->out.len;
	char *data = n ? buf_detach(&b->out, NULL) : NULL;
	pthread_mutex_unlock(&b->mu);
	if (!data)
		return;
	b->sink.write(b->sink.ctx, data, n);
	free(data);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	flush(arg, false);
}

static void build_free(struct build *b)
{
	if (b->flush_ev)
		event_free(b->flush_ev);
	pthread_mutex_destroy(&b->mu);
	buf_release(&b->out);
	free(b->context);
	free(b->tag);
	free(b->network);
	cbf_file_free(b->cf);
	for (size_t i = 0; i < b->nbases; i++) {
		free(b->bases[i].ref);
		free(b->bases[i].rootfs);
		image_config_release(&b->bases[i].cfg);
	}
	free(b->bases);
	free(b->cache);
	free(b->tmp);
	free(b->shim);
	free(b->cgparent);
	free(b->staging);
	free(b->had_source);
	image_config_release(&b->cfg);
	free(b);
}

/* A whole image config, copied. */
static void config_copy(struct image_config *dst, const struct image_config *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->entrypoint = src->entrypoint ? strv_dup(src->entrypoint) : NULL;
	dst->cmd = src->cmd ? strv_dup(src->cmd) : NULL;
	dst->env = src->env ? strv_dup(src->env) : NULL;
	dst->workdir = src->workdir ? xstrdup(src->workdir) : NULL;
	dst->user = src->user ? xstrdup(src->user) : NULL;
	image_config_copy_build(dst, src);
}

/* Output as a JSON string: invalid UTF-8 (a chunk cut mid-character) becomes '?'. */
static json_t *text_json(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	char *t = xstrndup(s, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] >= 0x80 || t[i] == '\0')
			t[i] = '?';
	j = json_stringn(t, n);
	free(t);
	return j;
}

/* The instruction as written (keyword, flags, arguments), for people. */
static char *shown(const struct cbf_instr *in)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, cbf_kind_name(in->kind));
	for (size_t i = 0; i < in->nflags; i++)
		buf_addf(&b, " %s", in->flags[i].raw);
	if (in->rest && *in->rest)
		buf_addf(&b, " %s", in->rest);
	buf_addc(&b, '\0');
	return buf_detach(&b, NULL);
}

static const struct base_ref *base_of(const struct build *b, const char *ref)
{
	for (size_t i = 0; i < b->nbases; i++)
		if (strcmp(b->bases[i].ref, ref) == 0)
			return &b->bases[i];
	return NULL;
}

/* ---- plan callbacks ---- */

static int image_id_cb(const char *ref, char id[65], void *ctx, struct clbsd_err *err)
{
	const struct build *b = ctx;
	const struct base_ref *r = base_of(b, ref);
	if (!r)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "image %s not found", ref);
	memcpy(id, r->id, 65);
	return 0;
}

static int source_hash_cb(const struct cbf_instr *in, char out[65], void *ctx,
			  struct clbsd_err *err)
{
	const struct build *b = ctx;
	return cbf_source_hash_context(in, out, b->context, err);
}

/* ---- what a stage's RUN steps see ---- */

struct stage_env {
	struct strv env;   /* "K=V" */
	struct strv shell; /* SHELL, default /bin/sh -c */
	char *workdir;
	char *user;
};

static void senv_init(struct stage_env *s, const struct image_config *base)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; base && base->env && base->env[i]; i++)
		strv_push(&s->env, base->env[i]);
	strv_push(&s->shell, "/bin/sh");
	strv_push(&s->shell, "-c");
	s->workdir = xstrdup(base && base->workdir && *base->workdir ? base->workdir : "/");
	s->user = xstrdup(base && base->user ? base->user : "");
}

static void senv_release(struct stage_env *s)
{
	strv_release(&s->env);
	strv_release(&s->shell);
	free(s->workdir);
	free(s->user);
}

static void senv_apply(struct stage_env *s, const struct cbf_instr *in)
{
	switch (in->kind) {
	case CBF_ENV:
		for (size_t i = 0; i < in->nkv; i++) {
			autofree char *kv = xasprintf("%s=%s", in->kv[i].key,
						      in->kv[i].value ? in->kv[i].value : "");
			ctr_env_set(&s->env, kv);
		}
		break;
	case CBF_WORKDIR:
		if (in->value && in->value[0] == '/') {
			free(s->workdir);
			s->workdir = xstrdup(in->value);
		} else if (in->value) {
			char *w = xasprintf("%s%s%s", s->workdir,
					    s->workdir[strlen(s->workdir) - 1] == '/' ? "" : "/",
					    in->value);
			free(s->workdir);
			s->workdir = w;
		}
		break;
	case CBF_USER:
		free(s->user);
		s->user = xstrdup(in->value ? in->value : "");
		break;
	case CBF_SHELL:
		strv_release(&s->shell);
		for (size_t i = 0; in->argv && in->argv[i]; i++)
			strv_push(&s->shell, in->argv[i]);
		break;
	default:
		break;
	}
}

/*
 * "name" or "uid" against the tree's /etc/<db>. The tree is what earlier RUN
 * steps left, so the build's own commands control it: it is read inside the
 * tree (no symlink leaves it; a FIFO, a device node or a huge file is refused).
 */
static int db_lookup(const char *tree, const char *db, const char *name, uint32_t *id,
		     uint32_t *gid, struct clbsd_err *err)
{
	long long v;
	if (parse_int(name, 0, UINT32_MAX - 1, &v) == 0) {
		*id = (uint32_t)v;
		return 0;
	}
	autofree char *rel = xasprintf("etc/%s", db);
	autofree char *text = NULL;
	if (fs_read_in_rootdir(tree, rel, CTR_DB_MAX, &text, NULL, err) < 0) {
		clbsd_err_prefix(err, "USER %s: read the image's /etc/%s", name, db);
		err->kind = CLBSD_E_INVALID;
		return -err->code;
	}
	if (ctr_lookup_db(text, name, id, gid) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
					"USER %s: no such %s in the image's /etc/%s", name,
					strcmp(db, "group") == 0 ? "group" : "user", db);
	return 0;
}

static int resolve_user(const char *tree, const char *user, uint32_t *uid, uint32_t *gid,
			struct clbsd_err *err)
{
	*uid = *gid = 0;
	if (!user || !*user)
		return 0;
	autofree char *u = xstrdup(user);
	char *colon = strchr(u, ':');
	if (colon)
		*colon++ = '\0';
	if (db_lookup(tree, "passwd", u, uid, gid, err) < 0)
		return -err->code;
	if (colon && db_lookup(tree, "group", colon, gid, NULL, err) < 0)
		return -err->code;
	return 0;
}

/* ---- RUN in a build container ---- */

static int run_step(struct build *b, const struct cbf_instr *in, const struct stage_env *se,
		    char *const *args, const char *dir, struct clbsd_err *err)
{
	autofree char *fs = xasprintf("%s/fs", dir);
	autofree char *mnt = xasprintf("%s/mnt", dir);
	if (fs_mkdir_p(mnt, 0700, err) < 0)
		return -err->code;
	struct rt_spec spec = {0};
	char hex[9];
	random_hex(hex, 4);
	spec.name = xasprintf("build-%s", hex);
	spec.hostname = xstrdup("build");
	struct strv argv = STRV_INIT;
	if (in->exec_form) {
		for (size_t i = 0; in->argv && in->argv[i]; i++)
			strv_push(&argv, in->argv[i]);
	} else {
		for (size_t i = 0; i < se->shell.n; i++)
			strv_push(&argv, se->shell.v[i]);
		strv_push(&argv, in->shell ? in->shell : "");
	}
	spec.argv = argv.v;
	struct strv env = STRV_INIT;
	for (size_t i = 0; i < se->env.n; i++)
		strv_push(&env, se->env.v[i]);
	for (size_t i = 0; args && args[i]; i++)
		if (strchr(args[i], '='))
			ctr_env_set(&env, args[i]);
	bool has_path = false;
	for (size_t i = 0; i < env.n; i++)
		has_path |= strncmp(env.v[i], "PATH=", 5) == 0;
	if (!has_path)
		strv_push(&env,
			  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	spec.env = env.v ? env.v : xcalloc(1, sizeof(char *));
	spec.cwd = xstrdup(se->workdir);
	int r = resolve_user(fs, se->user, &spec.uid, &spec.gid, err);
	spec.host_network = b->network && strcmp(b->network, "host") == 0;
	spec.rootfs.mode = xstrdup("bind");
	spec.rootfs.lower = xstrdup(fs);
	spec.rootfs.target = xstrdup(mnt);
	spec.mounts = xcalloc(1, sizeof(struct rt_mount));
	if (fs_exists("/etc/resolv.conf")) {
		spec.mounts[0] = (struct rt_mount){.source = xstrdup("/etc/resolv.conf"),
						   .dest = xstrdup("/etc/resolv.conf"),
						   .readonly = true};
		spec.n_mounts = 1;
	}
	spec.cgroup = xasprintf("%s/build-%s", b->cgparent, hex);
	autofree char *spec_path = xasprintf("%s/spec.json", dir);
	autofree char *json = rt_spec_to_json(&spec);
	rt_spec_release(&spec);
	if (r < 0)
		return r;
	if (fs_write_atomic(spec_path, json, strlen(json), 0600, err) < 0)
		return -err->code;

	/* The shim runs it in the foreground; its stdout and stderr are our pipe. */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *const sargv[] = {b->shim, "--run-spec", spec_path, NULL};
	pid_t pid;
	/* The sealed copy of the shim, never the file: a RUN step is the image's code. */
	int exe = daemon_shim_exe(b->d, err);
	int se_ = 0;
	if (exe >= 0) {
		char exe_path[32];
		snprintf(exe_path, sizeof(exe_path), "/proc/self/fd/%d", exe);
		se_ = posix_spawn(&pid, exe_path, &fa, &attr, sargv, environ);
		close(exe);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (exe < 0) {
		close(p[0]);
		return exe;
	}
	if (se_ != 0) {
		close(p[0]);
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, se_, "run %s", b->shim);
	}
	char chunk[4096];
	for (;;) {
		ssize_t n = read(p[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		emit(b, json_pack("{s:o}", "output", text_json(chunk, (size_t)n)));
	}
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (code != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EIO,
					"%s:%d: RUN failed with exit status %d", b->cf->file,
					in->line, code);
	return 0;
}

/* ---- ADD of archives and URLs ---- */

static bool add_fetches(const struct cbf_instr *in)
{
	size_t n = strv_len(in->argv);
	for (size_t i = 0; i + 1 < n; i++)
		if (cbf_add_source_kind(in->argv[i]) != CBF_ADD_FILE)
			return true;
	return false;
}

/* The last path element of a URL ("index" when there is none). */
static char *url_base(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	autofree char *path = xstrndup(p, strcspn(p, "?#"));
	char *slash = strrchr(path, '/');
	const char *base = slash && slash[1] ? slash + 1 : "index";
	for (const char *c = base; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("._-", *c)))
			return xstrdup("download");
	return xstrdup(base[0] == '.' ? "download" : base);
}

/*
 * ADD with archives or URLs among its sources: each source in turn, a local
 * file as COPY does, a URL downloaded (as a file named after it), a local
 * archive or an archive URL extracted (libarchive, confined to a scratch
 * directory) and its contents copied into the destination directory. The
 * copies go through cbf_apply_file_step(), so the tree's symlinks cannot
 * lead them out.
 */
static int add_fetch(struct build *b, const struct cbf_instr *in, const char *work, const char *fs,
		     const char *workdir, struct clbsd_err *err)
{
	size_t n = strv_len(in->argv);
	const char *dest = in->argv[n - 1];
	autofree char *dest_dir =
		dest[strlen(dest) - 1] == '/' ? xstrdup(dest) : xasprintf("%s/", dest);
	for (size_t i = 0; i + 1 < n; i++) {
		const char *src = in->argv[i];
		enum cbf_add_source k = cbf_add_source_kind(src);
		struct cbf_instr one = *in;
		char *argv[3] = {NULL, NULL, NULL};
		one.argv = argv;
		struct cbf_step_env env = {.context = b->context, .workdir = workdir};
		autofree char *scratch = xasprintf("%s/add-%zu", work, i);
		if (fs_mkdir_p(scratch, 0700, err) < 0)
			return -err->code;
		autofree char *file = NULL; /* what to extract, when it is an archive */
		autofree char *base = NULL;
		int r = 0;
		autofree char *src_copy = xstrdup(src);
		autofree char *dest_copy = xstrdup(dest);
		if (k == CBF_ADD_FILE) {
			argv[0] = src_copy;
			argv[1] = dest_copy;
			r = cbf_apply_file_step(&one, fs, &env, err);
			if (r < 0)
				return r;
			continue;
		}
		if (k == CBF_ADD_URL || k == CBF_ADD_ARCHIVE_URL) {
			base = url_base(src);
			autofree char *dl = xasprintf("%s/dl", scratch);
			if (fs_mkdir_p(dl, 0700, err) < 0)
				return -err->code;
			file = xasprintf("%s/%s", dl, base);
			int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s",
						     file);
			emit(b, json_pack("{s:s}", "output", "downloading ..."));
			r = oci_download(src, fd, err);
			close(fd);
			if (r < 0)
				return clbsd_err_prefix(err, "ADD");
			if (k == CBF_ADD_URL) {
				/* A plain download lands as a file. */
				one.kind = CBF_COPY;
				one.from_stage = 0;
				env.from_root = dl;
				argv[0] = base;
				argv[1] = dest_copy;
				r = cbf_apply_file_step(&one, fs, &env, err);
				if (r < 0)
					return r;
				continue;
			}
		} else {
			/* A local archive of the context (the plan checked it stays inside). */
			file = xasprintf("%s/%s", b->context, src);
			autofree char *real = realpath(file, NULL);
			size_t cl = strlen(b->context);
			if (!real || strncmp(real, b->context, cl) != 0 ||
			    (real[cl] != '/' && real[cl] != '\0'))
				return clbsd_err_setmsg(
					err, CLBSD_E_INVALID, EINVAL,
					"ADD %s: not a file inside the build context", src);
		}
		autofree char *x = xasprintf("%s/x", scratch);
		if (fs_mkdir_p(x, 0755, err) < 0)
			return -err->code;
		r = oci_apply_layer(x, file, err);
		if (r < 0)
			return clbsd_err_prefix(err, "ADD %s: extract", src);
		one.kind = CBF_COPY;
		one.from_stage = 0;
		env.from_root = x;
		autofree char *dot = xstrdup(".");
		argv[0] = dot;
		argv[1] = dest_dir;
		r = cbf_apply_file_step(&one, fs, &env, err);
		if (r < 0)
			return clbsd_err_prefix(err, "ADD %s", src);
	}
	return 0;
}

/* ---- the worker ---- */

static int64_t now_ms(void)
{
	return time_mono_ns() / 1000000;
}

/*
 * One step that changes files: its layer from the cache, or made in a work
 * directory from a copy of *cur (the tree so far) by RUN, a fetching ADD or
 * a COPY/ADD of files, and kept in the cache under the step's key. On
 * success *cur is the layer.
 */
static int layer_step(struct build *b, const struct cbf_step *step, const struct stage_env *se,
		      char **stage_args, char **result, const char *text, size_t num, size_t total,
		      char **cur, struct clbsd_err *err)
{
	const struct cbf_instr *in = step->instr;
	autofree char *layer = xasprintf("%s/%s", b->cache, step->key);
	if (!b->no_cache && fs_is_dir(layer)) {
		emit(b, json_pack("{s:i,s:i,s:s,s:s}", "step", (int)num, "of", (int)total,
				  "instruction", text, "status", "cached"));
		free(*cur);
		*cur = steal_ptr(&layer);
		return 0;
	}
	emit(b, json_pack("{s:i,s:i,s:s,s:s}", "step", (int)num, "of", (int)total, "instruction",
			  text, "status", "running"));
	int64_t t0 = now_ms();
	int r;
	char hex[17];
	random_hex(hex, 8);
	autofree char *work = xasprintf("%s/step-%s", b->tmp, hex);
	autofree char *fs = xasprintf("%s/fs", work);
	if (fs_mkdir_p(work, 0700, err) < 0 || sys_copy_tree(*cur, fs, err) < 0) {
		r = -err->code;
	} else if (in->kind == CBF_RUN) {
		r = run_step(b, in, se, stage_args, work, err);
	} else if (in->kind == CBF_ADD && add_fetches(in)) {
		r = add_fetch(b, in, work, fs, se->workdir, err);
	} else {
		struct cbf_step_env env = {
			.context = b->context,
			.from_root = in->from_stage >= 0 ? result[in->from_stage] : NULL,
			.workdir = se->workdir,
		};
		r = cbf_apply_file_step(in, fs, &env, err);
	}
	struct clbsd_err e2;
	if (r == 0) {
		fs_rm_rf(layer, &e2); /* --no-cache: the new one replaces it */
		/* A build running beside this one may have made the same layer. */
		if (rename(fs, layer) < 0 &&
		    !((errno == ENOTEMPTY || errno == EEXIST) && fs_is_dir(layer)))
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "keep layer %s", layer);
	}
	fs_rm_rf(work, &e2);
	if (r == 0) {
		emit(b, json_pack("{s:i,s:s,s:I}", "step", (int)num, "status", "done", "elapsed_ms",
				  (json_int_t)(now_ms() - t0)));
		free(*cur);
		*cur = steal_ptr(&layer);
	}
	return r;
}

static int build_run_inner(struct build *b, struct cbf_plan *plan)
{
	struct clbsd_err *err = &b->err;
	struct cbf_plan_ops ops = {
		.image_id = image_id_cb, .source_hash = source_hash_cb, .ctx = b};
	if (cbf_plan_build(b->cf, &ops, plan, err) < 0)
		return -err->code;
	if (fs_mkdir_p(b->cache, 0700, err) < 0 || fs_mkdir_p(b->tmp, 0700, err) < 0)
		return -err->code;
	size_t ns = b->cf->nstages;
	bool *needed = xcalloc(ns, sizeof(bool));
	cbf_stages_needed(b->cf, needed);
	size_t total = 0;
	for (size_t i = 0; i < plan->n; i++)
		total += needed[plan->steps[i].stage];
	char **result = xcalloc(ns, sizeof(char *));		/* the tree each stage left */
	struct image_config *cfgs = xcalloc(ns, sizeof(*cfgs)); /* and its config */
	char ehex[17];
	random_hex(ehex, 8);
	autofree char *empty = xasprintf("%s/empty-%s", b->tmp, ehex); /* FROM scratch */
	int r = 0;
	size_t num = 0;
	struct strv argv = STRV_INIT;
	for (size_t i = 0; i < b->cf->nargs; i++)
		for (size_t k = 0; k < b->cf->args[i].nkv; k++)
			if (b->cf->args[i].kv[k].value)
				strv_push_owned(&argv, xasprintf("%s=%s", b->cf->args[i].kv[k].key,
								 b->cf->args[i].kv[k].value));
	for (size_t s = 0; r == 0 && s < ns; s++) {
		if (!needed[s])
			continue;
		const struct cbf_stage *st = &b->cf->stages[s];
		const struct image_config *base_cfg = NULL;
		const char *tree = NULL;
		if (st->base_kind == CBF_BASE_IMAGE) {
			const struct base_ref *br = base_of(b, st->base);
			base_cfg = &br->cfg;
			tree = br->rootfs;
		} else if (st->base_kind == CBF_BASE_STAGE) {
			base_cfg = &cfgs[st->base_stage];
			tree = result[st->base_stage];
		} else {
			if (fs_mkdir_p(empty, 0755, err) < 0) {
				r = -err->code;
				break;
			}
			tree = empty;
		}
		emit(b, json_pack("{s:i,s:s}", "stage", (int)s + 1, "from", st->base));
		struct stage_env se;
		senv_init(&se, base_cfg);
		struct strv stage_args = STRV_INIT;
		for (size_t i = 0; i < argv.n; i++)
			strv_push(&stage_args, argv.v[i]);
		autofree char *cur = xstrdup(tree);
		for (size_t i = 0; r == 0 && i < plan->n; i++) {
			const struct cbf_step *step = &plan->steps[i];
			if (step->stage != s)
				continue;
			const struct cbf_instr *in = step->instr;
			autofree char *text = shown(in);
			num++;
			if (in->kind == CBF_ARG) {
				for (size_t k = 0; k < in->nkv; k++)
					if (in->kv[k].value)
						strv_push_owned(&stage_args,
								xasprintf("%s=%s", in->kv[k].key,
									  in->kv[k].value));
			}
			senv_apply(&se, in);
			if (!cbf_kind_changes_files(in->kind)) {
				emit(b, json_pack("{s:i,s:i,s:s,s:s}", "step", (int)num, "of",
						  (int)total, "instruction", text, "status",
						  "config"));
				continue;
			}
			r = layer_step(b, step, &se, stage_args.v, result, text, num, total, &cur,
				       err);
		}
		strv_release(&stage_args);
		senv_release(&se);
		if (r == 0 && cbf_image_config(b->cf, s, base_cfg, &cfgs[s], err) < 0)
			r = -err->code;
		result[s] = steal_ptr(&cur);
	}
	strv_release(&argv);
	/*
	 * The image: the last stage's tree and config, unless the tag names the
	 * image this very build made before (same final key): nothing to store.
	 */
	if (r == 0) {
		memcpy(b->final_key, plan->stage_key[ns - 1], sizeof(b->final_key));
		autofree char *src = xasprintf("build:%s", b->final_key);
		b->reuse = b->had_source && strcmp(b->had_source, src) == 0;
	}
	if (r == 0 && !b->reuse) {
		autofree char *rootfs = xasprintf("%s/rootfs", b->staging);
		struct clbsd_err e2;
		fs_rm_rf(rootfs, &e2);
		if (sys_copy_tree(result[ns - 1], rootfs, err) < 0)
			r = -err->code;
		else
			config_copy(&b->cfg, &cfgs[ns - 1]);
		/* Its containers' manifest at create (docs/integrity.md); it works without. */
		if (r == 0 && image_integrity_record(b->staging, &e2) < 0)
			log_warn("build", NULL, "no integrity manifest: %s", e2.msg);
	}
	struct clbsd_err e3;
	fs_rm_rf(empty, &e3);
	for (size_t s = 0; s < ns; s++) {
		free(result[s]);
		image_config_release(&cfgs[s]);
	}
	free(result);
	free(cfgs);
	free(needed);
	return r;
}

static void build_run(void *arg)
{
	struct build *b = arg;
	struct cbf_plan plan = {0};
	clbsd_err_init(&b->err);
	b->rc = build_run_inner(b, &plan);
	cbf_plan_release(&plan);
}

static void build_done(void *arg)
{
	struct build *b = arg;
	struct daemon *d = b->d;
	struct image *img = NULL;
	autofree char *src = xasprintf("build:%s", b->final_key);
	if (b->rc == 0 && b->reuse)
		img = image_lookup(&d->images, b->tag);
	if (b->rc == 0 && img && b->reuse) {
		fs_rm_rf(b->staging, &(struct clbsd_err){0});
	} else if (b->rc == 0) {
		b->rc = image_commit(&d->images, b->staging, &b->cfg, b->tag, ctr_image_in_use, d,
				     &img, &b->err);
		struct clbsd_err e2;
		if (b->rc == 0 && image_set_source(img, src, &e2) < 0)
			log_warn("build", NULL, "%s: %s", b->tag, e2.msg);
	} else {
		fs_rm_rf(b->staging, &(struct clbsd_err){0});
	}
	if (b->rc < 0) {
		log_error("build", NULL, "%s: %s", b->tag, b->err.msg);
		daemon_event(d, "image.build_failed", NULL,
			     json_pack("{s:s,s:s}", "name", b->tag, "error", b->err.msg));
		if (b->streamed)
			emit(b, json_pack("{s:{s:s,s:s}}", "error", "code", "build_failed",
					  "message", b->err.msg));
	} else {
		if (!b->reuse) {
			log_info("build", NULL, "built %s (%s)", b->tag, img->id);
			daemon_event(d, "image.built", NULL,
				     json_pack("{s:s,s:s}", "name", b->tag, "id", img->id));
		}
		if (b->streamed)
			emit(b, json_pack("{s:o}", "image", image_to_json(&d->images, img)));
	}
	if (b->streamed) {
		flush(b, true);
		b->sink.end(b->sink.ctx);
	}
	if (b->fn)
		b->fn(d, b->rc < 0 ? NULL : img, b->rc < 0 ? &b->err : NULL, b->fn_arg);
	build_free(b);
}

/* ---- the request ---- */

static char *const *base_env(const char *ref, void *ctx)
{
	struct daemon *d = ctx;
	struct image *img = image_lookup(&d->images, ref);
	return img ? img->config.env : NULL;
}

static int build_begin(struct daemon *d, const struct progress_sink *sink, json_t *body,
		       build_done_fn fn, void *arg, struct clbsd_err *err)
{
	const char *context = json_str(body, "context");
	const char *file = json_str(body, "file");
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
	autofree char *path =
		file ? (file[0] == '/' ? xstrdup(file) : xasprintf("%s/%s", context, file))
		     : xasprintf("%s/Cblockfile", context);
	autofree char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, &text, &len, err) < 0)
		return clbsd_err_prefix(err, "build");
	struct cbf_file *cf = NULL;
	if (cbf_read(path, text, len, &cf, err) < 0)
		return -err->code;
	char **args = json_to_strv(json_object_get(body, "args"));
	for (size_t i = 0; args && args[i]; i++)
		if (!strchr(args[i], '=')) {
			int r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						 "build: argument \"%s\" is not NAME=VALUE",
						 args[i]);
			strv_free(args);
			cbf_file_free(cf);
			return r;
		}
	struct cbf_expand_opts eo = {.build_args = args, .base_env = base_env, .ctx = d};
	int r = cbf_expand(cf, &eo, err);
	strv_free(args);
	if (r < 0) {
		cbf_file_free(cf);
		return r;
	}
	struct build *b = xcalloc(1, sizeof(*b));
	b->d = d;
	b->cf = cf;
	/* Base images: resolved now, on the loop that owns the store. */
	for (size_t s = 0; s < cf->nstages; s++) {
		const struct cbf_stage *st = &cf->stages[s];
		if (st->base_kind != CBF_BASE_IMAGE || base_of(b, st->base))
			continue;
		struct image *img = image_lookup(&d->images, st->base);
		if (!img) {
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "%s:%d:%d: FROM %s: no such image here ('clbsd "
					     "images' lists them; pull or build it first)",
					     cf->file, st->line, st->col, st->base);
			build_free(b);
			return r;
		}
		b->bases = xrealloc(b->bases, (b->nbases + 1) * sizeof(*b->bases));
		struct base_ref *br = &b->bases[b->nbases++];
		memset(br, 0, sizeof(*br));
		br->ref = xstrdup(st->base);
		memcpy(br->id, img->id, sizeof(br->id));
		br->rootfs = xasprintf("%s/rootfs", img->dir);
		config_copy(&br->cfg, &img->config);
	}
	pthread_mutex_init(&b->mu, NULL);
	b->flush_ev = sink ? event_new(d->base, -1, 0, on_flush, b) : NULL;
	if (sink) {
		b->sink = *sink;
		b->streamed = true;
	}
	b->fn = fn;
	b->fn_arg = arg;
	b->context = xstrdup(context);
	b->tag = image_ref_normalise(tag);
	b->network = xstrdup(network ? network : "none");
	b->no_cache = json_bool(body, "no_cache", false);
	b->cache = xasprintf("%s/build/cache", d->root);
	b->tmp = xasprintf("%s/build/tmp", d->root);
	b->shim = xstrdup(d->shim_path);
	b->cgparent = xstrdup(d->cgroup_parent);
	struct image *had = image_lookup(&d->images, b->tag);
	b->had_source = had && had->source ? xstrdup(had->source) : NULL;
	if (image_staging_new(&d->images, &b->staging, err) < 0) {
		build_free(b);
		return -err->code;
	}
	work_submit(d, build_run, build_done, b);
	return 0;
}

int build_start(struct daemon *d, json_t *body, const struct progress_sink *sink,
		struct clbsd_err *err)
{
	return build_begin(d, sink, body, NULL, NULL, err);
}

int build_start_then(struct daemon *d, json_t *body, const struct progress_sink *sink,
		     build_done_fn fn, void *arg, struct clbsd_err *err)
{
	return build_begin(d, sink, body, fn, arg, err);
}

/* ---- images the configuration declares ---- */

/*
 * (image NAME :build DIR ...) is built (NAME:latest) at every reconcile
 * pass: a build whose inputs did not change ends at once on the image it
 * made before, so this costs a plan (the context's hash). When the build
 * gives a new image, a pass runs again and recreates the containers using
 * it. (image NAME :from REF) tags REF as NAME. One build per image runs at
 * a time.
 */
struct decl_build {
	char *name;
	char old_id[65];
};

static bool building(struct daemon *d, const char *name)
{
	return json_object_get(d->decl_builds, name) != NULL;
}

static void decl_done(struct daemon *d, const struct image *img, const struct clbsd_err *err,
		      void *arg)
{
	struct decl_build *db = arg;
	json_object_del(d->decl_builds, db->name);
	if (img && strcmp(img->id, db->old_id) != 0) {
		log_info("build", db->name, "declared image built: %s", img->id);
		reconcile_trigger(d);
	}
	free(db->name);
	free(db);
}

void images_sync(struct daemon *d)
{
	if (!d->decl.conf)
		return;
	if (!d->decl_builds)
		d->decl_builds = json_object();
	for (size_t i = 0; i < d->decl.conf->nimages; i++) {
		const struct conf_image *im = d->decl.conf->images[i];
		autofree char *tag = image_ref_normalise(im->name);
		struct clbsd_err err;
		clbsd_err_init(&err);
		if (im->from) {
			struct image *src = image_lookup(&d->images, im->from);
			struct image *now = image_lookup(&d->images, tag);
			if (src && (!now || strcmp(now->id, src->id) != 0) &&
			    image_tag(&d->images, im->from, tag, ctr_image_in_use, d, &err) < 0)
				log_error("reconcile", NULL, "image %s :from %s: %s", im->name,
					  im->from, err.msg);
			continue;
		}
		if (im->build && im->docker) {
			docker_image_decl(d, im);
			continue;
		}
		if (!im->build || building(d, tag))
			continue;
		json_t *args = json_array();
		for (size_t k = 0; k < im->nargs; k++)
			json_array_append_new(
				args, json_sprintf("%s=%s", im->args[k].key, im->args[k].value));
		json_t *body =
			json_pack("{s:s,s:s,s:s,s:o}", "context", im->build, "file",
				  im->file ? im->file : "Cblockfile", "tag", tag, "args", args);
		struct decl_build *db = xcalloc(1, sizeof(*db));
		db->name = xstrdup(tag);
		struct image *now = image_lookup(&d->images, tag);
		if (now)
			memcpy(db->old_id, now->id, sizeof(db->old_id));
		json_object_set_new(d->decl_builds, tag, json_true());
		if (build_begin(d, NULL, body, decl_done, db, &err) < 0) {
			json_object_del(d->decl_builds, tag);
			log_error("reconcile", NULL, "image %s: %s", im->name, err.msg);
			daemon_event(d, "image.build_failed", NULL,
				     json_pack("{s:s,s:s}", "name", tag, "error", err.msg));
			free(db->name);
			free(db);
		}
		json_decref(body);
	}
}

/*
 * A daemon killed during a build leaves <root>/build/tmp/step-* (a copy of
 * the tree being built) and, during a RUN, that step's container: its shim
 * runs on without a reader, its command runs on in the build's cgroup. At
 * start nothing builds yet, so everything in build/tmp is stale: each step's
 * spec.json (the daemon's own file, beside the tree) names the cgroup, which
 * is killed and removed (the shim, whose child that was, then exits), and
 * the directory is emptied. Only the daemon's files are read: the tree in
 * each step's fs/ is never looked into, and removal does not cross mount points.
 */
void build_cleanup_stale(struct daemon *d)
{
	autofree char *tmp = xasprintf("%s/build/tmp", d->root);
	DIR *dir = opendir(tmp);
	if (!dir)
		return;
	size_t steps = 0, killed = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "step-", 5) != 0)
			continue;
		steps++;
		autofree char *spec_path = xasprintf("%s/%s/spec.json", tmp, de->d_name);
		autofree char *json = NULL;
		struct clbsd_err err;
		struct rt_spec spec;
		if (fs_read_file(spec_path, &json, NULL, &err) < 0 ||
		    rt_spec_from_json(json, &spec, &err) < 0)
			continue; /* not a RUN step, or killed before its spec was written */
		const char *leaf = spec.cgroup ? strrchr(spec.cgroup, '/') : NULL;
		if (leaf && strncmp(leaf + 1, "build-", 6) == 0) {
			if (d->rt->kill_all(&spec, SIGKILL, &err) == 0)
				killed++;
			if (d->rt->destroy(&spec, &err) < 0)
				log_warn("build", NULL,
					 "stale build step %s: remove its cgroup: %s", de->d_name,
					 err.msg);
		}
		rt_spec_release(&spec);
	}
	closedir(dir);
	struct clbsd_err err;
	if (fs_empty_dir(tmp, &err) < 0)
		log_warn("build", NULL, "remove what an interrupted build left: %s", err.msg);
	else if (steps)
		log_info("build", NULL,
			 "removed %zu step(s) an interrupted build left, and stopped %zu RUN "
			 "container(s)",
			 steps, killed);
}
