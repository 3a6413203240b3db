/*
 * The whole configuration: the main file and conf.d read, every form
 * checked (host, image, network, container, override), the checks that
 * need all of them (duplicate names across files, :depends-on targets and
 * cycles, network references, clashing subnets and ports), and its
 * canonical printing. Containers are struct ctr_spec (core/spec.h).
 *
 * Imports: conf/ (the language) and util/.
 *
 * Invariants:
 * - Pure: the only I/O is conf_load() reading the configuration files.
 * - (override NAME :key value ...) forms amend a container declared
 *   elsewhere; they are applied while building, so the model holds the
 *   effective values and conf_print() shows no override.
 * - A struct conf exists only when the whole configuration validated; on
 *   any error the caller gets diagnostics and no model, so the last good
 *   configuration stays in force.
 * - Sizes are bytes, durations nanoseconds, both int64_t; 0 means unset
 *   where the key has no default (documented per field).
 */
#ifndef CLBSD_CORE_CONFIG_H
#define CLBSD_CORE_CONFIG_H

#include "conf/conf.h"
#include "core/spec.h"

enum conf_storage_driver { CONF_STORAGE_DIR, CONF_STORAGE_ZFS };
struct conf_host {
	struct conf_pos pos;		 /* file NULL when no (host) form was given */
	enum conf_storage_driver driver; /* default dir */
	char *pool, *root;		 /* ZFS */
	char *dir_path;			 /* DIR; NULL: the daemon's --root */
	bool network_set;		 /* :network given: containers default to bridge */
	char *bridge;			 /* default "clbsd0" */
	struct conf_cidr subnet;	 /* default 10.88.0.0/24 */
	char *subnet6;			 /* IPv6 subnet ("fd00:88::/64", normalised) or NULL */
	char **listen;			 /* default ("0.0.0.0:80") */
	char **tls_listen;		 /* NULL: none */
	char *default_domain;
	char *tls_ca;			    /* NULL: no TLS; "auto"; or a clean absolute path */
	enum ctr_userns userns;		    /* default for new containers (UNSET: host) */
	int64_t userns_start, userns_count; /* the id pool; 0: /etc/subuid or 100000000 up */
	/* :lisp: clbsdd supervises the Lisp control plane (clbsd-lisp). */
	bool lisp_set;
	char *lisp_swank;   /* "IP:PORT"; NULL: clbsd-lisp's default (127.0.0.1:4005) */
	char *lisp_init;    /* clean absolute path; NULL: clbsd-lisp's default */
	char *lisp_command; /* clean absolute path; NULL: clbsd-lisp next to clbsdd, or in PATH */
	/* :metrics: the Prometheus listener (docs/metrics.md); NULL: none, the default. */
	char *metrics_listen; /* "IP:PORT" */
	/* :docker: the Engine API endpoint of Docker containers (NULL: unix:///run/docker.sock). */
	char *docker_endpoint;
	char *docker_tls_ca, *docker_tls_cert, *docker_tls_key; /* clean absolute paths or NULL */
	/* :audit: the audit log's rotation and flushing (docs/audit.md); 0 / -1: default. */
	bool audit_set;
	int64_t audit_max_size; /* bytes per file, 0: AUDIT_MAX_SIZE_DEFAULT */
	int audit_files;	/* rotated files kept, 0: AUDIT_KEEP_DEFAULT */
	int audit_fsync;	/* 1: fdatasync each batch, 0: never, -1: default (1) */
	/* :backup: every declared container's default (its own :backup wins; nil opts out). */
	struct ctr_backup backup;
};

struct conf_image {
	char *name;
	struct conf_pos pos;
	char *build;	      /* directory, or NULL */
	char *file;	      /* with :build; default "Cblockfile" */
	struct conf_kv *args; /* sorted by key */
	size_t nargs;
	char *from;  /* image reference, or NULL */
	bool docker; /* :kind docker: built with (or loaded into) dockerd */
};

struct conf_network {
	char *name;
	struct conf_pos pos;
	struct conf_cidr subnet; /* unset: the daemon allocates one */
	char *subnet6;		 /* IPv6 subnet, normalised, or NULL */
	bool internal;
};

/*
 * (moved NAME :to "DEST" :at "TIME"): `clbsd migrate` moved the container
 * and its declaration to another daemon. NAME is not declared here (the
 * form undeclares it, as (undeclare NAME) does), and a container of that
 * name that is still here is left alone by the reconciler.
 */
struct conf_moved {
	char *name;
	char *to; /* where it went, as migrate was told */
	char *at; /* when, as written (RFC 3339), or NULL */
	struct conf_pos pos;
};

/* A validated configuration. Arrays of entries are sorted by name. */
struct conf {
	char **files; /* every file read, owning the strings positions point at */
	struct conf_host host;
	struct conf_network **networks;
	size_t nnetworks;
	struct conf_image **images;
	size_t nimages;
	struct ctr_spec **containers;
	size_t ncontainers;
	struct conf_moved *moved; /* in load order */
	size_t nmoved;
};

/* The (moved NAME ...) record of `name`, or NULL. */
const struct conf_moved *conf_moved_find(const struct conf *c, const char *name);

/* One input to conf_build(): a file name for positions and its text. */
struct conf_source {
	const char *file;
	const char *text;
	size_t len;
};

/*
 * Read, validate and normalise a configuration made of `n` sources, in
 * order (duplicates name both positions, across sources). Collects every
 * problem (up to CONF_DIAGS_MAX) in `diags` and returns -EINVAL when there
 * was any; on success *out is a new configuration (conf_free()).
 */
int conf_build(const struct conf_source *srcs, size_t n, struct conf **out,
	       struct conf_diags *diags);

/*
 * Load `main_file`, then every `confd_dir/ *.conf` in lexical (byte) order.
 * A missing main file or directory counts as empty; any other read error
 * is a diagnostic. Either may be NULL (skipped). Returns 0 with a new
 * configuration in *out, or -EINVAL with the problems in `diags`.
 */
int conf_load(const char *main_file, const char *confd_dir, struct conf **out,
	      struct conf_diags *diags);
/*
 * conf_load(), and in `digest` a SHA-256 (hex) of what it read: every
 * file's path and bytes in load order, a missing main file, and a file or
 * directory that could not be read (its errno). Written whatever the
 * result: two loads with one digest read the same files with the same
 * bytes, so they give the same result (the load is pure), and a file added
 * to or removed from conf.d changes it, however empty. The daemon's file
 * watch uses it to skip a reload of what it loaded already.
 */
int conf_load_digest(const char *main_file, const char *confd_dir, struct conf **out,
		     char digest[65], struct conf_diags *diags);
/*
 * conf_load() with `live` (live_len bytes) read in place of
 * confd_dir/90-live.conf (conf/live.h), whether that file exists or not:
 * how a live change is checked before it is written. `live` NULL is
 * conf_load().
 */
int conf_load_live(const char *main_file, const char *confd_dir, const char *live, size_t live_len,
		   struct conf **out, struct conf_diags *diags);

void conf_free(struct conf *c);

/*
 * Whether conf_load() reads a file of this name in conf.d: "*.conf", not
 * starting with '.'. Editors' temporary files (".#x.conf", "x.conf~",
 * "x.conf.swp", "4913") and fs_write_atomic()'s are not.
 */
bool conf_is_confd_name(const char *name);

/* Look up an entry by name (NULL when absent). */
const struct ctr_spec *conf_container_find(const struct conf *c, const char *name);

/*
 * The normalised configuration as canonical s-expressions: the host form,
 * then networks, images and containers, each sorted by name; keys in the
 * fixed order documented in docs/config.md; defaults explicit; sizes in the
 * largest exact binary unit, durations in the largest exact unit. Reading
 * the output back gives a configuration that prints identically.
 */
char *conf_print(const struct conf *c);

/*
 * What c asks of the host it runs on (host_access.c): one line each, with
 * its file:line:col, for commands run on the host, host paths bound or
 * read, the host's network, devices and capabilities, the Lisp control
 * plane, and where data is sent. `clbsd host import` asks for
 * --allow-host-access when there is any.
 */
struct strv;
void conf_host_access(const struct conf *c, struct strv *out);
/*
 * The host files a configuration's routes serve as their own certificates
 * and keys (:tls (:cert :key)), each once: what a host export carries.
 */
void conf_tls_files(const struct conf *c, struct strv *certs, struct strv *keys);
#endif
