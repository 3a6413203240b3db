/*
 * Applying a rendered configuration to nginx: the ops of struct ingress_ops.
 *
 * `nginx -t` catches what nginx can see in the text and the files it names
 * (syntax, a missing or bad certificate), but it does not bind: a listen
 * address taken by another program only fails when the master reloads, and
 * the master then keeps its old configuration and logs why. So after the
 * SIGHUP this waits for the master to answer: new workers mean it took the
 * configuration, an [emerg] line in its error log means it did not. Either
 * way, what is on disk afterwards is what nginx serves.
 */
#include "ingress/ingress.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 1024 /* workers of the current and of draining generations */

void ingress_outcome_release(struct ingress_outcome *o)
{
	free(o->message);
	o->message = NULL;
}

int ingress_prepare_dir(const char *dir, struct clbsd_err *err)
{
	/*
	 * nginx's workers run as nobody and need only to reach tmp/: the
	 * directory is search-only for others and its logs are root's.
	 */
	static const struct {
		const char *sub;
		mode_t mode;
	} subs[] = {{"", 0711}, {"/logs", 0700}, {"/tmp", 0755}};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		autofree char *p = xasprintf("%s%s", dir, subs[i].sub);
		if (fs_mkdir_p(p, subs[i].mode, err) < 0)
			return clbsd_err_prefix(err, "ingress directory");
		if (chmod(p, subs[i].mode) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chmod %s", p);
	}
	return 0;
}

/*
 * nginx's complaints without its "nginx: " prefixes and the closing "test
 * failed" line: the [emerg]/[alert]/[crit] lines when there are any, else
 * everything it said.
 */
static char *nginx_words(const char *text)
{
	struct buf all = BUF_INIT, bad = BUF_INIT;
	autofree char *copy = xstrdup(text ? text : "");
	char *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "nginx: ", 7) == 0)
			l += 7;
		if (strstr(l, "test failed") || !*l)
			continue;
		struct buf *t = &all;
		if (strstr(l, "[emerg]") || strstr(l, "[alert]") || strstr(l, "[crit]"))
			t = &bad;
		if (t->len)
			buf_addc(t, '\n');
		buf_adds(t, l);
	}
	struct buf *keep = bad.len ? &bad : &all;
	if (!keep->len)
		buf_adds(keep, "nginx gave no reason");
	char *s = buf_detach(keep, NULL);
	buf_release(&all);
	buf_release(&bad);
	return s;
}

/* Run argv with stdout and stderr into *output; the exit status or -errno. */
static int run_capture(char *const argv[], char **output)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	struct buf b = BUF_INIT;
	char chunk[4096];
	for (;;) {
		ssize_t n = read(p[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b.len < (1u << 20))
			buf_add(&b, chunk, (size_t)n);
	}
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*output = buf_detach(&b, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int nginx_test(const struct ingress_target *t, const char *conf_path, struct clbsd_err *err)
{
	autofree char *bin = xstrdup(t->nginx ? t->nginx : "nginx");
	autofree char *prefix = xasprintf("%s/", t->dir);
	autofree char *conf = xstrdup(conf_path);
	char *argv[] = {bin, "-t", "-q", "-p", prefix, "-c", conf, NULL};
	autofree char *output = NULL;
	int st = run_capture(argv, &output);
	if (st < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, st, "run %s -t", bin);
	if (st == 127)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOENT,
					"%s not found: install nginx (scripts/deps.sh does)", bin);
	if (st != 0) {
		autofree char *words = nginx_words(output);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", words);
	}
	return 0;
}

static pid_t read_pid(const char *dir)
{
	autofree char *path = xasprintf("%s/nginx.pid", dir);
	autofree char *text = NULL;
	struct clbsd_err err;
	long long v;
	if (fs_read_file(path, &text, NULL, &err) < 0)
		return 0;
	text[strcspn(text, "\n")] = '\0';
	if (parse_int(text, 1, INT32_MAX, &v) < 0)
		return 0;
	return (pid_t)v;
}

/* The master's children (its workers), from /proc. */
static size_t children(pid_t master, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
		char *rp = strrchr(buf, ')');
		char state;
		int ppid;
		if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == master &&
		    state != 'Z')
			out[n++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return n;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* [emerg] lines the master wrote to its error log after offset `from`. */
static char *new_emerg(const char *log_path, off_t from)
{
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	if (lseek(fd, from, SEEK_SET) == from)
		while ((n = read(fd, chunk, sizeof(chunk))) > 0 && b.len < (1u << 20))
			buf_add(&b, chunk, (size_t)n);
	close(fd);
	struct buf out = BUF_INIT;
	char *save = NULL;
	for (char *l = b.data ? strtok_r(b.data, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *tag = strstr(l, "[emerg]");
		if (!tag)
			continue;
		if (out.len)
			buf_addc(&out, '\n');
		buf_adds(&out, tag); /* without the time stamp */
	}
	buf_release(&b);
	return out.len ? buf_detach(&out, NULL) : (buf_release(&out), NULL);
}

/*
 * An old worker has stopped taking connections: it exited, or it is
 * draining (nginx retitles a worker "worker process is shutting down" as it
 * closes its listening sockets).
 */
static bool worker_retired(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true; /* a zombie has no command line */
	buf[n] = '\0';
	return strstr(buf, "shutting down") != NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Signal the master and wait for its verdict: 1 took it, 0 no verdict in
 * time, -1 refused (*why set). "Took it" means new workers run and the old
 * ones no longer accept, so a request sent after this sees the new routes.
 */
static int reload(pid_t master, const char *log_path, int timeout_ms, char **why)
{
	autofree pid_t *before = xcalloc(MAX_CHILDREN, sizeof(pid_t));
	autofree pid_t *now = xcalloc(MAX_CHILDREN, sizeof(pid_t));
	size_t nb = children(master, before, MAX_CHILDREN);
	off_t log_from = file_size(log_path);
	if (kill(master, SIGHUP) < 0)
		return 0;
	int64_t end = time_mono_ns() + (int64_t)timeout_ms * 1000000;
	int wait_ms = 1;
	bool started = false;
	char *pending = NULL; /* a bind() failure the master is still retrying */
	while (time_mono_ns() < end) {
		size_t nn = started ? 0 : children(master, now, MAX_CHILDREN);
		for (size_t i = 0; i < nn && !started; i++) {
			bool old = false;
			for (size_t j = 0; j < nb && !old; j++)
				old = now[i] == before[j];
			started = !old;
		}
		if (started) {
			bool retired = true;
			for (size_t j = 0; j < nb && retired; j++)
				retired = worker_retired(before[j]);
			if (retired) {
				free(pending);
				return 1;
			}
		}
		/*
		 * A bind() that fails with EADDRINUSE is retried by the master
		 * for 2.5 s and may still succeed; only "still could not
		 * bind()" is final then. Any other [emerg] is final at once.
		 */
		char *e = started ? NULL : new_emerg(log_path, log_from);
		if (e &&
		    (!strstr(e, "Address already in use") || strstr(e, "still could not bind()"))) {
			free(pending);
			*why = e;
			return -1;
		}
		if (e) {
			free(pending);
			pending = e;
		}
		if (kill(master, 0) < 0)
			break;
		sleep_ms(wait_ms);
		if (wait_ms < 20)
			wait_ms *= 2;
	}
	if (pending) {
		*why = pending;
		return -1;
	}
	return 0;
}

/* The addresses of the "listen ADDR ...;" lines of a rendered text. */
static void listen_addrs(const char *text, struct strv *out)
{
	for (const char *p = text; p && *p;) {
		const char *e = strchrnul(p, '\n');
		const char *q = p;
		while (q < e && (*q == ' ' || *q == '\t'))
			q++;
		if ((size_t)(e - q) > 7 && strncmp(q, "listen ", 7) == 0) {
			q += 7;
			size_t l = strcspn(q, " ;\n");
			autofree char *a = xstrndup(q, l);
			bool dup = false;
			for (size_t i = 0; i < out->n && !dup; i++)
				dup = strcmp(out->v[i], a) == 0;
			if (!dup)
				strv_push(out, a);
		}
		p = *e ? e + 1 : NULL;
	}
}

/* Can nginx bind addr ("IP:PORT" or "[IPv6]:PORT")? -EADDRINUSE when another socket holds it. */
static int try_bind(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	if (!colon)
		return 0;
	int port = atoi(colon + 1);
	autofree char *host = addr[0] == '[' ? xstrndup(addr + 1, (size_t)(colon - addr - 2))
					     : xstrndup(addr, (size_t)(colon - addr));
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int family;
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return 0;
		family = AF_INET6;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return 0;
		family = AF_INET;
		len = sizeof(*s4);
	}
	autoclose int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int one = 1;
	/* As nginx does: SO_REUSEADDR, and [::] for IPv6 only. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE)
		return -EADDRINUSE;
	return 0;
}

/*
 * The master retries a bind() that fails for 2.5 s before it gives up, and
 * may then succeed after all, so a listen address another program holds is
 * caught here first: every address of the new text that the running nginx
 * does not hold already (not in the old text, or every one when nginx does
 * not run) must be free.
 */
static char *taken_listen(const char *text, const char *old, bool running)
{
	struct strv want = STRV_INIT, have = STRV_INIT;
	listen_addrs(text, &want);
	if (running && old)
		listen_addrs(old, &have);
	char *why = NULL;
	for (size_t i = 0; i < want.n && !why; i++) {
		bool held = false;
		for (size_t j = 0; j < have.n && !held; j++)
			held = strcmp(want.v[i], have.v[j]) == 0;
		if (!held && try_bind(want.v[i]) == -EADDRINUSE)
			why = xasprintf("listen address %s is in use by another program; free it "
					"or change :ingress :listen",
					want.v[i]);
	}
	strv_release(&want);
	strv_release(&have);
	return why;
}

static int nginx_apply(const struct ingress_target *t, const char *text,
		       struct ingress_outcome *out, struct clbsd_err *err)
{
	*out = (struct ingress_outcome){0};
	int r = ingress_prepare_dir(t->dir, err);
	if (r < 0)
		return r;
	autofree char *conf = xasprintf("%s/nginx.conf", t->dir);
	autofree char *old = NULL;
	struct clbsd_err e2;
	if (fs_read_file(conf, &old, NULL, &e2) == 0 && strcmp(old, text) == 0)
		return 0;
	out->changed = true;

	autofree char *tmp = xasprintf("%s/.nginx.conf.XXXXXX", t->dir);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "ingress: create %s", tmp);
	fchmod(fd, 0644);
	size_t len = strlen(text);
	if (write_all(fd, text, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "ingress: write %s", tmp);
	}
	close(fd);
	r = nginx_test(t, tmp, err);
	if (r < 0) {
		unlink(tmp);
		if (err->kind == CLBSD_E_INVALID) {
			out->rejected = true;
			out->message = xstrdup(err->msg);
			clbsd_err_prefix(err, "nginx rejected the new configuration (the old one "
					      "keeps serving)");
		}
		return r;
	}
	pid_t master = t->master > 0 ? t->master : t->master < 0 ? 0 : read_pid(t->dir);
	bool running = master > 0 && kill(master, 0) == 0;
	char *taken = taken_listen(text, old, running);
	if (taken) {
		unlink(tmp);
		out->rejected = true;
		out->message = taken;
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EADDRINUSE,
					"the new configuration was not applied (the old one keeps "
					"serving): %s",
					taken);
	}
	if (rename(tmp, conf) < 0) {
		int e = errno;
		unlink(tmp);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "ingress: rename to %s", conf);
	}
	int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}

	if (!running)
		return 0; /* not running: it reads the new file when it starts */
	autofree char *log_path = xasprintf("%s/logs/error.log", t->dir);
	char *why = NULL;
	int v = reload(master, log_path, t->reload_timeout_ms > 0 ? t->reload_timeout_ms : 5000,
		       &why);
	if (v > 0) {
		out->reloaded = true;
		return 0;
	}
	if (v == 0)
		return clbsd_err_setmsg(err, CLBSD_E_TIMEOUT, ETIMEDOUT,
					"ingress: nginx (pid %d) did not confirm the reload in "
					"time; see %s",
					(int)master, log_path);
	/* The master kept the old configuration: so does the disk. */
	out->rejected = true;
	out->message = why;
	if (old)
		fs_write_atomic(conf, old, strlen(old), 0644, &e2);
	else
		unlink(conf);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				"nginx rejected the new configuration at reload (the old one "
				"keeps serving): %s",
				why);
}

static const struct ingress_ops nginx_ops = {
	.apply = nginx_apply,
	.test = nginx_test,
};

const struct ingress_ops *ingress_nginx_ops(void)
{
	return &nginx_ops;
}
