/*
 * clbsdd's state: the daemon, its containers and the operations the API and
 * the restart policy drive. Everything here runs on the one libevent loop
 * thread; blocking work goes to work_submit().
 *
 * This folder is the engine: it has no main (src/clbsdd/main.c opens and
 * runs it through daemon.c) and never includes api/, which calls it.
 *
 * Invariants:
 * - A container's directory <root>/containers/<name>/ holds container.json
 *   (written atomically after every state change), runtime.json (the spec the
 *   shim was started with), shim.json (written by the shim), logs/ and the
 *   storage the driver made.
 * - state RUNNING means a shim is (or was last seen) alive and c->shim.watch is
 *   connected to it; exits arrive through the watch and go to ctr_on_exit().
 * - Only one start runs per container at a time (c->run.starting).
 */
#ifndef CLBSD_DAEMON_H
#define CLBSD_DAEMON_H

#include <clbsd/clbsd.h>
#include "core/event_bus.h"
#include "core/spec.h"
#include "image/image.h"
#include "runtime/runtime.h"
#include "storage/storage.h"
#include "util/util.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum ctr_state { CTR_CREATED, CTR_RUNNING, CTR_RESTARTING, CTR_EXITED };

struct ctr_config {
	char **command; /* what the user asked for (NULL: image CMD) */
	char **argv;	/* resolved: entrypoint + command */
	char **env;	/* resolved: image env + user env + HOSTNAME... */
	char *workdir;
	char *user; /* as given, "" for the image default */
	uint32_t uid;
	uint32_t gid;
	char *hostname;
	bool tty;
	bool stdin_open;
	struct rt_mount *volumes;
	size_t n_volumes;
	struct rt_limits limits;
	enum ctr_restart restart;
	int max_retries;
	int stop_signal; /* what a stop sends first (SIGTERM unless the spec says) */
	bool auto_remove;
	struct rt_userns userns;   /* usermap.c: count 0 = the host's ids */
	bool caps_set;		   /* false: the runtime's default set */
	uint64_t caps;		   /* :cap-add / :cap-drop resolved (1 << CAP_*) */
	char **sysctls;		   /* "key=value", NULL: none */
	struct rt_device *devices; /* :devices resolved against the host's nodes */
	size_t n_devices;
	char **labels; /* "key=value", NULL: none (shown by inspect) */
	/*
	 * The create request's "integrity" (a container the API made; a
	 * declared one's :integrity is read from the configuration, where it
	 * changes without a recreate). Clean absolute paths, sorted; NULL: none.
	 */
	bool integrity_set;
	char **integrity_exclude, **integrity_include;
	int64_t integrity_every_ns; /* 0: no scheduled checks of its own */
};

/* A container's network settings (net.c). mode is an enum net_mode. */
struct ctr_net {
	int mode;
	char **networks; /* NET_MODE_NETWORKS: names in order ("default" is the host's bridge) */
	char *ip;	 /* pinned IPv4 address on the first network, or NULL */
	char **aliases;	 /* extra names on every network */
	char **dns;	 /* nameservers; NULL: the host's */
	char **publish;	 /* "[IP:]HOST:CTR/proto", normalised */
	char **addrs;	 /* assigned IPv4, one per network ("" when none) */
	char **addrs6;	 /* assigned IPv6, one per network ("" when the network has none) */
};

struct container;
typedef void (*ctr_done_fn)(struct container *c, const struct clbsd_err *err, void *arg);

struct waiter {
	ctr_done_fn fn;
	void *arg;
	struct waiter *next;
};

/*
 * A container. Its members are grouped by the file that owns them (writes
 * them); other files read them.
 */
struct container {
	/* ctr_record.c: what the container is (container.json), and the list. */
	struct daemon *d;
	char *name;
	char id[65];
	char *image_ref;
	char image_id[65];
	struct ctr_config cfg;
	int64_t created_ns;
	char *dir;
	/*
	 * <run>/containers/<name>: the run-time files (state.json, runtime.json,
	 * shim.json). Under /run they cost no disk work and vanish with a
	 * reboot, which is when they stop meaning anything.
	 */
	char *rdir;
	bool legacy_rfiles; /* an older version's shim.json/runtime.json in dir, to go at the next start */
	struct container *next;

	/* net.c: its networks, addresses and published ports. */
	struct ctr_net net;
	bool net_attached; /* its veths and port rules were made for the current run */

	/* lifecycle.c: the current or last run (state.json). */
	struct {
		enum ctr_state state;
		pid_t pid;
		pid_t shim_pid;
		int exit_code;
		int signal;
		bool oom_killed;
		bool oom_reported; /* a container.oom event went out for this run */
		int64_t started_ns;
		int64_t finished_ns;
		int64_t start_mono_ns;	/* when ctr_start began (monotonic): its probe's duration */
		int64_t remove_mono_ns; /* when ctr_remove began (monotonic): its probe's duration */
		int restart_count;
		int backoff_n;
		char *cgroup;	   /* of the current or last start; NULL: <cgroup parent>/<name> */
		char *start_error; /* why the last start failed; NULL after a good start */
		bool cgroup_gone;  /* its shim reported removing the cgroup of the last run */
		bool stop_requested;
		bool starting;
		bool removing;
		bool removed; /* unlinked from the list, freed on the next loop turn */
		/* Callbacks still to come hold it: freed once the last lets go (ctr_let_go). */
		unsigned holds;
		bool free_pending;
		struct event *restart_ev;
		struct event *kill_ev;
	} run;

	/* lifecycle.c: the connection to its shim. */
	struct {
		char *socket;
		struct bufferevent *watch;
		bool watch_acked; /* the shim answered the wait request on watch */
		struct event *ready_ev;
		int ready_fd;
		struct buf *ready_buf;
	} shim;

	/* lifecycle.c: who waits for what. */
	struct {
		struct waiter *start;
		struct waiter *exit;
		struct waiter *remove; /* fired when it is removed (or removing failed) */
	} waiters;

	/* snapshot.c (busy) and ctr_record.c (mode, applied): its storage. */
	struct {
		bool busy; /* a snapshot, rollback or clone runs on a worker */
		char *mode;
		char *applied; /* managed: the :storage properties last set ("Q/R/RS/C") */
	} storage;

	/* undo.c: set aside before a recreate, and `clbsd undo`. */
	struct {
		bool aside;	      /* being removed to be set aside, not destroyed */
		bool aside_running;   /* it ran when it was set aside */
		char undone_hash[65]; /* managed: a spec hash `clbsd undo` turned back from */
	} undo;

	/* docker_ctr.c: a Docker container (kind docker; see the file's comment). */
	struct {
		bool on;	  /* kind docker: dockerd runs it, not a shim */
		char *id;	  /* dockerd's id; NULL: not (or no longer) created there */
		json_t *body;	  /* the create request, with our labels */
		json_t *spec;	  /* the clbsd create request it was made from (clone, export) */
		void *job_client; /* a struct dk_client for the removal's worker */
		char *cgroup;	  /* dockerd's cgroup of the current run (docker_ctr.c), or NULL */
	} docker;

	/* reconcile.c: a container made from the configuration. */
	struct {
		bool managed;	    /* made by the reconciler from the configuration */
		char spec_hash[65]; /* ctr_spec_hash() it was made from */
		char *spec_text;    /* ctr_spec_print() it was made from */
		bool booted;	    /* the reconciler started it for its current desired state */
	} decl;

	/*
	 * ctr_update.c: new limits are being written to its cgroup. One change
	 * at a time: a second one would read the first one's values as the
	 * old ones to put back.
	 */
	bool limits_busy;

	/* integrity_run.c: a check or record of its files runs on a worker. */
	struct {
		bool busy;
		bool baseline; /* busy with the first manifest, at create */
		bool pending;  /* a scheduled check waits for that one */
		/* Not declared: its own :integrity :every (a declared one's is hook_run.c's). */
		struct event *timer;
	} integrity;
};

/*
 * The daemon. Members are grouped by the file that owns them (writes
 * them); other files read them.
 */
struct daemon {
	/* daemon.c: the settings (daemon_init) and what daemon_open opens. */
	struct event_base *base;
	char *root;
	char *run;
	char *socket;
	char *config;
	char *confd; /* conf.d beside the main config file */
	char *shim_path;
	char *busybox;
	char *cgroup_parent;
	int lock_fd;
	struct storage storage;
	const struct rt_ops *rt;
	int filter_fd; /* the compiled syscall filter handed to shims, or -1 */
	struct image_store images;
	struct events events;
	int64_t started_ns;
	bool root_shared; /* our / propagates mounts to the namespaces made from it */
	bool shutting_down;
	/* daemon.c: shims that are our children (we are their subreaper). */
	struct {
		pid_t *pids;
		size_t n;
	} children;

	/* ctr_record.c: the containers. */
	struct container *ctrs;
	/*
	 * ctr_record.c: emptied directories of removed overlay containers
	 * (rootfs, upper, work and logs, nothing in them), taken by the next
	 * create instead of making five directories again.
	 */
	struct {
		char **dirs;
		size_t n;
		int coming; /* removals on their way to becoming spares */
	} spare;

	/* api/server.c: the API's listener. */
	struct {
		struct evhttp *http;
		int listen_fd;
		gid_t gid;
		bool have_gid;
	} api;

	/* reconcile.c: the declared state. */
	struct {
		struct conf *conf;   /* the last good configuration (NULL: none) */
		struct conf *next;   /* loaded while a pass ran; taken when it ends */
		char (*hashes)[65];  /* spec hashes of conf's containers, lazily */
		uint64_t generation; /* bumps on every accepted load */
		int64_t loaded_ns;
		char *error;		  /* diagnostics of the last rejected load, or NULL */
		bool main_seen;		  /* the main file existed at the last good load */
		char digest[65];	  /* conf_load_digest() of the last load, good or not */
		struct conf_watch *watch; /* the watch on the configuration files */
	} decl;

	/* lisp_sup.c: the supervised Lisp control plane, or NULL. */
	struct lisp_sup *lisp;
	/* audit_log.c: <root>/audit/audit.log (NULL when it could not be opened). */
	struct audit_log *audit;

	/* reconcile.c: the passes. */
	struct {
		struct reconcile_pass *pass;	  /* the pass running now, or NULL */
		bool pending;			  /* a trigger came during the pass */
		struct pass_waiter *next_waiters; /* apply requests for the next pass */
		int backoff;			  /* consecutive passes with failures */
		struct event *timer; /* deferred trigger, backoff and periodic resync */
		json_t *last;	     /* summary of the last finished pass */
		uint64_t n_passes;   /* passes started (not dry runs) since the daemon began */
	} recon;

	/* hook_run.c */
	struct hooks_state *hooks;
	/* backup.c: each container's backups. */
	struct dbackup *backup;
	/* exec_run.c: native execs still collecting output (freed at close). */
	struct ctr_exec *execs;
	/* health_probe.c: one run per checked, running container. */
	struct {
		struct health_run *runs;
		struct events_sub *sub;
	} health;
	/* shim_pool.c: shims made ahead of starts. */
	struct pool *pool;
	/* net.c: networks, addresses, the driver's queue. */
	struct dnet *net;
	/* undo.c: name -> {"image_id", "running"} of what is set aside. */
	json_t *asides;
	/* ingress.c: the routing container and its nginx.conf. */
	struct dingress *ingress;
	/* build_run.c: declared images being built (name -> true). */
	json_t *decl_builds;
	/* docker_ctr.c: the Docker endpoint, its event follower, this daemon's instance id. */
	struct ddocker *docker;
	/* docker_image.c: declared docker images built or building (name -> their inputs). */
	json_t *docker_builds;
	/* metrics.c: the Prometheus counters, snapshot and listener (metrics.h). */
	struct dmetrics *metrics;
	/*
	 * transfer.c: declared containers an import is receiving: until it
	 * ends, the reconciler plans as if each were there and up to date,
	 * so that it does not make the declared container itself meanwhile.
	 */
	struct strv importing;
};

struct ctr_exec;
struct ctr_exec_result;
/*
 * What differs between the kinds of container, in one table (lifecycle.c
 * picks it with ctr_ops_of(); nothing else asks a container's kind). The
 * life cycle around these (states, waiters, the restart policy, events,
 * hooks, removal's bookkeeping) is one for both.
 */
struct ctr_ops {
	const char *kind; /* "native", "docker" */
	/*
	 * Begin a start. 0: under way, ending in ctr_run_started() or
	 * ctr_run_failed() (*answered: the caller was told already, a held
	 * native start from the pool); < 0: failed now.
	 */
	int (*start)(struct container *c, bool hold, bool *answered, struct clbsd_err *err);
	/* After ctr_run_started(): follow it until it exits (native: the shim's watch). */
	void (*watch)(struct container *c);
	/* Send a signal to its processes (all: every process, not only the init). */
	int (*signal)(struct container *c, int sig, bool all, struct clbsd_err *err);
	/* Removal on the loop; CTR_DESTROY_SLOW: then destroy_files on a worker. */
	int (*destroy)(struct container *c, struct clbsd_err *err);
	int (*destroy_files)(struct container *c, struct clbsd_err *err);
	/* At daemon start: find out whether it still runs. */
	void (*adopt)(struct container *c);
	/* A command inside it, output collected (ctr_exec_start's contract). */
	int (*exec)(struct container *c, json_t *req, size_t max_output,
		    void (*fn)(const struct ctr_exec_result *r, void *arg), void *arg,
		    struct clbsd_err *err);
};
const struct ctr_ops *ctr_ops_of(const struct container *c);
/* exec_run.c: the native exec (through the shim). */
int ctr_native_exec(struct container *c, json_t *req, size_t max_output,
		    void (*fn)(const struct ctr_exec_result *r, void *arg), void *arg,
		    struct clbsd_err *err);
void exec_release_daemon(struct daemon *d);
extern const struct ctr_ops ctr_native_ops;
extern const struct ctr_ops ctr_docker_ops;
/* lifecycle.c: what a kind's start reports back (on the loop). */
void ctr_run_started(struct container *c, pid_t pid, int64_t started_ns);
void ctr_run_failed(struct container *c, const struct clbsd_err *err);
/* A container that was waiting to restart when the daemon stopped: restart it after its backoff. */
void ctr_run_restart_later(struct container *c);
/* It exited (while_down: while the daemon or the endpoint was away). */
void ctr_run_exited(struct container *c, int code, int sig, bool oom, int64_t finished,
		    bool while_down);

/*
 * docker_ctr.c: Docker containers (see the file's comment). docker_init at
 * open (the instance id), docker_sync after every good configuration load
 * (the endpoint), docker_release at close.
 */
struct ddocker;
int docker_init(struct daemon *d, struct clbsd_err *err);
void docker_sync(struct daemon *d);
void docker_release(struct daemon *d);
/* Fill a new docker container's config and create body from its spec (ctr_record.c calls it). */
int docker_ctr_config(struct daemon *d, const struct ctr_spec *s, struct container *c,
		      struct clbsd_err *err);
/* Create it in dockerd now (API create: a refusal leaves nothing); fn on the loop. */
void docker_ctr_prepare(struct container *c, ctr_done_fn fn, void *arg);
/* "waiting" while its endpoint does not answer: the reason, or NULL. */
const char *docker_waiting(const struct container *c);
/* Why the docker endpoint cannot be used now, or NULL (also NULL before anything asked for it). */
const char *docker_down(struct daemon *d);

/*
 * docker_image.c: images in dockerd (see the file's comment). Each returns
 * 0 when the work started (fn, or the sink's end, comes later on the loop)
 * or an error, and then nothing comes.
 */
typedef void (*dimage_fn)(json_t *result, const struct clbsd_err *err, void *arg);
/* Pull ref into dockerd; progress as image.progress events; the result is the image. */
int docker_image_pull(struct daemon *d, const char *ref, dimage_fn fn, void *arg,
		      struct clbsd_err *err);
/* dockerd's images, each {"id", "names", "size", "kind", ...}. */
int docker_image_list(struct daemon *d, dimage_fn fn, void *arg, struct clbsd_err *err);
struct progress_sink;
/* POST /v1/build with "kind": "docker": a Dockerfile with dockerd, a Cblockfile by clbsd then loaded. */
int docker_build_start(struct daemon *d, json_t *body, const struct progress_sink *sink,
		       struct clbsd_err *err);
/*
 * docker_io.c: an interactive exec in a docker container. Makes a session
 * socket speaking the shim protocol, served on a thread of its own that
 * bridges it to dockerd; *answer is {"socket", "request"} for the client.
 */
int docker_exec_session(struct container *c, json_t *shimreq, bool tty, bool stdin_open,
			json_t **answer, struct clbsd_err *err);
/* The same for the container's own stream (its console): 409 unless it runs. */
int docker_attach_session(struct container *c, json_t **answer, struct clbsd_err *err);
struct conf_image;
/* A declared (image NAME :build DIR :kind docker): built when its inputs changed. */
void docker_image_decl(struct daemon *d, const struct conf_image *im);
/* Add the docker details to a container's JSON (ctr_to_json). */
void docker_ctr_json(const struct container *c, json_t *j);
/* Read them back from container.json. */
void docker_ctr_load(struct container *c, const json_t *j);
/* Free a container's docker fields (ctr_free). */
void docker_ctr_release(struct container *c);
struct dk_client;
struct dk_endpoint;
/*
 * docker_store.c: a docker container's storage on this host (its state and
 * volumes, a container of the empty image to the storage driver), and
 * what snapshots, clones, export and import need of dockerd.
 */
/* Make the storage of a new docker container at dir; *mode (caller frees) as inspect shows it. */
int docker_store_make(struct daemon *d, const char *dir, char **mode, struct clbsd_err *err);
/* The mode of storage that is there (a clone's, an import's); a new string. */
char *docker_store_mode(struct daemon *d, const char *dir);
/* Make sure the empty image's tree is there (an import's receive on the dir driver needs it). */
int docker_store_prepare(struct daemon *d, struct clbsd_err *err);
/* 0 when c (a docker container) has storage of its own and a recorded spec, else why not. */
int docker_store_check(const struct container *c, struct clbsd_err *err);
/* Whether the set-aside of a recreate can keep c (native, or a docker one with its own storage). */
bool docker_store_can_aside(const struct container *c);
/* The storage part of removing a docker container (or setting it aside); on a worker. */
int docker_store_remove(struct container *c, struct clbsd_err *err);
/* Refuse :dataset volumes when the endpoint is not on this host (see docs/docker.md). */
int docker_store_check_volumes(struct daemon *d, const struct ctr_spec *s, struct clbsd_err *err);
/* clone: the new docker container dst (its storage made) from c's spec. */
int docker_store_clone(struct container *c, const char *dst, struct container **out,
		       struct clbsd_err *err);
/*
 * On a worker: what an export says of the image ref: {"ref", "id" (dockerd's
 * image id), "digests" (its RepoDigests, maybe empty)}.
 */
int docker_store_image_info(struct dk_client *cl, const char *ref, json_t **out,
			    struct clbsd_err *err);
/*
 * On a worker: make the image an import needs (img as image_info made it)
 * present in dockerd: there by id, or pulled by its digest. *use (caller
 * frees) is the name to create the container with.
 */
int docker_store_image_ensure(struct dk_client *cl, const json_t *img, char **use,
			      struct clbsd_err *err);
/*
 * On a worker: write `docker save` of image ref into fd at offset at; *n
 * its length and hex its XXH3-128 (export --with-image).
 */
int docker_store_image_save(struct dk_client *cl, const char *ref, int fd, off_t at, int64_t *n,
			    char hex[33], struct clbsd_err *err);
/* On a worker: check the n bytes at `at` of fd against XXH3-128 `want` and load them. */
int docker_store_image_load(struct dk_client *cl, int fd, off_t at, int64_t n, const char *want,
			    struct clbsd_err *err);
/*
 * The create request an archive's docker record stands for, under name;
 * *host (when given) gets a line for each way it reaches the host. NULL
 * when the record holds no request (made before docker exports).
 */
json_t *docker_store_request(const json_t *h, const char *name, struct strv *host);
/* A client of the endpoint for a worker (the caller frees it), or NULL when it is not usable. */
struct dk_client *docker_client(struct daemon *d);
/* The configured endpoint when it is usable, else NULL. */
const struct dk_endpoint *docker_endpoint(struct daemon *d);
/* Why the endpoint is not usable (an error like the driver's own). */
int docker_no_endpoint(struct daemon *d, struct clbsd_err *err);
/* Logs and stats through dockerd: fn gets CRI-format log text or the stats object. */
typedef void (*docker_fetch_fn)(json_t *result, const char *text, size_t len,
				const struct clbsd_err *err, void *arg);
int docker_ctr_logs(struct container *c, long long tail, int64_t since_ns, int64_t until_ns,
		    docker_fetch_fn fn, void *arg, struct clbsd_err *err);
int docker_ctr_stats(struct container *c, docker_fetch_fn fn, void *arg, struct clbsd_err *err);
/* This daemon's instance id (the org.clbsd.instance label). */
const char *docker_instance(struct daemon *d);
/* The endpoint is this host's dockerd (unix://): its containers can join clbsd's networks. */
bool docker_local(struct daemon *d);

/*
 * docker_net.c: docker containers on clbsd's networks (see the file's
 * comment). A plan is {dir, endpoints: dnet_endpoints_json()}.
 */
struct dk_client;
/* The spec's network: clbsd's (dnet_spec_net) with a local dockerd; none/host/default else. */
int docker_spec_net(struct daemon *d, const struct ctr_spec *s, struct ctr_net *out,
		    struct clbsd_err *err);
typedef void (*docker_net_go_fn)(struct container *c, json_t *plan, const struct clbsd_err *err,
				 void *arg);
/*
 * Before dockerd creates or starts c: its hosts and resolv.conf written
 * and its bridges up; go gets the plan (NULL: c is on no network) or why
 * not (c NULL: it was removed meanwhile). The plan is borrowed for the
 * call.
 */
void docker_net_before(struct container *c, docker_net_go_fn go, void *arg);
/* On a worker: the Docker networks of plan exist; body gets NetworkMode, eth0's address, binds. */
int docker_net_prepare(struct dk_client *cl, const char *instance, json_t *plan, json_t *body,
		       struct clbsd_err *err);
/* Was the container (its inspect) made on plan's first network with its address? */
bool docker_net_matches(json_t *ins, json_t *plan);
/* On a worker, after the create: the container on plan's other networks. */
int docker_net_connect(struct dk_client *cl, const char *id, json_t *ins, json_t *plan,
		       struct clbsd_err *err);
/* It runs as pid: its published ports (fn on the loop). */
void docker_net_started(struct container *c, pid_t pid, ctr_done_fn fn, void *arg);
/* Remove the Docker networks no docker container uses any more (takes cl). */
void docker_net_gc(struct daemon *d, struct dk_client *cl, const char *instance);
/* A client of the configured endpoint (for a worker), or NULL with err saying why none. */
struct dk_client *docker_client_new(struct daemon *d, struct clbsd_err *err);
/*
 * `docker update` of a running container's limits (ctr_update.c): the call
 * on a worker, then on the loop its recorded requests take the new values.
 */
int docker_limits_call(struct dk_client *cl, const char *id, const struct rt_limits *lim,
		       struct clbsd_err *err);
void docker_limits_taken(struct container *c, const struct rt_limits *lim);
/* Whether dockerd can change from the limits `from` to `to` in place (it cannot lift one). */
bool docker_limits_in_place(const struct rt_limits *from, const struct rt_limits *to);

/*
 * docker_logs.c: following a docker container's output as dockerd writes
 * it (see the file's comment). fn runs on the loop with batches of CRI
 * lines, then once with end set (err: why it ended early, or NULL when
 * the container stopped). After docker_follow_cancel fn is not called
 * again (the follow ends on its own within about a second).
 */
struct docker_follow;
typedef void (*docker_follow_fn)(const char *text, size_t len, const struct clbsd_err *err,
				 bool end, void *arg);
struct docker_follow *docker_follow_logs(struct container *c, long long tail, int64_t since_ns,
					 docker_follow_fn fn, void *arg, struct clbsd_err *err);
void docker_follow_cancel(struct docker_follow *f);
/* dockerd's timestamped lines of one stream as CRI lines into out; partial lines wait in pending. */
void docker_log_lines(struct buf *pending, int stream, const char *data, size_t n, struct buf *out);

/* usermap.c: host id ranges of containers with "userns": "auto" (see the file's comment) */
/* Choose name's range (prefer: a base to keep when free, 0: none). */
int usermap_assign(struct daemon *d, const char *name, uint32_t prefer, struct rt_userns *out,
		   struct clbsd_err *err);
/* Record name's range in <root>/userns.json, for when the name comes back (not for --rm). */
void usermap_remember(struct daemon *d, const char *name, const struct ctr_config *cfg);
/*
 * A record about to become container `name` (a clone's: the source's
 * range) gets a range of its own when another container holds its range.
 */
int usermap_adopt(struct daemon *d, json_t *rec, const char *name, struct clbsd_err *err);
/* Refuse (CLBSD_E_UNAVAIL, saying why) a storage or volume that cannot be idmapped. */
int usermap_check_storage(struct daemon *d, const char *img_rootfs, const struct ctr_config *cfg,
			  struct clbsd_err *err);
/*
 * Mark the mounts of clbsd's own storage (under <root>: named volumes, the
 * container's hosts and resolv.conf) idmapped; host paths stay as they are.
 */
void usermap_spec_mounts(const struct daemon *d, struct rt_spec *spec);
/* config.userns in container.json: {"uid", "gid", "count"}, or null. */
json_t *usermap_json(const struct rt_userns *u);
void usermap_from_json(const json_t *j, struct rt_userns *u);

/* shim_pool.c: shims started ahead of containers (see the file's comment) */
struct pool_entry;
void pool_init(struct daemon *d, size_t want);
/* A ready entry (taken out of the pool), or NULL: start the ordinary way. */
struct pool_entry *pool_take(struct daemon *d);
const char *pool_entry_cgroup(const struct pool_entry *e);
/*
 * Move the entry's socket to target (the container's), connect and send the
 * claim line; consumes e. *fd: where the shim's ready line will come.
 */
int pool_claim(struct pool_entry *e, const char *target, const char *claim, int *fd,
	       struct clbsd_err *err);
/* Give up a taken entry unused (its shim discards itself). */
void pool_drop(struct pool_entry *e);
/* A start was answered: refill what it took. */
void pool_started(struct daemon *d);
/* Shutdown: discard every entry and wait (briefly) for their shims. */
void pool_release(struct daemon *d);

/*
 * A stream of progress lines to a client (a build's newline-delimited JSON),
 * written on the loop thread. api/ adapts it to a chunked HTTP reply; for a
 * client that went away, write does nothing and pending says 0.
 */
struct progress_sink {
	/* Bytes written that the client has not taken yet. */
	size_t (*pending)(void *ctx);
	void (*write)(void *ctx, const char *data, size_t n);
	/* The last call: the stream is over and ctx is not used again. */
	void (*end)(void *ctx);
	void *ctx;
};
/* What a sink may hold for one slow reader before a build drops RUN output. */
#define PROGRESS_HIGH_WATER (1 << 20)

/*
 * build_run.c: a build of body's {"context", "file", "tag", "args",
 * "network", "no_cache"}. 0: started, its lines go to sink (sink->end when
 * it is over; the caller begins its reply now); < 0: nothing started and
 * sink is not used.
 */
int build_start(struct daemon *d, json_t *body, const struct progress_sink *sink,
		struct clbsd_err *err);
/* A build's end, on the loop: img is the image it made, or err says why none. */
typedef void (*build_done_fn)(struct daemon *d, const struct image *img,
			      const struct clbsd_err *err, void *arg);
/* build_start, then fn (after sink->end when there is a sink). */
int build_start_then(struct daemon *d, json_t *body, const struct progress_sink *sink,
		     build_done_fn fn, void *arg, struct clbsd_err *err);
/* Build the configuration's (image NAME :build ...) and tag its :from images (each pass). */
void images_sync(struct daemon *d);
/* At start: kill the RUN containers and remove the steps a killed daemon's builds left. */
void build_cleanup_stale(struct daemon *d);

/* ingress.c: routes from the configuration, rendered into the routing container */
/*
 * The routing container (a name the configuration reserves) and its image,
 * which the daemon makes from this host's nginx. Both are derived from the
 * routes, not part of the homelab: a host export leaves them out and the
 * importing daemon makes its own (host.c tells the CLI their names).
 */
#define INGRESS_CTR_NAME  "ingress"
#define INGRESS_CTR_IMAGE "clbsd-ingress:latest"
struct dingress;
void ingress_init(struct daemon *d);
void ingress_release(struct daemon *d);
/* Re-render and apply soon (coalesced). */
void ingress_trigger(struct daemon *d);
/* Append doctor lines (json strings to checks) about container name's route; *bad counts failures. */
void ingress_doctor(struct daemon *d, const char *name, json_t *checks, int *bad);

/*
 * ctr_update.c: change c's limits in place (the running container's cgroup,
 * on a worker; a stopped one's record). All or nothing: when the kernel
 * refuses them fn gets its answer and c keeps its old limits. hash and
 * text (NULL: unchanged) are the declared spec a managed c matches once it
 * has them. Fails at once (nothing changed) on a bad CPU count or while c
 * starts; otherwise fn is called.
 */
int ctr_update_limits(struct container *c, const struct rt_limits *lim, const char *hash,
		      const char *text, ctr_done_fn fn, void *arg, struct clbsd_err *err);

/* undo.c: containers set aside before a recreate, and `clbsd undo` */
void undo_init(struct daemon *d);
void undo_release(struct daemon *d);
bool undo_image_in_use(struct daemon *d, const char *image_id);
/* Stop c and set it aside instead of destroying it (its removal's fn, arg). */
void ctr_set_aside(struct container *c, ctr_done_fn fn, void *arg);
/* Record that c was set aside (called by the removal when it is done). */
void undo_recorded(struct container *c);
/*
 * Replace container `name` with what was set aside at its last recreate,
 * and start it when it ran then. fn gets the restored container.
 */
int ctr_undo(struct daemon *d, const char *name, ctr_done_fn fn, void *arg, struct clbsd_err *err);
/* The aside of `name` as JSON, or NULL. */
json_t *undo_info(struct daemon *d, const char *name);

/* net.c: networks and container plumbing (see the file's comment) */
struct dnet;
typedef void (*dnet_done_fn)(struct container *c, const struct clbsd_err *err, void *arg);
typedef void (*dnet_doctor_fn)(json_t *result, const struct clbsd_err *err, void *arg);
int dnet_init(struct daemon *d, struct clbsd_err *err);
void dnet_release_daemon(struct daemon *d);
/* The configuration changed (or was first loaded): networks up, down, repaired. */
void dnet_sync(struct daemon *d);
/* Make the host match every network and running container (on the queue). */
void dnet_repair(struct daemon *d);
/* A spec's :network, :ip, :aliases, :dns and :publish, checked against the host's networks. */
int dnet_spec_net(struct daemon *d, const struct ctr_spec *s, struct ctr_net *out,
		  struct clbsd_err *err);
/* Addresses for a new container (kept in the IPAM pools); checks port clashes. */
int dnet_assign(struct daemon *d, struct container *c, struct clbsd_err *err);
/* The container is on one or more networks (needs an attach at start). */
bool ctr_net_attached(const struct container *c);
/* Before a start: its /etc/hosts and resolv.conf in its directory. */
int dnet_prepare_files(struct container *c, struct clbsd_err *err);
/* Add host_network and the /etc/hosts and resolv.conf mounts to a spec. */
void dnet_spec(const struct container *c, struct rt_spec *spec);
/*
 * Plumb the held init pid into its networks; fn on the loop when done. A
 * docker container's pid 0 (before its start): its bridges and network
 * rules only.
 */
void dnet_attach(struct container *c, pid_t pid, dnet_done_fn fn, void *arg);
/* Its run ended: drop its veths and port rules. */
void dnet_detach(struct container *c);
void dnet_detach_name(struct daemon *d, const char *name);
/* It is being removed: detach, give its addresses back, tell its peers. */
void dnet_forget(struct container *c);
/* Peers sharing a network with c get a fresh /etc/hosts. */
void dnet_peers_changed(struct daemon *d, const struct container *c);
int dnet_doctor(struct container *c, dnet_doctor_fn fn, void *arg, struct clbsd_err *err);
/* fn (with c NULL) once every driver call queued so far is done. */
void dnet_after_queue(struct daemon *d, dnet_done_fn fn, void *arg);
/* Whether a detach of the container of that name is queued or running. */
bool dnet_detach_pending(const struct daemon *d, const char *name);
/*
 * A docker container's endpoints as docker_net.c asks dockerd for them:
 * [{network, bridge, subnet, gateway, internal, ip, aliases, [subnet6,
 * gateway6, ip6]}], in :network order.
 */
json_t *dnet_endpoints_json(const struct container *c);
json_t *dnet_list(struct daemon *d);
json_t *dnet_inspect(struct daemon *d, const char *name, struct clbsd_err *err);
int dnet_create(struct daemon *d, json_t *req, json_t **out, struct clbsd_err *err);
int dnet_remove(struct daemon *d, const char *name, struct clbsd_err *err);
json_t *ctr_net_to_json(const struct ctr_net *cn);
int ctr_net_from_json(const json_t *j, struct ctr_net *cn);
void ctr_net_release(struct ctr_net *cn);

/* lifecycle.c: posix_spawn the shim with argv, its ready pipe (read end, non-blocking) in *ready_fd. */
int daemon_spawn_shim(struct daemon *d, const char *const *argv, int *ready_fd, pid_t *pid,
		      struct clbsd_err *err);
/*
 * argv (NULL-terminated) and what every shim is started with on top: the
 * compiled syscall filter, which it finds at fd 4. Caller frees the array.
 */
const char **daemon_shim_argv(struct daemon *d, const char *const *argv);
/*
 * shimexe.c: a dup (close-on-exec, >= 5) of the sealed memfd copy of
 * d->shim_path that every shim is executed from (never the file itself:
 * CVE-2019-5736); the copy is renewed when the file changes. Thread-safe.
 * Run it as "/proc/self/fd/N"; the caller closes the fd.
 */
int daemon_shim_exe(struct daemon *d, struct clbsd_err *err);
/* daemon_spawn_shim() with fd3 (the caller's) as the shim's fd 3, and no pipe. */
int daemon_spawn_shim_fd(struct daemon *d, const char *const *argv, int fd3, pid_t *pid,
			 struct clbsd_err *err);

/* ctr_record.c: the record, persistence, creation, removal */
struct container *ctr_find(struct daemon *d, const char *ref);
/*
 * Make a container from a spec (the API's decoded request, the reconciler's
 * declaration, as they are): named volumes made or reused, addresses,
 * storage, container.json. Borrowed: the spec is not kept.
 */
int ctr_create(struct daemon *d, const struct ctr_spec *spec, struct container **out,
	       struct clbsd_err *err);
/* ctr_create() for the reconciler: the container is managed, made from this spec. */
int ctr_create_managed(struct daemon *d, const struct ctr_spec *spec, const char *spec_hash,
		       const char *spec_text, struct container **out, struct clbsd_err *err);
/*
 * ctr_create_managed() of a container whose storage an import received
 * under <root>/containers/<name> (`mode`: the archive record's storage
 * mode), into the declaration `spec`: the record is the declaration's, as
 * the reconciler would make it; the archive's run-time files are dropped.
 * Native and docker. On failure the received storage is left to the caller.
 */
int ctr_create_declared_on(struct daemon *d, const struct ctr_spec *spec, const char *spec_hash,
			   const char *spec_text, const char *mode, struct container **out,
			   struct clbsd_err *err);
/*
 * The validation of POST /v1/containers for req (its "name" set; decoded
 * with ctr_spec_from_json), nothing made: NULL and err as a create would answer, or {"config", "network",
 * "image_id"} as the created container's record would hold them. An
 * import checks an archive's record with it (transfer.c).
 */
json_t *ctr_check_create(struct daemon *d, json_t *req, struct clbsd_err *err);
/*
 * A docker container from a create request whose kind is docker and which
 * names it, by the checks of POST /v1/containers: DOCKER_MAKE makes its
 * storage, DOCKER_ON finds it made already under <root>/containers/<name>
 * (a clone, an import: the volumes too), DOCKER_CHECK makes nothing and
 * only answers (out is not set).
 */
enum docker_make { DOCKER_MAKE, DOCKER_ON, DOCKER_CHECK };
int ctr_docker_create(struct daemon *d, const struct ctr_spec *spec, enum docker_make how,
		      struct container **out, struct clbsd_err *err);
/*
 * docker_create.c: ctr_docker_create's work on c (its name set), also
 * ctr_create_managed's for a declared docker container (spec_hash and
 * spec_text set); c is taken, freed on failure.
 */
int ctr_docker_make(struct daemon *d, const struct ctr_spec *spec, struct container *c,
		    const char *spec_hash, const char *spec_text, enum docker_make how,
		    struct container **out, struct clbsd_err *err);
/* A new container's paths (dir, rdir, shim socket) and, with spec_hash, its declaration. */
void ctr_place(struct container *c, const char *spec_hash, const char *spec_text);
/* 0, or CONFLICT when c->dir is there already, belonging to no known container. */
int ctr_dir_unclaimed(const struct container *c, struct clbsd_err *err);

/* ctr_config.c: the checks of a create and the config they resolve into */
/* An INVALID error (the caller's input) with this message; its -code. */
int ctr_bad(struct clbsd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when name is a DNS label no container has; INVALID or CONFLICT saying which. */
int ctr_check_name(struct daemon *d, const char *name, struct clbsd_err *err);
/*
 * Everything POST /v1/containers checks once c->name is chosen, resolved
 * into c->cfg and c->net: *img_out is the image, props the :storage
 * properties (*props_given whether any). make: named volumes are made
 * (a create), or only checked (an import's record).
 */
int ctr_check_spec(struct daemon *d, const struct ctr_spec *s, struct container *c, bool make,
		   struct image **img_out, struct storage_props *props, bool *props_given,
		   struct clbsd_err *err);
/* The spec's volumes as mounts into cfg (named ones made when make). */
int ctr_volumes_of(struct daemon *d, const struct ctr_spec *s, const char *name, bool make,
		   struct ctr_config *cfg, struct clbsd_err *err);
/* Run-time state (state.json, no fsync). */
int ctr_save(struct container *c, struct clbsd_err *err);
/*
 * A run-time file of c: its path under c->rdir, whose directory is made
 * when missing. ctr_rfile_read() reads it (0, or -errno), falling back to
 * c->dir, where older versions kept these files: a shim they started
 * still writes its record there.
 */
char *ctr_rfile(struct container *c, const char *name);
int ctr_rfile_read(const struct container *c, const char *name, char **text);
/* What the container is (container.json, durable). */
int ctr_save_config(struct container *c, struct clbsd_err *err);
int ctr_load_all(struct daemon *d, struct clbsd_err *err);
json_t *ctr_to_json(const struct container *c);
/* The record's "config" member for a resolved config. */
json_t *ctr_config_json(const struct ctr_config *cfg);
/*
 * The members of that record, in order, ending with a NULL name: each makes
 * its value (NULL: the container has no such member). parts: those of an
 * object member that can be made alone ("config" -> "limits"), or NULL.
 * A docker container's record has more than these (docker_ctr_json).
 */
struct ctr_member {
	const char *name;
	json_t *(*get)(const struct container *c);
	const struct ctr_member *parts;
};
extern const struct ctr_member ctr_members[];
const struct ctr_member *ctr_member_find(const struct ctr_member *t, const char *name);
const char *ctr_state_name(enum ctr_state s);
bool ctr_image_in_use(const char *image_id, void *daemon);
void ctr_free(struct container *c);
/* Drop the daemon's view of a container (watch, timers, waiters) and free it. */
void ctr_forget(struct container *c);
/* Fill a runtime spec for the container (caller releases). */
int ctr_runtime_spec(struct container *c, struct rt_spec *spec, struct clbsd_err *err);
/* The container's cgroup path below each hierarchy (caller frees). */
char *ctr_cgroup(const struct container *c);
/*
 * Where its numbers are read (stats, metrics): ctr_cgroup's, or for a
 * running docker container the one dockerd made (caller frees).
 */
char *ctr_stats_cgroup(const struct container *c);
/* Set "K=V" in an environment list, replacing an earlier K. */
void ctr_env_set(struct strv *env, const char *kv);
/* The id (and, for passwd, the group) of `name` in passwd or group text; -ENOENT when absent. */
int ctr_lookup_db(const char *text, const char *name, uint32_t *id, uint32_t *gid);
/* Largest /etc/passwd or /etc/group the daemon reads from a container or an image. */
#define CTR_DB_MAX (1u << 20)
/*
 * Read `rel` from the first of the trees `roots` (NULL entries skipped) that
 * has it, resolved inside that tree with fs_read_in_rootdir() (a regular
 * file of at most CTR_DB_MAX bytes). Only "not there" moves on to the next.
 */
int ctr_read_tree_file(const char *const *roots, size_t n, const char *rel, char **text,
		       struct clbsd_err *err);
/* Resolve "UID[:GID]" or a passwd name against the container's file tree. */
int ctr_resolve_user(struct daemon *d, const char *image_id, const char *ctr_dir, const char *user,
		     uint32_t *uid, uint32_t *gid, struct clbsd_err *err);
/* Remove everything of a stopped container (storage, cgroup, files, state). */
int ctr_destroy(struct container *c, struct clbsd_err *err);
/* ctr_destroy() answers this when the files must go on a worker (ctr_destroy_files). */
#define CTR_DESTROY_SLOW 1
int ctr_destroy_files(struct container *c, struct clbsd_err *err);

/* lifecycle.c: start, watch, exit, stop, restart policy, adoption */
/*
 * Start. With hold the init waits for an attach with release (or 10 s);
 * a held start that took a pool shim is answered as soon as the shim owns
 * the container's socket, before the init is ready: a failure after that
 * reaches the attach, and start_error / ctr_on_started().
 */
void ctr_start(struct container *c, bool hold, ctr_done_fn fn, void *arg);
/* snapshot.c: snapshots, rollback, clones (on a worker; fn answers; see the file). */
int ctr_snapshot(struct container *c, const char *label, ctr_done_fn fn, void *arg,
		 struct clbsd_err *err);
int ctr_snapshot_destroy(struct container *c, const char *label, ctr_done_fn fn, void *arg,
			 struct clbsd_err *err);
json_t *ctr_snapshot_list(struct container *c, struct clbsd_err *err);
int ctr_rollback(struct container *c, const char *label, bool force, int stop_s, ctr_done_fn fn,
		 void *arg, struct clbsd_err *err);
/* fn gets the new container. */
int ctr_clone(struct container *c, const char *label, const char *dst, ctr_done_fn fn, void *arg,
	      struct clbsd_err *err);
/* Take a scheduled snapshot now and keep the newest `keep` scheduled ones (core/snapsched.h). */
void ctr_snapshot_scheduled(struct container *c, int keep);

/*
 * host.c: what clbsd host export needs of the daemon as a whole.
 * host_describe(): versions, storage driver, and where the configuration,
 * the live layer, the Lisp init file and the ingress CA live, and the names
 * of the routing container and its image ("routing"; a new object).
 * host_snapshot(): every container's state, rootfs and volumes under one
 * label, at one moment (the driver's snapshot_all; UNAVAIL on dir), on a
 * worker; fn gets {"label","containers":[...],"docker"?} or the error.
 */
typedef void (*host_done_fn)(json_t *result, const struct clbsd_err *err, void *arg);
json_t *host_describe(struct daemon *d);
int host_snapshot(struct daemon *d, const char *label, host_done_fn fn, void *arg,
		  struct clbsd_err *err);

/*
 * integrity_run.c: manifests of a native container's files (see the file's
 * comment). fn gets the report (integrity_report_json's, with "files",
 * "manifest", "excluded", "updated"; borrowed) or the error, on the loop.
 */
typedef void (*ctr_integrity_fn)(json_t *report, const struct clbsd_err *err, void *arg);
/*
 * Compare c's files with its manifest (update: then record them as the
 * new one; also when there is none yet). 0: fn comes later; < 0: refused
 * now (a docker container: UNAVAIL; a check running: CONFLICT).
 */
int ctr_integrity_check(struct container *c, bool update, bool scheduled, ctr_integrity_fn fn,
			void *arg, struct clbsd_err *err);
/* A check of :integrity's (or AUDITCFG's) schedule; one refused is an integrity.skipped event. */
void ctr_integrity_scheduled(struct container *c);
/*
 * AUDITCFG's default schedule: c's image's AUDITCFG has a file class (fc,
 * fd, fw, fm) and c does not set :integrity itself. Such a container is
 * checked when it starts and every AUDIT_INTEGRITY_EVERY_NS
 * (ctr_integrity_audit_tick, from hook_run.c's timer).
 */
#define AUDIT_INTEGRITY_EVERY_NS (3600ll * 1000000000ll)
bool ctr_integrity_by_audit(struct container *c);
void ctr_integrity_audit_tick(struct daemon *d);
/* A new native container's manifest: its image's (ctr_create calls it). */
void ctr_integrity_created(struct container *c, const struct image *img);
/*
 * The schedule of a container not made from the configuration (its create
 * request's "integrity" "every"), from create or load until ctr_free
 * (ctr_integrity_release). A declared one's is hook_run.c's timers'.
 */
void ctr_integrity_arm(struct container *c);
void ctr_integrity_release(struct container *c);
/*
 * The paths every check of c leaves out (*exclude: clbsd's mount points,
 * the volumes', the devices', the image's VOLUME paths, :integrity
 * :exclude) and those it checks nevertheless (*include: :integrity
 * :include), from the configuration for a declared container and from
 * its create request otherwise. Both NULL-terminated, never NULL (strv_free).
 */
void ctr_integrity_paths(struct container *c, char ***exclude, char ***include);
/*
 * ctr_record.c: the image's VOLUME paths (docs/cblockfile.md), clean,
 * that no volume of cfg is at or above (cfg NULL: all of them). A native
 * container's runtime makes them as directories at each start; every
 * integrity check leaves them out. NULL when there are none.
 */
char **image_volume_dirs(const struct image *img, const struct ctr_config *cfg);
/*
 * On a worker: a clone's manifest is its source's (its baseline, not the
 * files as they are now). Nothing when the source has none; a failure is
 * logged, the clone works without.
 */
void ctr_integrity_copy(const char *src_dir, const char *dst_dir);
/* On a worker: the manifest of the image being staged at staging (its rootfs/). */
int image_integrity_record(const char *staging, struct clbsd_err *err);

/* transfer.c: one archive file per container (see the file's comment). */
typedef void (*ctr_export_fn)(json_t *summary, const struct clbsd_err *err, void *arg);
struct export_opts {
	const char *label; /* keep the export's snapshot under this label (NULL: a temporary one) */
	const char *from;  /* only the changes since this kept snapshot (zfs) */
	bool with_image;   /* a docker container: carry its image (docker save) too */
	bool at;	   /* label names an existing snapshot: send it, neither take nor drop it */
	/*
	 * Which of the container's older snapshots travel with it (inside the
	 * stream; zfs): NULL or "none", "all", or "L1,L2" (storage.h,
	 * storage_snaps_select). Not with from.
	 */
	const char *snapshots;
};
int ctr_export(struct container *c, const char *path, const struct export_opts *o, ctr_export_fn fn,
	       void *arg, struct clbsd_err *err);
/*
 * fn gets the new container (or NULL and the error). name NULL: the exported
 * name. An incremental export updates that existing, stopped container.
 * The archive's record must pass ctr_check_create; binds of host paths and
 * host networking are refused (CLBSD_E_FORBIDDEN, listing them) unless
 * allow_host.
 */
int ctr_import(struct daemon *d, const char *path, const char *name, bool allow_host,
	       ctr_done_fn fn, void *arg, struct clbsd_err *err);
/*
 * An import into a declaration (POST /v1/import?declared=1): this host's
 * configuration declares the container (name, or the archive's name) with
 * the archive's kind and image; its record is made from that declaration
 * exactly as the reconciler makes it (managed, the declaration's spec
 * hash), and only the files, state, volumes and snapshots come from the
 * archive. The container is left created and counts as settled for the
 * reconciler (not started by it until the daemon starts again); the caller
 * starts it. Refused, saying why, when the name is not declared, the kinds
 * differ, or the archive's image is not the declared one. An incremental
 * archive updates the existing declared container as ctr_import() does.
 */
int ctr_import_declared(struct daemon *d, const char *path, const char *name, ctr_done_fn fn,
			void *arg, struct clbsd_err *err);
/* What POST /v1/import?declared=1 may add to ctr_import_declared(). */
struct import_decl_opts {
	/*
	 * One (container NAME ...) form (as ctr_spec_print() prints it) to
	 * record in the live layer first (decl_live_declare); put back as it
	 * was when the import fails. NULL: the configuration declares it.
	 */
	const char *declaration;
	/*
	 * Provisional until ctr_import_commit(): ctr_import_abort(), or the
	 * next daemon start when neither came, removes the container and puts
	 * the live layer back (a marker under <root>/transfer/ says what).
	 */
	bool pending;
};
int ctr_import_declared_opts(struct daemon *d, const char *path, const char *name,
			     const struct import_decl_opts *o, ctr_done_fn fn, void *arg,
			     struct clbsd_err *err);
/* The provisional import of NAME is kept: its marker goes. */
int ctr_import_commit(struct daemon *d, const char *name, struct clbsd_err *err);
/*
 * The provisional import of NAME is undone: the container (running or
 * not) and its volumes are removed, then the live layer is put back as it
 * was before the import. fn gets NULL and the error, if any.
 */
int ctr_import_abort(struct daemon *d, const char *name, ctr_done_fn fn, void *arg,
		     struct clbsd_err *err);
/*
 * At start, before containers are loaded: undo every receive a stopped
 * daemon cut short (a new container's files go; an update goes back to its
 * base snapshot with the record it had), as their markers under
 * <root>/transfer/ say.
 */
void transfer_recover_receives(struct daemon *d);
/* NAME is removed: a receive marker left for it (its undo failed) goes too. */
void transfer_forget(struct daemon *d, const char *name);
/* A receive into NAME was cut short and is not undone yet: it is not loaded. */
bool transfer_receiving(const struct daemon *d, const char *name);
/* At start, once containers are adopted: abort every provisional import left. */
void transfer_abort_pending(struct daemon *d);
/*
 * At start: remove what exports cut short by the daemon's end left (their
 * temporary files and temporary snapshots), as their markers name them.
 */
void transfer_cleanup_stale(struct daemon *d);

/* decl_move.c: a declaration that moves with its container (clbsd migrate). */
/* The live file's text (*text NULL when there is none). */
int decl_live_text(struct daemon *d, char **text, struct clbsd_err *err);
/*
 * Declare NAME in the live layer with `form`, one (container NAME ...)
 * form: NAME's live forms (override, undeclare, moved, container) go. When
 * another file declares NAME, only those go, and that declaration must
 * print exactly as `form` (else CLBSD_E_CONFLICT naming the file). Checked
 * with the whole configuration before it is written; reloads after.
 * *before (free) is the live file's text before (NULL: there was none).
 */
int decl_live_declare(struct daemon *d, const char *name, const char *form, char **before,
		      struct clbsd_err *err);
/* Put the live file back as `before` (NULL: no file) and reload. */
int decl_live_restore(struct daemon *d, const char *name, const char *before,
		      struct clbsd_err *err);
/*
 * (moved NAME :to "TO" :at "NOW") in the live layer, in place of NAME's
 * live forms: NAME is not declared here any more, and a container of that
 * name is left alone. *before as for decl_live_declare().
 */
int decl_live_moved(struct daemon *d, const char *name, const char *to, char **before,
		    struct clbsd_err *err);
/* NAME's live forms go (its (moved ...) among them): a file's declaration applies again. */
int decl_live_forget(struct daemon *d, const char *name, struct clbsd_err *err);

/*
 * A container whose files were just made under <root>/containers/<name>
 * (a clone, an import) from another's record `rec`: renamed, not running,
 * unmanaged, its run-time files dropped, written and loaded. *out is it.
 */
int ctr_adopt_record(struct daemon *d, json_t *rec, const char *name, struct container **out,
		     struct clbsd_err *err);
/* New addresses for a container whose record came from elsewhere (clone, import, undo). */
void ctr_adopt_network(struct container *c);
/* "QUOTA/RESERVATION/RECORDSIZE/COMPRESSION" of a set of storage properties. */
char *ctr_storage_text(const struct storage_props *p);
/* Load <root>/containers/<name>/container.json into the daemon's list. */
int ctr_load_one(struct daemon *d, const char *name, struct clbsd_err *err);

/* Call fn once the container is not running (at once if so), or once it is removed. */
void ctr_wait(struct container *c, bool removed, ctr_done_fn fn, void *arg);
/* Call fn when the start in progress finishes (at once when none is). */
void ctr_on_started(struct container *c, ctr_done_fn fn, void *arg);
void ctr_stop(struct container *c, int timeout_s, ctr_done_fn fn, void *arg);
int ctr_kill(struct container *c, int sig, struct clbsd_err *err);
void ctr_remove(struct container *c, bool force, ctr_done_fn fn, void *arg);
void ctr_adopt(struct container *c);
bool ctr_is_active(const struct container *c);
/* Send one request line to the running container's shim; returns the reply. */
int ctr_shim_call(struct container *c, json_t *req, json_t **reply, struct clbsd_err *err);
/* Tell a list of waiters and free it. */
void waiters_fire(struct waiter **list, struct container *c, const struct clbsd_err *err);
void waiters_add(struct waiter **list, ctr_done_fn fn, void *arg);

/* exec_run.c: a command inside a running container, output collected */
struct ctr_exec_result {
	int exit_code;	     /* shell convention; 127 when it could not start */
	const char *failure; /* the stream broke before the exit (then exit_code is 0) */
	const char *out, *err;
	size_t out_len, err_len;
	bool truncated;
};
typedef void (*ctr_exec_fn)(const struct ctr_exec_result *r, void *arg);
/* The shim request for a non-interactive exec (env merged over the container's). */
json_t *ctr_exec_request(struct container *c, char *const *argv, char *const *extra_env,
			 const char *cwd, uint32_t uid, uint32_t gid);
/* Start it; fn runs on the loop when it ends (also right away when it cannot start). */
int ctr_exec_start(struct container *c, json_t *req, size_t max_output, ctr_exec_fn fn, void *arg,
		   struct clbsd_err *err);

/* work.c: blocking jobs on a thread, completion on the loop */
typedef void (*work_fn)(void *arg);
void work_submit(struct daemon *d, work_fn run, work_fn done, void *arg);
/*
 * A job nobody waits for (deleting a removed container's files): its thread
 * runs at nice 19, like the pool's preparation, so that it takes the CPU
 * only from what is idle or itself background work.
 */
void work_submit_background(struct daemon *d, work_fn run, work_fn done, void *arg);
/*
 * At exit, after the loop: waits for the background job running; one not
 * started is dropped, its done() run without its run() (so a background
 * job's done() must cope with that: it frees its argument).
 */
void work_release(struct daemon *d);

/* reconcile.c: the configuration and the reconciler */
struct conf;
struct reconcile_pass;
struct pass_waiter;
/* Load the configuration from disk; keeps the last good one on errors. */
int config_reload(struct daemon *d, struct clbsd_err *err);
/*
 * config_reload for a reason the API did not record (source: "start",
 * "sighup"): the audit log records the generation and the result. The
 * file watch ("watch") reloads only files whose content differs from the
 * last load's (conf_load_digest()), so the daemon's own writes and files
 * an apply loaded already count once.
 */
int config_reload_by(struct daemon *d, const char *source, struct clbsd_err *err);
/* Ask for a reconcile pass soon (coalesced; one pass at a time). */
void reconcile_trigger(struct daemon *d);
/* A pass whose result goes to fn when it ends (apply); dry-run computes only. */
typedef void (*pass_done_fn)(struct daemon *d, json_t *summary, void *arg);
void reconcile_now(struct daemon *d, bool dry_run, pass_done_fn fn, void *arg);
/* The plan for the configuration on disk, without applying it. */
json_t *reconcile_plan(struct daemon *d, struct clbsd_err *err);
json_t *reconcile_status(struct daemon *d);
struct live_kv;
/*
 * Record kv[0..n) as the override of declared container `name` in the
 * live layer, after checking the whole configuration with it (a refused
 * change writes nothing and names the problem), then reload; the caller
 * runs a pass. Nothing to change is success. When the change leaves only
 * the live part (:limits) of a running native container different, the
 * container takes it in place first (ctr_update_limits) and it is
 * recorded only once the kernel took it: a refusal records nothing and
 * changes nothing. fn gets the outcome (err NULL: recorded), maybe before
 * this returns.
 */
typedef void (*record_done_fn)(struct daemon *d, const struct clbsd_err *err, void *arg);
void reconcile_record_keys(struct daemon *d, const char *name, const struct live_kv *kv, size_t n,
			   record_done_fn fn, void *arg);
/*
 * A live declaration: (container NAME key value ...) in the live layer,
 * checked with the whole configuration first; then reload. The caller
 * makes sure NAME is not declared yet.
 */
int reconcile_declare(struct daemon *d, const char *name, const struct live_kv *kv, size_t n,
		      struct clbsd_err *err);
/*
 * A live removal of declared container NAME: its forms in the live layer
 * go, and (undeclare NAME) is written when a file declares it; checked
 * (nothing may depend on it) and reloaded. -ENOENT when not declared.
 */
int reconcile_undeclare(struct daemon *d, const char *name, struct clbsd_err *err);

/*
 * lisp_sup.c: the Lisp control plane, run while the configuration has
 * (host :lisp ...). lisp_sync() after every good load starts, restarts
 * (new options) or stops it; lisp_status() is its part of /v1/status
 * (null when there is none); lisp_release() stops it at shutdown.
 */
void lisp_sync(struct daemon *d);
json_t *lisp_status(struct daemon *d);
void lisp_release(struct daemon *d);
/*
 * An operator's `clbsd stop`/`start` of a declared container: record
 * :state in conf.d/90-live.conf so the reconciler honours it, and reload.
 * Does nothing for containers the configuration does not declare.
 */
int reconcile_record_state(struct daemon *d, const char *name, bool running, struct clbsd_err *err);
/* The configuration with `text` as the live file: *out, or an error saying why not. */
int reconcile_live_check(struct daemon *d, const char *name, const char *text, size_t len,
			 struct conf **out, struct clbsd_err *err);
/* Write `text` as the live file (checked), announce the change (what is taken), and reload. */
int reconcile_live_write(struct daemon *d, const char *name, const char *text, size_t len,
			 json_t *what, struct clbsd_err *err);
void reconcile_init(struct daemon *d);
void reconcile_release(struct daemon *d);

/* health_probe.c: :health checks of running declared containers */
void health_init_daemon(struct daemon *d);
/* Start the checks of running containers (after a restart re-adopted them). */
void health_resume(struct daemon *d);
void health_release_daemon(struct daemon *d);
/* "starting", "healthy", "unhealthy", or NULL when the container has no check running. */
const char *health_of(struct daemon *d, const char *name);
/* {status, failures, checks, log: [...]} or NULL. */
json_t *health_json(struct daemon *d, const char *name);
/*
 * A status ("starting", "healthy", "unhealthy") checked by someone else
 * (dockerd's run of an image's HEALTHCHECK) for running container name,
 * with the last check's exit code and output. Ignored while clbsd runs a
 * check of its own for it.
 */
void health_external(struct daemon *d, const char *name, const char *status, int code,
		     const char *out, size_t len);
/* docker_health.c: State.Health of a docker container's inspect, to health_external. */
void docker_health_apply(struct container *c, json_t *inspect);

/*
 * metrics.c: Prometheus metrics (docs/metrics.md, metrics.h). metrics_init
 * at start (the counters count from then on, whether a listener serves
 * them or not), metrics_sync after every good configuration load (starts,
 * moves or stops the (host :metrics (:listen ...)) listener; a refusal
 * such as a port in use is logged, published as metrics.failed and shown
 * by metrics_status, and stops nothing else), metrics_release at close.
 * The counting calls are cheap and run on the loop.
 */
void metrics_init(struct daemon *d);
void metrics_sync(struct daemon *d);
void metrics_release(struct daemon *d);
/* {"listen", "error"} of the listener, or JSON null when none is configured. */
json_t *metrics_status(struct daemon *d);
void metrics_pass(struct daemon *d, int64_t took_ns);
/* action: plan_op_name(); result: "ok", "failed" or "waiting". */
void metrics_action(struct daemon *d, const char *action, const char *result);
void metrics_hook(struct daemon *d, const char *event, bool failed);
/* method and route: strings that live as long as the program (the route table's). */
void metrics_api_request(struct daemon *d, const char *method, const char *route, int status);
/*
 * The hook point for more samples (the backup state): fn appends whole
 * families to b in the text format (core/prom_text.h) on every scrape, on
 * the listener's thread, so it reads only what it keeps thread-safe itself.
 */
struct buf;
typedef void metrics_source_fn(struct buf *b, void *arg);
void metrics_add_source(struct daemon *d, metrics_source_fn *fn, void *arg);

/* hook_run.c: the configuration's :on hooks on per-container actors */
void hooks_init(struct daemon *d);
/* Rebuild :every timers and :file-change watches after d->decl.conf changed. */
void hooks_sync(struct daemon *d);
void hooks_release(struct daemon *d);

/*
 * backup.c: :backup of declared containers (docs/backup.md; the file's
 * comment has the steps). backup_now runs one now (at_s: its time, the
 * label's; fn, on the loop, gets the result or the error); at most one
 * per container runs at a time (CONFLICT). backup_sync rebuilds the
 * schedule after d->decl.conf changed.
 */
typedef void (*backup_done_fn)(json_t *result, const struct clbsd_err *err, void *arg);
void backup_init(struct daemon *d);
void backup_sync(struct daemon *d);
void backup_release(struct daemon *d);
int backup_now(struct daemon *d, const char *name, int64_t at_s, backup_done_fn fn, void *arg,
	       struct clbsd_err *err);
/* CLBSD_TEST_CLOCK=1 was in the daemon's environment: the API may set a backup's time. */
bool backup_test_clock(struct daemon *d);
/*
 * The state of every container's backups, for `clbsd status`, the API and
 * metrics: [{"name", "enabled", "running", "to", "every", "keep",
 * "last_success", "last_label", "incremental", "size" (bytes),
 * "duration_ms", "last_attempt", "error", "failures", "next_run"}].
 * backup_status_of: one container's, or NULL.
 */
json_t *backup_status(struct daemon *d);
json_t *backup_status_of(struct daemon *d, const char *name);
/*
 * backup_restore.c: import `files` (a full archive, then the incrementals
 * after it, absolute paths) as container name: into its declaration when
 * it is declared here. An existing container is refused (CONFLICT) unless
 * replace: then it is stopped and set aside (undo.c) first, and put back
 * when an import fails. fn gets the restored container.
 */
int ctr_restore(struct daemon *d, const char *name, char *const *files, bool replace,
		bool allow_host, ctr_done_fn fn, void *arg, struct clbsd_err *err);

/* image_jobs.c: images in the engine (see the file's comment) */
/* dimage_fn (above): result (the caller's) is the image, or the export's summary; or err. */
/*
 * The jobs run on a worker; each returns 0 when it started (fn comes once,
 * later, on the loop) or an error, and then fn never comes.
 */
int dimage_import(struct daemon *d, const char *path, const char *name, dimage_fn fn, void *arg,
		  struct clbsd_err *err);
/* from_host: the request named host binaries (bins, taken, must then be non-empty). */
int dimage_forge(struct daemon *d, const char *name, bool from_host, char **bins, dimage_fn fn,
		 void *arg, struct clbsd_err *err);
int dimage_load(struct daemon *d, const char *path, const char *name, dimage_fn fn, void *arg,
		struct clbsd_err *err);
/* keep_created: the archive's creation time, so the id the image had where it was exported. */
int dimage_load_ex(struct daemon *d, const char *path, const char *name, bool keep_created,
		   dimage_fn fn, void *arg, struct clbsd_err *err);
int dimage_pull(struct daemon *d, const char *ref, const char *name, dimage_fn fn, void *arg,
		struct clbsd_err *err);
int dimage_export(struct daemon *d, const char *ref, const char *path, dimage_fn fn, void *arg,
		  struct clbsd_err *err);
/* Tag ref as name; *out is the image. */
int dimage_tag(struct daemon *d, const char *ref, const char *name, json_t **out,
	       struct clbsd_err *err);
/* Remove the images without a name that nothing uses: {"removed", "reclaimed"}. */
json_t *dimage_prune(struct daemon *d);
int dimage_remove(struct daemon *d, const char *ref, bool force, struct clbsd_err *err);
/* The in_use of the image store: a container uses the image, or an export reads it. */
bool dimage_busy(const char *id, void *daemon);
/*
 * A pull's progress lines as image.progress events {"ref", "status"} (the
 * CLI prints them; the last is "done: ..." or "failed: ..."). line may be
 * called from any thread; new and free on the loop (free sends what is left).
 */
struct dprogress;
struct dprogress *dprogress_new(struct daemon *d, const char *ref);
void dprogress_line(void *ctx, const char *msg);
void dprogress_free(struct dprogress *pr);

/* daemon.c: the engine's life and its shared services */
struct daemon_opts {
	const char *root, *run, *socket, *config, *shim, *busybox, *cgroup_parent;
};
/* Settings only (paths made absolute, defaults filled); nothing is touched. */
void daemon_init(struct daemon *d, const struct daemon_opts *o);
/*
 * Claim <root> and <run>, make the loop, open the runtime, storage and
 * images, load the containers and networks. The API listens after this.
 */
int daemon_open(struct daemon *d, struct clbsd_err *err);
/* With the API up: the shim pool (pool shims), adoption, the first pass. */
void daemon_start(struct daemon *d, size_t pool);
/* Run-loop hooks: read the configuration again (SIGHUP); end the loop. */
void daemon_reload(struct daemon *d);
void daemon_stop(struct daemon *d);
/* After the loop and the API's close: release everything; containers keep running. */
void daemon_close(struct daemon *d);
/* Frees what daemon_init made, for a daemon never opened (clbsdd -n). */
void daemon_init_release(struct daemon *d);

/* Remember a shim to reap when it exits; reap those that have. */
void daemon_track_child(struct daemon *d, pid_t pid);
void daemon_reap(struct daemon *d);

/* Publish an event on the bus. */
void daemon_event(struct daemon *d, const char *type, const char *container, json_t *attrs);
/*
 * Append a record to the audit log (docs/audit.md); takes fields. Never
 * blocks on the disk (audit_log.h).
 */
void daemon_audit(struct daemon *d, json_t *fields);
/* The AUDITCFG classes of c's image (core/audit_rec.h; 0: none). */
unsigned ctr_audit_classes(struct daemon *d, const struct container *c);
/* A console session the shim reports (lifecycle.c's watch): its audit record. */
void ctr_audit_console(struct container *c, const json_t *ev);

#endif
