/*
 * clbsdd: the clbsd daemon. It keeps the state of containers and images,
 * serves the API on a Unix socket, and starts one clbsd-shim per running
 * container. Containers outlive the daemon: a starting daemon re-adopts the
 * shims it finds.
 *
 * This file is the program around the engine (src/daemon/daemon.c): read
 * the options, open the engine, let the API listen, run the loop.
 */
#include "api/api.h"
#include "core/config.h"
#include "daemon/daemon.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"Usage: clbsdd [OPTIONS]\n"
	"\n"
	"The clbsd daemon: runs containers and serves the API on a Unix socket.\n"
	"\n"
	"Options:\n"
	"  --root DIR          state: images, containers, logs (default /var/lib/clbsd)\n"
	"  --run DIR           runtime files: shim sockets (default /run/clbsd)\n"
	"  --socket PATH       API socket (default RUN/clbsd.sock)\n"
	"  --config FILE       declarative configuration (default /etc/clbsd/clbsd.conf)\n"
	"  -n                  check the settings and the configuration, print them, exit\n"
	"                      0 when good and 1 when not\n"
	"  --log-level LEVEL   error, warn, info (default) or debug\n"
	"  --shim PATH         the clbsd-shim binary (default: beside clbsdd)\n"
	"  --busybox PATH      busybox-static for 'clbsd forge' (default /bin/busybox)\n"
	"  --cgroup-parent N   cgroup below which containers are placed (default clbsd)\n"
	"  --pool N            keep N shims with namespaces and a cgroup ready for the\n"
	"                      next starts (default 2; 0 turns the pool off)\n"
	"  -h, --help          show this help\n"
	"  --version           print the version\n";

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "clbsdd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'clbsdd --help'.\n");
	exit(2);
}

struct options {
	struct daemon_opts d;
	long long pool;
	bool check;
};

/* Parse argv into *o; exits for --help, --version and usage errors. */
static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_ROOT = 256,
		O_RUN,
		O_SOCKET,
		O_CONFIG,
		O_LOGLEVEL,
		O_SHIM,
		O_BUSYBOX,
		O_CGPARENT,
		O_POOL,
		O_VERSION
	};
	static const struct option opts[] = {
		{"root", required_argument, NULL, O_ROOT},
		{"run", required_argument, NULL, O_RUN},
		{"socket", required_argument, NULL, O_SOCKET},
		{"config", required_argument, NULL, O_CONFIG},
		{"log-level", required_argument, NULL, O_LOGLEVEL},
		{"shim", required_argument, NULL, O_SHIM},
		{"busybox", required_argument, NULL, O_BUSYBOX},
		{"cgroup-parent", required_argument, NULL, O_CGPARENT},
		{"pool", required_argument, NULL, O_POOL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){
		.d = {.root = "/var/lib/clbsd",
		      .run = "/run/clbsd",
		      .config = "/etc/clbsd/clbsd.conf",
		      .busybox = "/bin/busybox",
		      .cgroup_parent = "clbsd"},
		.pool = 2,
	};
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":nh", opts, NULL)) != -1) {
		switch (c) {
		case O_ROOT:
			o->d.root = optarg;
			break;
		case O_RUN:
			o->d.run = optarg;
			break;
		case O_SOCKET:
			o->d.socket = optarg;
			break;
		case O_CONFIG:
			o->d.config = optarg;
			break;
		case O_LOGLEVEL: {
			enum log_level l;
			if (log_parse_level(optarg, &l) < 0)
				usage_error("--log-level %s: expected error, warn, info or debug",
					    optarg);
			log_set_level(l);
			break;
		}
		case O_SHIM:
			o->d.shim = optarg;
			break;
		case O_BUSYBOX:
			o->d.busybox = optarg;
			break;
		case O_CGPARENT:
			if (!valid_name(o->d.cgroup_parent = optarg))
				usage_error("--cgroup-parent %s: expected a DNS label", optarg);
			break;
		case O_POOL:
			if (parse_int(optarg, 0, 64, &o->pool) < 0)
				usage_error("--pool %s: expected a number from 0 to 64", optarg);
			break;
		case 'n':
			o->check = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case O_VERSION:
			printf("clbsdd %s\n", CLBSD_VERSION);
			exit(0);
		case ':':
			usage_error("%s needs an argument", argv[optind - 1]);
			break;
		default:
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument %s", argv[optind]);
}

static int check_only(struct daemon *d)
{
	int bad = 0;
	/* stdout carries only the normalised configuration, so it can be saved and re-read. */
	fprintf(stderr, "root %s\nrun %s\nsocket %s\nshim %s\nconfig %s\n", d->root, d->run,
		d->socket, d->shim_path, d->config);
	if (access(d->shim_path, X_OK) < 0) {
		fprintf(stderr, "clbsdd: shim %s: %s\n", d->shim_path, strerror(errno));
		bad = 1;
	}
	if (strlen(d->socket) >= 108) {
		fprintf(stderr, "clbsdd: socket path %s is too long\n", d->socket);
		bad = 1;
	}
	if (access(d->config, R_OK) < 0 && errno != ENOENT) {
		fprintf(stderr, "clbsdd: config %s: %s\n", d->config, strerror(errno));
		bad = 1;
	}
	/* The configuration: the main file, then conf.d/ *.conf next to it. */
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	if (conf_load(d->config, d->confd, &conf, &diags) == 0) {
		autofree char *text = conf_print(conf);
		fputs(text, stdout);
		conf_free(conf);
	} else {
		autofree char *text = conf_diags_format(&diags);
		fputs(text, stderr);
		bad = 1;
	}
	conf_diags_release(&diags);
	return bad;
}

/* The run-loop's signals: reap shims, reload, stop. */
static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
static struct event *sig_ev[ARRAY_SIZE(sigs)];

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (sig == SIGCHLD) {
		daemon_reap(d);
		return;
	}
	if (sig == SIGHUP) {
		daemon_reload(d);
		return;
	}
	log_info("daemon", NULL, "%s: shutting down; containers keep running",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d);
}

static void signals_init(struct daemon *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		sig_ev[i] = evsignal_new(d->base, sigs[i], on_signal, d);
		evsignal_add(sig_ev[i], NULL);
	}
}

static void signals_release(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		event_free(sig_ev[i]);
}

int main(int argc, char **argv)
{
	struct options o;
	struct daemon d;
	struct clbsd_err err;
	log_set_sink(log_sink_stderr, stderr);
	parse_options(argc, argv, &o);
	daemon_init(&d, &o.d);
	if (o.check) {
		int bad = check_only(&d);
		daemon_init_release(&d);
		return bad;
	}
	clbsd_err_init(&err);
	if (daemon_open(&d, &err) < 0 || api_listen(&d, &err) < 0) {
		fprintf(stderr, "clbsdd: %s\n", err.msg);
		return 1;
	}
	signals_init(&d);
	daemon_start(&d, (size_t)o.pool);

	event_base_dispatch(d.base);

	api_close(&d);
	signals_release();
	daemon_close(&d);
	/* Replies still owed (a waiter list dropped unfired): their clients went with evhttp. */
	api_pending_release_all();
	return 0;
}
