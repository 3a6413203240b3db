/*
 * Docker containers: the kind whose processes dockerd runs. They are
 * clbsd containers like the others (one record, one state machine in
 * lifecycle.c, one restart policy, the same events and hooks); this file
 * is their row of struct ctr_ops and the link to the endpoint.
 *
 * - Ownership the Compose way: every container clbsd makes in dockerd
 *   carries the labels org.clbsd.managed=true, org.clbsd.name,
 *   org.clbsd.spec-hash and org.clbsd.instance (this daemon's id, kept in
 *   <root>/docker-instance, so two clbsdd on one dockerd leave each
 *   other's alone). A container without them is never touched; one that
 *   holds the name is a conflict.
 * - dockerd's restart policy is "no": exits come back here (a `die` event,
 *   then inspect, the truth) and go through the same exit path as native
 *   ones, which restarts with backoff, fires hooks and journals events.
 * - Every Engine API call runs on a worker (work_submit) with a client of
 *   its own; the loop applies the result after finding the container again
 *   by name (it may be gone).
 * - A thread follows GET /events (src/docker/follow.c) and hands events and
 *   "up"/"down" of the endpoint to the loop through a pipe. While the
 *   endpoint is down, docker containers show the state "waiting" with the
 *   reason; when it comes up, every docker container is inspected again and
 *   a reconcile pass runs.
 * - The dockerd container is made at the first start (the reconciler), or
 *   at once by the API's create (docker_ctr_prepare: a refusal, like a
 *   missing image or a limit dockerd rejects, then leaves nothing).
 */
#include "daemon.h"
#include "docker/docker.h"
#include "util/json.h"
#include "util/util.h"
#include "core/config.h"
#include "net/net.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DOCKER_RETRY_MS	  1000
#define DOCKER_MIN_MEMORY (6LL << 20)
#define CALL_TIMEOUT_S	  60

struct ddocker {
	struct daemon *d;
	char instance[33];
	struct dk_endpoint ep;
	bool ep_ok;
	char *ep_error; /* why the configured endpoint is refused, or NULL */
	char *ep_key;	/* the endpoint settings the follower was started with */
	struct dk_follow *follow;
	bool up;
	char *down_reason;
	/* follower -> loop */
	int pipe[2];
	struct event *ev;
	pthread_mutex_t lock;
	json_t *queue;
	struct events_sub *removed_sub; /* removals: Docker networks nobody uses (docker_net.c) */
};

/* ---- the endpoint ---- */

static struct dk_client *client_of(struct daemon *d)
{
	struct ddocker *k = d->docker;
	return k->ep_ok ? dk_client_new(&k->ep) : NULL;
}

static int no_endpoint(struct daemon *d, struct clbsd_err *err)
{
	return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL, "%s",
				d->docker->ep_error ? d->docker->ep_error
						    : "no usable docker endpoint");
}

struct dk_client *docker_client_new(struct daemon *d, struct clbsd_err *err)
{
	struct dk_client *cl = client_of(d);
	if (!cl)
		no_endpoint(d, err);
	return cl;
}

struct dk_client *docker_client(struct daemon *d)
{
	return d->docker ? client_of(d) : NULL;
}

const struct dk_endpoint *docker_endpoint(struct daemon *d)
{
	return d->docker && d->docker->ep_ok ? &d->docker->ep : NULL;
}

int docker_no_endpoint(struct daemon *d, struct clbsd_err *err)
{
	if (!d->docker)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL, "no usable docker endpoint");
	return no_endpoint(d, err);
}

const char *docker_down(struct daemon *d)
{
	struct ddocker *k = d->docker;
	if (!k)
		return NULL;
	if (!k->ep_ok)
		return k->ep_error;
	if (!k->follow || k->up)
		return NULL;
	return k->down_reason ? k->down_reason : "the docker endpoint has not answered yet";
}

const char *docker_waiting(const struct container *c)
{
	return c->docker.on ? docker_down(c->d) : NULL;
}

const char *docker_instance(struct daemon *d)
{
	return d->docker->instance;
}

bool docker_local(struct daemon *d)
{
	struct ddocker *k = d->docker;
	/* An endpoint not (yet) usable is the default, local one, or fails at the start. */
	return !k || !k->ep_ok || k->ep.scheme == DK_UNIX;
}

/* ---- labels and the create body ---- */

static json_t *labels_of(struct daemon *d, const char *name, const char *hash)
{
	return json_pack("{s:s,s:s,s:s,s:s}", DK_LABEL_MANAGED, "true", DK_LABEL_NAME, name,
			 DK_LABEL_HASH, hash ? hash : "", DK_LABEL_INSTANCE, d->docker->instance);
}

static bool ours(struct daemon *d, json_t *labels, const char *name)
{
	const char *m = json_str(labels, DK_LABEL_MANAGED);
	const char *n = json_str(labels, DK_LABEL_NAME);
	const char *i = json_str(labels, DK_LABEL_INSTANCE);
	return m && strcmp(m, "true") == 0 && n && strcmp(n, name) == 0 && i &&
	       strcmp(i, d->docker->instance) == 0;
}

/* Capabilities as dockerd spells them: NET_ADMIN, ALL (the spec keeps them in lower case). */
static json_t *caps_json(char *const *caps)
{
	json_t *a = json_array();
	for (size_t i = 0; caps[i]; i++) {
		autofree char *u = xstrdup(caps[i]);
		for (char *p = u; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		json_array_append_new(a, json_string(strncmp(u, "CAP_", 4) == 0 ? u + 4 : u));
	}
	return a;
}

int docker_ctr_config(struct daemon *d, const struct ctr_spec *s, struct container *c,
		      struct clbsd_err *err)
{
	struct ctr_config *cfg = &c->cfg;
	if (s->memory && s->memory < DOCKER_MIN_MEMORY)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"memory limit %lld bytes is below the 6 MiB "
					"dockerd accepts for a docker container; give :limits "
					":memory \"6M\" or more",
					(long long)s->memory);
	if (!s->image || !*s->image)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "\"image\" is required");
	cfg->command = s->command ? strv_dup(s->command) : NULL;
	cfg->argv = s->command ? strv_dup(s->command) : xcalloc(1, sizeof(char *));
	struct strv env = STRV_INIT;
	for (size_t i = 0; i < s->nenv; i++)
		strv_push_owned(&env, xasprintf("%s=%s", s->env[i].key, s->env[i].value));
	if (!env.v)
		env.v = xcalloc(1, sizeof(char *));
	cfg->env = env.v;
	cfg->workdir = xstrdup(s->workdir ? s->workdir : "");
	cfg->user = xstrdup(s->user ? s->user : "");
	cfg->hostname = xstrdup(s->hostname ? s->hostname : c->name);
	cfg->tty = s->tty;
	cfg->stdin_open = s->stdin_open;
	cfg->limits.memory = s->memory;
	cfg->limits.cpus = s->cpus;
	cfg->limits.pids = s->pids;
	cfg->restart = s->restart;
	cfg->max_retries = s->restart == CTR_RESTART_ON_FAILURE ? s->restart_max : 0;
	cfg->stop_signal = s->stop_signal ? s->stop_signal : SIGTERM;
	cfg->auto_remove = s->auto_remove;
	if (cfg->auto_remove && cfg->restart != CTR_RESTART_NO)
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"auto-remove (--rm) and a restart policy cannot be combined");

	json_t *b = json_object();
	json_object_set_new(b, "Image", json_string(s->image));
	if (s->command)
		json_object_set_new(b, "Cmd", json_strv(s->command));
	/* An empty :entrypoint is "none", which dockerd spells [""]. */
	if (s->entrypoint) {
		static char *const empty[] = {"", NULL};
		json_object_set_new(b, "Entrypoint",
				    json_strv(s->entrypoint[0] ? s->entrypoint : empty));
	}
	json_object_set_new(b, "Env", json_strv(cfg->env));
	if (s->workdir)
		json_object_set_new(b, "WorkingDir", json_string(s->workdir));
	if (s->user)
		json_object_set_new(b, "User", json_string(s->user));
	json_object_set_new(b, "Hostname", json_string(cfg->hostname));
	json_object_set_new(b, "Tty", json_boolean(s->tty));
	json_object_set_new(b, "OpenStdin", json_boolean(s->stdin_open));
	json_object_set_new(b, "AttachStdout", json_true());
	json_object_set_new(b, "AttachStderr", json_true());
	if (s->stop_signal) {
		char buf[16];
		json_object_set_new(b, "StopSignal",
				    json_string(ctr_signal_name(s->stop_signal, buf)));
	}
	/* The user's labels, then ours (which nobody may override). */
	json_t *labels = json_object();
	for (size_t i = 0; i < s->nlabels; i++)
		json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value));
	json_t *own = labels_of(d, c->name, c->decl.managed ? c->decl.spec_hash : NULL);
	json_object_update(labels, own);
	json_decref(own);
	json_object_set_new(b, "Labels", labels);
	json_t *hc = json_object();
	/* clbsd's restart policy is the only one: dockerd must not restart behind it. */
	json_object_set_new(hc, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
	if (s->memory)
		json_object_set_new(hc, "Memory", json_integer(s->memory));
	if (s->cpus > 0)
		json_object_set_new(hc, "NanoCpus", json_integer((json_int_t)(s->cpus * 1e9)));
	if (s->pids)
		json_object_set_new(hc, "PidsLimit", json_integer(s->pids));
	json_t *binds = json_array();
	for (size_t i = 0; i < c->cfg.n_volumes; i++) {
		const struct rt_mount *m = &c->cfg.volumes[i];
		json_array_append_new(binds, json_sprintf("%s:%s%s", m->source, m->dest,
							  m->readonly ? ":ro" : ""));
	}
	json_object_set_new(hc, "Binds", binds);
	if (s->cap_add)
		json_object_set_new(hc, "CapAdd", caps_json(s->cap_add));
	if (s->cap_drop)
		json_object_set_new(hc, "CapDrop", caps_json(s->cap_drop));
	if (s->nsysctls) {
		json_t *sc = json_object();
		for (size_t i = 0; i < s->nsysctls; i++)
			json_object_set_new(sc, s->sysctls[i].key,
					    json_string(s->sysctls[i].value));
		json_object_set_new(hc, "Sysctls", sc);
	}
	if (s->ndevices) {
		json_t *dv = json_array();
		for (size_t i = 0; i < s->ndevices; i++)
			json_array_append_new(dv, json_pack("{s:s,s:s,s:s}", "PathOnHost",
							    s->devices[i].host, "PathInContainer",
							    s->devices[i].path, "CgroupPermissions",
							    s->devices[i].perms));
		json_object_set_new(hc, "Devices", dv);
	}
	/*
	 * With a local dockerd the network is clbsd's (c->net, as for native
	 * ones): none, host, or clbsd's networks, which a start adds
	 * (docker_net.c). A remote dockerd's containers get none, host or its
	 * default network.
	 */
	if (docker_local(d) ? c->net.mode == NET_MODE_NONE : s->netmode == CTR_NET_NONE)
		json_object_set_new(hc, "NetworkMode", json_string("none"));
	else if (docker_local(d) ? c->net.mode == NET_MODE_HOST : s->netmode == CTR_NET_HOST)
		json_object_set_new(hc, "NetworkMode", json_string("host"));
	/* clbsd's :health wins: the image's HEALTHCHECK does not run beside it. */
	if (s->health.type != CTR_HEALTH_NONE)
		json_object_set_new(b, "Healthcheck", json_pack("{s:[s]}", "Test", "NONE"));
	json_object_set_new(b, "HostConfig", hc);
	c->docker.on = true;
	c->docker.body = b;
	/* What a clone or an import makes the container again from. */
	c->docker.spec = ctr_spec_to_json(s);
	json_object_set_new(c->docker.spec, "name", json_string(c->name));
	return 0;
}

void docker_ctr_json(const struct container *c, json_t *j)
{
	if (!c->docker.on)
		return;
	struct ddocker *k = c->d->docker;
	json_object_set_new(j, "docker",
			    json_pack("{s:o,s:s?,s:O?,s:O?}", "id",
				      c->docker.id ? json_string(c->docker.id) : json_null(),
				      "endpoint", k && k->ep_ok ? k->ep.text : NULL, "create",
				      c->docker.body, "spec", c->docker.spec));
	const char *w = docker_waiting(c);
	/* A declared one waits to run; one made by hand and never started just is. */
	if (w && (c->run.state != CTR_CREATED || c->decl.managed || c->run.start_error)) {
		json_object_set_new(j, "state", json_string("waiting"));
		json_object_set_new(j, "waiting_for", json_string(w));
	}
}

void docker_ctr_load(struct container *c, const json_t *j)
{
	const char *kind = json_str(j, "kind");
	if (!kind || strcmp(kind, "docker") != 0)
		return;
	c->docker.on = true;
	json_t *dj = json_object_get(j, "docker");
	const char *id = json_str(dj, "id");
	c->docker.id = id ? xstrdup(id) : NULL;
	c->docker.body = json_incref(json_object_get(dj, "create"));
	json_t *spec = json_object_get(dj, "spec");
	c->docker.spec = json_is_object(spec) ? json_incref(spec) : NULL;
}

void docker_ctr_release(struct container *c)
{
	free(c->docker.cgroup);
	c->docker.cgroup = NULL;
	free(c->docker.id);
	json_decref(c->docker.body);
	json_decref(c->docker.spec);
	dk_client_free(c->docker.job_client);
	c->docker.id = NULL;
	c->docker.body = NULL;
	c->docker.spec = NULL;
	c->docker.job_client = NULL;
}

/* ---- jobs on workers ---- */

struct job {
	struct daemon *d;
	char *name;
	char *id; /* dockerd's id (in and out) */
	json_t *body;
	json_t *net; /* docker_net.c's plan, or NULL */
	struct dk_client *cl;
	int rc;
	struct clbsd_err err;
	/* results */
	json_t *inspect; /* GET /containers/ID/json, NULL: gone (404) */
	bool gone;
	/* the caller's */
	ctr_done_fn fn;
	void *arg;
	int sig;
	/* exec */
	json_t *exec_req;
	size_t max;
	void (*exec_fn)(const struct ctr_exec_result *r, void *arg);
	struct buf out, errout;
	int exit_code;
	bool truncated;
	/* logs, stats */
	docker_fetch_fn fetch_fn;
	char *query;
	bool tty;
	struct buf text;
	json_t *result;
};

static struct job *job_new(struct container *c)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->d = c->d;
	j->name = xstrdup(c->name);
	j->id = c->docker.id ? xstrdup(c->docker.id) : NULL;
	j->cl = client_of(c->d);
	clbsd_err_init(&j->err);
	return j;
}

static void job_free(struct job *j)
{
	free(j->name);
	free(j->id);
	json_decref(j->body);
	json_decref(j->net);
	json_decref(j->inspect);
	json_decref(j->exec_req);
	json_decref(j->result);
	dk_client_free(j->cl);
	buf_release(&j->out);
	buf_release(&j->errout);
	buf_release(&j->text);
	free(j->query);
	free(j);
}

static void kill_run(void *arg);
static void kill_done(void *arg);

/* The container the job was for, if it is still the same one. */
static struct container *job_ctr(struct job *j)
{
	struct container *c = ctr_find(j->d, j->name);
	return c && c->docker.on && !c->run.removed ? c : NULL;
}

/* Inspect j->id into j->inspect; a 404 sets j->gone. */
static int inspect(struct job *j)
{
	json_decref(j->inspect);
	j->inspect = NULL;
	j->gone = false;
	if (!j->id) {
		j->gone = true;
		return 0;
	}
	autofree char *esc = dk_query_escape(j->id);
	autofree char *path = xasprintf("/containers/%s/json", esc);
	long st = 0;
	int r = dk_call(j->cl, "GET", path, NULL, CALL_TIMEOUT_S, &j->inspect, &st, &j->err);
	if (r < 0 && st == 404) {
		j->gone = true;
		return 0;
	}
	return r;
}

/*
 * Make sure the dockerd container exists: keep ours, take ours by name
 * (made by an earlier run of this daemon whose record lost the id), refuse
 * a stranger's.
 */
static int ensure_created(struct job *j)
{
	if (inspect(j) < 0)
		return -1;
	if (!j->gone)
		return 0;
	free(j->id);
	j->id = NULL;
	autofree char *esc = dk_query_escape(j->name);
	autofree char *path = xasprintf("/containers/create?name=%s", esc);
	json_t *out = NULL;
	long st = 0;
	int r = dk_call(j->cl, "POST", path, j->body, CALL_TIMEOUT_S, &out, &st, &j->err);
	if (r < 0 && st == 409) {
		/* The name is taken: ours (from before), or a stranger's. */
		struct clbsd_err e2;
		autofree char *ipath = xasprintf("/containers/%s/json", esc);
		json_t *ins = NULL;
		if (dk_call(j->cl, "GET", ipath, NULL, CALL_TIMEOUT_S, &ins, NULL, &e2) == 0 &&
		    ours(j->d, json_object_get(json_object_get(ins, "Config"), "Labels"),
			 j->name)) {
			j->id = xstrdup(json_str(ins, "Id") ? json_str(ins, "Id") : "");
			json_decref(ins);
			return inspect(j);
		}
		json_decref(ins);
		clbsd_err_setmsg(&j->err, CLBSD_E_CONFLICT, EEXIST,
				 "container %s: dockerd already has a container named %s that "
				 "clbsd did not make (no org.clbsd labels of this daemon); clbsd "
				 "leaves it alone: rename or remove it, or choose another name",
				 j->name, j->name);
		return -1;
	}
	if (r < 0) {
		clbsd_err_prefix(&j->err, "container %s", j->name);
		return -1;
	}
	const char *id = json_str(out, "Id");
	j->id = xstrdup(id ? id : "");
	json_decref(out);
	return inspect(j);
}

static void remember_id(struct container *c, const char *id)
{
	if ((c->docker.id && id && strcmp(c->docker.id, id) == 0) || (!c->docker.id && !id))
		return;
	free(c->docker.id);
	c->docker.id = id ? xstrdup(id) : NULL;
	struct clbsd_err err;
	if (c->run.removing)
		return; /* its files are going */
	if (ctr_save_config(c, &err) < 0)
		log_error("docker", c->name, "%s", err.msg);
}

/* ---- the truth from inspect, applied on the loop ---- */

static void adopted_ports(struct container *c, const struct clbsd_err *err, void *arg)
{
	if (err)
		log_error("container", c->name, "published ports: %s", err->msg);
}

/*
 * The cgroup dockerd put the running container in, as the kernel says
 * (/proc/PID/cgroup: the memory controller's line with cgroup v1, the
 * unified "0::" one otherwise), read once a run, for its numbers (stats,
 * metrics: ctr_stats_cgroup). A short procfs read.
 */
static void note_cgroup(struct container *c)
{
	free(c->docker.cgroup);
	c->docker.cgroup = NULL;
	if (c->run.state != CTR_RUNNING || c->run.pid <= 0)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)c->run.pid);
	char *text = NULL;
	struct clbsd_err err;
	if (fs_read_file(path, &text, NULL, &err) < 0)
		return;
	const char *v1 = NULL, *v2 = NULL;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *a = strchr(l, ':');
		char *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		const char *p = b + 1;
		while (*p == '/')
			p++;
		if (!*p || strstr(p, ".."))
			continue;
		if (strcmp(l, "0:") == 0 && !a[1])
			v2 = p;
		for (char *s2 = NULL, *k = strtok_r(a + 1, ",", &s2); k;
		     k = strtok_r(NULL, ",", &s2))
			if (strcmp(k, "memory") == 0)
				v1 = p;
	}
	if (v1 || v2)
		c->docker.cgroup = xstrdup(v1 ? v1 : v2);
	free(text);
}

static void apply_inspect(struct container *c, json_t *ins, bool gone, bool while_down)
{
	if (gone) {
		remember_id(c, NULL);
		if (c->run.state == CTR_RUNNING)
			ctr_run_exited(c, 255, 0, false, time_now_ns(), true);
		return;
	}
	json_t *st = json_object_get(ins, "State");
	bool running = json_bool(st, "Running", false);
	if (running && c->run.state != CTR_RUNNING && !c->run.starting) {
		/* Started behind our back (docker start): it runs, so say so. */
		ctr_run_started(c, (pid_t)json_int(st, "Pid", 0),
				dk_time_ns(json_str(st, "StartedAt")));
		note_cgroup(c);
		if (ctr_net_attached(c))
			docker_net_started(c, c->run.pid, adopted_ports, NULL);
		daemon_event(c->d, "container.adopted", c->name,
			     json_pack("{s:i}", "pid", (int)c->run.pid));
	} else if (!running && c->run.state == CTR_RUNNING) {
		int64_t fin = dk_time_ns(json_str(st, "FinishedAt"));
		ctr_run_exited(c, (int)json_int(st, "ExitCode", 255), 0,
			       json_bool(st, "OOMKilled", false), fin ? fin : time_now_ns(),
			       while_down);
	} else if (running && c->run.state == CTR_RUNNING) {
		pid_t pid = (pid_t)json_int(st, "Pid", 0);
		if (pid != c->run.pid || !c->docker.cgroup) {
			c->run.pid = pid;
			note_cgroup(c);
		}
		if (while_down) {
			log_info("container", c->name,
				 "re-adopted running docker container (pid %d)", (int)c->run.pid);
			daemon_event(c->d, "container.adopted", c->name,
				     json_pack("{s:i}", "pid", (int)c->run.pid));
		}
	}
	/* After the events above, which (re)start clbsd's own checks. */
	if (running && c->run.state == CTR_RUNNING)
		docker_health_apply(c, ins);
}

static void check_run(void *arg)
{
	struct job *j = arg;
	j->rc = inspect(j);
}

static void check_done(void *arg)
{
	struct job *j = arg;
	struct container *c = job_ctr(j);
	/*
	 * A removal only waits for the exit: once it is past that, its files
	 * are being deleted on a worker and nothing may write them.
	 */
	bool removing_past_exit = c && c->run.removing && c->run.state != CTR_RUNNING;
	if (c && j->rc == 0 && !c->run.starting && !removing_past_exit && c->docker.id && j->id &&
	    strcmp(c->docker.id, j->id) == 0)
		apply_inspect(c, j->inspect, j->gone, j->sig != 0);
	else if (j->rc < 0)
		log_warn("docker", j->name, "%s", j->err.msg);
	job_free(j);
}

/* Inspect it and apply what dockerd says (after an event, or at "up"). */
static void check(struct container *c, bool while_down)
{
	if (!c->docker.id || !c->d->docker->ep_ok)
		return;
	struct job *j = job_new(c);
	j->sig = while_down;
	work_submit(c->d, check_run, check_done, j);
}

/* ---- start ---- */

/*
 * On clbsd's networks (j->net): the Docker networks exist and the body
 * joins the first; a container made before on other networks or addresses
 * is made again (it is not running: this is its start); the others are
 * connected before the start, so its process never runs without them.
 */
static int ensure_created_net(struct job *j)
{
	if (j->net &&
	    docker_net_prepare(j->cl, docker_instance(j->d), j->net, j->body, &j->err) < 0)
		return clbsd_err_prefix(&j->err, "container %s", j->name);
	if (ensure_created(j) < 0)
		return -1;
	if (!j->net)
		return 0;
	if (!docker_net_matches(j->inspect, j->net)) {
		autofree char *path = xasprintf("/containers/%s?force=1", j->id);
		long st = 0;
		if (dk_call(j->cl, "DELETE", path, NULL, CALL_TIMEOUT_S, NULL, &st, &j->err) < 0 &&
		    st != 404)
			return clbsd_err_prefix(
				&j->err, "container %s: made again for its networks", j->name);
		free(j->id);
		j->id = NULL;
		if (ensure_created(j) < 0)
			return -1;
	}
	if (docker_net_connect(j->cl, j->id, j->inspect, j->net, &j->err) < 0)
		return clbsd_err_prefix(&j->err, "container %s", j->name);
	return 0;
}

static void start_run(void *arg)
{
	struct job *j = arg;
	if (ensure_created_net(j) < 0) {
		j->rc = -1;
		return;
	}
	autofree char *path = xasprintf("/containers/%s/start", j->id);
	if (dk_call(j->cl, "POST", path, NULL, CALL_TIMEOUT_S, NULL, NULL, &j->err) < 0) {
		clbsd_err_prefix(&j->err, "container %s", j->name);
		j->rc = -1;
		return;
	}
	j->rc = inspect(j);
}

static void started_now(struct container *c, struct job *j)
{
	json_t *st = json_object_get(j->inspect, "State");
	/* Its health first: whoever the start wakes (a dependant's pass) may ask for it. */
	docker_health_apply(c, j->inspect);
	ctr_run_started(c, (pid_t)json_int(st, "Pid", 0), dk_time_ns(json_str(st, "StartedAt")));
	note_cgroup(c);
	/* It may have ended already: its die event may have come before we knew it. */
	if (!json_bool(st, "Running", false) && c->run.state == CTR_RUNNING)
		apply_inspect(c, j->inspect, false, false);
}

/* Its published ports are in place (or could not be): it runs, or it is stopped again. */
static void start_ports(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct job *j = arg;
	if (err) {
		struct clbsd_err e = *err;
		clbsd_err_prefix(&e, "container %s: network", c->name);
		log_error("container", c->name, "start failed: %s", e.msg);
		dnet_detach(c);
		struct job *k = job_new(c);
		k->sig = SIGKILL;
		if (k->cl && k->id)
			work_submit(c->d, kill_run, kill_done, k);
		else
			job_free(k);
		ctr_run_failed(c, &e);
	} else {
		started_now(c, j);
	}
	job_free(j);
}

static void start_done(void *arg)
{
	struct job *j = arg;
	struct container *c = job_ctr(j);
	if (!c) {
		job_free(j);
		return;
	}
	if (j->id)
		remember_id(c, j->id);
	if (j->rc < 0) {
		ctr_run_failed(c, &j->err);
	} else if (j->net) {
		json_t *st = json_object_get(j->inspect, "State");
		docker_net_started(c, (pid_t)json_int(st, "Pid", 0), start_ports, j);
		return;
	} else {
		started_now(c, j);
	}
	job_free(j);
}

/* Its networks are up (or not): now dockerd. */
static void start_go(struct container *c, json_t *plan, const struct clbsd_err *err, void *arg)
{
	if (!c)
		return; /* a removal waits for a start: not reached */
	if (err) {
		struct clbsd_err e = *err;
		clbsd_err_prefix(&e, "container %s: network", c->name);
		ctr_run_failed(c, &e);
		return;
	}
	struct job *j = job_new(c);
	j->body = plan ? json_deep_copy(c->docker.body) : json_incref(c->docker.body);
	j->net = json_incref(plan);
	work_submit(c->d, start_run, start_done, j);
}

static int docker_start(struct container *c, bool hold, bool *answered, struct clbsd_err *err)
{
	if (!c->d->docker->ep_ok)
		return no_endpoint(c->d, err);
	if (!c->docker.body)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"container %s: its record has no docker create request",
					c->name);
	docker_sync(c->d);
	docker_net_before(c, start_go, NULL);
	return 0;
}

/* ---- prepare (the API's create) ---- */

static void prepare_run(void *arg)
{
	struct job *j = arg;
	j->rc = ensure_created_net(j) < 0 ? -1 : 0;
}

static void prepare_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct job *j = arg;
	j->fn(NULL, &j->err, j->arg);
	job_free(j);
}

static void prepare_done(void *arg)
{
	struct job *j = arg;
	struct container *c = job_ctr(j);
	if (!c) {
		struct clbsd_err err;
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, ENOENT,
				 "container %s was removed while it was being created", j->name);
		j->fn(NULL, &err, j->arg);
		job_free(j);
		return;
	}
	if (j->rc < 0) {
		/* Nothing half made: the record goes too. */
		ctr_remove(c, true, prepare_removed, j);
		return;
	}
	remember_id(c, j->id);
	j->fn(c, NULL, j->arg);
	job_free(j);
}

static void prepare_go(struct container *c, json_t *plan, const struct clbsd_err *err, void *arg)
{
	struct job *j = arg;
	if (!c) {
		j->fn(NULL, err, j->arg);
		job_free(j);
		return;
	}
	if (err) {
		j->err = *err;
		clbsd_err_prefix(&j->err, "container %s: network", c->name);
		ctr_remove(c, true, prepare_removed, j);
		return;
	}
	j->body = plan ? json_deep_copy(c->docker.body) : json_incref(c->docker.body);
	j->net = json_incref(plan);
	work_submit(c->d, prepare_run, prepare_done, j);
}

void docker_ctr_prepare(struct container *c, ctr_done_fn fn, void *arg)
{
	struct clbsd_err err;
	if (!c->docker.on) {
		fn(c, NULL, arg);
		return;
	}
	if (!c->d->docker->ep_ok) {
		no_endpoint(c->d, &err);
		struct job *j = job_new(c);
		j->err = err;
		j->fn = fn;
		j->arg = arg;
		ctr_remove(c, true, prepare_removed, j);
		return;
	}
	docker_sync(c->d);
	struct job *j = job_new(c);
	j->fn = fn;
	j->arg = arg;
	docker_net_before(c, prepare_go, j);
}

/* ---- signals ---- */

static void kill_run(void *arg)
{
	struct job *j = arg;
	if (!j->cl) {
		j->rc = -1; /* j->err says why (docker_signal) */
		return;
	}
	char buf[16];
	autofree char *path =
		xasprintf("/containers/%s/kill?signal=%s", j->id, ctr_signal_name(j->sig, buf));
	long st = 0;
	j->rc = dk_call(j->cl, "POST", path, NULL, CALL_TIMEOUT_S, NULL, &st, &j->err);
	/* 409: it is not running (any more): its exit is on its way. */
	if (j->rc < 0 && st == 409)
		j->rc = 0;
}

static void kill_done(void *arg)
{
	struct job *j = arg;
	struct container *c = job_ctr(j);
	if (j->rc < 0) {
		log_warn("docker", j->name, "kill: %s", j->err.msg);
		/*
		 * No exit will come of it: whoever waits for one (a stop, a
		 * removal) gets the error now instead of waiting for ever.
		 */
		if (c && c->run.state == CTR_RUNNING) {
			clbsd_err_prefix(&j->err, "container %s: cannot signal it", j->name);
			waiters_fire(&c->waiters.exit, c, &j->err);
		}
	}
	job_free(j);
}

static int docker_signal(struct container *c, int sig, bool all, struct clbsd_err *err)
{
	if (!c->docker.id)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH,
					"container %s is not created in dockerd", c->name);
	struct job *j = job_new(c);
	j->sig = sig;
	/* Asynchronous either way: an endpoint that is not usable fails the job. */
	if (!j->cl)
		no_endpoint(c->d, &j->err);
	work_submit(c->d, kill_run, kill_done, j);
	return 0;
}

/* ---- limits in place ---- */

/*
 * dockerd reads 0 in an update as "unchanged", so a limit can be set or
 * changed in place but not lifted: that takes a new container.
 */
bool docker_limits_in_place(const struct rt_limits *from, const struct rt_limits *to)
{
	return !((from->memory && !to->memory) || (from->cpus > 0 && !(to->cpus > 0)) ||
		 (from->pids && !to->pids));
}

int docker_limits_call(struct dk_client *cl, const char *id, const struct rt_limits *lim,
		       struct clbsd_err *err)
{
	json_t *b = json_object();
	if (lim->memory) {
		json_object_set_new(b, "Memory", json_integer(lim->memory));
		/* What dockerd gives a container made with Memory alone: twice as much with swap. */
		json_object_set_new(b, "MemorySwap", json_integer(2 * lim->memory));
	}
	if (lim->cpus > 0)
		json_object_set_new(b, "NanoCpus", json_integer((json_int_t)(lim->cpus * 1e9)));
	if (lim->pids)
		json_object_set_new(b, "PidsLimit", json_integer(lim->pids));
	autofree char *path = xasprintf("/containers/%s/update", id);
	int r = dk_call(cl, "POST", path, b, CALL_TIMEOUT_S, NULL, NULL, err);
	json_decref(b);
	return r;
}

/* The requests it is made again from (a dockerd restart, clone, export) say the new limits. */
void docker_limits_taken(struct container *c, const struct rt_limits *lim)
{
	json_t *hc = json_object_get(c->docker.body, "HostConfig");
	if (json_is_object(hc)) {
		json_object_del(hc, "Memory");
		json_object_del(hc, "NanoCpus");
		json_object_del(hc, "PidsLimit");
		if (lim->memory)
			json_object_set_new(hc, "Memory", json_integer(lim->memory));
		if (lim->cpus > 0)
			json_object_set_new(hc, "NanoCpus",
					    json_integer((json_int_t)(lim->cpus * 1e9)));
		if (lim->pids)
			json_object_set_new(hc, "PidsLimit", json_integer(lim->pids));
	}
	if (json_is_object(c->docker.spec)) {
		json_object_del(c->docker.spec, "memory");
		json_object_del(c->docker.spec, "cpus");
		json_object_del(c->docker.spec, "pids");
		if (lim->memory)
			json_object_set_new(c->docker.spec, "memory", json_integer(lim->memory));
		if (lim->cpus > 0)
			json_object_set_new(c->docker.spec, "cpus", json_real(lim->cpus));
		if (lim->pids)
			json_object_set_new(c->docker.spec, "pids", json_integer(lim->pids));
	}
}

/* ---- removal ---- */

static int docker_destroy(struct container *c, struct clbsd_err *err)
{
	dk_client_free(c->docker.job_client);
	c->docker.job_client = client_of(c->d);
	struct clbsd_err rerr;
	if (fs_rm_rf(c->rdir, &rerr) < 0)
		log_warn("container", c->name, "%s", rerr.msg);
	return CTR_DESTROY_SLOW;
}

static int docker_destroy_files(struct container *c, struct clbsd_err *err)
{
	struct dk_client *cl = c->docker.job_client;
	if (c->docker.id) {
		if (!cl)
			return no_endpoint(c->d, err);
		autofree char *path = xasprintf("/containers/%s?force=1", c->docker.id);
		long st = 0;
		if (dk_call(cl, "DELETE", path, NULL, CALL_TIMEOUT_S, NULL, &st, err) < 0 &&
		    st != 404)
			return clbsd_err_prefix(err, "remove container %s", c->name);
	}
	/* Its storage on this host (docker_store.c): removed, or set aside for `clbsd undo`. */
	return docker_store_remove(c, err);
}

/* ---- adoption: the truth comes when the endpoint is up (resync) ---- */

static void docker_adopt(struct container *c)
{
	/*
	 * A running one is checked when the endpoint answers (resync): the
	 * configuration, which names the endpoint, is read after adoption.
	 */
	if (c->run.state == CTR_RESTARTING)
		ctr_run_restart_later(c);
}

static void docker_watch(struct container *c)
{
	/* The event stream watches every docker container. */
}

/* ---- exec ---- */

static void exec_frame(int stream, const char *data, size_t n, void *arg)
{
	struct job *j = arg;
	struct buf *b = stream == 2 ? &j->errout : &j->out;
	if (b->len + n > j->max) {
		j->truncated = true;
		n = b->len < j->max ? j->max - b->len : 0;
	}
	buf_add(b, data, n);
}

static void exec_run(void *arg)
{
	struct job *j = arg;
	autofree char *path = xasprintf("/containers/%s/exec", j->id);
	json_t *req = j->exec_req;
	json_t *body = json_pack("{s:b,s:b,s:b,s:O,s:O}", "AttachStdin", 0, "AttachStdout", 1,
				 "AttachStderr", 1, "Cmd", json_object_get(req, "argv"), "Env",
				 json_object_get(req, "env"));
	const char *cwd = json_str(req, "cwd");
	if (cwd && *cwd)
		json_object_set_new(body, "WorkingDir", json_string(cwd));
	const char *user = json_str(req, "docker_user");
	if (user)
		json_object_set_new(body, "User", json_string(user));
	json_t *out = NULL;
	j->rc = dk_call(j->cl, "POST", path, body, CALL_TIMEOUT_S, &out, NULL, &j->err);
	json_decref(body);
	if (j->rc < 0)
		return;
	autofree char *eid = xstrdup(json_str(out, "Id") ? json_str(out, "Id") : "");
	json_decref(out);
	autofree char *spath = xasprintf("/exec/%s/start", eid);
	const char *sbody = "{\"Detach\":false,\"Tty\":false}";
	struct dk_resp r = {0};
	j->rc = dk_request(j->cl, "POST", spath, "application/json", sbody, strlen(sbody), 0, &r,
			   &j->err);
	if (j->rc < 0)
		return;
	if (r.status != 200) {
		j->rc = dk_err_status(r.status, r.body, r.len, "docker POST /exec/start", &j->err);
		dk_resp_release(&r);
		return;
	}
	struct dk_demux m = {0};
	if (dk_demux_feed(&m, r.body, r.len, exec_frame, j) < 0)
		buf_add(&j->out, r.body, r.len); /* not framed: as it came */
	dk_resp_release(&r);
	autofree char *ipath = xasprintf("/exec/%s/json", eid);
	json_t *ins = NULL;
	j->rc = dk_call(j->cl, "GET", ipath, NULL, CALL_TIMEOUT_S, &ins, NULL, &j->err);
	j->exit_code = (int)json_int(ins, "ExitCode", 255);
	json_decref(ins);
}

static void exec_done(void *arg)
{
	struct job *j = arg;
	buf_adds(&j->out, "");
	buf_adds(&j->errout, "");
	struct ctr_exec_result r = {
		.exit_code = j->exit_code,
		.out = j->out.data,
		.err = j->errout.data,
		.out_len = j->out.len,
		.err_len = j->errout.len,
		.truncated = j->truncated,
	};
	if (j->rc < 0) {
		/* An exec that could not start answers like a shell, with the reason on stderr. */
		buf_reset(&j->errout);
		buf_addf(&j->errout, "%s\n", j->err.msg);
		r.exit_code = 126;
		r.err = j->errout.data;
		r.err_len = j->errout.len;
		r.out_len = 0;
	}
	j->exec_fn(&r, j->arg);
	job_free(j);
}

static int docker_exec(struct container *c, json_t *req, size_t max_output,
		       void (*fn)(const struct ctr_exec_result *r, void *arg), void *arg,
		       struct clbsd_err *err)
{
	if (!c->docker.id)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH,
					"container %s is not created in dockerd", c->name);
	if (!c->d->docker->ep_ok)
		return no_endpoint(c->d, err);
	struct job *j = job_new(c);
	j->exec_req = json_deep_copy(req);
	/* The container's user unless the request names another (uid:gid). */
	uint32_t uid = (uint32_t)json_int(req, "uid", 0), gid = (uint32_t)json_int(req, "gid", 0);
	if (uid != c->cfg.uid || gid != c->cfg.gid)
		json_object_set_new(j->exec_req, "docker_user", json_sprintf("%u:%u", uid, gid));
	/* The cwd defaults to the container's workdir, which docker already applies. */
	if (!*c->cfg.workdir && json_str(req, "cwd") && !*json_str(req, "cwd"))
		json_object_del(j->exec_req, "cwd");
	j->max = max_output;
	j->exec_fn = fn;
	j->arg = arg;
	work_submit(c->d, exec_run, exec_done, j);
	return 0;
}

/* ---- logs and stats ---- */

/* One frame's text into CRI lines: "TIME stdout F text" per line dockerd stamped. */
static void log_frame(int stream, const char *data, size_t n, void *arg)
{
	struct job *j = arg;
	docker_log_lines(stream == 2 ? &j->errout : &j->out, stream, data, n, &j->text);
}

static void logs_run(void *arg)
{
	struct job *j = arg;
	autofree char *path = xasprintf("/containers/%s/logs?%s", j->id, j->query);
	struct dk_resp r = {0};
	j->rc = dk_request(j->cl, "GET", path, NULL, NULL, 0, CALL_TIMEOUT_S, &r, &j->err);
	if (j->rc < 0)
		return;
	if (r.status != 200) {
		j->rc = dk_err_status(r.status, r.body, r.len, "docker GET /containers/logs",
				      &j->err);
		dk_resp_release(&r);
		return;
	}
	if (j->tty) {
		log_frame(1, r.body, r.len, j);
	} else {
		struct dk_demux m = {0};
		if (dk_demux_feed(&m, r.body, r.len, log_frame, j) < 0)
			log_frame(1, r.body, r.len, j);
	}
	dk_resp_release(&r);
}

static void fetch_done(void *arg)
{
	struct job *j = arg;
	buf_adds(&j->text, "");
	j->fetch_fn(j->result, j->text.data, j->text.len, j->rc < 0 ? &j->err : NULL, j->arg);
	job_free(j);
}

int docker_ctr_logs(struct container *c, long long tail, int64_t since_ns, int64_t until_ns,
		    docker_fetch_fn fn, void *arg, struct clbsd_err *err)
{
	if (!c->docker.id) {
		fn(NULL, "", 0, NULL, arg);
		return 0;
	}
	if (!c->d->docker->ep_ok)
		return no_endpoint(c->d, err);
	struct job *j = job_new(c);
	struct buf q = BUF_INIT;
	buf_adds(&q, "stdout=1&stderr=1&timestamps=1");
	if (tail >= 0)
		buf_addf(&q, "&tail=%lld", tail);
	if (since_ns)
		buf_addf(&q, "&since=%lld.%09lld", (long long)(since_ns / 1000000000LL),
			 (long long)(since_ns % 1000000000LL));
	if (until_ns)
		buf_addf(&q, "&until=%lld.%09lld", (long long)(until_ns / 1000000000LL),
			 (long long)(until_ns % 1000000000LL));
	j->query = buf_detach(&q, NULL);
	j->tty = c->cfg.tty;
	j->fetch_fn = fn;
	j->arg = arg;
	work_submit(c->d, logs_run, fetch_done, j);
	return 0;
}

static void stats_run(void *arg)
{
	struct job *j = arg;
	autofree char *path = xasprintf("/containers/%s/stats?stream=false&one-shot=true", j->id);
	json_t *s = NULL;
	j->rc = dk_call(j->cl, "GET", path, NULL, CALL_TIMEOUT_S, &s, NULL, &j->err);
	if (j->rc < 0)
		return;
	json_t *cpu = json_object_get(json_object_get(s, "cpu_stats"), "cpu_usage");
	json_t *mem = json_object_get(s, "memory_stats");
	json_t *pids = json_object_get(s, "pids_stats");
	j->result = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "name", j->name, "cpu_usage_ns",
			      (json_int_t)json_int(cpu, "total_usage", 0), "memory_usage",
			      (json_int_t)json_int(mem, "usage", 0), "memory_limit",
			      (json_int_t)json_int(mem, "limit", 0), "pids_current",
			      (json_int_t)json_int(pids, "current", 0), "pids_limit",
			      (json_int_t)json_int(pids, "limit", 0), "oom_kills", (json_int_t)0,
			      "read_at", json_time(time_now_ns()));
	json_decref(s);
}

int docker_ctr_stats(struct container *c, docker_fetch_fn fn, void *arg, struct clbsd_err *err)
{
	if (c->run.state != CTR_RUNNING || !c->docker.id)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH, "container %s is not running",
					c->name);
	if (!c->d->docker->ep_ok)
		return no_endpoint(c->d, err);
	struct job *j = job_new(c);
	j->fetch_fn = fn;
	j->arg = arg;
	work_submit(c->d, stats_run, fetch_done, j);
	return 0;
}

const struct ctr_ops ctr_docker_ops = {
	.kind = "docker",
	.start = docker_start,
	.watch = docker_watch,
	.signal = docker_signal,
	.destroy = docker_destroy,
	.destroy_files = docker_destroy_files,
	.adopt = docker_adopt,
	.exec = docker_exec,
};

/* ---- the event follower ---- */

/* On the follower's thread: queue it for the loop. */
static void on_follow(enum dk_follow_what what, json_t *ev, const char *msg, void *arg)
{
	struct ddocker *k = arg;
	json_t *item = json_pack("{s:i,s:O?,s:s?}", "what", (int)what, "ev", ev, "msg", msg);
	pthread_mutex_lock(&k->lock);
	json_array_append_new(k->queue, item);
	pthread_mutex_unlock(&k->lock);
	char b = 1;
	ssize_t w = write(k->pipe[1], &b, 1);
	(void)w; /* a full pipe already wakes the loop */
}

static void resync(struct daemon *d)
{
	for (struct container *c = d->ctrs; c; c = c->next)
		if (c->docker.on && !c->run.starting)
			check(c, true);
	reconcile_trigger(d);
}

static void on_event(struct daemon *d, json_t *ev)
{
	if (strcmp(json_str(ev, "Type") ? json_str(ev, "Type") : "", "container") != 0)
		return;
	const char *action = json_str(ev, "Action");
	json_t *actor = json_object_get(ev, "Actor");
	const char *id = json_str(actor, "ID");
	json_t *attrs = json_object_get(actor, "Attributes");
	const char *name = json_str(attrs, DK_LABEL_NAME);
	if (!action || !id || !name || !ours(d, attrs, name))
		return;
	struct container *c = ctr_find(d, name);
	if (!c || !c->docker.on || !c->docker.id || strcmp(c->docker.id, id) != 0)
		return;
	/* "health_status: healthy" and the like: the image's HEALTHCHECK, run by dockerd. */
	if (strcmp(action, "die") == 0 || strcmp(action, "destroy") == 0 ||
	    strcmp(action, "start") == 0 || strcmp(action, "oom") == 0 ||
	    strncmp(action, "health_status", 13) == 0) {
		/* A removal waits for this exit too: only a start in flight reads its own truth. */
		if (c->run.starting)
			return;
		check(c, false);
	}
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct ddocker *k = d->docker;
	char drain[64];
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&k->lock);
	json_t *q = k->queue;
	k->queue = json_array();
	pthread_mutex_unlock(&k->lock);
	size_t i;
	json_t *item;
	json_array_foreach(q, i, item)
	{
		int w = (int)json_int(item, "what", 0);
		if (w == DK_FOLLOW_UP) {
			k->up = true;
			free(k->down_reason);
			k->down_reason = NULL;
			log_info("docker", NULL, "endpoint %s is up", k->ep.text);
			daemon_event(d, "docker.up", NULL,
				     json_pack("{s:s}", "endpoint", k->ep.text));
			resync(d);
		} else if (w == DK_FOLLOW_DOWN) {
			bool was = k->up;
			k->up = false;
			free(k->down_reason);
			k->down_reason =
				xstrdup(json_str(item, "msg") ? json_str(item, "msg") : "");
			log_warn("docker", NULL, "%s", k->down_reason);
			if (was)
				daemon_event(d, "docker.down", NULL,
					     json_pack("{s:s,s:s}", "endpoint", k->ep.text,
						       "reason", k->down_reason));
		} else {
			on_event(d, json_object_get(item, "ev"));
		}
	}
	json_decref(q);
}

/* ---- life ---- */

/* A container went: the Docker networks of clbsd's that no docker container needs go too. */
static void on_removed(const struct event_rec *e, void *arg)
{
	struct daemon *d = arg;
	struct ddocker *k = d->docker;
	if (strcmp(e->type, "container.removed") != 0 || !k->follow || !docker_local(d))
		return;
	docker_net_gc(d, dk_client_new(&k->ep), k->instance);
}

int docker_init(struct daemon *d, struct clbsd_err *err)
{
	struct ddocker *k = xcalloc(1, sizeof(*k));
	k->d = d;
	k->pipe[0] = k->pipe[1] = -1;
	pthread_mutex_init(&k->lock, NULL);
	k->queue = json_array();
	d->docker = k;
	/* The instance id: made once, kept with the state (the labels name it). */
	autofree char *path = xasprintf("%s/docker-instance", d->root);
	autofree char *text = NULL;
	struct clbsd_err rerr;
	if (fs_read_file(path, &text, NULL, &rerr) == 0 && strlen(text) >= 32) {
		memcpy(k->instance, text, 32);
		k->instance[32] = '\0';
	} else {
		random_hex(k->instance, 16);
		if (fs_write_atomic(path, k->instance, 32, 0600, err) < 0)
			return clbsd_err_prefix(err, "docker instance id");
	}
	if (pipe2(k->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "docker: pipe");
	k->ev = event_new(d->base, k->pipe[0], EV_READ | EV_PERSIST, on_pipe, d);
	event_add(k->ev, NULL);
	k->removed_sub = events_subscribe(&d->events, on_removed, d);
	return 0;
}

static bool any_docker(struct daemon *d)
{
	for (struct container *c = d->ctrs; c; c = c->next)
		if (c->docker.on)
			return true;
	struct conf *conf = d->decl.conf;
	for (size_t i = 0; conf && i < conf->ncontainers; i++)
		if (conf->containers[i]->kind == CTR_KIND_DOCKER)
			return true;
	return false;
}

void docker_sync(struct daemon *d)
{
	struct ddocker *k = d->docker;
	if (!k)
		return;
	const struct conf_host *h = d->decl.conf ? &d->decl.conf->host : NULL;
	const char *uri = h && h->docker_endpoint ? h->docker_endpoint : DK_DEFAULT_ENDPOINT;
	const char *ca = h ? h->docker_tls_ca : NULL;
	const char *cert = h ? h->docker_tls_cert : NULL;
	const char *key = h ? h->docker_tls_key : NULL;
	autofree char *ep_key =
		xasprintf("%s|%s|%s|%s", uri, ca ? ca : "", cert ? cert : "", key ? key : "");
	if (k->ep_key && strcmp(k->ep_key, ep_key) == 0) {
		if (!k->follow && k->ep_ok && any_docker(d))
			goto follow;
		return;
	}
	/* A new endpoint: stop following the old one. */
	dk_follow_stop(k->follow);
	k->follow = NULL;
	k->up = false;
	free(k->ep_key);
	k->ep_key = steal_ptr(&ep_key);
	dk_endpoint_release(&k->ep);
	free(k->ep_error);
	k->ep_error = NULL;
	struct clbsd_err err;
	k->ep_ok = dk_endpoint_parse(uri, ca, cert, key, &k->ep, &err) == 0;
	if (!k->ep_ok) {
		k->ep_error = xstrdup(err.msg);
		log_error("docker", NULL, "%s", err.msg);
		return;
	}
	if (!any_docker(d))
		return;
follow:;
	autofree char *lbl = xasprintf(DK_LABEL_INSTANCE "=%s", k->instance);
	char *labels[] = {lbl, NULL};
	autofree char *filters = dk_label_filters(labels);
	k->follow = dk_follow_start(&k->ep, filters, DOCKER_RETRY_MS, on_follow, k);
}

void docker_release(struct daemon *d)
{
	struct ddocker *k = d->docker;
	if (!k)
		return;
	dk_follow_stop(k->follow);
	if (k->removed_sub)
		events_unsubscribe(&d->events, k->removed_sub);
	if (k->ev)
		event_free(k->ev);
	if (k->pipe[0] >= 0)
		close(k->pipe[0]);
	if (k->pipe[1] >= 0)
		close(k->pipe[1]);
	pthread_mutex_destroy(&k->lock);
	json_decref(k->queue);
	dk_endpoint_release(&k->ep);
	free(k->ep_error);
	free(k->ep_key);
	free(k->down_reason);
	free(k);
	d->docker = NULL;
}
