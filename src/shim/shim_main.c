/*
 * clbsd-shim: the parent of one native container's init. The daemon starts
 * it with fork+exec (see the usage text for the contract); it detaches from
 * the daemon at once so the container survives the daemon being restarted or
 * killed, and reports on --ready-fd whether the container runs.
 */
#include "shim/shim.h"
#include "sys/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage[] =
	"usage: clbsd-shim --name NAME --spec FILE --socket PATH --state FILE --log-dir DIR\n"
	"                  --ready-fd N [--hold] [--net-hold] [--log-max-size BYTES]\n"
	"                  [--log-max-files N] [--scrollback BYTES]\n"
	"                  [--log-level error|warn|info|debug] [--filter-fd N]\n"
	"       clbsd-shim --pool --cgroup PATH --socket PATH --ready-fd N [--log-level L]\n"
	"                  [--filter-fd N]\n"
	"       clbsd-shim --run-spec FILE\n"
	"--filter-fd: the default syscall filter, compiled by clbsdd (a sealed memfd).\n"
	"Started by clbsdd for one native container, or ahead of one for its pool,\n"
	"or (--run-spec) for one step of an image build: the container runs in the\n"
	"foreground on this process's stdout and stderr and its exit status is ours\n"
	"(see docs/runtime.md); not meant to be run by hand.\n";

/* Report a start failure before the loop exists: on the ready fd and stderr. */
static int early_fail(int ready_fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int early_fail(int ready_fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "clbsd-shim: %s\n", msg);
	if (ready_fd >= 0) {
		json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
		char *s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (s) {
			write_all(ready_fd, s, strlen(s));
			write_all(ready_fd, "\n", 1);
			free(s);
		}
		close(ready_fd);
	}
	return 2;
}

static void on_sigpipe(int sig)
{
	(void)sig;
}

/*
 * Start from clean signal state: whatever the daemon ignored or blocked
 * would otherwise reach the container through us. SIGPIPE gets a no-op
 * handler rather than SIG_IGN because a handler is reset by execve() and an
 * ignore is not: the container must see the default SIGPIPE.
 */
static void signals_reset(void)
{
	sig_reset_ignored();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPIPE, &sa, NULL);
}

static int size_opt(const char *name, const char *v, int64_t *out, int ready_fd)
{
	struct clbsd_err err;
	if (parse_size(v, out, &err) < 0 || *out < 0)
		return early_fail(ready_fd, "--%s: %s", name, err.msg);
	return 0;
}

/*
 * --run-spec: run the spec's command in a fresh container in the foreground
 * (a build step): its stdin is /dev/null, its stdout and stderr are ours;
 * we exit with its status (shell convention) once it and its cgroup are gone.
 */
static int run_once(const char *spec_path)
{
	struct clbsd_err err;
	autofree char *json = NULL;
	struct rt_spec spec;
	if (fs_read_file(spec_path, &json, NULL, &err) < 0 ||
	    rt_spec_from_json(json, &spec, &err) < 0) {
		fprintf(stderr, "clbsd-shim: %s\n", err.msg);
		return 125;
	}
	const struct rt_ops *rt = rt_default_ops();
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct rt_stdio io = {.in = null, .out = 1, .err = 2};
	pid_t pid;
	int release_fd;
	if (rt->create(&spec, &io, &pid, &release_fd, &err) < 0) {
		fprintf(stderr, "clbsd-shim: %s\n", err.msg);
		rt_spec_release(&spec);
		return 125;
	}
	close(null);
	int rc = 0;
	if (rt->release(release_fd, &err) < 0) {
		fprintf(stderr, "clbsd-shim: %s\n", err.msg);
		rc = 127;
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0)
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* What the command left running dies with its pid namespace; the cgroup goes. */
	rt->kill_all(&spec, SIGKILL, &err);
	if (rt->destroy(&spec, &err) < 0)
		fprintf(stderr, "clbsd-shim: %s\n", err.msg);
	rt_spec_release(&spec);
	return rc;
}

/* Forked by the zygote: its parent is not the daemon, no need to detach. */
static bool zygote_child;

/* The command line's values before they are checked (shim_opts gets them). */
struct args {
	const char *size_s, *files_s, *scroll_s, *level_s, *ready_s, *cgroup, *filter_s;
	bool pool, bad;
};

/*
 * Read the options into *o and *a (a->bad: one is unknown, or an operand
 * follows). Returns -1 to go on, or the exit status
 * when the command is done already (--help, --run-spec).
 */
static int parse_args(int argc, char **argv, struct shim_opts *o, struct args *a)
{
	enum {
		O_NAME = 256,
		O_SPEC,
		O_SOCKET,
		O_STATE,
		O_LOGDIR,
		O_READY,
		O_HOLD,
		O_NETHOLD,
		O_MAXSIZE,
		O_MAXFILES,
		O_SCROLL,
		O_LEVEL,
		O_POOL,
		O_CGROUP,
		O_RUNSPEC,
		O_FILTER
	};
	static const struct option opts[] = {
		{"name", required_argument, NULL, O_NAME},
		{"spec", required_argument, NULL, O_SPEC},
		{"socket", required_argument, NULL, O_SOCKET},
		{"state", required_argument, NULL, O_STATE},
		{"log-dir", required_argument, NULL, O_LOGDIR},
		{"ready-fd", required_argument, NULL, O_READY},
		{"hold", no_argument, NULL, O_HOLD},
		{"net-hold", no_argument, NULL, O_NETHOLD},
		{"log-max-size", required_argument, NULL, O_MAXSIZE},
		{"log-max-files", required_argument, NULL, O_MAXFILES},
		{"scrollback", required_argument, NULL, O_SCROLL},
		{"log-level", required_argument, NULL, O_LEVEL},
		{"pool", no_argument, NULL, O_POOL},
		{"cgroup", required_argument, NULL, O_CGROUP},
		{"run-spec", required_argument, NULL, O_RUNSPEC},
		{"filter-fd", required_argument, NULL, O_FILTER},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_NAME:
			o->name = optarg;
			break;
		case O_SPEC:
			o->spec_path = optarg;
			break;
		case O_SOCKET:
			o->sock_path = optarg;
			break;
		case O_STATE:
			o->state_path = optarg;
			break;
		case O_LOGDIR:
			o->log_dir = optarg;
			break;
		case O_READY:
			a->ready_s = optarg;
			break;
		case O_HOLD:
			o->hold = true;
			break;
		case O_NETHOLD:
			o->net_hold = true;
			break;
		case O_MAXSIZE:
			a->size_s = optarg;
			break;
		case O_MAXFILES:
			a->files_s = optarg;
			break;
		case O_SCROLL:
			a->scroll_s = optarg;
			break;
		case O_LEVEL:
			a->level_s = optarg;
			break;
		case O_POOL:
			a->pool = true;
			break;
		case O_CGROUP:
			a->cgroup = optarg;
			break;
		case O_RUNSPEC:
			return optind == argc ? run_once(optarg) : 2;
		case O_FILTER:
			a->filter_s = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			a->bad = true;
			break;
		}
	}
	a->bad = a->bad || optind != argc; /* no operands */
	return -1;
}

/*
 * Check the options and take the descriptors they name (the ready fd kept
 * clear of 0-2, the daemon's syscall filter in *filter_fd). Returns 0, or
 * the exit status after reporting what is wrong.
 */
static int check_args(struct shim_opts *o, const struct args *a, int *filter_fd)
{
	long long n;
	if (a->ready_s) {
		if (parse_int(a->ready_s, 0, 1 << 20, &n) < 0 || fcntl((int)n, F_GETFD) < 0)
			return early_fail(-1, "--ready-fd %s is not an open file descriptor",
					  a->ready_s);
		o->ready_fd = (int)n;
	}
	/* Keep the ready fd clear of 0-2, which become /dev/null below. */
	if (o->ready_fd >= 0 && o->ready_fd < 3) {
		int fd = fcntl(o->ready_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return early_fail(o->ready_fd, "dup ready fd: %s", strerror(errno));
		close(o->ready_fd);
		o->ready_fd = fd;
	}
	if (o->ready_fd >= 0)
		fd_set_cloexec(o->ready_fd);
	/* The daemon's compiled syscall filter; without it the init compiles its own. */
	if (a->filter_s && parse_int(a->filter_s, 3, 1 << 20, &n) == 0 && n != o->ready_fd &&
	    fcntl((int)n, F_GETFD) >= 0) {
		*filter_fd = (int)n;
		fd_set_cloexec(*filter_fd);
		rt_default_ops()->filter_use(*filter_fd);
	}
	if (a->bad) {
		fputs(usage, stderr);
		return early_fail(o->ready_fd, "bad command line (see usage)");
	}
	if (a->pool && (!a->cgroup || !*a->cgroup || !o->sock_path || o->ready_fd < 0 || o->name ||
			o->spec_path || o->state_path || o->log_dir))
		return early_fail(o->ready_fd, "--pool takes --cgroup, --socket and --ready-fd "
					       "(the rest comes with the claim)");
	if (!a->pool && (!o->name || !o->spec_path || !o->sock_path || !o->state_path ||
			 !o->log_dir || o->ready_fd < 0))
		return early_fail(o->ready_fd, "--name, --spec, --socket, --state, --log-dir and "
					       "--ready-fd are all required");
	if (!a->pool && !valid_name(o->name))
		return early_fail(o->ready_fd, "--name %s is not a valid container name", o->name);
	if (a->size_s && size_opt("log-max-size", a->size_s, &o->log_max_size, o->ready_fd))
		return 2;
	if (a->scroll_s && size_opt("scrollback", a->scroll_s, &o->scrollback, o->ready_fd))
		return 2;
	if (o->scrollback > (64 << 20))
		return early_fail(o->ready_fd, "--scrollback %s is too large (at most 64M)",
				  a->scroll_s);
	if (a->files_s) {
		if (parse_int(a->files_s, 1, 1000, &n) < 0)
			return early_fail(o->ready_fd, "--log-max-files %s: want 1 to 1000",
					  a->files_s);
		o->log_max_files = (int)n;
	}
	if (a->level_s) {
		enum log_level lvl;
		if (log_parse_level(a->level_s, &lvl) < 0)
			return early_fail(o->ready_fd,
					  "--log-level %s: want error, warn, info "
					  "or debug",
					  a->level_s);
		log_set_level(lvl);
	}
	return 0;
}

/* Nothing the daemon left open may reach the container: close all but these two. */
static void close_inherited(int ready_fd, int filter_fd)
{
	int keep[2] = {ready_fd, filter_fd};
	if (keep[1] >= 0 && keep[1] < keep[0]) {
		keep[0] = filter_fd;
		keep[1] = ready_fd;
	}
	unsigned lo = 3;
	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)lo)
			continue;
		if (keep[i] > (int)lo)
			close_range(lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

/*
 * Leave the daemon's session: the daemon reaps our first process, the second
 * carries on, in /, with /dev/null on 0-2. Returns 0 or the exit status.
 */
static int detach(int ready_fd)
{
	if (!zygote_child) {
		pid_t pid = fork();
		if (pid < 0)
			return early_fail(ready_fd, "fork: %s", strerror(errno));
		if (pid > 0)
			_exit(0);
	}
	setsid();
	if (chdir("/") < 0)
		return early_fail(ready_fd, "chdir /: %s", strerror(errno));
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return early_fail(ready_fd, "open /dev/null: %s", strerror(errno));
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
	return 0;
}

static int shim_main(int argc, char **argv)
{
	struct shim_opts o = {
		.ready_fd = -1,
		.log_max_size = 10 << 20,
		.log_max_files = 3,
		.scrollback = 64 << 10,
	};
	struct args a = {0};
	int filter_fd = -1;
	int rc = parse_args(argc, argv, &o, &a);
	if (rc >= 0)
		return rc; /* --help, --run-spec */
	rc = check_args(&o, &a, &filter_fd);
	if (rc != 0)
		return rc;
	close_inherited(o.ready_fd, filter_fd);
	signals_reset();

	struct clbsd_err err;
	if (!a.pool && shim_log_to(o.log_dir, &err) < 0)
		return early_fail(o.ready_fd, "%s", err.msg);
	rc = detach(o.ready_fd);
	if (rc != 0)
		return rc;
	if (a.pool)
		return shim_pool(&o, a.cgroup);
	return shim_run(&o, NULL, -1);
}

/* The zygote's own argument memory: what ps shows for it and its children. */
static char *title_area;
static size_t title_len;

/*
 * Show a child as the shim it is ("clbsd-shim --pool --cgroup ...") rather
 * than as the zygote: its arguments, as much of them as the zygote's own
 * argument memory holds.
 */
static void set_title(int argc, char **argv)
{
	if (!title_area || title_len < 2)
		return;
	size_t n = 0;
	memset(title_area, 0, title_len);
	for (int i = 0; i < argc && n + 1 < title_len; i++) {
		const char *a = i == 0 ? "clbsd-shim" : argv[i];
		size_t l = strlen(a);
		if (l > title_len - 1 - n)
			l = title_len - 1 - n;
		memcpy(title_area + n, a, l);
		n += l;
		if (n + 1 < title_len)
			title_area[n++] = ' ';
	}
}

static int zygote_child_main(int argc, char **argv)
{
	zygote_child = true;
	set_title(argc, argv);
	return shim_main(argc, argv);
}

int main(int argc, char **argv)
{
	/*
	 * clbsdd runs us from a sealed memfd (see src/daemon/shimexe.c), which
	 * names us after the fd ("5"); top, ps -e and pgrep want the name.
	 */
	sys_set_name("clbsd-shim");
	/* clbsd-shim --zygote [--filter-fd N]: fd 3 is the daemon's socket. */
	if (argc >= 2 && strcmp(argv[1], "--zygote") == 0) {
		title_area = argv[0];
		title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
		long long n;
		int filter = -1;
		if (argc == 4 && strcmp(argv[2], "--filter-fd") == 0 &&
		    parse_int(argv[3], 4, 1 << 20, &n) == 0)
			filter = (int)n;
		else if (argc != 2)
			return early_fail(-1, "--zygote takes only --filter-fd");
		int type = 0;
		socklen_t len = sizeof(type);
		if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
			return early_fail(-1, "--zygote: fd 3 is not the daemon's socket");
		fd_set_cloexec(3);
		/* Only the socket and the filter (which children use) stay open. */
		int keep_hi = filter > 3 ? filter : 3;
		if (filter > 4)
			close_range(4, (unsigned)filter - 1, 0);
		close_range((unsigned)keep_hi + 1, ~0U, 0);
		if (setsid() < 0 && errno != EPERM)
			return 1;
		return shim_zygote(3, zygote_child_main);
	}
	return shim_main(argc, argv);
}
