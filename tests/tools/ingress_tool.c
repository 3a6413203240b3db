/*
 * ingress-tool: drives src/ingress/ from shell scripts (the integration test
 * tests/integration/ingress.sh and bench/ingress) until the daemon does.
 *
 *   ingress-tool render SPEC            the nginx.conf for SPEC on stdout
 *   ingress-tool apply SPEC [PID]       render, then apply to nginx (master PID,
 *                                       or dir/nginx.pid); prints unchanged,
 *                                       written or reloaded; "rejected: WHY" and
 *                                       status 3 when nginx refused it
 *   ingress-tool ca SPEC                issue the local CA's leaves SPEC needs
 *   ingress-tool check KIND VALUE       KIND: domain, path, max-body, listen, file
 *   ingress-tool time-render SPEC N     milliseconds per render, best of N
 *   ingress-tool baseline SPEC          one server block per route (bench only)
 *   ingress-tool apply-file DIR FILE [PID]  apply FILE's text as it is (bench only)
 *
 * SPEC is a file of lines ('#' starts a comment):
 *   dir PATH | listen ADDR | tls-listen ADDR | default-domain NAME | tls-ca DIR
 *   route SERVICE ADDRESS PORT up|starting|down DOMAIN[,DOMAIN...]
 *         [path=P] [ws] [max-body=SIZE] [cert=PATH key=PATH]
 * Domains are normalised with the default domain; a refused value exits 2.
 */
#include "ingress/ingress.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct spec {
	struct ingress_settings s;
	struct strv listen, tls_listen;
	struct ingress_route *routes;
	size_t n, cap;
	struct strv keep; /* owns every string the routes point at */
};

static char *keep(struct spec *sp, const char *s)
{
	strv_push(&sp->keep, s);
	return sp->keep.v[sp->keep.n - 1];
}

static int die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "ingress-tool: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(code);
}

static void parse_route(struct spec *sp, char **w, size_t nw)
{
	if (nw < 6)
		die(2, "route: %s", "expected SERVICE ADDRESS PORT STATE DOMAINS");
	struct ingress_route r = {0};
	struct clbsd_err err;
	r.service = keep(sp, w[1]);
	r.address = keep(sp, w[2]);
	long long port;
	if (parse_int(w[3], 1, 65535, &port) < 0)
		die(2, "bad port %s", w[3]);
	r.port = (uint16_t)port;
	r.state = strcmp(w[4], "up") == 0	  ? INGRESS_UP
		  : strcmp(w[4], "starting") == 0 ? INGRESS_STARTING
						  : INGRESS_DOWN;
	struct strv doms = STRV_INIT;
	char *save = NULL;
	for (char *d = strtok_r(w[5], ",", &save); d; d = strtok_r(NULL, ",", &save)) {
		char *full;
		if (ingress_domain_normalise(d, sp->s.default_domain, &full, &err) < 0) {
			printf("refused: %s\n", err.msg);
			exit(2);
		}
		strv_push_owned(&doms, full);
	}
	const char **dv = xcalloc(doms.n + 1, sizeof(char *));
	for (size_t i = 0; i < doms.n; i++)
		dv[i] = keep(sp, doms.v[i]);
	r.domains = dv;
	r.n_domains = doms.n;
	strv_release(&doms);
	char why[256];
	for (size_t i = 6; i < nw; i++) {
		if (strncmp(w[i], "path=", 5) == 0) {
			r.path = keep(sp, w[i] + 5);
		} else if (strcmp(w[i], "ws") == 0) {
			r.websocket = true;
		} else if (strncmp(w[i], "max-body=", 9) == 0) {
			if (!ingress_max_body_check(w[i] + 9, &r.max_body, why, sizeof(why))) {
				printf("refused: %s\n", why);
				exit(2);
			}
		} else if (strncmp(w[i], "cert=", 5) == 0) {
			r.tls_cert = keep(sp, w[i] + 5);
		} else if (strncmp(w[i], "key=", 4) == 0) {
			r.tls_key = keep(sp, w[i] + 4);
		} else {
			die(2, "unknown route option %s", w[i]);
		}
	}
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? sp->cap * 2 : 64;
		sp->routes = xrealloc(sp->routes, sp->cap * sizeof(*sp->routes));
	}
	sp->routes[sp->n++] = r;
}

static void parse_spec(const char *path, struct spec *sp)
{
	struct clbsd_err err;
	char *text;
	if (fs_read_file(path, &text, NULL, &err) < 0)
		die(1, "%s", err.msg);
	*sp = (struct spec){0};
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *w[32];
		size_t nw = 0;
		char *s2 = NULL;
		for (char *t = strtok_r(line, " \t", &s2); t && nw < 32;
		     t = strtok_r(NULL, " \t", &s2))
			w[nw++] = t;
		if (nw == 0)
			continue;
		if (strcmp(w[0], "route") == 0)
			parse_route(sp, w, nw);
		else if (nw != 2)
			die(2, "bad line starting with %s", w[0]);
		else if (strcmp(w[0], "dir") == 0)
			sp->s.dir = keep(sp, w[1]);
		else if (strcmp(w[0], "listen") == 0)
			strv_push(&sp->listen, w[1]);
		else if (strcmp(w[0], "tls-listen") == 0)
			strv_push(&sp->tls_listen, w[1]);
		else if (strcmp(w[0], "default-domain") == 0)
			sp->s.default_domain = keep(sp, w[1]);
		else if (strcmp(w[0], "tls-ca") == 0) {
			sp->s.ca_dir = keep(sp, w[1]);
			sp->s.tls_mode = INGRESS_TLS_AUTO;
		} else
			die(2, "unknown keyword %s", w[0]);
	}
	free(text);
	sp->s.listen = (const char *const *)sp->listen.v;
	sp->s.n_listen = sp->listen.n;
	sp->s.tls_listen = (const char *const *)sp->tls_listen.v;
	sp->s.n_tls_listen = sp->tls_listen.n;
}

static void spec_release(struct spec *sp)
{
	for (size_t i = 0; i < sp->n; i++)
		free((void *)(uintptr_t)sp->routes[i].domains);
	free(sp->routes);
	strv_release(&sp->keep);
	strv_release(&sp->listen);
	strv_release(&sp->tls_listen);
}

static char *render_or_die(const struct spec *sp)
{
	struct clbsd_err err;
	char *text;
	if (ingress_render(&sp->s, sp->routes, sp->n, &text, &err) < 0) {
		printf("refused: %s\n", err.msg);
		exit(2);
	}
	return text;
}

/* The form the map replaces: one server block per route (bench/ingress only). */
static char *baseline(const struct spec *sp)
{
	struct buf b = BUF_INIT;
	buf_addf(&b,
		 "worker_processes auto;\npid %s/nginx.pid;\nerror_log %s/logs/error.log warn;\n"
		 "events {\n\tworker_connections 4096;\n}\nhttp {\n\taccess_log off;\n",
		 sp->s.dir, sp->s.dir);
	static const char *const temps[] = {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"};
	for (size_t i = 0; i < ARRAY_SIZE(temps); i++)
		buf_addf(&b, "\t%s_temp_path %s/tmp/%s;\n", temps[i], sp->s.dir, temps[i]);
	buf_adds(&b, "\tserver_names_hash_bucket_size 128;\n\tserver_names_hash_max_size 65536;\n");
	buf_adds(&b, "\tserver {\n");
	for (size_t i = 0; i < sp->s.n_listen; i++)
		buf_addf(&b, "\t\tlisten %s default_server;\n", sp->s.listen[i]);
	buf_adds(&b, "\t\treturn 404;\n\t}\n");
	for (size_t i = 0; i < sp->n; i++) {
		const struct ingress_route *r = &sp->routes[i];
		buf_adds(&b, "\tserver {\n");
		for (size_t j = 0; j < sp->s.n_listen; j++)
			buf_addf(&b, "\t\tlisten %s;\n", sp->s.listen[j]);
		buf_adds(&b, "\t\tserver_name");
		for (size_t j = 0; j < r->n_domains; j++)
			buf_addf(&b, " %s", r->domains[j]);
		buf_addf(&b,
			 ";\n\t\tlocation / {\n\t\t\tproxy_pass http://%s:%u;\n"
			 "\t\t\tproxy_set_header Host $host;\n"
			 "\t\t\tproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
			 "\t\t}\n\t}\n",
			 r->address, (unsigned)r->port);
	}
	buf_adds(&b, "}\n");
	return buf_detach(&b, NULL);
}

static int run(const char *cmd, int argc, char **argv, struct spec *spec);

/* Apply text (which it frees); the exit status and the line the usage describes. */
static int apply_text(const char *dir, char *text, pid_t pid)
{
	struct clbsd_err err;
	struct ingress_target t = {dir, getenv("NGINX"), pid, 0};
	struct ingress_outcome o;
	int r = ingress_nginx_ops()->apply(&t, text, &o, &err);
	free(text);
	if (r < 0 && o.rejected) {
		printf("rejected: %s\n", o.message);
		ingress_outcome_release(&o);
		return 3;
	}
	if (r < 0)
		die(1, "%s", err.msg);
	printf("%s\n", !o.changed ? "unchanged" : o.reloaded ? "reloaded" : "written");
	ingress_outcome_release(&o);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die(2, "%s", "usage: ingress-tool render|apply|ca|check|time-render|baseline ...");
	const char *cmd = argv[1];
	struct clbsd_err err;
	if (strcmp(cmd, "check") == 0) {
		if (argc != 4)
			die(2, "%s", "usage: ingress-tool check KIND VALUE");
		const char *k = argv[2], *v = argv[3];
		char why[256] = "";
		bool ok = strcmp(k, "domain") == 0   ? ingress_domain_check(v, why, sizeof(why))
			  : strcmp(k, "path") == 0   ? ingress_path_check(v, why, sizeof(why))
			  : strcmp(k, "listen") == 0 ? ingress_listen_check(v, why, sizeof(why))
			  : strcmp(k, "file") == 0   ? ingress_file_path_check(v, why, sizeof(why))
			  : strcmp(k, "max-body") == 0
				  ? ingress_max_body_check(v, NULL, why, sizeof(why))
				  : (die(2, "unknown kind %s", k), false);
		if (ok)
			printf("ok\n");
		else
			printf("refused: %s\n", why);
		return ok ? 0 : 1;
	}
	if (strcmp(cmd, "apply-file") == 0) {
		if (argc < 4)
			die(2, "%s", "usage: ingress-tool apply-file DIR FILE [PID]");
		char *text;
		if (fs_read_file(argv[3], &text, NULL, &err) < 0)
			die(1, "%s", err.msg);
		long long pid = 0;
		if (argc > 4 && parse_int(argv[4], 1, INT32_MAX, &pid) < 0)
			die(2, "bad pid %s", argv[4]);
		return apply_text(argv[2], text, (pid_t)pid);
	}
	struct spec sp;
	parse_spec(argv[2], &sp);
	int rc = run(cmd, argc, argv, &sp);
	spec_release(&sp);
	return rc;
}

/* The commands that read a SPEC. */
static int run(const char *cmd, int argc, char **argv, struct spec *spec)
{
	struct clbsd_err err;
	struct spec sp = *spec;
	if (strcmp(cmd, "render") == 0) {
		char *text = render_or_die(&sp);
		fputs(text, stdout);
		free(text);
		return 0;
	}
	if (strcmp(cmd, "baseline") == 0) {
		char *text = baseline(&sp);
		fputs(text, stdout);
		free(text);
		return 0;
	}
	if (strcmp(cmd, "time-render") == 0) {
		long long reps = 5;
		if (argc > 3 && parse_int(argv[3], 1, 1000, &reps) < 0)
			die(2, "bad count %s", argv[3]);
		int64_t best = INT64_MAX;
		for (long long i = 0; i < reps; i++) {
			int64_t t0 = time_mono_ns();
			char *text = render_or_die(&sp);
			int64_t dt = time_mono_ns() - t0;
			free(text);
			if (dt < best)
				best = dt;
		}
		printf("%.2f\n", (double)best / 1e6);
		return 0;
	}
	if (strcmp(cmd, "ca") == 0) {
		int n = ingress_ca_ensure_routes(&sp.s, sp.routes, sp.n, &err);
		if (n < 0)
			die(1, "%s", err.msg);
		printf("issued %d\n", n);
		return 0;
	}
	if (strcmp(cmd, "apply") == 0) {
		char *text = render_or_die(&sp);
		long long pid = 0;
		if (argc > 3 && parse_int(argv[3], 1, INT32_MAX, &pid) < 0)
			die(2, "bad pid %s", argv[3]);
		return apply_text(sp.s.dir, text, (pid_t)pid);
	}
	die(2, "unknown command %s", cmd);
	return 2;
}
