/*
 * Send and receive of the zfs driver: one container (state, rootfs,
 * volumes) at one snapshot as a single stream that wraps a `zfs send` per
 * dataset. The format and the undo on a cut stream are in docs/storage.md.
 */
#include "driver.h"
#include "internal.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define STREAM_MAGIC     "CLBSD-ZFS-SEND 1\n"
#define STREAM_MAGIC_LEN (sizeof(STREAM_MAGIC) - 1)
#define FRAME_MAX        (1u << 20)

/* ---- send and receive ---- */

/*
 * The stream: STREAM_MAGIC, then frames (a 4-byte big-endian length and
 * that many bytes). The first frame is a JSON header naming the parts; each
 * part is the output of one `zfs send` cut into frames and ended by an empty
 * frame; the last frame is a JSON trailer {"end":N}. A reader that does not
 * find the trailer knows the stream was cut short.
 */
static int put_frame(int fd, const void *data, uint32_t len)
{
	unsigned char h[4] = {len >> 24, len >> 16, len >> 8, len};
	int r = write_all(fd, h, 4);
	if (r == 0 && len)
		r = write_all(fd, data, len);
	return r;
}

/* Read one frame into b (reset first). -EPIPE when the stream ends early. */
static int get_frame(int fd, struct buf *b, struct clbsd_err *err)
{
	unsigned char h[4];
	buf_reset(b);
	int r = read_exact(fd, h, 4);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len > FRAME_MAX)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream: a frame of %u bytes", len);
	buf_grow(b, len);
	if (len && (r = read_exact(fd, b->data, len)) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	b->len = len;
	b->data[len] = '\0';
	return 0;
}

/* Fork argv with stdin/stdout as given (-1: /dev/null) and stderr to errfd. */
static pid_t spawn(char *const argv[], int in, int out, int errfd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	dup2(in >= 0 ? in : null, 0);
	dup2(out >= 0 ? out : null, 1);
	dup2(errfd, 2);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Wait for pid; on failure the message holds the first line of its stderr (errfd). */
static int reap(pid_t pid, const char *what, int errfd, struct clbsd_err *err)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char msg[512] = "";
	ssize_t n = pread(errfd, msg, sizeof(msg) - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (WIFEXITED(status))
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s exited with %d%s%s", what,
					WEXITSTATUS(status), *msg ? ": " : "", msg);
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s killed by signal %d", what,
				WTERMSIG(status));
}

/* zfs send [-i @from] snap, framed onto fd. */
static int send_one(const char *snap, const char *from, int fd, struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "send");
	if (from) {
		strv_push(&v, "-i");
		strv_push_owned(&v, xasprintf("@%s", from));
	}
	strv_push(&v, snap);
	int p[2];
	autoclose int efd = memfd_create("zfs-send-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: pipe", snap);
	}
	pid_t pid = spawn(v.v, -1, p[1], efd);
	close(p[1]);
	strv_release(&v);
	if (pid < 0) {
		close(p[0]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: fork", snap);
	}
	autofree char *b = xmalloc(FRAME_MAX);
	int werr = 0;
	for (;;) {
		ssize_t n = read(p[0], b, FRAME_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((werr = put_frame(fd, b, (uint32_t)n)) < 0) {
			kill(pid, SIGTERM);
			break;
		}
	}
	close(p[0]);
	int r = reap(pid, "zfs send", efd, err);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	if (r < 0)
		return clbsd_err_prefix(err, "send %s", snap);
	if ((werr = put_frame(fd, NULL, 0)) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	return 0;
}

/* Frames from fd until the empty one, into `zfs recv [-F] target`. */
static int recv_one(int fd, const char *target, bool force, struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "recv");
	if (force) /* the target changed since @from (zfs-fuse updates atimes) */
		strv_push(&v, "-F");
	strv_push(&v, target);
	int p[2];
	autoclose int efd = memfd_create("zfs-recv-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: pipe", target);
	}
	pid_t pid = spawn(v.v, p[0], -1, efd);
	close(p[0]);
	strv_release(&v);
	if (pid < 0) {
		close(p[1]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: fork", target);
	}
	struct buf b = BUF_INIT;
	struct clbsd_err rerr;
	int r = 0, werr = 0;
	for (;;) {
		if ((r = get_frame(fd, &b, &rerr)) < 0 || b.len == 0)
			break;
		/* A dead zfs recv (EPIPE) says why when it is reaped. */
		if (werr == 0)
			werr = write_all(p[1], b.data, b.len);
	}
	buf_release(&b);
	/* Closing the pipe early makes zfs recv see a short stream: it keeps nothing. */
	close(p[1]);
	int w = reap(pid, "zfs recv", efd, err);
	if (r < 0) {
		*err = rerr;
		return clbsd_err_prefix(err, "receive %s: the stream ends early or is damaged",
					target);
	}
	if (w < 0)
		return clbsd_err_prefix(err, "receive %s", target);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "receive %s", target);
	return 0;
}

int zfs_send(struct storage *st, const char *name, const char *label, const char *from,
		  int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0 ||
	    (from && storage_check_label(from, err) < 0))
		return -err->code;
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *swhat = xasprintf("snapshot %s of container %s", label, name);
	autofree char *snap = xasprintf("%s@%s", top, label);
	struct strv ds = STRV_INIT, vols = STRV_INIT;
	json_t *hdr = json_object(), *parts = json_array();
	json_object_set_new(hdr, "format", json_string("clbsd-zfs-send"));
	json_object_set_new(hdr, "name", json_string(name));
	json_object_set_new(hdr, "label", json_string(label));
	json_object_set_new(hdr, "from", from ? json_string(from) : json_null());
	int r = zfs_need_managed(swhat, snap, err);
	if (r == 0)
		r = zfs_parts_of(st, name, &ds, &vols, err);
	/* Decide every part first, so a missing snapshot fails before any byte is sent. */
	bool *incr = xcalloc(ds.n + 1, sizeof(bool));
	bool *skip = xcalloc(ds.n + 1, sizeof(bool));
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		autofree char *s = xasprintf("%s@%s", ds.v[i], label);
		autofree char *f = from ? xasprintf("%s@%s", ds.v[i], from) : NULL;
		bool here = false, base = false;
		r = zfs_has(s, ZFS_DS_MANAGED, err, &here);
		if (r == 0 && f)
			r = zfs_has(f, ZFS_DS_MANAGED, err, &base);
		if (r < 0)
			break;
		if (!here) { /* a volume made after the snapshot */
			skip[i] = true;
			continue;
		}
		if (f && !base && i < 2) {
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "no snapshot %s of %s to send changes from", from,
					     ds.v[i]);
			break;
		}
		incr[i] = base;
		struct strv kv = STRV_INIT;
		r = zfs_local_props(ds.v[i], &kv, err);
		json_t *pj = json_object(), *props = json_object();
		json_object_set_new(pj, "kind",
				    json_string(i == 0 ? "state" : i == 1 ? "rootfs" : "volume"));
		if (i >= 2)
			json_object_set_new(pj, "volume", json_string(vols.v[i - 2]));
		json_object_set_new(pj, "incremental", json_boolean(base));
		for (size_t k = 0; k < kv.n; k++) {
			char *eq = strchr(kv.v[k], '=');
			*eq = '\0';
			json_object_set_new(props, kv.v[k], json_string(eq + 1));
		}
		json_object_set_new(pj, "props", props);
		json_array_append_new(parts, pj);
		strv_release(&kv);
	}
	json_object_set_new(hdr, "parts", parts);
	size_t sent = 0;
	if (r == 0) {
		autofree char *line = json_line(hdr);
		int w = write_all(fd, STREAM_MAGIC, STREAM_MAGIC_LEN);
		if (w == 0)
			w = put_frame(fd, line, (uint32_t)strlen(line));
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, w, "write stream");
	}
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		if (skip[i])
			continue;
		autofree char *s = xasprintf("%s@%s", ds.v[i], label);
		r = send_one(s, incr[i] ? from : NULL, fd, err);
		sent++;
	}
	if (r == 0) {
		autofree char *end = xasprintf("{\"end\":%zu}", sent);
		int w = put_frame(fd, end, (uint32_t)strlen(end));
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, w, "write stream");
	}
	json_decref(hdr);
	free(incr);
	free(skip);
	strv_release(&ds);
	strv_release(&vols);
	if (r < 0)
		return clbsd_err_prefix(err, "send container %s@%s", name, label);
	return 0;
}

/* What receive made or changed, to undo on failure. */
struct recv_undo {
	struct strv made;    /* datasets received whole: destroy */
	struct strv touched; /* datasets that got an increment: back to @from */
	bool made_vols;
};

static void recv_rollback(struct recv_undo *u, const char *vols, const char *label,
			  const char *from)
{
	struct clbsd_err ignore;
	for (size_t i = u->touched.n; i > 0; i--) {
		autofree char *s = xasprintf("%s@%s", u->touched.v[i - 1], label);
		autofree char *f = xasprintf("%s@%s", u->touched.v[i - 1], from);
		zfs_destroy(s, false, &ignore);
		zfs_run(NULL, &ignore, "rollback", f, NULL);
	}
	for (size_t i = u->made.n; i > 0; i--)
		zfs_destroy_tree(u->made.v[i - 1], &ignore);
	if (u->made_vols)
		zfs_destroy_tree(vols, &ignore);
}

/* Apply the props of a stream part ({"quota":"123",...}) to ds. */
static int apply_stream_props(const char *ds, json_t *props, struct clbsd_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(props, k, v)
	{
		static const char *const ok[] = {"quota", "reservation", "compression",
						 "recordsize", PROP_HASH};
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(ok) && !known; i++)
			known = strcmp(k, ok[i]) == 0;
		if (!known || !json_is_string(v))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream: property \"%s\"", k);
		autofree char *kv = xasprintf("%s=%s", k, json_string_value(v));
		if (zfs_run(NULL, err, "set", kv, ds, NULL) < 0)
			return clbsd_err_prefix(err, "zfs set %s on %s", kv, ds);
	}
	return 0;
}

int zfs_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	char magic[STREAM_MAGIC_LEN];
	int r = read_exact(fd, magic, sizeof(magic));
	if (r < 0 || memcmp(magic, STREAM_MAGIC, sizeof(magic)) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"receive container %s: not a stream from the zfs driver's "
					"send (a dir driver stream is a tar archive)",
					name);
	struct buf b = BUF_INIT;
	json_t *hdr = NULL;
	if (get_frame(fd, &b, err) < 0) {
		buf_release(&b);
		return clbsd_err_prefix(err, "receive container %s", name);
	}
	hdr = json_loadb(b.data, b.len, 0, NULL);
	json_t *parts = json_object_get(hdr, "parts");
	const char *label = json_str(hdr, "label");
	const char *from = json_str(hdr, "from");
	size_t np = json_array_size(parts);
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *what = xasprintf("container %s", name);
	struct recv_undo u = {STRV_INIT, STRV_INIT, false};
	bool vols_there = false;
	if (!json_is_object(hdr) || !json_is_array(parts) || np < 2 || !label ||
	    storage_check_label(label, err) < 0 || (from && storage_check_label(from, err) < 0))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream header");
	else if (!from) {
		r = zfs_need_absent(what, top, err);
		if (r == 0)
			r = zfs_need_empty_dir(dir, err);
	} else {
		autofree char *f = xasprintf("%s@%s", top, from);
		autofree char *s = xasprintf("%s@%s", top, label);
		autofree char *fwhat = xasprintf("snapshot %s of container %s", from, name);
		autofree char *lwhat = xasprintf("snapshot %s of container %s", label, name);
		r = zfs_need_managed(fwhat, f, err);
		if (r == 0)
			r = zfs_need_absent(lwhat, s, err);
		/* Pages cached by the mounted FUSE file system would hide the update. */
		if (r == 0)
			r = zfs_unmount_tree(top, err);
	}
	if (r == 0)
		r = zfs_has(vols, ZFS_DS_MANAGED, err, &vols_there);
	if (r == 0 && from && vols_there)
		r = zfs_unmount_tree(vols, err);
	for (size_t i = 0; r == 0 && i < np; i++) {
		json_t *pj = json_array_get(parts, i);
		const char *kind = json_str(pj, "kind");
		const char *vol = json_str(pj, "volume");
		bool incr = json_bool(pj, "incremental", false);
		autofree char *target = NULL;
		if (i == 0 && kind && !strcmp(kind, "state"))
			target = xstrdup(top);
		else if (i == 1 && kind && !strcmp(kind, "rootfs"))
			target = xasprintf("%s/rootfs", top);
		else if (i >= 2 && kind && !strcmp(kind, "volume") && vol && valid_name(vol))
			target = xasprintf("%s/%s", vols, vol);
		if (!target || (incr && !from)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: part %zu", i + 1);
			break;
		}
		if (!incr && i >= 2) {
			autofree char *vwhat = xasprintf("volume %s of container %s", vol, name);
			bool made = false;
			r = zfs_need_absent(vwhat, target, err);
			if (r == 0 && !vols_there)
				r = zfs_ensure_vols(st, name, &made, err);
			vols_there = vols_there || made;
			u.made_vols = u.made_vols || made;
			if (r < 0)
				break;
		}
		r = recv_one(fd, target, incr, err);
		if (r == 0 && !incr) {
			strv_push(&u.made, target);
			r = zfs_run(NULL, err, "set", OPT_MANAGED, target, NULL);
			if (r == 0)
				r = apply_stream_props(target, json_object_get(pj, "props"), err);
		} else if (r == 0) {
			strv_push(&u.touched, target);
		}
	}
	if (r == 0) {
		json_t *end = NULL;
		r = get_frame(fd, &b, err);
		if (r == 0)
			end = json_loadb(b.data, b.len, 0, NULL);
		if (r == 0 && json_int(end, "end", -1) != (int64_t)np)
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "the stream has no end mark: cut short?");
		json_decref(end);
	}
	if (r < 0)
		recv_rollback(&u, vols, label ? label : "", from ? from : "");
	/* Mount again what was unmounted, and mount what arrived. */
	struct clbsd_err e2;
	bool vols_now = false;
	if (r == 0 || from)
		zfs_mount_tree(top, &e2);
	if (zfs_has(vols, ZFS_DS_MANAGED, &e2, &vols_now) == 0 && vols_now)
		zfs_mount_tree(vols, &e2);
	if (r < 0 && !from)
		rmdir(dir);
	strv_release(&u.made);
	strv_release(&u.touched);
	json_decref(hdr);
	buf_release(&b);
	if (r < 0)
		return clbsd_err_prefix(err, "receive container %s", name);
	return 0;
}
