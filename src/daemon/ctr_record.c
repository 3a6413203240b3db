/*
 * Containers as data: the record and its members, persistence in
 * container.json and state.json, creation from a checked spec
 * (ctr_config.c checks it), loading at start, and final removal.
 */
#include "daemon.h"
#include "core/config.h"
#include "net/net.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static bool take_spare(struct daemon *d, const char *dir);

const char *ctr_state_name(enum ctr_state s)
{
	switch (s) {
	case CTR_CREATED:
		return "created";
	case CTR_RUNNING:
		return "running";
	case CTR_RESTARTING:
		return "restarting";
	case CTR_EXITED:
		return "exited";
	}
	return "unknown";
}

static int state_from_name(const char *s, enum ctr_state *out)
{
	static const enum ctr_state all[] = {CTR_CREATED, CTR_RUNNING, CTR_RESTARTING, CTR_EXITED};
	for (size_t i = 0; s && i < ARRAY_SIZE(all); i++) {
		if (strcmp(s, ctr_state_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

struct container *ctr_find(struct daemon *d, const char *ref)
{
	if (!ref || !*ref)
		return NULL;
	for (struct container *c = d->ctrs; c; c = c->next)
		if (strcmp(c->name, ref) == 0)
			return c;
	size_t n = strlen(ref);
	if (n < 4)
		return NULL;
	struct container *found = NULL;
	for (struct container *c = d->ctrs; c; c = c->next) {
		if (strncmp(c->id, ref, n) == 0) {
			if (found)
				return NULL;
			found = c;
		}
	}
	return found;
}

bool ctr_image_in_use(const char *image_id, void *daemon)
{
	struct daemon *d = daemon;
	for (struct container *c = d->ctrs; c; c = c->next)
		if (strcmp(c->image_id, image_id) == 0)
			return true;
	return undo_image_in_use(d, image_id);
}

static void config_release(struct ctr_config *cfg)
{
	strv_free(cfg->command);
	strv_free(cfg->argv);
	strv_free(cfg->env);
	free(cfg->workdir);
	free(cfg->user);
	free(cfg->hostname);
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		free(cfg->volumes[i].source);
		free(cfg->volumes[i].dest);
	}
	free(cfg->volumes);
	strv_free(cfg->sysctls);
	strv_free(cfg->labels);
	strv_free(cfg->integrity_exclude);
	strv_free(cfg->integrity_include);
	for (size_t i = 0; i < cfg->n_devices; i++) {
		free(cfg->devices[i].source);
		free(cfg->devices[i].path);
	}
	free(cfg->devices);
	memset(cfg, 0, sizeof(*cfg));
}

void ctr_free(struct container *c)
{
	if (!c)
		return;
	ctr_integrity_release(c);
	config_release(&c->cfg);
	ctr_net_release(&c->net);
	free(c->name);
	free(c->image_ref);
	free(c->dir);
	free(c->rdir);
	free(c->shim.socket);
	free(c->storage.mode);
	free(c->storage.applied);
	free(c->run.cgroup);
	free(c->run.start_error);
	free(c->decl.spec_text);
	docker_ctr_release(c);
	free(c);
}

/* ---- JSON ---- */

static json_t *volumes_json(const struct ctr_config *cfg)
{
	json_t *a = json_array();
	for (size_t i = 0; i < cfg->n_volumes; i++)
		json_array_append_new(
			a, json_pack("{s:s,s:s,s:b}", "source", cfg->volumes[i].source, "dest",
				     cfg->volumes[i].dest, "readonly", cfg->volumes[i].readonly));
	return a;
}

static json_t *ctr_limits_json(const struct rt_limits *lim)
{
	return json_pack("{s:I,s:I,s:f}", "memory", (json_int_t)lim->memory, "pids",
			 (json_int_t)lim->pids, "cpus", lim->cpus);
}

json_t *ctr_config_json(const struct ctr_config *cfg)
{
	json_t *j = json_object();
	json_object_set_new(j, "command", cfg->command ? json_strv(cfg->command) : json_null());
	json_object_set_new(j, "argv", json_strv(cfg->argv));
	json_object_set_new(j, "env", json_strv(cfg->env));
	json_object_set_new(j, "workdir", json_string(cfg->workdir));
	json_object_set_new(j, "user", json_string(cfg->user));
	json_object_set_new(j, "uid", json_integer(cfg->uid));
	json_object_set_new(j, "gid", json_integer(cfg->gid));
	json_object_set_new(j, "hostname", json_string(cfg->hostname));
	json_object_set_new(j, "tty", json_boolean(cfg->tty));
	json_object_set_new(j, "stdin", json_boolean(cfg->stdin_open));
	json_object_set_new(j, "volumes", volumes_json(cfg));
	json_object_set_new(j, "limits", ctr_limits_json(&cfg->limits));
	json_object_set_new(j, "restart",
			    json_pack("{s:s,s:i}", "policy", ctr_restart_name(cfg->restart),
				      "max_retries", cfg->max_retries));
	json_object_set_new(j, "auto_remove", json_boolean(cfg->auto_remove));
	char sig[16];
	json_object_set_new(j, "stop_signal", json_string(ctr_signal_name(cfg->stop_signal, sig)));
	if (cfg->userns.count)
		json_object_set_new(j, "userns", usermap_json(&cfg->userns));
	if (cfg->caps_set)
		json_object_set_new(j, "caps", json_integer((json_int_t)cfg->caps));
	if (cfg->sysctls)
		json_object_set_new(j, "sysctls", json_strv(cfg->sysctls));
	if (cfg->labels)
		json_object_set_new(j, "labels", json_strv(cfg->labels));
	if (cfg->integrity_set) {
		json_t *in = json_object();
		if (cfg->integrity_every_ns) {
			autofree char *every = conf_duration_str(cfg->integrity_every_ns);
			json_object_set_new(in, "every", json_string(every));
		}
		if (cfg->integrity_exclude)
			json_object_set_new(in, "exclude", json_strv(cfg->integrity_exclude));
		if (cfg->integrity_include)
			json_object_set_new(in, "include", json_strv(cfg->integrity_include));
		json_object_set_new(j, "integrity", in);
	}
	if (cfg->n_devices) {
		json_t *ds = json_array();
		for (size_t i = 0; i < cfg->n_devices; i++) {
			const struct rt_device *dv = &cfg->devices[i];
			char t[2] = {dv->type, '\0'};
			json_array_append_new(ds, json_pack("{s:s,s:s,s:s,s:i,s:i,s:s}", "source",
							    dv->source, "path", dv->path, "type", t,
							    "major", dv->major, "minor", dv->minor,
							    "access", dv->access));
		}
		json_object_set_new(j, "devices", ds);
	}
	return j;
}

/*
 * The members of a container's record, in the record's order: ctr_to_json
 * makes them all, and the API (a list with fields=) makes a few alone. A
 * member a container does not have is NULL. A docker container's record
 * has more (docker_ctr_json, which may also say "waiting" for its state).
 */
static json_t *m_name(const struct container *c)
{
	return json_string(c->name);
}
static json_t *m_id(const struct container *c)
{
	return json_string(c->id);
}
static json_t *m_image(const struct container *c)
{
	return json_string(c->image_ref);
}
static json_t *m_image_id(const struct container *c)
{
	return json_string(c->image_id);
}
static json_t *m_state(const struct container *c)
{
	return json_string(ctr_state_name(c->run.state));
}
static json_t *m_pid(const struct container *c)
{
	return json_integer(c->run.state == CTR_RUNNING ? c->run.pid : 0);
}
static json_t *m_exit_code(const struct container *c)
{
	return json_integer(c->run.exit_code);
}
static json_t *m_signal(const struct container *c)
{
	return json_integer(c->run.signal);
}
static json_t *m_oom_killed(const struct container *c)
{
	return json_boolean(c->run.oom_killed);
}
static json_t *m_created_at(const struct container *c)
{
	return json_time(c->created_ns);
}
static json_t *m_started_at(const struct container *c)
{
	return json_time(c->run.started_ns);
}
static json_t *m_finished_at(const struct container *c)
{
	return json_time(c->run.finished_ns);
}
static json_t *m_restart_count(const struct container *c)
{
	return json_integer(c->run.restart_count);
}
static json_t *m_start_error(const struct container *c)
{
	return c->run.start_error ? json_string(c->run.start_error) : json_null();
}
static json_t *m_shim_pid(const struct container *c)
{
	return json_integer(c->run.state == CTR_RUNNING ? c->run.shim_pid : 0);
}
static json_t *m_shim_socket(const struct container *c)
{
	return json_string(c->shim.socket);
}
static json_t *m_rootfs(const struct container *c)
{
	autofree char *rootfs = xasprintf("%s/rootfs", c->dir);
	return json_string(rootfs);
}
static json_t *m_storage(const struct container *c)
{
	return json_string(c->storage.mode ? c->storage.mode : "");
}
static json_t *m_cgroup(const struct container *c)
{
	autofree char *cg = ctr_cgroup(c);
	return json_string(cg);
}
static json_t *m_config(const struct container *c)
{
	return ctr_config_json(&c->cfg);
}
static json_t *m_config_limits(const struct container *c)
{
	return ctr_limits_json(&c->cfg.limits);
}
static json_t *m_network(const struct container *c)
{
	return ctr_net_to_json(&c->net);
}
static json_t *m_managed(const struct container *c)
{
	return json_boolean(c->decl.managed);
}
static json_t *m_spec_hash(const struct container *c)
{
	return c->decl.managed ? json_string(c->decl.spec_hash) : NULL;
}
static json_t *m_undone_spec_hash(const struct container *c)
{
	return c->undo.undone_hash[0] ? json_string(c->undo.undone_hash) : NULL;
}
static json_t *m_storage_props(const struct container *c)
{
	return c->storage.applied ? json_string(c->storage.applied) : NULL;
}
static json_t *m_kind(const struct container *c)
{
	return json_string(ctr_ops_of(c)->kind);
}

static const struct ctr_member config_parts[] = {
	{"limits", m_config_limits, NULL},
	{NULL, NULL, NULL},
};

const struct ctr_member ctr_members[] = {
	{"name", m_name, NULL},
	{"id", m_id, NULL},
	{"image", m_image, NULL},
	{"image_id", m_image_id, NULL},
	{"state", m_state, NULL},
	{"pid", m_pid, NULL},
	{"exit_code", m_exit_code, NULL},
	{"signal", m_signal, NULL},
	{"oom_killed", m_oom_killed, NULL},
	{"created_at", m_created_at, NULL},
	{"started_at", m_started_at, NULL},
	{"finished_at", m_finished_at, NULL},
	{"restart_count", m_restart_count, NULL},
	{"start_error", m_start_error, NULL},
	{"shim_pid", m_shim_pid, NULL},
	{"shim_socket", m_shim_socket, NULL},
	{"rootfs", m_rootfs, NULL},
	{"storage", m_storage, NULL},
	{"cgroup", m_cgroup, NULL},
	{"config", m_config, config_parts},
	{"network", m_network, NULL},
	{"managed", m_managed, NULL},
	{"spec_hash", m_spec_hash, NULL},
	{"undone_spec_hash", m_undone_spec_hash, NULL},
	{"storage_props", m_storage_props, NULL},
	{"kind", m_kind, NULL},
	{NULL, NULL, NULL},
};

const struct ctr_member *ctr_member_find(const struct ctr_member *t, const char *name)
{
	for (; t->name; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

json_t *ctr_to_json(const struct container *c)
{
	json_t *j = json_object();
	for (const struct ctr_member *m = ctr_members; m->name; m++) {
		json_t *v = m->get(c);
		if (v)
			json_object_set_new(j, m->name, v);
	}
	docker_ctr_json(c, j);
	return j;
}

/*
 * Two files: container.json holds what the container is (durable, written
 * when it is created) and state.json what it is doing (pids, exit status),
 * replaced without fsync on every change since it means nothing after a
 * reboot. A lost or torn state.json falls back to container.json's state.
 */
static json_t *state_json(const struct container *c)
{
	return json_pack("{s:s,s:i,s:i,s:i,s:i,s:b,s:o,s:o,s:i,s:i}", "state",
			 ctr_state_name(c->run.state), "pid", (int)c->run.pid, "shim_pid",
			 (int)c->run.shim_pid, "exit_code", c->run.exit_code, "signal",
			 c->run.signal, "oom_killed", c->run.oom_killed, "started_at",
			 json_time(c->run.started_ns), "finished_at", json_time(c->run.finished_ns),
			 "restart_count", c->run.restart_count, "backoff_n", c->run.backoff_n);
}

char *ctr_rfile(struct container *c, const char *name)
{
	struct clbsd_err err;
	/* Reported by the write that follows when it fails. */
	(void)fs_mkdir_p(c->rdir, 0700, &err);
	return xasprintf("%s/%s", c->rdir, name);
}

int ctr_rfile_read(const struct container *c, const char *name, char **text)
{
	struct clbsd_err err;
	autofree char *p = xasprintf("%s/%s", c->rdir, name);
	if (fs_read_file(p, text, NULL, &err) == 0)
		return 0;
	autofree char *old = xasprintf("%s/%s", c->dir, name);
	if (fs_read_file(old, text, NULL, &err) == 0)
		return 0;
	return -err.code;
}

int ctr_save(struct container *c, struct clbsd_err *err)
{
	json_t *j = state_json(c);
	autofree char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	autofree char *path = ctr_rfile(c, "state.json");
	int r = fs_replace(path, text, strlen(text), 0600, err);
	if (r < 0)
		return clbsd_err_prefix(err, "container %s: save state", c->name);
	return 0;
}

int ctr_save_config(struct container *c, struct clbsd_err *err)
{
	json_t *j = ctr_to_json(c);
	if (c->decl.spec_text)
		json_object_set_new(j, "spec", json_string(c->decl.spec_text));
	json_t *st = state_json(c);
	json_object_update(j, st);
	json_decref(st);
	autofree char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	autofree char *path = xasprintf("%s/container.json", c->dir);
	/*
	 * A --rm container lives only until it exits: losing it to a power
	 * failure is what would happen to it anyway (the next start finds its
	 * container.json missing or empty and clears the directory), so it is
	 * not worth a millisecond of fsync on every `clbsd run --rm`. On
	 * storage that keeps writes in order (zfs) the rename alone is atomic:
	 * a crash loses at most the last seconds, never half a file, and the
	 * first fsync on a new dataset costs ~3 ms of every create.
	 */
	bool durable = !c->cfg.auto_remove && !(c->d->storage.caps & STORAGE_CAP_ORDERED);
	int r = durable ? fs_write_atomic(path, text, strlen(text), 0600, err)
			: fs_replace(path, text, strlen(text), 0600, err);
	if (r < 0)
		return clbsd_err_prefix(err, "container %s: save", c->name);
	return 0;
}

/* The run-time fields, from container.json or state.json (same keys). */
static void state_from_json(struct container *c, const json_t *j, enum ctr_state st)
{
	c->run.state = st;
	c->run.pid = (pid_t)json_int(j, "pid", 0);
	c->run.shim_pid = (pid_t)json_int(j, "shim_pid", 0);
	c->run.exit_code = (int)json_int(j, "exit_code", 0);
	c->run.signal = (int)json_int(j, "signal", 0);
	c->run.oom_killed = json_bool(j, "oom_killed", false);
	c->run.started_ns = json_time_get(j, "started_at");
	c->run.finished_ns = json_time_get(j, "finished_at");
	c->run.restart_count = (int)json_int(j, "restart_count", 0);
	c->run.backoff_n = (int)json_int(j, "backoff_n", 0);
}

/*
 * Run-time files an older version kept in the container directory, at
 * load: state.json moves to the run directory; shim.json and runtime.json
 * go now unless a shim it started may still write there (then at the next
 * start), and are read until then (ctr_rfile_read).
 */
static void move_legacy_rfiles(struct container *c)
{
	autofree char *state = xasprintf("%s/state.json", c->dir);
	struct clbsd_err err;
	if (fs_exists(state) && ctr_save(c, &err) == 0)
		unlink(state);
	static const char *const legacy[] = {"shim.json", "runtime.json"};
	for (size_t i = 0; i < ARRAY_SIZE(legacy); i++) {
		autofree char *f = xasprintf("%s/%s", c->dir, legacy[i]);
		if (!fs_exists(f))
			continue;
		if (c->run.state == CTR_RUNNING)
			c->legacy_rfiles = true;
		else
			unlink(f);
	}
}

/* Apply state.json over what container.json said, when it is readable. */
static void load_state(struct container *c)
{
	autofree char *text = NULL;
	if (ctr_rfile_read(c, "state.json", &text) < 0)
		return;
	json_t *j = json_loads(text, 0, NULL);
	enum ctr_state st;
	if (!json_is_object(j) || state_from_name(json_str(j, "state"), &st) < 0)
		log_warn("container", c->name, "%s/state.json is unreadable; using container.json",
			 c->rdir);
	else
		state_from_json(c, j, st);
	json_decref(j);
}

void ctr_place(struct container *c, const char *spec_hash, const char *spec_text)
{
	struct daemon *d = c->d;
	c->dir = xasprintf("%s/containers/%s", d->root, c->name);
	c->rdir = xasprintf("%s/containers/%s", d->run, c->name);
	c->shim.socket = xasprintf("%s/shims/%s.sock", d->run, c->name);
	if (spec_hash) {
		/* Recorded in the first write, so an interrupted daemon still knows it made it. */
		c->decl.managed = true;
		snprintf(c->decl.spec_hash, sizeof(c->decl.spec_hash), "%s", spec_hash);
		c->decl.spec_text = spec_text ? xstrdup(spec_text) : NULL;
	}
}

int ctr_dir_unclaimed(const struct container *c, struct clbsd_err *err)
{
	if (!fs_exists(c->dir))
		return 0;
	return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
				"%s already exists but belongs to no known container; move it away",
				c->dir);
}

int ctr_create(struct daemon *d, const struct ctr_spec *spec, struct container **out,
	       struct clbsd_err *err)
{
	return ctr_create_managed(d, spec, NULL, NULL, out, err);
}

/*
 * A native container from a spec: `on` (an import into a declaration) when
 * its storage is there already under <root>/containers/<name>, received
 * from an archive whose record says `mode`; else it is made here.
 */
static int create_native(struct daemon *d, const struct ctr_spec *spec, const char *spec_hash,
			 const char *spec_text, bool on, const char *on_mode,
			 struct container **out, struct clbsd_err *err)
{
	const char *name = spec->name;
	char genname[16];
	int64_t t0 = time_mono_ns();
	if (!name || !*name) {
		char hex[11];
		do {
			random_hex(hex, 5);
			snprintf(genname, sizeof(genname), "c-%s", hex);
		} while (ctr_find(d, genname));
		name = genname;
	}
	struct container *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->name = xstrdup(name);
	c->shim.ready_fd = -1;
	if (spec->kind == CTR_KIND_DOCKER)
		return ctr_docker_make(d, spec, c, spec_hash, spec_text,
				       on ? DOCKER_ON : DOCKER_MAKE, out, err);
	struct image *img;
	struct storage_props props;
	bool props_given;
	if (ctr_check_spec(d, spec, c, true, &img, &props, &props_given, err) < 0) {
		ctr_free(c);
		return -err->code;
	}
	const char *ref = spec->image;
	random_hex(c->id, 32);
	if (spec_hash)
		c->storage.applied = ctr_storage_text(&props);
	autofree char *norm = image_ref_normalise(ref);
	c->image_ref = xstrdup(json_str(d->images.repos, norm) ? norm : ref);
	memcpy(c->image_id, img->id, sizeof(c->image_id));
	c->run.state = CTR_CREATED;
	c->created_ns = time_now_ns();
	ctr_place(c, spec_hash, spec_text);

	/* Nothing exists yet; from here every failure removes what was made. */
	int r = on ? 0 : ctr_dir_unclaimed(c, err);
	if (r < 0) {
		ctr_free(c);
		return r;
	}
	/* Addresses before storage: a full subnet is refused before anything is made. */
	if (dnet_assign(d, c, err) < 0) {
		clbsd_err_prefix(err, "create container %s", name);
		ctr_free(c);
		return -err->code;
	}
	struct rt_rootfs rootfs = {0};
	autofree char *logs = xasprintf("%s/logs", c->dir);
	autofree char *img_rootfs = xasprintf("%s/rootfs", img->dir);
	/* An emptied directory of a removed container, when there is one (see spares). */
	if (!on && !d->storage.pool && d->storage.have_overlay)
		take_spare(d, c->dir);
	/* Storage first: with zfs the directory becomes a dataset's mount point. */
	r = on ? 0 : d->storage.ops->create(&d->storage, img_rootfs, c->dir, &rootfs, err);
	bool made = r == 0 && !on;
	if (on)
		rootfs.mode = xstrdup(on_mode);
	if (r == 0 && props_given)
		r = d->storage.ops->ctr_set_props(&d->storage, c->name, &props, err);
	if (r == 0)
		r = fs_mkdir_p(logs, 0700, err);
	if (r == 0) {
		c->storage.mode = xstrdup(strcmp(rootfs.mode, "overlay") == 0 ? "overlay"
					  : d->storage.pool		      ? "zfs"
									      : "copy");
		rt_rootfs_release(&rootfs);
		r = ctr_save_config(c, err);
	}
	if (r < 0) {
		struct clbsd_err ignore;
		if (made)
			d->storage.ops->remove(&d->storage, c->dir, &ignore);
		if (!on)
			fs_rm_rf(c->dir, &ignore);
		clbsd_err_prefix(err, "create container %s", name);
		dnet_forget(c);
		ctr_free(c);
		return r;
	}
	c->next = d->ctrs;
	d->ctrs = c;
	usermap_remember(d, c->name, &c->cfg);
	dnet_peers_changed(d, c);
	ctr_integrity_created(c, img);
	ctr_integrity_arm(c);
	TRACE4(container__create, c->name, "native", time_mono_ns() - t0, "create");
	daemon_event(d, "container.created", c->name,
		     json_pack("{s:s,s:s}", "image", c->image_ref, "id", c->id));
	*out = c;
	return 0;
}

int ctr_create_managed(struct daemon *d, const struct ctr_spec *spec, const char *spec_hash,
		       const char *spec_text, struct container **out, struct clbsd_err *err)
{
	return create_native(d, spec, spec_hash, spec_text, false, NULL, out, err);
}

int ctr_create_declared_on(struct daemon *d, const struct ctr_spec *spec, const char *spec_hash,
			   const char *spec_text, const char *mode, struct container **out,
			   struct clbsd_err *err)
{
	/* What the archive's daemon was doing is not what this one does. */
	static const char *const runtime_files[] = {"state.json", "shim.json", "runtime.json"};
	for (size_t i = 0; i < ARRAY_SIZE(runtime_files); i++) {
		autofree char *f =
			xasprintf("%s/containers/%s/%s", d->root, spec->name, runtime_files[i]);
		unlink(f);
	}
	autofree char *rdir = xasprintf("%s/containers/%s", d->run, spec->name);
	struct clbsd_err rerr;
	if (fs_rm_rf(rdir, &rerr) < 0)
		log_warn("container", spec->name, "%s", rerr.msg);
	return create_native(d, spec, spec_hash, spec_text, true, mode, out, err);
}

char *ctr_cgroup(const struct container *c)
{
	if (c->run.cgroup)
		return xstrdup(c->run.cgroup);
	return xasprintf("%s/%s", c->d->cgroup_parent, c->name);
}

char *ctr_stats_cgroup(const struct container *c)
{
	if (c->docker.on && c->docker.cgroup)
		return xstrdup(c->docker.cgroup);
	return ctr_cgroup(c);
}

char **image_volume_dirs(const struct image *img, const struct ctr_config *cfg)
{
	struct strv v = STRV_INIT;
	for (size_t i = 0; img && img->config.volumes && img->config.volumes[i]; i++) {
		/* "/data/" is "/data"; a relative or unclean one (no build refuses it) is none. */
		autofree char *p = xstrdup(img->config.volumes[i]);
		size_t len = strlen(p);
		while (len > 1 && p[len - 1] == '/')
			p[--len] = '\0';
		if (!fs_path_is_clean_abs(p) || strcmp(p, "/") == 0)
			continue;
		bool covered = false;
		for (size_t k = 0; cfg && k < cfg->n_volumes && !covered; k++) {
			const char *dst = cfg->volumes[k].dest;
			size_t n = strlen(dst);
			covered = strcmp(dst, "/") == 0 ||
				  (strncmp(p, dst, n) == 0 && (p[n] == '\0' || p[n] == '/'));
		}
		if (!covered)
			strv_push(&v, p);
	}
	return v.v;
}

int ctr_runtime_spec(struct container *c, struct rt_spec *spec, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	memset(spec, 0, sizeof(*spec));
	struct image *img = image_by_id(&d->images, c->image_id);
	if (!img)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOENT,
					"container %s: its image %s is gone from the store",
					c->name, c->image_id);
	autofree char *img_rootfs = xasprintf("%s/rootfs", img->dir);
	if (d->storage.ops->describe(&d->storage, img_rootfs, c->dir, &spec->rootfs, err) < 0)
		return clbsd_err_prefix(err, "container %s", c->name);
	spec->name = xstrdup(c->name);
	spec->hostname = xstrdup(c->cfg.hostname);
	spec->argv = strv_dup(c->cfg.argv);
	spec->env = strv_dup(c->cfg.env);
	spec->cwd = xstrdup(c->cfg.workdir);
	spec->uid = c->cfg.uid;
	spec->gid = c->cfg.gid;
	spec->tty = c->cfg.tty;
	spec->stdin_open = c->cfg.stdin_open;
	spec->n_mounts = c->cfg.n_volumes;
	spec->mounts = xcalloc(c->cfg.n_volumes ? c->cfg.n_volumes : 1, sizeof(struct rt_mount));
	for (size_t i = 0; i < c->cfg.n_volumes; i++) {
		spec->mounts[i].source = xstrdup(c->cfg.volumes[i].source);
		spec->mounts[i].dest = xstrdup(c->cfg.volumes[i].dest);
		spec->mounts[i].readonly = c->cfg.volumes[i].readonly;
	}
	spec->limits = c->cfg.limits;
	spec->userns = c->cfg.userns;
	spec->caps_set = c->cfg.caps_set;
	spec->caps = c->cfg.caps;
	spec->sysctls = c->cfg.sysctls ? strv_dup(c->cfg.sysctls) : NULL;
	spec->n_devices = c->cfg.n_devices;
	spec->devices = xcalloc(c->cfg.n_devices + 1, sizeof(struct rt_device));
	for (size_t i = 0; i < c->cfg.n_devices; i++) {
		spec->devices[i] = c->cfg.devices[i];
		spec->devices[i].source = xstrdup(c->cfg.devices[i].source);
		spec->devices[i].path = xstrdup(c->cfg.devices[i].path);
	}
	spec->volume_dirs = image_volume_dirs(img, &c->cfg);
	spec->cgroup = ctr_cgroup(c);
	dnet_spec(c, spec);
	usermap_spec_mounts(d, spec);
	return 0;
}

/*
 * Spares: a removed overlay container's directory, emptied, is kept (up to
 * SPARES_MAX) for the next create, which renames it into place instead of
 * making the directory, rootfs, upper, work and logs again. On file systems
 * that skip recently freed inodes when allocating (ext4 without a journal
 * scans past every one), each new inode costs more the more containers come
 * and go. Spares left by a previous daemon are deleted at start.
 */
#define SPARES_MAX 4
static const char *const spare_dirs[] = {"rootfs", "upper", "work", "logs"};

/* What is left to delete of a removed container, deleted on a worker thread. */
struct trash {
	struct daemon *d;
	char *dir;
	char *name;
	char *spare; /* where to keep it as a spare; NULL: delete it all */
	bool spared; /* it is a spare now */
};

/* Empty dir down to the spare's four empty directories; false when it cannot be a spare. */
static bool make_spare(const char *dir, struct clbsd_err *err)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return false;
	struct dirent *de;
	bool ok = true;
	while (ok && (de = readdir(dh))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* Everything else goes; of the spare's directories, their contents. */
		bool keep = false;
		for (size_t i = 0; i < ARRAY_SIZE(spare_dirs); i++)
			keep = keep || strcmp(de->d_name, spare_dirs[i]) == 0;
		autofree char *p = xasprintf("%s/%s", dir, de->d_name);
		ok = (keep ? fs_empty_dir(p, err) : fs_rm_rf(p, err)) == 0;
	}
	closedir(dh);
	/*
	 * The upper directory is the merged root's: a chmod, chown or xattr
	 * of the container's / lands on it. A new one, so nothing carries over.
	 */
	autofree char *upper = xasprintf("%s/upper", dir);
	if (ok && (fs_rm_rf(upper, err) < 0 || mkdir(upper, 0755) < 0))
		ok = false;
	for (size_t i = 0; ok && i < ARRAY_SIZE(spare_dirs); i++) {
		autofree char *p = xasprintf("%s/%s", dir, spare_dirs[i]);
		ok = fs_is_dir(p);
	}
	return ok;
}

static void trash_run(void *arg)
{
	struct trash *t = arg;
	struct clbsd_err e;
	clbsd_err_init(&e);
	if (t->spare && make_spare(t->dir, &e) && rename(t->dir, t->spare) == 0) {
		t->spared = true;
		return;
	}
	if (t->d->storage.ops->remove(&t->d->storage, t->dir, &e) < 0 || fs_rm_rf(t->dir, &e) < 0)
		log_warn("container", t->name, "delete %s: %s (deleted again at the next start)",
			 t->dir, e.msg);
}

static void trash_done(void *arg)
{
	struct trash *t = arg;
	if (t->spare) {
		t->d->spare.coming--;
		if (t->spared) {
			struct daemon *d = t->d;
			d->spare.dirs = xrealloc(d->spare.dirs, (d->spare.n + 1) * sizeof(char *));
			d->spare.dirs[d->spare.n++] = steal_ptr(&t->spare);
		}
	}
	free(t->dir);
	free(t->name);
	free(t->spare);
	free(t);
}

/* Rename a spare to dir (which does not exist); false when there is none. */
static bool take_spare(struct daemon *d, const char *dir)
{
	while (d->spare.n > 0) {
		char *s = d->spare.dirs[--d->spare.n];
		bool ok = rename(s, dir) == 0;
		if (!ok)
			log_warn("container", NULL, "spare %s: %s", s, strerror(errno));
		free(s);
		if (ok)
			return true;
	}
	return false;
}

/*
 * Removal is a rename out of the way: the name is free at once and nothing is
 * half-deleted under it. The files (overlay layers, logs) are deleted on a
 * worker; what a crash interrupts there is deleted at the next start
 * (ctr_load_all).
 */
int ctr_destroy(struct container *c, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	/*
	 * The cgroup normally goes with the shim; a crashed shim leaves it. Not
	 * on the worker: a new container of the same name may make it again.
	 */
	if (!c->run.cgroup_gone) {
		struct rt_spec spec = {0};
		spec.name = c->name;
		spec.cgroup = ctr_cgroup(c);
		struct clbsd_err e2;
		if (d->rt->destroy(&spec, &e2) < 0)
			log_warn("container", c->name, "remove cgroup: %s", e2.msg);
		free(spec.cgroup);
	}
	unlink(c->shim.socket);
	struct clbsd_err rerr;
	if (fs_rm_rf(c->rdir, &rerr) < 0)
		log_warn("container", c->name, "%s", rerr.msg);
	/* A zfs container directory is a mount point: its datasets go on a worker. */
	if (d->storage.pool || c->undo.aside)
		return CTR_DESTROY_SLOW;
	char hex[9];
	random_hex(hex, 4);
	autofree char *trash = xasprintf("%s/containers/.removed-%s-%s", d->root, c->name, hex);
	if (rename(c->dir, trash) < 0 && errno != ENOENT)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "remove container %s: rename %s",
				     c->name, c->dir);
	struct trash *t = xcalloc(1, sizeof(*t));
	t->d = d;
	t->dir = steal_ptr(&trash);
	t->name = xstrdup(c->name);
	if (c->storage.mode && strcmp(c->storage.mode, "overlay") == 0 &&
	    d->spare.n + (size_t)d->spare.coming < SPARES_MAX) {
		random_hex(hex, 4);
		t->spare = xasprintf("%s/containers/.spare-%s", d->root, hex);
		d->spare.coming++;
	}
	work_submit_background(d, trash_run, trash_done, t);
	return 0;
}

int ctr_destroy_files(struct container *c, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	if (c->undo.aside) {
		/* Run-time files mean nothing to a restored container. */
		static const char *const runtime_files[] = {"shim.json", "runtime.json"};
		for (size_t i = 0; i < ARRAY_SIZE(runtime_files); i++) {
			autofree char *f = xasprintf("%s/%s", c->rdir, runtime_files[i]);
			autofree char *old = xasprintf("%s/%s", c->dir, runtime_files[i]);
			unlink(f);
			unlink(old);
		}
		if (d->storage.ops->ctr_aside(&d->storage, c->name, STORAGE_ASIDE_KEEP, err) < 0)
			return clbsd_err_prefix(err, "container %s", c->name);
		return 0;
	}
	if (d->storage.ops->remove(&d->storage, c->dir, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", c->name);
	if (fs_rm_rf(c->dir, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", c->name);
	return 0;
}

/*
 * A clone or an import: addresses of its own. What cannot carry over (a
 * network this host lacks, the original's pinned address or published
 * ports, taken by the original) is dropped with a warning.
 */
void ctr_adopt_network(struct container *c)
{
	struct clbsd_err err;
	for (int attempt = 0; ctr_net_attached(c) && attempt < 3; attempt++) {
		if (dnet_assign(c->d, c, &err) == 0) {
			if (attempt) {
				struct clbsd_err e2;
				if (ctr_save_config(c, &e2) < 0)
					log_warn("container", c->name, "%s", e2.msg);
			}
			dnet_peers_changed(c->d, c);
			return;
		}
		log_warn("container", c->name, "%s", err.msg);
		if (attempt == 0 && (c->net.ip || c->net.publish)) {
			log_warn("container", c->name,
				 "dropping its pinned address and published ports (the original "
				 "keeps them)");
			free(c->net.ip);
			c->net.ip = NULL;
			strv_free(c->net.publish);
			c->net.publish = NULL;
			continue;
		}
		log_warn("container", c->name, "it starts with loopback only");
		strv_free(c->net.networks);
		c->net.networks = NULL;
		c->net.mode = NET_MODE_NONE;
	}
	if (ctr_save_config(c, &err) < 0)
		log_warn("container", c->name, "%s", err.msg);
}

int ctr_adopt_record(struct daemon *d, json_t *rec, const char *name, struct container **out,
		     struct clbsd_err *err)
{
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "state", json_string("created"));
	json_object_set_new(rec, "managed", json_false());
	json_object_del(rec, "spec_hash");
	json_object_del(rec, "spec");
	static const char *const zero[] = {"pid", "shim_pid", "exit_code", "signal",
					   "restart_count"};
	for (size_t i = 0; i < ARRAY_SIZE(zero); i++)
		json_object_set_new(rec, zero[i], json_integer(0));
	json_object_set_new(rec, "oom_killed", json_false());
	/* Addresses are the original's: this one gets its own (adopt_network). */
	json_t *net = json_object_get(rec, "network");
	size_t k;
	json_t *e;
	json_array_foreach(json_object_get(net, "networks"), k, e) json_object_del(e, "ip");
	json_object_set_new(rec, "started_at", json_null());
	json_object_set_new(rec, "finished_at", json_null());
	if (usermap_adopt(d, rec, name, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	autofree char *text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	/* What the original was doing is not what this one does. */
	static const char *const runtime_files[] = {"state.json", "shim.json", "runtime.json"};
	for (size_t i = 0; i < ARRAY_SIZE(runtime_files); i++) {
		autofree char *f =
			xasprintf("%s/containers/%s/%s", d->root, name, runtime_files[i]);
		unlink(f);
	}
	autofree char *rdir = xasprintf("%s/containers/%s", d->run, name);
	struct clbsd_err rerr;
	if (fs_rm_rf(rdir, &rerr) < 0)
		log_warn("container", name, "%s", rerr.msg);
	autofree char *path = xasprintf("%s/containers/%s/container.json", d->root, name);
	if (fs_write_atomic(path, text, strlen(text), 0600, err) < 0 ||
	    ctr_load_one(d, name, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	*out = ctr_find(d, name);
	if (!*out)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOENT, "container %s: not loaded",
					name);
	ctr_adopt_network(*out);
	return 0;
}

/* ---- loading at start ---- */

int ctr_load_one(struct daemon *d, const char *name, struct clbsd_err *err)
{
	autofree char *dir = xasprintf("%s/containers/%s", d->root, name);
	autofree char *path = xasprintf("%s/container.json", dir);
	autofree char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, &text, &len, err) < 0)
		return -err->code;
	/* Empty: a write that a power failure cut short (see ctr_save_config). */
	if (len == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOENT, "%s is empty", path);
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL, "%s:%d:%d: %s", path,
					je.line, je.column, je.text);
	struct container *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->shim.ready_fd = -1;
	c->name = xstrdup(name);
	snprintf(c->id, sizeof(c->id), "%s", json_str(j, "id") ? json_str(j, "id") : "");
	c->image_ref = xstrdup(json_str(j, "image") ? json_str(j, "image") : "");
	snprintf(c->image_id, sizeof(c->image_id), "%s",
		 json_str(j, "image_id") ? json_str(j, "image_id") : "");
	enum ctr_state st;
	if (state_from_name(json_str(j, "state"), &st) < 0)
		st = CTR_EXITED;
	state_from_json(c, j, st);
	c->created_ns = json_time_get(j, "created_at");
	c->decl.managed = json_bool(j, "managed", false);
	if (c->decl.managed) {
		snprintf(c->decl.spec_hash, sizeof(c->decl.spec_hash), "%s",
			 json_str(j, "spec_hash") ? json_str(j, "spec_hash") : "");
		c->decl.spec_text = json_str(j, "spec") ? xstrdup(json_str(j, "spec")) : NULL;
		snprintf(c->undo.undone_hash, sizeof(c->undo.undone_hash), "%s",
			 json_str(j, "undone_spec_hash") ? json_str(j, "undone_spec_hash") : "");
		c->storage.applied =
			json_str(j, "storage_props") ? xstrdup(json_str(j, "storage_props")) : NULL;
	}
	c->storage.mode = xstrdup(json_str(j, "storage") ? json_str(j, "storage") : "");
	c->dir = steal_ptr(&dir);
	c->rdir = xasprintf("%s/containers/%s", d->run, name);
	c->shim.socket = xasprintf("%s/shims/%s.sock", d->run, name);
	/* The cgroup of the last start (a pool slot, or one named after the container). */
	autofree char *rt_text = NULL;
	json_t *rtj = ctr_rfile_read(c, "runtime.json", &rt_text) == 0
			      ? json_loads(rt_text, 0, NULL)
			      : NULL;
	if (json_str(rtj, "cgroup"))
		c->run.cgroup = xstrdup(json_str(rtj, "cgroup"));
	json_decref(rtj);

	json_t *cf = json_object_get(j, "config");
	struct ctr_config *cfg = &c->cfg;
	json_t *cmd = json_object_get(cf, "command");
	cfg->command = json_is_array(cmd) ? json_to_strv(cmd) : NULL;
	cfg->argv = json_to_strv(json_object_get(cf, "argv"));
	cfg->env = json_to_strv(json_object_get(cf, "env"));
	cfg->workdir = xstrdup(json_str(cf, "workdir") ? json_str(cf, "workdir") : "/");
	cfg->user = xstrdup(json_str(cf, "user") ? json_str(cf, "user") : "");
	cfg->uid = (uint32_t)json_int(cf, "uid", 0);
	cfg->gid = (uint32_t)json_int(cf, "gid", 0);
	cfg->hostname = xstrdup(json_str(cf, "hostname") ? json_str(cf, "hostname") : name);
	cfg->tty = json_bool(cf, "tty", false);
	cfg->stdin_open = json_bool(cf, "stdin", false);
	json_t *lim = json_object_get(cf, "limits");
	cfg->limits.memory = json_int(lim, "memory", 0);
	cfg->limits.pids = json_int(lim, "pids", 0);
	json_t *cpus = json_object_get(lim, "cpus");
	cfg->limits.cpus = json_is_number(cpus) ? json_number_value(cpus) : 0;
	json_t *rs = json_object_get(cf, "restart");
	if (ctr_restart_parse(json_str(rs, "policy"), &cfg->restart, &cfg->max_retries) < 0)
		cfg->restart = CTR_RESTART_NO;
	cfg->max_retries = (int)json_int(rs, "max_retries", 0);
	const char *ss = json_str(cf, "stop_signal");
	if (!ss || ctr_signal_parse(ss, &cfg->stop_signal) < 0)
		cfg->stop_signal = SIGTERM;
	cfg->auto_remove = json_bool(cf, "auto_remove", false);
	usermap_from_json(json_object_get(cf, "userns"), &cfg->userns);
	json_t *caps = json_object_get(cf, "caps");
	if (json_is_integer(caps)) {
		cfg->caps_set = true;
		cfg->caps = (uint64_t)json_integer_value(caps);
	}
	if (json_is_array(json_object_get(cf, "sysctls")))
		cfg->sysctls = json_to_strv(json_object_get(cf, "sysctls"));
	if (json_is_array(json_object_get(cf, "labels")))
		cfg->labels = json_to_strv(json_object_get(cf, "labels"));
	json_t *integ = json_object_get(cf, "integrity");
	if (json_is_object(integ)) {
		cfg->integrity_set = true;
		struct clbsd_err e2;
		const char *every = json_str(integ, "every");
		if (every && parse_duration(every, &cfg->integrity_every_ns, &e2) < 0)
			cfg->integrity_every_ns = 0;
		if (json_is_array(json_object_get(integ, "exclude")))
			cfg->integrity_exclude = json_to_strv(json_object_get(integ, "exclude"));
		if (json_is_array(json_object_get(integ, "include")))
			cfg->integrity_include = json_to_strv(json_object_get(integ, "include"));
	}
	json_t *devs = json_object_get(cf, "devices");
	cfg->devices = xcalloc(json_array_size(devs) + 1, sizeof(struct rt_device));
	for (size_t i = 0; i < json_array_size(devs); i++) {
		json_t *dv = json_array_get(devs, i);
		const char *t = json_str(dv, "type");
		if (!json_str(dv, "source") || !json_str(dv, "path") || !t ||
		    !json_str(dv, "access"))
			continue;
		struct rt_device *o = &cfg->devices[cfg->n_devices++];
		o->source = xstrdup(json_str(dv, "source"));
		o->path = xstrdup(json_str(dv, "path"));
		o->type = t[0];
		o->major = (int)json_int(dv, "major", 0);
		o->minor = (int)json_int(dv, "minor", 0);
		snprintf(o->access, sizeof(o->access), "%s", json_str(dv, "access"));
	}
	json_t *vols = json_object_get(cf, "volumes");
	size_t nv = json_array_size(vols);
	cfg->volumes = xcalloc(nv ? nv : 1, sizeof(struct rt_mount));
	for (size_t i = 0; i < nv; i++) {
		json_t *v = json_array_get(vols, i);
		if (!json_str(v, "source") || !json_str(v, "dest"))
			continue;
		cfg->volumes[cfg->n_volumes].source = xstrdup(json_str(v, "source"));
		cfg->volumes[cfg->n_volumes].dest = xstrdup(json_str(v, "dest"));
		cfg->volumes[cfg->n_volumes].readonly = json_bool(v, "readonly", false);
		cfg->n_volumes++;
	}
	ctr_net_from_json(json_object_get(j, "network"), &c->net);
	docker_ctr_load(c, j);
	json_decref(j);
	/* A running one was plumbed before; the repair at start checks it. */
	load_state(c);
	move_legacy_rfiles(c);
	c->net_attached = c->run.state == CTR_RUNNING && ctr_net_attached(c);
	/* A docker container's command may be the image's: dockerd knows it. */
	if (!cfg->argv || (!cfg->argv[0] && !c->docker.on) || !cfg->env || !valid_name(c->name)) {
		ctr_free(c);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"%s: config.argv and config.env are required", path);
	}
	c->next = d->ctrs;
	d->ctrs = c;
	ctr_integrity_arm(c);
	return 0;
}

int ctr_load_all(struct daemon *d, struct clbsd_err *err)
{
	autofree char *dir = xasprintf("%s/containers", d->root);
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -err->code;
	DIR *dh = opendir(dir);
	if (!dh)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	struct dirent *de;
	while ((de = readdir(dh))) {
		if (strncmp(de->d_name, ".removed-", 9) == 0 ||
		    strncmp(de->d_name, ".spare-", 7) == 0) {
			/* Removed, but the deletion was cut short; or a previous daemon's spare. */
			autofree char *t = xasprintf("%s/%s", dir, de->d_name);
			struct clbsd_err e3;
			if (fs_rm_rf(t, &e3) < 0)
				log_warn("container", NULL, "delete %s: %s", t, e3.msg);
			continue;
		}
		if (de->d_name[0] == '.')
			continue;
		if (transfer_receiving(d, de->d_name)) {
			log_error("container", de->d_name,
				  "not loaded: an import into it was cut short and is not "
				  "undone yet (the next start tries again)");
			continue;
		}
		struct clbsd_err e2;
		clbsd_err_init(&e2);
		if (ctr_load_one(d, de->d_name, &e2) == 0)
			continue;
		if (e2.code == ENOENT) {
			/*
			 * container.json is written last when a container is made:
			 * without it (or with it empty) this is a create the daemon
			 * did not finish, or a --rm container a power failure cut
			 * short, and nothing else uses the directory.
			 */
			autofree char *p = xasprintf("%s/%s", dir, de->d_name);
			struct clbsd_err e3;
			log_warn("container", de->d_name,
				 "removing an unfinished create (no container.json): %s", p);
			/* Through the driver: on zfs the directory is a dataset. */
			if (d->storage.ops->remove(&d->storage, p, &e3) < 0)
				log_error("container", de->d_name, "%s", e3.msg);
			else if (fs_rm_rf(p, &e3) < 0)
				log_error("container", de->d_name, "%s", e3.msg);
			continue;
		}
		log_error("container", de->d_name, "not loaded: %s", e2.msg);
	}
	closedir(dh);
	return 0;
}
