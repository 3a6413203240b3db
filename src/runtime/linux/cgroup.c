/*
 * cgroups for the Linux runtime: v1 (one hierarchy per controller group), v2
 * (one unified hierarchy) and the hybrid layout (v1 controllers plus a
 * controller-less cgroup2 mount used for process tracking).
 *
 * A container's cgroup is the same relative path (rt_spec.cgroup) in every
 * hierarchy it uses (cg_hier.used). The container joins all of them, so any
 * can list its processes; limits and statistics go to whichever hierarchy
 * holds the controller (a v1 hierarchy first, then the unified one).
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

/* cfs period used for CPU quotas (100 ms, the kernel's default). */
#define CPU_PERIOD_US 100000
/* v1 reports "unlimited" as a page-rounded LONG_MAX; anything this big is unlimited. */
#define V1_UNLIMITED (1ULL << 62)

/* The stats files kept open: see cg_stats(). */
static struct cg_stat_cache *stat_cache_new(void);
static void stat_cache_free(struct cg_stat_cache *sc);

const char *cg_layout_name(enum cg_layout l)
{
	switch (l) {
	case CG_LAYOUT_V1:
		return "v1";
	case CG_LAYOUT_V2:
		return "v2";
	case CG_LAYOUT_HYBRID:
		return "hybrid";
	}
	return "none";
}

void cg_sys_release(struct cg_sys *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		free(cg->h[i].mnt);
		free(cg->h[i].ctrls);
		if (cg->h[i].fd >= 0)
			close(cg->h[i].fd);
	}
	free(cg->h);
	stat_cache_free(cg->stats);
	memset(cg, 0, sizeof(*cg));
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
				      (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Split a line into space-separated fields (at most max). */
static size_t split(const char *line, size_t len, const char **f, size_t *fl, size_t max)
{
	size_t n = 0, i = 0;
	while (i < len && n < max) {
		while (i < len && line[i] == ' ')
			i++;
		if (i >= len)
			break;
		size_t s = i;
		while (i < len && line[i] != ' ')
			i++;
		f[n] = line + s;
		fl[n] = i - s;
		n++;
	}
	return n;
}

/* Whether the comma- or space-separated list has `item`. */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;
	while (p && *p) {
		const char *e = p + strcspn(p, ", \n");
		if ((size_t)(e - p) == n && strncmp(p, item, n) == 0)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* v1 super options minus rw/ro and the other generic options. */
static char *v1_ctrls(const char *opts, size_t n)
{
	struct buf b = BUF_INIT;
	autofree char *o = xstrndup(opts, n);
	char *save = NULL;
	for (char *t = strtok_r(o, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "rw") || !strcmp(t, "ro") || !strncmp(t, "release_agent=", 14) ||
		    !strcmp(t, "clone_children") || !strcmp(t, "noprefix") || !strcmp(t, "xattr") ||
		    !strcmp(t, "cpuset_v2_mode") || !strcmp(t, "nsdelegate"))
			continue;
		if (b.len)
			buf_addc(&b, ',');
		buf_adds(&b, t);
	}
	return buf_detach(&b, NULL);
}

int cg_sys_parse(const char *mountinfo, const char *prefix, struct cg_sys *out,
		 struct clbsd_err *err)
{
	struct cg_sys cg = {0};
	struct strv devs = STRV_INIT;
	bool v1 = false, v2 = false;
	const char *line = mountinfo;

	while (line && *line) {
		const char *nl = strchrnul(line, '\n');
		size_t len = (size_t)(nl - line);
		const char *f[64];
		size_t fl[64];
		size_t nf = split(line, len, f, fl, ARRAY_SIZE(f));
		line = *nl ? nl + 1 : nl;
		/* id parent maj:min root mnt opts [optional...] - fstype source superopts */
		size_t dash = 0;
		for (size_t i = 6; i < nf; i++)
			if (fl[i] == 1 && f[i][0] == '-') {
				dash = i;
				break;
			}
		if (!dash || dash + 3 >= nf)
			continue;
		bool is2 = fl[dash + 1] == 7 && !strncmp(f[dash + 1], "cgroup2", 7);
		bool is1 = fl[dash + 1] == 6 && !strncmp(f[dash + 1], "cgroup", 6);
		if (!is1 && !is2)
			continue;
		autofree char *dev = xstrndup(f[2], fl[2]);
		bool dup = false;
		for (size_t i = 0; i < devs.n && !dup; i++)
			dup = !strcmp(devs.v[i], dev);
		if (dup)
			continue;
		autofree char *mp = unescape(f[4], fl[4]);
		struct cg_hier h = {0};
		h.v2 = is2;
		h.mnt = xasprintf("%s%s", prefix, strcmp(mp, "/") ? mp : "");
		h.fd = open(h.mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (is2) {
			autofree char *p = xasprintf("%s/cgroup.controllers", h.mnt);
			char *c = NULL;
			struct clbsd_err e2;
			if (fs_read_file(p, &c, NULL, &e2) < 0)
				c = xstrdup("");
			c[strcspn(c, "\n")] = '\0';
			h.ctrls = c;
			v2 = true;
		} else {
			h.ctrls = v1_ctrls(f[dash + 3], fl[dash + 3]);
			/* A named hierarchy (name=systemd) carries no controller. */
			if (h.ctrls[0] && strncmp(h.ctrls, "name=", 5) != 0)
				v1 = true;
		}
		static const char *const uses[] = {"cpu", "cpuacct", "memory", "pids", "devices"};
		h.used = h.v2 || strncmp(h.ctrls, "name=", 5) == 0;
		for (size_t u = 0; !h.used && u < ARRAY_SIZE(uses); u++)
			h.used = list_has(h.ctrls, uses[u]);
		strv_push(&devs, dev);
		cg.h = xrealloc(cg.h, (cg.n + 1) * sizeof(*cg.h));
		cg.h[cg.n++] = h;
	}
	strv_release(&devs);
	if (v1 && v2)
		cg.layout = CG_LAYOUT_HYBRID;
	else if (v1)
		cg.layout = CG_LAYOUT_V1;
	else if (v2)
		cg.layout = CG_LAYOUT_V2;
	else {
		cg_sys_release(&cg);
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOENT,
					"no cgroup file system is mounted (mount cgroup2 on "
					"/sys/fs/cgroup)");
	}
	cg.stats = stat_cache_new();
	*out = cg;
	return 0;
}

/*
 * The host's hierarchies are read once per process: they are mounted at boot
 * and not moved under a running daemon, and a container start asked for them
 * about four times (each a read of mountinfo and of cgroup.controllers).
 * Once read, sys_cache is never written again, so every later call is one
 * atomic load (acquire, pairing with the release that published it) and
 * takes no lock: the loop (every runtime call) and a scrape (every
 * container) never wait on each other here. sys_lock only makes the first
 * callers read it once.
 */
static pthread_mutex_t sys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cg_sys sys_cache;
static atomic_bool sys_cached;

const struct cg_sys *cg_sys_get(struct clbsd_err *err)
{
	if (atomic_load_explicit(&sys_cached, memory_order_acquire))
		return &sys_cache;
	pthread_mutex_lock(&sys_lock);
	bool ok = atomic_load_explicit(&sys_cached, memory_order_relaxed);
	if (!ok) {
		autofree char *mi = NULL;
		ok = fs_read_file("/proc/self/mountinfo", &mi, NULL, err) == 0 &&
		     cg_sys_parse(mi, "", &sys_cache, err) == 0;
		if (ok)
			atomic_store_explicit(&sys_cached, true, memory_order_release);
	}
	pthread_mutex_unlock(&sys_lock);
	return ok ? &sys_cache : NULL;
}

/* The hierarchy that holds controller `c` (v1 first), or NULL. */
static const struct cg_hier *find_ctrl(const struct cg_sys *cg, const char *c)
{
	for (size_t i = 0; i < cg->n; i++)
		if (!cg->h[i].v2 && list_has(cg->h[i].ctrls, c))
			return &cg->h[i];
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].v2 && list_has(cg->h[i].ctrls, c))
			return &cg->h[i];
	return NULL;
}

static const struct cg_hier *find_v2(const struct cg_sys *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].v2)
			return &cg->h[i];
	return NULL;
}

/* The hierarchy used to list a cgroup's processes. */
static const struct cg_hier *tracking(const struct cg_sys *cg)
{
	const struct cg_hier *h = find_v2(cg);
	if (!h)
		h = find_ctrl(cg, "pids");
	if (!h)
		h = find_ctrl(cg, "memory");
	return h ? h : &cg->h[0];
}

static char *file(const struct cg_hier *h, const char *path, const char *name)
{
	return xasprintf("%s/%s/%s", h->mnt, path, name);
}

static int write_file(const struct cg_hier *h, const char *path, const char *name, const char *val,
		      struct clbsd_err *err)
{
	autofree char *p = file(h, path, name);
	return fs_write_str(p, val, err);
}

static bool has_file(const struct cg_hier *h, const char *path, const char *name)
{
	autofree char *p = file(h, path, name);
	return fs_exists(p);
}

/* A number in a cgroup file's text s: false when it is none. */
static bool parse_u64(const char *s, uint64_t *v, bool *unlimited)
{
	if (unlimited)
		*unlimited = false;
	if (!strncmp(s, "max", 3) && unlimited) {
		*unlimited = true;
		*v = 0;
		return true;
	}
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s || n < -1)
		return false;
	if (n == -1 && unlimited) {
		*unlimited = true;
		*v = 0;
		return true;
	}
	*v = (uint64_t)n;
	return true;
}

/* The value of "key N" in a flat-keyed text such as memory.events or cpu.stat; 0 if absent. */
static void parse_key(const char *s, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	for (const char *l = s; l && *l;) {
		const char *nl = strchrnul(l, '\n');
		if (!strncmp(l, key, kl) && l[kl] == ' ') {
			*v = strtoull(l + kl + 1, NULL, 10);
			return;
		}
		l = *nl ? nl + 1 : nl;
	}
	*v = 0;
}

static int read_key(const char *p, const char *key, uint64_t *v, struct clbsd_err *err)
{
	autofree char *s = NULL;
	int rc = fs_read_file(p, &s, NULL, err);
	if (rc < 0)
		return rc;
	parse_key(s, key, v);
	return 0;
}

/* A v1 cpuset cgroup starts with no cpus and mems, and refuses tasks until given some. */
static int cpuset_inherit(const char *dir, struct clbsd_err *err)
{
	static const char *const names[] = {"cpuset.cpus", "cpuset.mems"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		autofree char *p = xasprintf("%s/%s", dir, names[i]);
		autofree char *cur = NULL;
		if (fs_read_file(p, &cur, NULL, err) < 0)
			continue; /* not a cpuset hierarchy after all */
		if (cur[strspn(cur, " \n")] != '\0')
			continue;
		autofree char *pp = xasprintf("%s/../%s", dir, names[i]);
		autofree char *val = NULL;
		int rc = fs_read_file(pp, &val, NULL, err);
		if (rc < 0)
			return rc;
		val[strcspn(val, "\n")] = '\0';
		if ((rc = fs_write_str(p, val, err)) < 0)
			return rc;
	}
	return 0;
}

/* Controllers this driver enables in a v2 hierarchy (when available). */
static const char *const v2_wanted[] = {"cpu", "memory", "pids"};

/*
 * Make h/path level by level. *made tells whether the leaf was created
 * here. On v2 the wanted controllers are enabled in every ancestor's
 * cgroup.subtree_control so the leaf gets their interface files.
 */
static int mk_hier(const struct cg_hier *h, const char *path, bool *made, struct clbsd_err *err)
{
	struct buf sub = BUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(v2_wanted); i++)
		if (h->v2 && list_has(h->ctrls, v2_wanted[i]))
			buf_addf(&sub, "%s+%s", sub.len ? " " : "", v2_wanted[i]);

	autofree char *dir = xstrdup(h->mnt);
	const char *p = path;
	int rc = 0;
	*made = false;
	while (*p) {
		const char *e = strchrnul(p, '/');
		if (sub.len) {
			autofree char *sc = xasprintf("%s/cgroup.subtree_control", dir);
			if ((rc = fs_write_str(sc, sub.data, err)) < 0) {
				clbsd_err_prefix(err, "enable controllers \"%s\"", sub.data);
				break;
			}
		}
		char *nd = xasprintf("%s/%.*s", dir, (int)(e - p), p);
		free(dir);
		dir = nd;
		if (mkdir(dir, 0755) == 0) {
			*made = !*e;
			if (!h->v2 && list_has(h->ctrls, "cpuset") &&
			    (rc = cpuset_inherit(dir, err)) < 0)
				break;
		} else if (errno == EEXIST) {
			/*
			 * Made by someone else a moment ago (two pool shims start
			 * at once): it may not have its cpus and mems yet, and a
			 * child of it would be unusable (ENOSPC on join).
			 */
			if (!h->v2 && list_has(h->ctrls, "cpuset") &&
			    (rc = cpuset_inherit(dir, err)) < 0)
				break;
		} else {
			rc = clbsd_err_set(err,
					   errno == EROFS || errno == EACCES || errno == EPERM
						   ? CLBSD_E_FORBIDDEN
						   : CLBSD_E_INTERNAL,
					   errno, "mkdir %s", dir);
			break;
		}
		p = *e ? e + 1 : e;
	}
	buf_release(&sub);
	if (rc < 0 && *made) {
		rmdir(dir);
		*made = false;
	}
	return rc;
}

/*
 * fresh: the cgroup was just made in every hierarchy, so it is unlimited
 * already and only the limits asked for are written.
 */
static int set_limits(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		      bool fresh, struct clbsd_err *err)
{
	const struct cg_hier *h;
	char v[64];
	int rc;

	h = find_ctrl(cg, "memory");
	if (!h && lim->memory > 0)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"memory limit: no memory cgroup controller on this host "
					"(enable it, or drop the limit)");
	/*
	 * "Unlimited" is written only where the file exists: a new cgroup is
	 * unlimited already, a reused one gets its old limits reset.
	 */
	if (h && h->v2 && (lim->memory > 0 || (!fresh && has_file(h, path, "memory.max")))) {
		if (lim->memory > 0)
			snprintf(v, sizeof(v), "%" PRId64, lim->memory);
		else
			snprintf(v, sizeof(v), "max");
		if ((rc = write_file(h, path, "memory.max", v, err)) < 0)
			return rc;
		/* No swap on top of the limit, or the limit is only a suggestion. */
		if (has_file(h, path, "memory.swap.max") &&
		    (rc = write_file(h, path, "memory.swap.max", lim->memory > 0 ? "0" : "max",
				     err)) < 0)
			return rc;
	} else if (h && !h->v2 &&
		   (lim->memory > 0 || (!fresh && has_file(h, path, "memory.limit_in_bytes")))) {
		bool memsw = has_file(h, path, "memory.memsw.limit_in_bytes");
		/*
		 * memsw must stay >= limit at every step: lift it first (a reused
		 * cgroup may hold an older, lower value), then set both.
		 */
		if (memsw &&
		    (rc = write_file(h, path, "memory.memsw.limit_in_bytes", "-1", err)) < 0)
			return rc;
		if (lim->memory > 0)
			snprintf(v, sizeof(v), "%" PRId64, lim->memory);
		else
			snprintf(v, sizeof(v), "-1");
		if ((rc = write_file(h, path, "memory.limit_in_bytes", v, err)) < 0)
			return rc;
		if (memsw && lim->memory > 0 &&
		    (rc = write_file(h, path, "memory.memsw.limit_in_bytes", v, err)) < 0)
			return rc;
	}

	h = find_ctrl(cg, "pids");
	if (!h && lim->pids > 0)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"pids limit: no pids cgroup controller on this host "
					"(enable it, or drop the limit)");
	if (h && (lim->pids > 0 || (!fresh && has_file(h, path, "pids.max")))) {
		if (lim->pids > 0)
			snprintf(v, sizeof(v), "%" PRId64, lim->pids);
		else
			snprintf(v, sizeof(v), "max");
		if ((rc = write_file(h, path, "pids.max", v, err)) < 0)
			return rc;
	}

	h = find_ctrl(cg, "cpu");
	if (!h && lim->cpus > 0)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"cpu limit: no cpu cgroup controller on this host "
					"(enable it, or drop the limit)");
	long long quota = -1;
	if (lim->cpus > 0) {
		quota = (long long)(lim->cpus * CPU_PERIOD_US + 0.5);
		if (quota < 1000) /* the kernel's minimum quota is 1 ms */
			quota = 1000;
	}
	if (h && h->v2 && (quota > 0 || (!fresh && has_file(h, path, "cpu.max")))) {
		if (quota > 0)
			snprintf(v, sizeof(v), "%lld %d", quota, CPU_PERIOD_US);
		else
			snprintf(v, sizeof(v), "max %d", CPU_PERIOD_US);
		if ((rc = write_file(h, path, "cpu.max", v, err)) < 0)
			return rc;
	} else if (h && !h->v2 &&
		   (quota > 0 || (!fresh && has_file(h, path, "cpu.cfs_quota_us")))) {
		snprintf(v, sizeof(v), "%d", CPU_PERIOD_US);
		if ((rc = write_file(h, path, "cpu.cfs_period_us", v, err)) < 0)
			return rc;
		snprintf(v, sizeof(v), "%lld", quota);
		if ((rc = write_file(h, path, "cpu.cfs_quota_us", v, err)) < 0)
			return rc;
	}
	return 0;
}

/* ---- the device allow-list ---- */

#define RWM (CG_DEV_MKNOD | CG_DEV_READ | CG_DEV_WRITE)
/*
 * Docker's default list less tun: making any node is allowed (images
 * unpack nodes), opening only what the runtime's /dev holds (mounts.c):
 * null, zero, full, random, urandom, tty, console, ptmx and the
 * pseudo-terminals of devpts (major 136; /dev/console is one of the host's).
 */
const struct cg_dev_rule cg_dev_rules[] = {
	{'c', -1, -1, CG_DEV_MKNOD},
	{'b', -1, -1, CG_DEV_MKNOD},
	{'c', 1, 3, RWM},
	{'c', 1, 5, RWM},
	{'c', 1, 7, RWM},
	{'c', 1, 8, RWM},
	{'c', 1, 9, RWM},
	{'c', 5, 0, RWM},
	{'c', 5, 1, RWM},
	{'c', 5, 2, RWM},
	{'c', 136, -1, RWM},
};
const size_t cg_dev_nrules = ARRAY_SIZE(cg_dev_rules);

void cg_dev_rule_v1(const struct cg_dev_rule *r, char *buf, size_t n)
{
	char maj[16], min[16];
	snprintf(maj, sizeof(maj), r->major < 0 ? "*" : "%d", r->major);
	snprintf(min, sizeof(min), r->minor < 0 ? "*" : "%d", r->minor);
	snprintf(buf, n, "%c %s:%s %s%s%s", r->type, maj, min, r->access & CG_DEV_READ ? "r" : "",
		 r->access & CG_DEV_WRITE ? "w" : "", r->access & CG_DEV_MKNOD ? "m" : "");
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	return (struct bpf_insn){
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

/*
 * The context is struct bpf_cgroup_dev_ctx: access_type (the access in the
 * upper 16 bits, the type, BPF_DEVCG_DEV_*, in the lower), major, minor. A
 * rule is a block of tests, each jumping to the next block on a mismatch,
 * and "return 1" at its end; after the last block, "return 0" (deny).
 */
size_t cg_dev_prog(struct bpf_insn *out, size_t max)
{
	return cg_dev_prog_extra(NULL, 0, out, max);
}

/* A container's device as a rule: its node only, with its access. */
static struct cg_dev_rule dev_rule(const struct rt_device *d)
{
	unsigned acc = 0;
	acc |= strchr(d->access, 'r') ? CG_DEV_READ : 0;
	acc |= strchr(d->access, 'w') ? CG_DEV_WRITE : 0;
	acc |= strchr(d->access, 'm') ? CG_DEV_MKNOD : 0;
	return (struct cg_dev_rule){d->type, d->major, d->minor, acc};
}

size_t cg_dev_prog_extra(const struct rt_device *extra, size_t nextra, struct bpf_insn *out,
			 size_t max)
{
	struct bpf_insn p[512];
	size_t n = 0;
	/* r2 = type, r3 = access, r4 = major, r5 = minor */
	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
	p[n++] = insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
	p[n++] = insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
	for (size_t i = 0; i < cg_dev_nrules + nextra; i++) {
		struct cg_dev_rule xr;
		const struct cg_dev_rule *r = &cg_dev_rules[i];
		if (i >= cg_dev_nrules) {
			xr = dev_rule(&extra[i - cg_dev_nrules]);
			r = &xr;
		}
		size_t jumps[4], nj = 0;
		if (n + 9 > ARRAY_SIZE(p))
			return 0;
		if (r->type != 'a') {
			jumps[nj++] = n;
			p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0,
				      r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
		}
		if ((r->access & RWM) != RWM) {
			/* Every access asked for must be in the rule's. */
			p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
			p[n++] = insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0,
				      (int32_t)(~r->access & RWM));
			jumps[nj++] = n;
			p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 0, 0);
		}
		if (r->major >= 0) {
			jumps[nj++] = n;
			p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, r->major);
		}
		if (r->minor >= 0) {
			jumps[nj++] = n;
			p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, r->minor);
		}
		p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
		p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		/* A mismatch jumps to the first instruction after this block. */
		for (size_t j = 0; j < nj; j++)
			p[jumps[j]].off = (int16_t)(n - jumps[j] - 1);
	}
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	if (n > max)
		return 0;
	memcpy(out, p, n * sizeof(*p));
	return n;
}

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(SYS_bpf, cmd, a, sizeof(*a));
}

int cg_dev_attach_v2(const char *dir, struct clbsd_err *err)
{
	return cg_dev_attach_v2_extra(dir, NULL, 0, err);
}

int cg_dev_attach_v2_extra(const char *dir, const struct rt_device *extra, size_t nextra,
			   struct clbsd_err *err)
{
	autoclose int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	/* A reused cgroup has its program already (BPF_F_ALLOW_MULTI would stack a second). */
	union bpf_attr q = {0};
	q.query.target_fd = (uint32_t)cfd;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	if (sys_bpf(BPF_PROG_QUERY, &q) == 0 && q.query.prog_cnt > 0)
		return 0;
	struct bpf_insn prog[512];
	size_t n = cg_dev_prog_extra(extra, nextra, prog, ARRAY_SIZE(prog));
	if (!n)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, E2BIG,
					"the device program is too long (too many :devices)");
	static char log[4096];
	union bpf_attr a = {0};
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t) "GPL";
	autoclose int pfd = (int)sys_bpf(BPF_PROG_LOAD, &a);
	if (pfd < 0) {
		/* Again with the verifier's log, to say why. */
		int e = errno;
		log[0] = '\0';
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = sizeof(log);
		a.log_level = 1;
		int again = (int)sys_bpf(BPF_PROG_LOAD, &a);
		if (again >= 0)
			close(again);
		log[strcspn(log, "\n")] = '\0';
		return clbsd_err_set(err, e == EPERM ? CLBSD_E_FORBIDDEN : CLBSD_E_UNAVAIL, e,
				     "load the device program%s%s", *log ? ": " : "", log);
	}
	union bpf_attr t = {0};
	t.target_fd = (uint32_t)cfd;
	t.attach_bpf_fd = (uint32_t)pfd;
	t.attach_type = BPF_CGROUP_DEVICE;
	t.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &t) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "attach the device program to %s", dir);
	return 0;
}

/* Whether mnt is a real cgroup file system (not a unit test's directory tree). */
static bool real_cgroup_fs(const char *mnt)
{
	struct statfs sf;
	return statfs(mnt, &sf) == 0 &&
	       (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC);
}

/*
 * The allow-list on the v1 devices controller when it is mounted, else as
 * a program on the cgroup2 hierarchy; a host with neither is refused, as a
 * container there could open any node it finds on a mount without nodev.
 */
static int set_devices(const struct cg_sys *cg, const char *path, const struct rt_device *extra,
		       size_t nextra, struct clbsd_err *err)
{
	if (!cg->n || !real_cgroup_fs(cg->h[0].mnt))
		return 0;
	for (size_t i = 0; i < cg->n; i++) {
		const struct cg_hier *h = &cg->h[i];
		if (h->v2 || !list_has(h->ctrls, "devices"))
			continue;
		int rc = write_file(h, path, "devices.deny", "a", err);
		for (size_t r = 0; rc == 0 && r < cg_dev_nrules + nextra; r++) {
			char line[48];
			struct cg_dev_rule xr;
			if (r >= cg_dev_nrules)
				xr = dev_rule(&extra[r - cg_dev_nrules]);
			cg_dev_rule_v1(r < cg_dev_nrules ? &cg_dev_rules[r] : &xr, line,
				       sizeof(line));
			rc = write_file(h, path, "devices.allow", line, err);
		}
		return rc < 0 ? clbsd_err_prefix(err, "device allow-list") : 0;
	}
	const struct cg_hier *v2 = find_v2(cg);
	if (!v2)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"device allow-list: no devices controller (cgroup v1) and "
					"no cgroup2 hierarchy for a device program; mount one");
	autofree char *dir = xasprintf("%s/%s", v2->mnt, path);
	int rc = cg_dev_attach_v2_extra(dir, extra, nextra, err);
	return rc < 0 ? clbsd_err_prefix(err, "device allow-list") : 0;
}

static int procs(const struct cg_sys *cg, const char *path, pid_t **out, size_t *n,
		 struct clbsd_err *err);

int cg_count(const struct cg_sys *cg, const char *path, size_t *n, struct clbsd_err *err)
{
	autofree pid_t *v = NULL;
	struct clbsd_err e2;
	if (procs(cg, path, &v, n, &e2) < 0) {
		if (e2.code == ENOENT) {
			*n = 0;
			return 0;
		}
		*err = e2;
		return -e2.code;
	}
	return 0;
}

static void rm_made(const struct cg_sys *cg, const char *path, const bool *made)
{
	for (size_t i = 0; i < cg->n; i++)
		if (made[i]) {
			autofree char *d = xasprintf("%s/%s", cg->h[i].mnt, path);
			rmdir(d);
		}
}

int cg_set_limits(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		  bool fresh, struct clbsd_err *err)
{
	int rc = set_limits(cg, path, lim, fresh, err);
	return rc < 0 ? clbsd_err_prefix(err, "cgroup %s", path) : 0;
}

/*
 * The files set_limits() may write, in the order they are put back after a
 * refusal: a v1 memory limit before its memsw (which must stay above it,
 * so it is lifted first), a v1 cfs period before its quota.
 */
static const struct {
	const char *ctrl, *name;
} limit_files[] = {
	{"memory", "memory.limit_in_bytes"},
	{"memory", "memory.memsw.limit_in_bytes"},
	{"memory", "memory.max"},
	{"memory", "memory.swap.max"},
	{"pids", "pids.max"},
	{"cpu", "cpu.cfs_period_us"},
	{"cpu", "cpu.cfs_quota_us"},
	{"cpu", "cpu.max"},
};

int cg_update_limits(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		     struct clbsd_err *err)
{
	const struct cg_hier *mh = tracking(cg);
	autofree char *dir = xasprintf("%s/%s", mh->mnt, path);
	if (!fs_is_dir(dir))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOENT,
					"cgroup %s: not there (the container is not running); "
					"nothing was changed",
					path);
	char *old[ARRAY_SIZE(limit_files)] = {0};
	const struct cg_hier *hs[ARRAY_SIZE(limit_files)] = {0};
	for (size_t i = 0; i < ARRAY_SIZE(limit_files); i++) {
		const struct cg_hier *h = find_ctrl(cg, limit_files[i].ctrl);
		autofree char *p = h ? file(h, path, limit_files[i].name) : NULL;
		struct clbsd_err e;
		if (p && fs_exists(p) && fs_read_file(p, &old[i], NULL, &e) == 0) {
			old[i][strcspn(old[i], "\n")] = '\0';
			hs[i] = h;
		}
	}
	int rc = set_limits(cg, path, lim, false, err);
	if (rc < 0) {
		/* All or nothing: put back what was there, memsw lifted first. */
		struct buf why = BUF_INIT;
		for (size_t i = 0; i < ARRAY_SIZE(limit_files); i++)
			if (hs[i] &&
			    strcmp(limit_files[i].name, "memory.memsw.limit_in_bytes") == 0) {
				struct clbsd_err e;
				write_file(hs[i], path, limit_files[i].name, "-1", &e);
			}
		for (size_t i = 0; i < ARRAY_SIZE(limit_files); i++) {
			struct clbsd_err e;
			if (hs[i] && write_file(hs[i], path, limit_files[i].name, old[i], &e) < 0)
				buf_addf(&why, "; putting back %s failed: %s", limit_files[i].name,
					 e.msg);
		}
		bool mem = strstr(err->msg, "memory.") != NULL;
		/* A value the kernel will not take is the request's problem, not ours. */
		if (err->code == EBUSY || err->code == EINVAL)
			err->kind = CLBSD_E_CONFLICT;
		clbsd_err_prefix(err, "cgroup %s: the kernel refused the new limits%s", path,
				 mem && err->code == EBUSY
					 ? " (the container uses more memory than that, and "
					   "the kernel could not reclaim enough)"
					 : "");
		if (why.len)
			snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
				 "%s", why.data);
		else
			snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
				 "; nothing was changed");
		buf_release(&why);
	}
	for (size_t i = 0; i < ARRAY_SIZE(limit_files); i++)
		free(old[i]);
	return rc;
}

int cg_create(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
	      struct clbsd_err *err)
{
	return cg_create_devs(cg, path, lim, NULL, 0, err);
}

int cg_create_devs(const struct cg_sys *cg, const char *path, const struct rt_limits *lim,
		   const struct rt_device *extra, size_t nextra, struct clbsd_err *err)
{
	autofree bool *made = xcalloc(cg->n ? cg->n : 1, sizeof(bool));
	int rc = 0;
	for (size_t i = 0; i < cg->n && rc == 0; i++)
		if (cg->h[i].used)
			rc = mk_hier(&cg->h[i], path, &made[i], err);
	if (rc == 0) {
		size_t n = 0;
		rc = cg_count(cg, path, &n, err);
		if (rc == 0 && n > 0)
			rc = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					      "%zu processes still run in it (stop them or pick "
					      "another name)",
					      n);
	}
	bool fresh = true;
	for (size_t i = 0; i < cg->n; i++)
		fresh = fresh && (made[i] || !cg->h[i].used);
	/* Before any process is in it: a pool's init is made here long before its claim. */
	if (rc == 0)
		rc = set_devices(cg, path, extra, nextra, err);
	if (rc == 0)
		rc = set_limits(cg, path, lim, fresh, err);
	if (rc < 0) {
		rm_made(cg, path, made);
		return clbsd_err_prefix(err, "cgroup %s", path);
	}
	return 0;
}

int cg_join(const struct cg_sys *cg, const char *path, pid_t pid, struct clbsd_err *err)
{
	char v[32];
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++) {
		if (!cg->h[i].used)
			continue;
		int rc = write_file(&cg->h[i], path, "cgroup.procs", v, err);
		if (rc < 0)
			return clbsd_err_prefix(err, "join cgroup %s", path);
	}
	return 0;
}

int cg_open_join(const struct cg_sys *cg, const char *path, int *fds, int *v2dir,
		 struct clbsd_err *err)
{
	*v2dir = -1;
	for (size_t i = 0; i < cg->n; i++)
		fds[i] = -1;
	for (size_t i = 0; i < cg->n; i++) {
		const struct cg_hier *h = &cg->h[i];
		if (!h->used)
			continue;
		autofree char *p =
			h->v2 ? xasprintf("%s/%s", h->mnt, path) : file(h, path, "tasks");
		int fd = h->v2 ? open(p, O_PATH | O_DIRECTORY | O_CLOEXEC)
			       : open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			cg_close_join(fds, cg->n, *v2dir);
			*v2dir = -1;
			return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "join cgroup: open %s", p);
		}
		if (h->v2)
			*v2dir = fd;
		else
			fds[i] = fd;
	}
	return 0;
}

int cg_join_fds(const int *fds, size_t n, int v2dir_fallback)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0 && write(fds[i], "0", 1) != 1)
			return -errno;
	}
	if (v2dir_fallback >= 0) {
		int fd = openat(v2dir_fallback, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ssize_t w = write(fd, "0", 1);
		int e = errno;
		close(fd);
		if (w != 1)
			return -e;
	}
	return 0;
}

void cg_close_join(int *fds, size_t n, int v2dir)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
	if (v2dir >= 0)
		close(v2dir);
}

/* Read cgroup.procs into a vector of pids. */
static int procs(const struct cg_sys *cg, const char *path, pid_t **out, size_t *n,
		 struct clbsd_err *err)
{
	autofree char *p = file(tracking(cg), path, "cgroup.procs");
	autofree char *s = NULL;
	int rc = fs_read_file(p, &s, NULL, err);
	if (rc < 0)
		return rc;
	size_t cap = 16, c = 0;
	pid_t *v = xmalloc(cap * sizeof(*v));
	for (char *l = s; *l;) {
		char *end;
		long x = strtol(l, &end, 10);
		if (end == l)
			break;
		if (c == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		v[c++] = (pid_t)x;
		l = end;
		while (*l == '\n')
			l++;
	}
	*out = v;
	*n = c;
	return 0;
}

bool cg_has_pid(const struct cg_sys *cg, const char *path, pid_t pid)
{
	struct clbsd_err e;
	autofree pid_t *v = NULL;
	size_t n = 0;
	if (procs(cg, path, &v, &n, &e) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cg_kill(const struct cg_sys *cg, const char *path, int sig, struct clbsd_err *err)
{
	const struct cg_hier *v2 = find_v2(cg);
	if (sig == SIGKILL && v2 && has_file(v2, path, "cgroup.kill")) {
		struct clbsd_err e2;
		if (write_file(v2, path, "cgroup.kill", "1", &e2) == 0)
			return 0;
	}
	/* Without cgroup.kill, repeat SIGKILL until nothing is left that could still fork. */
	int rounds = sig == SIGKILL ? 200 : 1;
	for (int r = 0; r < rounds; r++) {
		autofree pid_t *v = NULL;
		size_t n = 0;
		struct clbsd_err e2;
		if (procs(cg, path, &v, &n, &e2) < 0) {
			if (e2.code == ENOENT)
				return 0;
			*err = e2;
			return clbsd_err_prefix(err, "kill cgroup %s", path);
		}
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (kill(v[i], sig) < 0 && errno != ESRCH)
				return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
						     "kill cgroup %s: signal %d to pid %d", path,
						     sig, (int)v[i]);
		if (sig == SIGKILL)
			nap_ms(5);
	}
	return 0;
}

/*
 * The stats files kept open (cg_sys.stats): per cgroup, one fd per file
 * cg_stats() reads, found by the cgroup's path in a hash table. One lock
 * over it all: the loop thread reads stats (GET /v1/stats) and forgets a
 * removed cgroup's files (cg_destroy), the metrics thread reads stats for
 * every scrape, workers destroy cgroups. It is held for one cgroup's reads
 * at a time (a few preads) and for table updates; the sweep at the fd
 * budget (stat_sweep) reads every kept cgroup, and does so outside it.
 *
 * Nobody waits for it: every taker uses trylock (stat_trylock), so a scrape
 * never holds up the loop's reconcile passes, and the loop never holds up
 * a scrape.
 * - A read (cg_stats) that finds it taken reads its cgroup's files by path
 *   this once (open, pread, close: a few more system calls), keeping none.
 * - Work that must be done under it, but need not be done at once, is left
 *   on a list the holder does before it lets the lock go (stat_unlock):
 *   a forget (cg_destroy: the kept files of a cgroup being removed; until
 *   then they read ENODEV, and read_at opens a cgroup made again under the
 *   same path afresh), and the end of a sweep (its dead entries removed,
 *   the closes it deferred done). The lists are lock-free (a push is a
 *   compare-and-swap); whoever pushed tries the lock once more after, so
 *   the work waits at most for the next taker when the holder let go in
 *   between.
 */
enum { SF_CPU, SF_MEM, SF_OOM, SF_MEM_MAX, SF_PIDS, SF_PIDS_MAX, SF_IO, SF_N };
/*
 * A slot's fd when the file is optional and this cgroup has none (a native
 * container on v1 has no blkio cgroup): not looked for again until the
 * entry goes with its cgroup.
 */
#define SF_ABSENT (-2)

struct stat_files {
	char *path; /* relative: no leading '/' */
	int fd[SF_N];
	struct stat_files *next;
};

struct cg_stat_cache {
	pthread_mutex_t lock;
	struct stat_files **bucket;
	size_t nbucket; /* a power of two */
	size_t n;	/* entries */
	size_t nfd;	/* fds kept, all entries together */
	size_t refused; /* files not kept (budget) since the last sweep */
	bool sweep_due; /* the budget asked for a sweep: cg_stats runs it after unlocking */
	bool sweeping;	/* a sweep is reading fds outside the lock: closes wait (deferred) */
	int *deferred;	/* fds let go while sweeping, closed when it ends */
	size_t ndeferred, capdeferred;
	/* Left for the lock's holder (stat_unlock), pushed without it. */
	_Atomic(struct stat_forget_item *) forgets;
	_Atomic(struct sweep_done *) swept; /* at most one: one sweep at a time */
};

/* A cgroup path whose kept files are to go (stat_forget). */
struct stat_forget_item {
	char *path; /* relative */
	struct stat_forget_item *next;
};

static void stat_unlock(struct cg_stat_cache *sc);

/* Close a kept fd, or leave it open until the running sweep has read them (stat_sweep). */
static void stat_close(struct cg_stat_cache *sc, int fd)
{
	if (!sc->sweeping) {
		close(fd);
		return;
	}
	if (sc->ndeferred == sc->capdeferred) {
		sc->capdeferred = sc->capdeferred ? 2 * sc->capdeferred : 16;
		sc->deferred = xrealloc(sc->deferred, sc->capdeferred * sizeof(*sc->deferred));
	}
	sc->deferred[sc->ndeferred++] = fd;
}

static struct cg_stat_cache *stat_cache_new(void)
{
	struct cg_stat_cache *sc = xcalloc(1, sizeof(*sc));
	pthread_mutex_init(&sc->lock, NULL);
	sc->nbucket = 64;
	sc->bucket = xcalloc(sc->nbucket, sizeof(*sc->bucket));
	return sc;
}

static void stat_files_free(struct cg_stat_cache *sc, struct stat_files *f)
{
	for (size_t i = 0; i < SF_N; i++)
		if (f->fd[i] >= 0) {
			stat_close(sc, f->fd[i]);
			sc->nfd--;
		}
	free(f->path);
	free(f);
}

static void stat_cache_free(struct cg_stat_cache *sc)
{
	if (!sc)
		return;
	/* The last user: what was left for a holder is done now. */
	pthread_mutex_lock(&sc->lock);
	stat_unlock(sc);
	for (size_t b = 0; b < sc->nbucket; b++)
		while (sc->bucket[b]) {
			struct stat_files *f = sc->bucket[b];
			sc->bucket[b] = f->next;
			stat_files_free(sc, f);
		}
	free(sc->bucket);
	free(sc->deferred);
	pthread_mutex_destroy(&sc->lock);
	free(sc);
}

/* FNV-1a */
static size_t path_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* The link that points at rel's entry, or at the NULL ending its chain. */
static struct stat_files **stat_link(struct cg_stat_cache *sc, const char *rel)
{
	struct stat_files **l = &sc->bucket[path_hash(rel) & (sc->nbucket - 1)];
	while (*l && strcmp((*l)->path, rel) != 0)
		l = &(*l)->next;
	return l;
}

/* Twice the buckets, each entry rehashed. */
static void stat_grow(struct cg_stat_cache *sc)
{
	size_t nb = sc->nbucket * 2;
	struct stat_files **b = xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < sc->nbucket; i++)
		while (sc->bucket[i]) {
			struct stat_files *f = sc->bucket[i];
			sc->bucket[i] = f->next;
			f->next = b[path_hash(f->path) & (nb - 1)];
			b[path_hash(f->path) & (nb - 1)] = f;
		}
	free(sc->bucket);
	sc->bucket = b;
	sc->nbucket = nb;
}

static struct stat_files *stat_files_get(struct cg_stat_cache *sc, const char *rel)
{
	struct stat_files *have = *stat_link(sc, rel);
	if (have)
		return have;
	if (sc->n >= sc->nbucket)
		stat_grow(sc);
	struct stat_files *f = xcalloc(1, sizeof(*f));
	f->path = xstrdup(rel);
	for (size_t i = 0; i < SF_N; i++)
		f->fd[i] = -1;
	*stat_link(sc, rel) = f;
	sc->n++;
	return f;
}

/*
 * Drop the entries of cgroups removed behind cg_destroy()'s back (a docker
 * container's, which dockerd removes): their files read ENODEV. Entries
 * keeping no file go too. Called without the lock, by the cg_stats() that
 * found the budget reached: the entries and one fd of each are listed
 * under the lock, read outside it (a pread per cgroup, so O(cgroups): the
 * loop's GET /v1/stats and stat_forget must not wait for that), and the
 * dead ones removed under it again, by the sweep or, when it finds the
 * lock taken, by the holder (stat_unlock). While the reads run, fds are
 * not closed (stat_close defers them), so a listed fd still names its
 * file. A sweep that finds the lock taken at its start does not run: the
 * budget asks for one again.
 */
struct sweep_item {
	char *path;
	int fd; /* -1: the entry keeps no file */
	bool dead;
};

/* A sweep's reads, to be applied under the lock. */
struct sweep_done {
	struct sweep_item *v;
	size_t n;
};

/* Under the lock: remove the entries the sweep found dead, and end the sweep. */
static void sweep_apply(struct cg_stat_cache *sc, struct sweep_done *sd)
{
	for (size_t i = 0; i < sd->n; i++) {
		struct sweep_item *it = &sd->v[i];
		struct stat_files **l = stat_link(sc, it->path);
		struct stat_files *f = *l;
		/* Still the entry read: it keeps the fd read (or still none). */
		bool same = f && it->dead;
		if (same && it->fd >= 0) {
			same = false;
			for (size_t k = 0; k < SF_N; k++)
				same = same || f->fd[k] == it->fd;
		} else if (same) {
			for (size_t k = 0; k < SF_N; k++)
				same = same && f->fd[k] < 0;
		}
		if (same) {
			*l = f->next;
			sc->n--;
			stat_files_free(sc, f);
		}
		free(it->path);
	}
	free(sd->v);
	free(sd);
	sc->sweeping = false;
	for (size_t i = 0; i < sc->ndeferred; i++)
		close(sc->deferred[i]);
	sc->ndeferred = 0;
}

static void stat_sweep(struct cg_stat_cache *sc)
{
	/* Taken: the budget asks again after as many refusals as entries. */
	if (pthread_mutex_trylock(&sc->lock) != 0)
		return;
	if (sc->sweeping) {
		stat_unlock(sc);
		return;
	}
	sc->sweeping = true;
	size_t n = 0;
	struct sweep_item *v = xcalloc(sc->n ? sc->n : 1, sizeof(*v));
	for (size_t b = 0; b < sc->nbucket; b++)
		for (struct stat_files *f = sc->bucket[b]; f && n < sc->n; f = f->next) {
			int fd = -1;
			for (size_t i = 0; i < SF_N && fd < 0; i++)
				fd = f->fd[i];
			v[n++] = (struct sweep_item){.path = xstrdup(f->path), .fd = fd};
		}
	stat_unlock(sc);

	for (size_t i = 0; i < n; i++) {
		char c;
		v[i].dead = v[i].fd < 0 || (pread(v[i].fd, &c, 1, 0) < 0 && errno == ENODEV);
	}

	struct sweep_done *sd = xmalloc(sizeof(*sd));
	*sd = (struct sweep_done){.v = v, .n = n};
	if (pthread_mutex_trylock(&sc->lock) == 0) {
		sweep_apply(sc, sd);
		stat_unlock(sc);
		return;
	}
	/* None is pending: sweeping kept any other sweep from starting. */
	atomic_store(&sc->swept, sd);
	if (pthread_mutex_trylock(&sc->lock) == 0)
		stat_unlock(sc);
}

/* Under the lock: close the kept files of rel (relative path) and drop its entry. */
static void forget_locked(struct cg_stat_cache *sc, const char *rel)
{
	struct stat_files **l = stat_link(sc, rel);
	struct stat_files *f = *l;
	if (f) {
		*l = f->next;
		sc->n--;
		stat_files_free(sc, f);
	}
}

/* Do what was left for the lock's holder, then let the lock go. */
static void stat_unlock(struct cg_stat_cache *sc)
{
	struct stat_forget_item *fi = atomic_exchange(&sc->forgets, NULL);
	while (fi) {
		struct stat_forget_item *next = fi->next;
		forget_locked(sc, fi->path);
		free(fi->path);
		free(fi);
		fi = next;
	}
	struct sweep_done *sd = atomic_exchange(&sc->swept, NULL);
	if (sd)
		sweep_apply(sc, sd);
	pthread_mutex_unlock(&sc->lock);
}

/*
 * Whether one more fd may be kept: at most a quarter of RLIMIT_NOFILE (the
 * daemon raises it), so that API connections, logs and shims never run
 * short for stats' sake. 1,000 containers keep 4,000 to 5,000 (a native
 * container's four files, five with block I/O; a docker one's seven). At
 * the limit, the files of removed cgroups are let go, once per as many
 * files refused as there are entries (a pread each, so one per file
 * refused): the sweep is asked for here and runs once the lock is let go.
 */
static bool stat_fd_budget(struct cg_stat_cache *sc)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	rlim_t cap = rl.rlim_cur == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_cur;
	if ((rlim_t)sc->nfd < cap / 4)
		return true;
	if (++sc->refused >= sc->n) {
		sc->refused = 0;
		sc->sweep_due = true;
	}
	return false;
}

/*
 * One cgroup's stats being read: its kept files (f, NULL when none are
 * kept) and its directories in each hierarchy, opened only when a file has
 * to be opened by path.
 */
struct stat_dirs {
	struct cg_stat_cache *sc;
	struct stat_files *f;
	const struct cg_hier *h[6];
	int fd[6];
	size_t n;
};

static void stat_dirs_close(struct stat_dirs *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->fd[i] >= 0)
			close(d->fd[i]);
	d->n = 0;
}

/*
 * All of a cgroup file from offset 0 (a kept file shows its values afresh),
 * into buf; -errno. A cgroup file gives all it holds to one read: a line,
 * short of the buffer.
 */
static int pread_all(int fd, char *buf, size_t size)
{
	size_t len = 0;
	while (len < size - 1) {
		ssize_t r = pread(fd, buf + len, size - 1 - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		len += (size_t)r;
		if (len < size - 1 && buf[len - 1] == '\n')
			break;
	}
	buf[len] = '\0';
	return 0;
}

static int read_at(struct stat_dirs *d, const struct cg_hier *h, const char *path, const char *name,
		   int slot, char *buf, size_t size, struct clbsd_err *err)
{
	int *kept = d->f ? &d->f->fd[slot] : NULL;
	/* An optional file known to be absent for this cgroup (read_io). */
	if (kept && *kept == SF_ABSENT)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "%s/%s/%s: absent", h->mnt,
					path, name);
	if (kept && *kept >= 0) {
		if (pread_all(*kept, buf, size) == 0)
			return 0;
		/* Its cgroup was removed (ENODEV), maybe made again: open it by path. */
		stat_close(d->sc, *kept);
		*kept = -1;
		d->sc->nfd--;
	}
	size_t i = 0;
	while (i < d->n && d->h[i] != h)
		i++;
	if (i == d->n) {
		d->h[i] = h;
		const char *rel = path + strspn(path, "/");
		if (h->fd >= 0) {
			d->fd[i] =
				openat(h->fd, *rel ? rel : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else {
			autofree char *dir = xasprintf("%s/%s", h->mnt, path);
			d->fd[i] = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		d->n++;
	}
	int fd = d->fd[i] >= 0 ? openat(d->fd[i], name, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_NOTFOUND : CLBSD_E_INTERNAL,
				     errno, "read %s/%s/%s", h->mnt, path, name);
	int rc = pread_all(fd, buf, size);
	if (rc < 0) {
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -rc, "read %s/%s/%s", h->mnt, path,
				     name);
	}
	if (kept && stat_fd_budget(d->sc)) {
		*kept = fd;
		d->sc->nfd++;
	} else {
		close(fd);
	}
	return 0;
}

static int stat_u64(struct stat_dirs *d, const struct cg_hier *h, const char *path,
		    const char *name, int slot, uint64_t *v, bool *unlimited, struct clbsd_err *err)
{
	char buf[64];
	int rc = read_at(d, h, path, name, slot, buf, sizeof(buf), err);
	if (rc < 0)
		return rc;
	if (!parse_u64(buf, v, unlimited))
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"%s/%s/%s: unexpected content", h->mnt, path, name);
	return 0;
}

static int stat_key(struct stat_dirs *d, const struct cg_hier *h, const char *path,
		    const char *name, int slot, const char *key, uint64_t *v, struct clbsd_err *err)
{
	char buf[4096];
	int rc = read_at(d, h, path, name, slot, buf, sizeof(buf), err);
	if (rc < 0)
		return rc;
	parse_key(buf, key, v);
	return 0;
}

/* A memory limit as the kernel keeps it: whole pages. */
static uint64_t memory_limit_of(int64_t set)
{
	static uint64_t page;
	if (!page) {
		long ps = sysconf(_SC_PAGESIZE);
		page = ps > 0 ? (uint64_t)ps : 4096;
	}
	if (set <= 0)
		return 0;
	uint64_t b = (uint64_t)set / page * page;
	return b >= V1_UNLIMITED ? 0 : b;
}

/*
 * Block I/O bytes, when the cgroup has them (v2 io.stat: "8:0 rbytes=N
 * wbytes=N ..."; v1 blkio.throttle.io_service_bytes: "8:0 Read N" lines).
 * Optional: a cgroup without the file (a native container on v1 has no
 * blkio cgroup of its own) leaves io_known false, it is no error.
 */
static void read_io(struct stat_dirs *d, const struct cg_sys *cg, const char *path,
		    struct rt_stats *st)
{
	const struct cg_hier *h = find_ctrl(cg, "blkio");
	if (!h)
		h = find_ctrl(cg, "io");
	if (!h)
		return;
	char buf[8192];
	struct clbsd_err err;
	if (read_at(d, h, path, h->v2 ? "io.stat" : "blkio.throttle.io_service_bytes", SF_IO, buf,
		    sizeof(buf), &err) < 0) {
		if (err.kind == CLBSD_E_NOTFOUND && d->f)
			d->f->fd[SF_IO] = SF_ABSENT;
		return;
	}
	uint64_t rd = 0, wr = 0;
	for (char *line = buf; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (h->v2) {
			char *save = NULL;
			for (char *t = strtok_r(line, " ", &save); t;
			     t = strtok_r(NULL, " ", &save)) {
				if (strncmp(t, "rbytes=", 7) == 0)
					rd += strtoull(t + 7, NULL, 10);
				else if (strncmp(t, "wbytes=", 7) == 0)
					wr += strtoull(t + 7, NULL, 10);
			}
		} else {
			char op[16];
			unsigned long long n;
			if (sscanf(line, "%*s %15s %llu", op, &n) == 2) {
				if (strcmp(op, "Read") == 0)
					rd += n;
				else if (strcmp(op, "Write") == 0)
					wr += n;
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	st->io_read_bytes = rd;
	st->io_write_bytes = wr;
	st->io_known = true;
}

static int read_stats(struct stat_dirs *d, const struct cg_sys *cg, const char *path,
		      const struct rt_limits *set, struct rt_stats *st, struct clbsd_err *err)
{
	const struct cg_hier *h;
	bool unl;
	int rc = 0;

	if ((h = find_ctrl(cg, "cpuacct"))) {
		rc = stat_u64(d, h, path, "cpuacct.usage", SF_CPU, &st->cpu_usage_ns, NULL, err);
	} else if ((h = find_v2(cg))) {
		uint64_t us = 0;
		rc = stat_key(d, h, path, "cpu.stat", SF_CPU, "usage_usec", &us, err);
		st->cpu_usage_ns = us * 1000;
	}
	if (rc < 0)
		return rc;

	if ((h = find_ctrl(cg, "memory"))) {
		if ((rc = stat_u64(d, h, path, h->v2 ? "memory.current" : "memory.usage_in_bytes",
				   SF_MEM, &st->memory_usage, NULL, err)) < 0 ||
		    (rc = stat_key(d, h, path, h->v2 ? "memory.events" : "memory.oom_control",
				   SF_OOM, "oom_kill", &st->oom_kills, err)) < 0)
			return rc;
		if (set)
			st->memory_limit = memory_limit_of(set->memory);
		else if ((rc = stat_u64(d, h, path, h->v2 ? "memory.max" : "memory.limit_in_bytes",
					SF_MEM_MAX, &st->memory_limit, &unl, err)) < 0)
			return rc;
		if (st->memory_limit >= V1_UNLIMITED)
			st->memory_limit = 0;
	}
	if ((h = find_ctrl(cg, "pids"))) {
		if ((rc = stat_u64(d, h, path, "pids.current", SF_PIDS, &st->pids_current, NULL,
				   err)) < 0)
			return rc;
		if (set)
			st->pids_limit = set->pids > 0 ? (uint64_t)set->pids : 0;
		else if ((rc = stat_u64(d, h, path, "pids.max", SF_PIDS_MAX, &st->pids_limit, &unl,
					err)) < 0)
			return rc;
	}
	read_io(d, cg, path, st);
	return 0;
}

int cg_stats(const struct cg_sys *cg, const char *path, const struct rt_limits *set,
	     struct rt_stats *out, struct clbsd_err *err)
{
	struct rt_stats st = {0};
	struct stat_dirs d = {.sc = cg->stats};
	/* Taken by another reader or a forget: read by path this once, keep nothing. */
	bool locked = d.sc && pthread_mutex_trylock(&d.sc->lock) == 0;
	if (locked)
		d.f = stat_files_get(d.sc, path + strspn(path, "/"));
	int rc = read_stats(&d, cg, path, set, &st, err);
	bool sweep = false;
	if (locked) {
		/* A cgroup that is gone keeps nothing. */
		if (rc < 0) {
			struct stat_files **l = stat_link(d.sc, d.f->path);
			*l = d.f->next;
			d.sc->n--;
			stat_files_free(d.sc, d.f);
		}
		sweep = d.sc->sweep_due;
		d.sc->sweep_due = false;
		stat_unlock(d.sc);
	}
	stat_dirs_close(&d);
	if (sweep)
		stat_sweep(d.sc);
	if (rc < 0)
		return clbsd_err_prefix(err, "stats of cgroup %s", path);
	*out = st;
	return 0;
}

/*
 * Close the kept stats files of path (it is being removed), now or, when
 * the lock is taken (a scrape reading a cgroup), by its holder: the caller
 * (the loop, removing a container) never waits for a scrape.
 */
static void stat_forget(const struct cg_sys *cg, const char *path)
{
	struct cg_stat_cache *sc = cg->stats;
	if (!sc)
		return;
	const char *rel = path + strspn(path, "/");
	if (pthread_mutex_trylock(&sc->lock) == 0) {
		forget_locked(sc, rel);
		stat_unlock(sc);
		return;
	}
	struct stat_forget_item *fi = xmalloc(sizeof(*fi));
	fi->path = xstrdup(rel);
	fi->next = atomic_load(&sc->forgets);
	while (!atomic_compare_exchange_weak(&sc->forgets, &fi->next, fi))
		;
	/* The holder may have let go before the push: then this is the next taker. */
	if (pthread_mutex_trylock(&sc->lock) == 0)
		stat_unlock(sc);
}

int cg_oom_kills(const struct cg_sys *cg, const char *path, uint64_t *n, struct clbsd_err *err)
{
	const struct cg_hier *h = find_ctrl(cg, "memory");
	*n = 0;
	if (!h)
		return 0;
	autofree char *o = file(h, path, h->v2 ? "memory.events" : "memory.oom_control");
	int rc = read_key(o, "oom_kill", n, err);
	return rc < 0 ? clbsd_err_prefix(err, "OOM kills of cgroup %s", path) : 0;
}

int cg_oom_fd(const struct cg_sys *cg, const char *path, int *fd, struct clbsd_err *err)
{
	const struct cg_hier *h = find_ctrl(cg, "memory");
	if (!h)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"OOM events of cgroup %s: no memory controller", path);
	if (h->v2) {
		autofree char *p = file(h, path, "memory.events");
		autoclose int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (in < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "inotify_init1");
		if (inotify_add_watch(in, p, IN_MODIFY) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "watch %s", p);
		*fd = steal_fd(&in);
		return 0;
	}
	autofree char *p = file(h, path, "memory.oom_control");
	autofree char *ctl = file(h, path, "cgroup.event_control");
	autoclose int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "eventfd");
	autoclose int ofd = open(p, O_RDONLY | O_CLOEXEC);
	if (ofd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", p);
	char v[32];
	snprintf(v, sizeof(v), "%d %d", efd, ofd);
	int rc = fs_write_str(ctl, v, err);
	if (rc < 0)
		return clbsd_err_prefix(err, "OOM events of cgroup %s", path);
	*fd = steal_fd(&efd);
	return 0;
}

int cg_destroy(const struct cg_sys *cg, const char *path, int timeout_ms, struct clbsd_err *err)
{
	stat_forget(cg, path);
	int64_t deadline = time_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		autofree char *busy = NULL;
		for (size_t i = 0; i < cg->n; i++) {
			autofree char *d = xasprintf("%s/%s", cg->h[i].mnt, path);
			if (rmdir(d) == 0 || errno == ENOENT)
				continue;
			if (errno != EBUSY)
				return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "rmdir %s", d);
			free(busy);
			busy = steal_ptr(&d);
		}
		if (!busy)
			return 0;
		if (time_mono_ns() >= deadline)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"remove cgroup %s: still busy (processes or child "
						"cgroups left); kill them and retry",
						busy);
		nap_ms(10);
	}
}
