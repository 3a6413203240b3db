/*
 * The container spec: what one container should be, whichever way it was
 * asked for. The configuration's (container NAME :key value ...) form
 * (spec_form.c) and the body of POST /v1/containers (spec_json.c) both
 * decode into a struct ctr_spec; the reconciler hands that struct to
 * ctr_create() as it is, and the daemon and the drivers read it from there.
 *
 * One key table (spec_keys.c) drives everything a key has: its name in the
 * form and in JSON, how it is read from either, how it is printed, whether
 * a change recreates the container (and so enters the hash), and its line
 * in the documentation (docs/config.md and clbsd.conf(5) are generated from
 * it; tests/unit/core/test_ctr_spec.c fails when they differ). A new key is
 * one row there plus the code that gives it effect.
 *
 * Imports: conf/ (the language: sexp, positions, diagnostics, checkers) and
 * util/. Nothing here touches the host.
 *
 * Invariants:
 * - A spec that left ctr_spec_read_form() or ctr_spec_from_json() is valid
 *   and normalised: defaults are explicit where the field says so, names
 *   are DNS labels, paths clean, sizes bytes, durations nanoseconds.
 * - ctr_spec_hash() is the SHA-256 of the canonical printing of the keys
 *   flagged recreate, each only when set; so a key added later changes no
 *   existing hash while it is unset, and a declaration that did not change
 *   keeps its hash across versions (the golden hashes in the unit test).
 * - The hash covers the live part too (:limits, the rows flagged in_place),
 *   so those recorded hashes stay valid; a change to the live part alone is
 *   told apart by ctr_spec_hash_live(), and a native container takes it in
 *   place (its cgroup is written) instead of being recreated.
 * - Fields the form has no key for (stdin, auto_remove, a generated name)
 *   are the API's; the reconciler leaves them at their zero value.
 */
#ifndef CLBSD_CORE_SPEC_H
#define CLBSD_CORE_SPEC_H

#include "conf/conf.h"
#include "core/backup_plan.h"

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctr_kind { CTR_KIND_NATIVE, CTR_KIND_DOCKER };
/* The one restart policy, in the order the daemon has always persisted it. */
enum ctr_restart { CTR_RESTART_NO, CTR_RESTART_ON_FAILURE, CTR_RESTART_ALWAYS };
enum ctr_desired { CTR_DESIRED_RUNNING, CTR_DESIRED_STOPPED };
enum ctr_netmode { CTR_NET_BRIDGE, CTR_NET_HOST, CTR_NET_NONE, CTR_NET_NAMED };
/* :userns: UNSET takes the host's default; AUTO is a private range of host ids. */
enum ctr_userns { CTR_USERNS_UNSET, CTR_USERNS_HOST, CTR_USERNS_AUTO };

enum ctr_vol_type { CTR_VOL_BIND, CTR_VOL_DATASET };
struct ctr_volume {
	enum ctr_vol_type type;
	char *source; /* BIND: clean absolute host path; DATASET: a name (a named volume) */
	char *path;   /* clean absolute path inside the container */
	bool ro;
	/* DATASET only; 0 / NULL = unset (the driver's default) */
	int64_t quota, reservation, recordsize;
	char *compression;
};

/* How a hook runs its command. */
enum ctr_cmd_type {
	CTR_CMD_SHELL, /* a string: /bin/sh -c on the host; argv[0] is the string */
	CTR_CMD_ARGV,  /* a list of strings: argv on the host */
	CTR_CMD_EXEC,  /* (:exec "cmd" ...): argv inside the container */
};
struct ctr_cmd {
	enum ctr_cmd_type type;
	char **argv; /* NULL-terminated, at least one element */
};

enum ctr_hook_event {
	CTR_HOOK_START,
	CTR_HOOK_EXIT,
	CTR_HOOK_OOM,
	CTR_HOOK_HEALTH,
	CTR_HOOK_FILE_CHANGE,
	CTR_HOOK_EVERY,
};
struct ctr_hook {
	enum ctr_hook_event event;
	struct ctr_cmd cmd;
	char *path;	    /* FILE_CHANGE: clean absolute path in the container */
	bool recursive;	    /* FILE_CHANGE */
	int64_t every_ns;   /* EVERY, > 0 */
	int64_t timeout_ns; /* default 60s */
	struct conf_pos pos;
};
#define CTR_HOOK_TIMEOUT_DEFAULT (60LL * 1000000000LL)

enum ctr_health_type { CTR_HEALTH_NONE, CTR_HEALTH_CMD, CTR_HEALTH_HTTP, CTR_HEALTH_TCP };
struct ctr_health {
	enum ctr_health_type type;
	char **cmd;	 /* CMD: argv inside the container */
	char *http_path; /* HTTP */
	int port;	 /* HTTP (defaults to the container's :port), TCP */
	int64_t interval_ns, timeout_ns, start_period_ns; /* 30s, 5s, 0s */
	int retries;					  /* 3 */
	bool restart_unhealthy;
};

/* Port publishing "[IP:]HOST:CTR[/tcp|/udp]" ("[IPv6]:HOST:CTR" from the API). */
struct ctr_publish {
	char *ip; /* NULL: all addresses */
	int host_port, ctr_port;
	bool udp;
};

/* A host device made available inside (:devices "HOST[:CTR][:PERMS]"). */
struct ctr_device {
	char *host;    /* clean absolute path below /dev on the host */
	char *path;    /* clean absolute path below /dev inside */
	char perms[4]; /* a non-empty subset of "rwm", in that order */
};

/*
 * :backup (docs/backup.md), on a container or host-wide as every declared
 * container's default (a container's own wins; `:backup nil` opts out).
 */
struct ctr_backup {
	bool set;		 /* given, nil included */
	bool off;		 /* :backup nil */
	int64_t every_ns;	 /* default 1d, at least 1m */
	struct backup_keep keep; /* default (:daily 7 :weekly 4 :monthly 6) */
	char *to;		 /* the destination, as written (backup_dest_parse accepts it) */
};
void ctr_backup_release(struct ctr_backup *b);
void ctr_backup_copy(struct ctr_backup *dst, const struct ctr_backup *src);
/* Read v (a plist or nil) of key `key` ("(host :backup" or ":backup") into out; false when wrong. */
struct vctx;
struct sexp;
bool ctr_backup_read(struct vctx *c, const char *key, const struct sexp *v, struct ctr_backup *out);
/* Print it as the form writes it; nothing when not set. */
struct buf;
bool ctr_backup_print(struct buf *b, const struct ctr_backup *bk);

struct ctr_spec {
	char *name;	     /* NULL from the API: the daemon makes one up */
	struct conf_pos pos; /* of the name (file NULL when not from a file) */
	enum ctr_kind kind;  /* default native */
	char *image;	     /* required */
	char **command;	     /* NULL: the image's */
	/*
	 * NULL: the image's ENTRYPOINT; else it replaces it (empty: none), and
	 * the image's CMD is not used either, as with docker --entrypoint.
	 */
	char **entrypoint;
	/*
	 * Keys unique. The form sorts them by key; the API keeps the order
	 * they were sent in, a repeated key taking the place of its first.
	 */
	struct conf_kv *env;
	size_t nenv;
	char *workdir;	/* NULL: the image's */
	char *user;	/* NULL: the image's */
	char *hostname; /* default: the container's name (NULL only while the name is unknown) */
	bool tty;
	bool stdin_open;	    /* API only: keep stdin open */
	bool auto_remove;	    /* API only: remove it when it exits (--rm) */
	int stop_signal;	    /* the signal `stop` sends first; 0: SIGTERM */
	struct ctr_volume *volumes; /* in declaration order */
	size_t nvolumes;
	int64_t memory; /* bytes, 0 = unlimited */
	double cpus;	/* 0 = unlimited */
	int64_t pids;	/* 0 = unlimited */
	enum ctr_restart restart;
	int restart_max;	      /* ON_FAILURE: 0 = no limit */
	char **depends_on;	      /* sorted, unique (never NULL once read from a form) */
	struct conf_pos *depends_pos; /* position of each entry */
	struct ctr_health health;
	struct ctr_hook *hooks; /* in declaration order */
	size_t nhooks;
	enum ctr_desired state;
	char **domains;		  /* NULL: none */
	int port;		  /* 0: none */
	char *path;		  /* URL path, default "/" */
	enum ctr_netmode netmode; /* default: bridge with a host :network, else none */
	bool netmode_given;	  /* false: the daemon's default network */
	char **networks;	  /* NAMED: the networks' names, in order */
	char *ip;		  /* pinned address on the first network */
	char **aliases;		  /* the form sorts them; the API keeps its order */
	char **dns;
	struct ctr_publish *publish;
	size_t npublish;
	/* The container's own dataset (zfs); 0 / NULL = unset. */
	int64_t storage_quota, storage_reservation, storage_recordsize;
	char *storage_compression;
	int64_t snap_every_ns; /* 0: no scheduled snapshots */
	/*
	 * :integrity: checks of the root file system against its manifest.
	 * Set when the key is given (even empty: the defaults apply to
	 * `clbsd verify` without it too).
	 */
	bool integrity_set;
	int64_t integrity_every_ns; /* 0: no scheduled checks */
	char **integrity_exclude;   /* clean absolute paths, sorted, unique; NULL: none */
	/* Checked although a default or an :exclude leaves them out; the same form. */
	char **integrity_include;
	struct ctr_cmd integrity_on_drift; /* argv NULL: none */
	int snap_keep;
	bool snapshot_before_change;
	struct ctr_backup backup;
	bool ingress_websocket;
	int64_t ingress_max_body; /* 0: nginx's default */
	char *tls_cert, *tls_key;
	enum ctr_userns userns; /* UNSET: the host's :userns */
	uint32_t userns_prefer; /* API (an import): the id range to keep when free; 0: none */
	/* Labels, sorted by key, unique: metadata only (Docker labels for docker ones). */
	struct conf_kv *labels;
	size_t nlabels;
	/* Capability names (ctr_cap_parse's canonical form), sorted, unique; NULL: none. */
	char **cap_add, **cap_drop;
	/* Namespaced sysctls, sorted by key, unique; written at start inside. */
	struct conf_kv *sysctls;
	size_t nsysctls;
	struct ctr_device *devices; /* in declaration order, unique container paths */
	size_t ndevices;
};

void ctr_spec_free(struct ctr_spec *s);
/* "IP:HOST:CTR/proto" ("[IP]:..." for IPv6): what :publish prints and the API shows. */
char *ctr_publish_str(const struct ctr_publish *p);

/* ---- the form (spec_form.c) ---- */

struct vctx;
struct sexp;
/*
 * Read (container NAME :key value ...) into a new spec, taking `name`.
 * Every problem goes to the context's diagnostics with its file:line:col;
 * NULL when there was one. Cross-container checks are core/config.c's.
 */
struct ctr_spec *ctr_spec_read_form(struct vctx *c, const struct sexp *form,
				    const struct sexp *name_node, char *name);

/* ---- printing, hash, diff (spec_print.c) ---- */

/* The form, canonically: keys in the table's order, defaults explicit. */
char *ctr_spec_print(const struct ctr_spec *s);
/* The value of form key `key` (":env") as the form prints it; NULL when unset. */
char *ctr_spec_print_key(const struct ctr_spec *s, const char *key);
/* SHA-256 (64 hex chars + NUL) of the recreate keys' printing. */
void ctr_spec_hash(const struct ctr_spec *s, char out[65]);

/*
 * The live part of a spec: what a running native container takes in place
 * (its cgroup's limits), without a recreate. 0 = unlimited, as in the spec.
 */
struct ctr_live {
	int64_t memory; /* bytes */
	double cpus;
	int64_t pids;
};
void ctr_spec_live(const struct ctr_spec *s, struct ctr_live *out);
bool ctr_live_equal(const struct ctr_live *a, const struct ctr_live *b);
/*
 * The hash s would have with `live` as its live part. For a container made
 * with hash H whose live part is now L (changed in place since), a new
 * spec S needs a recreate iff ctr_spec_hash_live(S, L) != H; when that
 * matches but ctr_spec_hash(S) does not, only the live part changed.
 */
void ctr_spec_hash_live(const struct ctr_spec *s, const struct ctr_live *live, char out[65]);

struct ctr_spec_change {
	const char *key; /* ":env", static */
	bool recreate;	 /* true: needs a recreate; false: applies live */
	bool in_place;	 /* the live part (:limits): written to the container in place */
};
/*
 * The keys that differ between two specs of a container (either may be
 * NULL: every key it sets counts as changed), in canonical key order.
 * Returns the count; *out (free()) holds them, or NULL when nothing
 * changed. Recreate is needed iff any change has .recreate set, which is
 * also iff the hashes differ once the live part is left out
 * (ctr_spec_hash_live() with either spec's live part).
 */
size_t ctr_spec_diff(const struct ctr_spec *a, const struct ctr_spec *b,
		     struct ctr_spec_change **out);

/* ---- JSON (spec_json.c): the body of POST /v1/containers ---- */

struct json_t;
/*
 * Decode a create request. Every key must be one the table gives a JSON
 * name (a mistyped key is an error naming it, on every path); values are
 * checked as the API always has. Returns 0 with a new spec in *out, or a
 * negative errno with err (CLBSD_E_INVALID) saying which key and why.
 */
int ctr_spec_from_json(struct json_t *req, struct ctr_spec **out, struct clbsd_err *err);
struct live_kv;
/*
 * Decode the body of PATCH /v1/containers/NAME: keys to change, by their
 * JSON name (the create request's; "memory", "cpus" and "pids" are the
 * form's :limits, completed from `base`, the declared spec) or, for a key
 * only the configuration has, its form name with '_' for '-' ("domain",
 * "port", "health", "depends_on"), the value as the configuration writes
 * it: a string (a bare lowercase word is a symbol, one starting with '('
 * a form), a number, a boolean, or an array of those. Returns 0 with
 * *out (n pairs in table order; free each .value, then the array) to
 * record as an override, the values printed by the key table's printer,
 * or a negative errno with err naming the key. Checking the values
 * against the rest of the configuration is the caller's (conf_load_live).
 */
int ctr_spec_patch_json(struct json_t *body, const struct ctr_spec *base, struct live_kv **out,
			size_t *n, struct clbsd_err *err);
/*
 * The limits of a PATCH body ("memory", "cpus", "pids", as the create
 * request takes them; null: no limit) over *live, which is changed only
 * on success. Any other key is an error naming it.
 */
int ctr_spec_limits_json(struct json_t *body, struct ctr_live *live, struct clbsd_err *err);
/* The spec as a create request that decodes to an equal spec (API keys only). */
struct json_t *ctr_spec_to_json(const struct ctr_spec *s);

/* ---- values shared by both readers (spec.c) ---- */

/*
 * The checks across keys that need nothing but the spec: --rm with a
 * restart policy; published ports, a pinned address or aliases on the host
 * network or none. (The form reports the same with positions; the daemon
 * checks what needs the host: the image, the networks, the CPU count.)
 */
int ctr_spec_check(const struct ctr_spec *s, struct clbsd_err *err);

/*
 * A signal by name or number: "SIGTERM", "TERM", "term", 15. 0 with *out
 * set, or -EINVAL. Signals 1-64 (SIGKILL and SIGSTOP included: a
 * container may want to be killed outright).
 */
int ctr_signal_parse(const char *s, int *out);
/* "SIGTERM" for 15, "SIGRTMIN+3" for a real-time one; static or in buf (16 bytes). */
const char *ctr_signal_name(int sig, char buf[16]);
/* A :user value: "UID[:GID]" or "name[:group]" with POSIX portable names. */
bool ctr_user_ok(const char *s);
/* "no", "on-failure", "always". */
const char *ctr_restart_name(enum ctr_restart r);
/* "no", "always", "on-failure" or "on-failure:N" (N 0-1000000). */
int ctr_restart_parse(const char *s, enum ctr_restart *r, int *max);
/* A path both :integrity :exclude and :include name (borrowed), or NULL. */
const char *ctr_integrity_both(const struct ctr_spec *s);
/* A zfs compression value: on, off, lz4, zstd, zstd-N, gzip, gzip-N, zle, lzjb. */
bool ctr_compression_ok(const char *s);

/* ---- capabilities, sysctls, devices (spec_sec.c) ---- */

/*
 * A capability name, any case, with or without "CAP_", or "all": 0 with
 * *out the canonical name ("net_admin", "all"; free()), or -EINVAL.
 */
int ctr_cap_parse(const char *s, char **out);
/* The Linux capability number of a canonical name; -1 for "all" or unknown. */
int ctr_cap_number(const char *canon);
/* Docker's default set, and every capability clbsd knows, as masks of 1 << number. */
uint64_t ctr_caps_default(void);
uint64_t ctr_caps_all(void);
/*
 * The set a container gets, by Docker's rules: add "all" is everything but
 * the drops; drop "all" is only the adds; else the default less the drops
 * plus the adds (an add wins over a drop of the same name).
 */
uint64_t ctr_caps_mask(char *const *add, char *const *drop);
/*
 * Whether key=value may be set in a container: a sysctl of a namespace the
 * container has of its own (net.*, the ipc ones, kernel.domainname,
 * fs.mqueue.*), as runc validates. false with why (a sentence) otherwise.
 */
bool ctr_sysctl_ok(const char *key, const char *value, char *why, size_t n);
/* A label: a key of 1-255 printable characters without spaces or '=', a value without control characters. */
bool ctr_label_ok(const char *key, const char *value, char *why, size_t n);
/* Whether any of the sysctls is net.* (so the container needs its own network namespace). */
bool ctr_sysctls_need_netns(const struct conf_kv *v, size_t n);
/*
 * "HOST", "HOST:CTR", "HOST:PERMS" or "HOST:CTR:PERMS" (docker --device):
 * 0 with *out filled (ctr_device_release()), or -EINVAL with why.
 */
int ctr_device_parse(const char *s, struct ctr_device *out, char *why, size_t n);
void ctr_device_release(struct ctr_device *d);
/* "HOST:CTR:PERMS", what :devices prints. */
char *ctr_device_str(const struct ctr_device *d);

/* ---- the key table, as documentation (spec_keys.c) ---- */

/* The form's key names without ':', NULL-terminated, and each one's table row. */
const char *const *ctr_form_names(const size_t **rows);

/* docs/config.md's key list (between its markers) and clbsd.conf(5)'s. */
char *ctr_spec_keys_markdown(void);
char *ctr_spec_keys_man(void);

#endif
