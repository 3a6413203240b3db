/*
 * Runtime driver interface: how a container's init and exec'd processes are
 * created, isolated, limited, signalled and measured. The core and the shim
 * speak only this interface; src/runtime/linux/ implements it with namespaces
 * and cgroups (FreeBSD jails will sit behind the same table).
 *
 * A runtime spec (struct rt_spec) is fully resolved: the daemon has merged the
 * image config with the container's settings, resolved the user, prepared the
 * storage, and chosen the cgroup path. The runtime never consults the image
 * store or the daemon's state.
 */
#ifndef CLBSD_RUNTIME_DRIVER_H
#define CLBSD_RUNTIME_DRIVER_H

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A bind mount from the host into the container. */
struct rt_mount {
	char *source; /* absolute host path */
	char *dest;   /* absolute path inside the container (clean, no "..") */
	bool readonly;
	/*
	 * With a user namespace: an idmapped mount (ids on disk are the ids
	 * inside: for clbsd's own storage, named volumes). Otherwise a host
	 * path is bound as it is: its files keep their host owners, shifted
	 * out of the container's reach (host root's are nobody's inside).
	 */
	bool idmap;
};

/*
 * The root file system as the storage driver prepared it. The runtime mounts
 * it inside the container's own mount namespace, so nothing is left mounted on
 * the host when the container goes away.
 */
struct rt_rootfs {
	char *mode;   /* "overlay" or "bind" */
	char *lower;  /* overlay: the image rootfs; bind: the rootfs directory */
	char *upper;  /* overlay only: per-container upper dir */
	char *work;   /* overlay only: per-container work dir */
	char *target; /* an existing empty directory used as the mount point */
	bool readonly;
};
/* Free the strings of *r and clear it (the struct itself is the caller's). */
void rt_rootfs_release(struct rt_rootfs *r);

/*
 * A user namespace of the container's own (count > 0; 0: the host's ids).
 * Ids 0..count-1 inside are uid..uid+count-1 (gid..gid+count-1) on the
 * host, so the container's root is an unprivileged host uid. The rootfs and
 * the mounts are idmapped mounts: files keep the ids they have on disk
 * inside the container (an image's root-owned files stay root's).
 */
struct rt_userns {
	uint32_t uid;
	uint32_t gid;
	uint32_t count;
};

/* Resource limits; 0 means unlimited. */
struct rt_limits {
	int64_t memory; /* bytes */
	int64_t pids;	/* max tasks */
	double cpus;	/* CPU quota in cores, e.g. 0.5 */
};

/* A host device node made available inside (bound at path, allowed by the cgroup). */
struct rt_device {
	char *source; /* the host's node, below /dev */
	char *path;   /* inside, below /dev */
	char type;    /* 'c' or 'b' */
	int major, minor;
	char access[4]; /* a non-empty subset of "rwm" */
};

struct rt_spec {
	char *name;	/* container name (a DNS label) */
	char *hostname; /* UTS hostname */
	char **argv;	/* NULL-terminated, argv[0] resolved against PATH in the container */
	char **env;	/* NULL-terminated "K=V" */
	char *cwd;	/* absolute path inside the container */
	uint32_t uid;
	uint32_t gid;
	bool tty;		 /* init gets a PTY as its controlling terminal */
	bool stdin_open;	 /* keep stdin open (a pipe) rather than /dev/null */
	bool host_network;	 /* share the caller's network namespace (no CLONE_NEWNET) */
	struct rt_userns userns; /* count 0: no user namespace */
	struct rt_rootfs rootfs;
	struct rt_mount *mounts;
	size_t n_mounts;
	struct rt_limits limits;
	char *cgroup; /* path below each hierarchy's root, e.g. "clbsd/web" */
	/* The capability set (1 << CAP_*): caps_set false means the default set. */
	bool caps_set;
	uint64_t caps;
	char **sysctls; /* NULL-terminated "key=value" (namespaced), written at start */
	struct rt_device *devices;
	size_t n_devices;
	/*
	 * The image's VOLUME paths no mount covers: made as directories (0755,
	 * the container's root's) where the rootfs has nothing at the path.
	 * NULL-terminated clean absolute paths; NULL: none.
	 */
	char **volume_dirs;
};

/* Parse/serialise the spec (JSON object, see rt_spec_to_json for the keys). */
int rt_spec_from_json(const char *json, struct rt_spec *out, struct clbsd_err *err);
char *rt_spec_to_json(const struct rt_spec *spec);
void rt_spec_release(struct rt_spec *spec);

/* Standard fds for a new process. For a TTY all three are the PTY slave. */
struct rt_stdio {
	int in;
	int out;
	int err;
};

/* A process to start inside a running container (exec). */
struct rt_exec {
	char **argv; /* NULL-terminated */
	char **env;  /* NULL-terminated, already merged with the container's env */
	const char *cwd;
	uint32_t uid;
	uint32_t gid;
	bool tty;
};

struct rt_stats {
	uint64_t cpu_usage_ns; /* total CPU time used */
	uint64_t memory_usage; /* bytes */
	uint64_t memory_limit; /* bytes, 0 when unlimited */
	uint64_t pids_current;
	uint64_t pids_limit; /* 0 when unlimited */
	uint64_t oom_kills;
	/*
	 * Bytes read from and written to block devices by the cgroup's tasks
	 * (v2 io.stat, v1 blkio.throttle.io_service_bytes), summed over the
	 * devices; io_known false where the cgroup has no such file (a native
	 * container on cgroup v1 is not put in a blkio cgroup).
	 */
	uint64_t io_read_bytes;
	uint64_t io_write_bytes;
	bool io_known;
};

/* What a network health probe checks (rt_ops.probe). */
enum rt_probe_kind {
	RT_PROBE_TCP,  /* healthy when a TCP connection is accepted */
	RT_PROBE_HTTP, /* healthy when "GET path" answers with a 2xx or 3xx status */
};

struct rt_probe {
	enum rt_probe_kind kind;
	int port;	    /* on 127.0.0.1 in the container's network namespace, 1..65535 */
	const char *path;   /* HTTP: starts with '/', printable ASCII without spaces */
	int64_t timeout_ns; /* for the whole probe (connect, request, status line), > 0 */
};

/*
 * An init made ahead of time (the shim's pool): already in fresh namespaces
 * and in its own cgroup without limits, waiting for a spec. It is a child of
 * the process that prepared it.
 */
struct rt_prepared {
	pid_t pid;     /* the waiting init, <= 0 when none */
	int sock;      /* the caller's end of the init's socket */
	char *cgroup;  /* its cgroup path, as in rt_spec.cgroup */
	char *scratch; /* the directory it was given; removed by discard() */
};

struct rt_ops {
	const char *name;
	/*
	 * Make the cgroup (with limits), the namespaces and the mounts, and start
	 * the container's init, which waits before exec. On success *pid is the
	 * init's pid in the caller's PID namespace and *release_fd the handle for
	 * release(). Anything made is undone on failure.
	 */
	int (*create)(const struct rt_spec *spec, const struct rt_stdio *io, pid_t *pid,
		      int *release_fd, struct clbsd_err *err);
	/*
	 * Make an init ahead of time in a new cgroup `cgroup` (no limits), in
	 * new namespaces, its mounts still following the caller's. scratch
	 * (NULL: none) is an empty directory the runtime may use for work done
	 * ahead (Linux: the staged /proc, /dev and /sys, seen only by the init).
	 * NULL when the platform has no such thing.
	 */
	int (*prepare)(const char *cgroup, const char *scratch, struct rt_prepared *out,
		       struct clbsd_err *err);
	/*
	 * create() with a prepared init: spec->cgroup must be p->cgroup. Applies
	 * the limits, hands the init the spec (read from spec_path) and stdio,
	 * runs meanwhile(arg) (when not NULL: the caller's own setup, done while
	 * the init sets up) and waits until the init is ready. On failure the
	 * prepared init is discarded; on success only p->scratch is left, for
	 * the caller's discard() once the start is done (removing it can wait
	 * for the kernel, which a start should not).
	 */
	int (*create_prepared)(struct rt_prepared *p, const char *spec_path,
			       const struct rt_spec *spec, const struct rt_stdio *io,
			       void (*meanwhile)(void *arg), void *arg, pid_t *pid, int *release_fd,
			       struct clbsd_err *err);
	/* Kill a prepared init, remove its cgroup and scratch. Idempotent. */
	void (*discard)(struct rt_prepared *p);
	/*
	 * Let the init exec its command. Returns an error (and the init exits)
	 * when exec fails, e.g. "exec /bin/nope: No such file or directory".
	 * Closes release_fd in every case.
	 */
	int (*release)(int release_fd, struct clbsd_err *err);
	/* Start a process inside the running container whose init is init_pid. */
	int (*exec)(const struct rt_spec *spec, pid_t init_pid, const struct rt_exec *ex,
		    const struct rt_stdio *io, pid_t *pid, struct clbsd_err *err);
	/* Signal every process in the container's cgroup. */
	int (*kill_all)(const struct rt_spec *spec, int sig, struct clbsd_err *err);
	/*
	 * An fd that becomes readable when the kernel OOM-kills in the container
	 * (v1: eventfd on memory.oom_control; v2: inotify on memory.events).
	 * The caller reads it to clear it and then calls stats() for the count.
	 */
	int (*oom_fd)(const struct rt_spec *spec, int *fd, struct clbsd_err *err);
	/*
	 * The container's usage. `set`: the limits the caller gave its cgroup,
	 * reported as the kernel keeps them without reading them back (a list
	 * of many containers opens fewer files); NULL reads them.
	 */
	int (*stats)(const struct rt_spec *spec, const struct rt_limits *set, struct rt_stats *st,
		     struct clbsd_err *err);
	/* Only stats()'s oom_kills: one file instead of seven. */
	int (*oom_kills)(const struct rt_spec *spec, uint64_t *n, struct clbsd_err *err);
	/*
	 * Change the limits of the running container (spec->cgroup) in place,
	 * all or nothing: when the kernel refuses a value (a memory limit
	 * below what it uses and cannot reclaim) the old values are put back
	 * and the error names the value and the kernel's answer
	 * (CLBSD_E_CONFLICT). NULL when the platform cannot.
	 */
	int (*update)(const struct rt_spec *spec, const struct rt_limits *lim,
		      struct clbsd_err *err);
	/* Remove the cgroup (retrying while tasks drain). Idempotent. */
	int (*destroy)(const struct rt_spec *spec, struct clbsd_err *err);
	/*
	 * The default syscall filter, compiled once: a file descriptor (close
	 * on exec) the daemon hands to every shim, which then uses it
	 * (filter_use) instead of compiling the same filter for each container.
	 */
	int (*filter_export)(int *fd, struct clbsd_err *err);
	void (*filter_use)(int fd);
	/* The host's cgroup layout: "v1", "v2", "hybrid" or "none". */
	const char *(*cgroup_layout)(void);
	/*
	 * Start a network health probe in the network namespace of the
	 * container whose init is init_pid, without blocking: a child process
	 * runs it, so the caller's event loop only watches an fd. On success
	 * *fd_out is a pipe's read end (O_CLOEXEC|O_NONBLOCK) on which the
	 * child writes one line saying what it found ("connected to
	 * 127.0.0.1:8080", "HTTP 200 OK", "connection refused", "timed out
	 * after 2s", "HTTP 503 Service Unavailable") before it exits, and
	 * *pid_out the child, which the caller must reap: exit status 0 is
	 * healthy, anything else (1, or killed) is not. The child gives up
	 * after p->timeout_ns on its own. Fails on invalid input, or when
	 * init_pid's namespace cannot be opened (CLBSD_E_CONFLICT: the container
	 * is not running). The caller makes sure init_pid is still the
	 * container's init (it has not reaped it).
	 */
	int (*probe)(pid_t init_pid, const struct rt_probe *p, int *fd_out, pid_t *pid_out,
		     struct clbsd_err *err);
	/*
	 * Whether the file system holding path can be seen through an idmapped
	 * mount, as a container with a user namespace needs for its rootfs and
	 * volumes: 0, or CLBSD_E_UNAVAIL with the reason. Probed once per file
	 * system and cached. NULL when the platform has no user namespaces.
	 */
	int (*idmap_check)(const char *path, struct clbsd_err *err);
};

/* The runtime for this platform (picked by the build). */
const struct rt_ops *rt_default_ops(void);

#endif
