/*
 * Ingress: the reverse proxy in front of the containers. A container with a
 * :domain and a :port becomes one route; this layer turns the routes and the
 * host's :ingress settings into an nginx.conf, writes it into the routing
 * container's dataset and has nginx take it up. docs/ingress.md describes the
 * design and the rendered layout.
 *
 * Layers:
 *   ingress.h, check.c   pure: validation of every value that reaches the
 *                        nginx.conf (domains, paths, sizes, listen
 *                        addresses, file paths), normalisation of a bare
 *                        label, and the check of a whole route set
 *   render.c             pure: routes + settings -> nginx.conf text,
 *                        deterministic (sorted), no I/O
 *   apply.c              struct ingress_ops for nginx: temp file, `nginx -t`,
 *                        atomic rename, SIGHUP to the master, and the check
 *                        that the master really took the new configuration
 *   ca.c                 the local CA (OpenSSL libcrypto): one CA key and
 *                        certificate, one leaf certificate per routed name
 *   route_set.c          settings and routes owning their strings (the daemon
 *                        fills one from the configuration: daemon/ingress_conf.c)
 *
 * Invariants:
 * - Descriptions (struct ingress_settings, struct ingress_route) borrow their
 *   strings and arrays: the caller keeps them alive for the duration of a
 *   call; nothing here keeps a pointer afterwards.
 * - Nothing reaches the nginx.conf unchecked: ingress_render() runs
 *   ingress_routes_check() first, and every value it writes has passed an
 *   allow-list (DNS names, a URL path charset, IP literals, a path charset
 *   without quotes, spaces, `;`, `{`, `}` or `$`).
 * - Domains given to the renderer are full names: a bare label is turned
 *   into LABEL.DEFAULT-DOMAIN by ingress_domain_normalise() beforehand.
 * - The same routes and settings always render the same bytes, whatever
 *   their order, so "reload only when the text changed" is a string compare.
 */
#ifndef CLBSD_INGRESS_H
#define CLBSD_INGRESS_H

#include "util/util.h"

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the model ---- */

/* How routed names without their own :tls get a certificate. */
enum ingress_tls_mode {
	INGRESS_TLS_NONE, /* only routes with :tls (:cert :key) are served over TLS */
	INGRESS_TLS_AUTO, /* the local CA issues one for every routed name (ca.c) */
};

/* The host's (:ingress ...) settings and where the routing container lives. */
struct ingress_settings {
	/*
	 * The ingress directory (<root>/ingress, the routing container's
	 * dataset): nginx.conf, nginx.pid, logs/ and tmp/ live here. An
	 * absolute path of [A-Za-z0-9._/+@-] characters.
	 */
	const char *dir;
	const char *const *listen; /* "0.0.0.0:80", "[::]:80"; at least one */
	size_t n_listen;
	const char *const *tls_listen; /* "0.0.0.0:443"; none: no TLS at all */
	size_t n_tls_listen;
	const char *default_domain; /* NULL: bare labels stay bare */
	enum ingress_tls_mode tls_mode;
	/*
	 * INGRESS_TLS_AUTO: the CA directory (ingress_ca_ensure()); the
	 * certificate of name N is ingress_ca_leaf_paths(ca_dir, N).
	 */
	const char *ca_dir;
};

/* Whether a route's container can take traffic now. */
enum ingress_state {
	INGRESS_UP,	  /* running, and healthy when it has a health check */
	INGRESS_STARTING, /* created or starting, or its health check has not passed yet */
	INGRESS_DOWN,	  /* stopped, failed or unhealthy */
};

/*
 * One route: the names (and path) that reach one port of one container.
 * Two routes may share a name with different paths; a name and path pair
 * belongs to one route only.
 */
struct ingress_route {
	const char *service;	    /* the container's name (a DNS label) */
	const char *const *domains; /* full names; "*.example.org" allowed; at least one */
	size_t n_domains;
	const char *path; /* NULL or "/": the whole name; else a prefix like "/app" */
	/*
	 * The container's IP literal (127.0.0.1 on the host network). May be
	 * NULL when the route is not INGRESS_UP: it is not used then.
	 */
	const char *address;
	uint16_t port; /* 1-65535 */
	enum ingress_state state;
	bool websocket;	      /* pass Upgrade/Connection through */
	int64_t max_body;     /* client_max_body_size in bytes; 0: nginx's default (1M) */
	const char *tls_cert; /* both or neither: this route's own certificate */
	const char *tls_key;
};

/* ---- validation (pure; check.c) ---- */

/*
 * Each returns true when s is acceptable, else false with why (n bytes,
 * always NUL-terminated) saying what is wrong and what is expected, for the
 * config checker to put after its "file:line:col: KEY: " prefix.
 *
 * A domain: DNS labels of [a-z0-9-] (RFC 1123, no leading or trailing '-',
 * 1-63 characters each) joined by dots, 253 characters at most, optionally
 * starting with "*." (a wildcard for one or more labels). A bare label is a
 * domain too (see ingress_domain_normalise()).
 */
bool ingress_domain_check(const char *s, char *why, size_t n);
/* A path: "/" then [A-Za-z0-9._~%/-], no "//", "/./" or "/../", 1-256 characters. */
bool ingress_path_check(const char *s, char *why, size_t n);
/* A size for :max-body: "100M", "512k", "1G", "1048576"; 1 byte to 64 GiB. */
bool ingress_max_body_check(const char *s, int64_t *bytes, char *why, size_t n);
/* A listen address: "IPv4:PORT" or "[IPv6]:PORT", port 1-65535. */
bool ingress_listen_check(const char *s, char *why, size_t n);
/* A file path written into the config: absolute, clean, [A-Za-z0-9._/+@-]. */
bool ingress_file_path_check(const char *s, char *why, size_t n);
/* A backend address: an IPv4 or IPv6 literal (no brackets, no zone). */
bool ingress_address_check(const char *s, char *why, size_t n);

/*
 * The full name of a :domain entry: a bare label gets ".DEFAULT" appended
 * when default_domain is set ("web" -> "web.home.lan", "*.apps" ->
 * "*.apps.home.lan"); a name with a dot is kept. The result is checked
 * (ingress_domain_check) and new.
 */
int ingress_domain_normalise(const char *s, const char *default_domain, char **out,
			     struct clbsd_err *err);

/*
 * Check a whole route set against the settings: every value above, plus
 * services that are DNS labels, at least one domain per route, no name and
 * path served by two routes, at most one :tls certificate per name, :tls only
 * when :tls-listen is set, and a CA directory with INGRESS_TLS_AUTO. The first
 * problem is reported (CLBSD_E_INVALID or CLBSD_E_CONFLICT), naming the
 * service and what to change.
 */
int ingress_routes_check(const struct ingress_settings *s, const struct ingress_route *routes,
			 size_t n, struct clbsd_err *err);

/* ---- rendering (pure; render.c) ---- */

/*
 * The nginx.conf for routes under settings s (checked first). Layout, see
 * docs/ingress.md: names routed to a whole port of a container live in
 * `map $host` tables read by one default server (the scalable case); names
 * with path routes or a :max-body get a server block of their own; unknown
 * names get a short 404 page; routes that are not INGRESS_UP answer 503 with
 * a page naming the service; TLS names get a server block per certificate.
 * The text is new; the same input always gives the same bytes.
 */
int ingress_render(const struct ingress_settings *s, const struct ingress_route *routes, size_t n,
		   char **out, struct clbsd_err *err);

/* ---- applying (apply.c) ---- */

/* Where and how to apply: the ingress directory and the nginx to use. */
struct ingress_target {
	const char *dir;   /* as ingress_settings.dir; nginx.conf lives here */
	const char *nginx; /* the binary for `nginx -t`; NULL: "nginx" on PATH */
	/*
	 * The running master: > 0 the pid to signal; 0 read dir/nginx.pid;
	 * < 0 none runs (the daemon's routing container is down: the pid in
	 * nginx.pid is one of its own pid namespace, never to be signalled
	 * from the host). When no master runs, the file is still written
	 * (nginx started later reads it) and the outcome says so.
	 */
	pid_t master;
	int reload_timeout_ms; /* how long to wait for the master to confirm; 0: 5000 */
};

struct ingress_outcome {
	bool changed;  /* the text differed from the current nginx.conf */
	bool reloaded; /* a running master took the new configuration */
	bool rejected; /* nginx refused it; the old configuration keeps serving */
	/*
	 * rejected: nginx's own words (its [emerg] lines, without the
	 * "nginx: " prefix), for the ingress.rejected event. New; NULL otherwise.
	 */
	char *message;
};
void ingress_outcome_release(struct ingress_outcome *o);

struct ingress_ops {
	/*
	 * Make nginx serve text: nothing when it equals the current
	 * nginx.conf; else a temp file in dir, `nginx -t` on it (argv, no
	 * shell), a check that listen addresses nginx does not hold yet are
	 * free (`nginx -t` does not bind), rename over nginx.conf, SIGHUP to
	 * the master, and a wait until the master runs workers on the new
	 * configuration (and the old ones stopped accepting) or logged why it
	 * could not. A rejection by any of these leaves the previous
	 * nginx.conf in place and serving; it fails with CLBSD_E_INVALID,
	 * out->rejected set and out->message holding the reason (nginx's own
	 * words when nginx refused). out is filled on failure too.
	 */
	int (*apply)(const struct ingress_target *t, const char *text, struct ingress_outcome *out,
		     struct clbsd_err *err);
	/* Run `nginx -t` on a file; on failure err holds nginx's words. */
	int (*test)(const struct ingress_target *t, const char *conf_path, struct clbsd_err *err);
};

/* The nginx implementation. */
const struct ingress_ops *ingress_nginx_ops(void);

/* Create dir, dir/logs and dir/tmp (what the rendered config points at). */
int ingress_prepare_dir(const char *dir, struct clbsd_err *err);

/* ---- the local CA (ca.c) ---- */

/*
 * Files under ca_dir: ca.key (0600) and ca.pem, the CA (EC P-256, 10 years,
 * "clbsd local CA" and a random serial so two hosts' CAs differ), made once;
 * leaves/NAME.pem and leaves/NAME.key (0600) per routed name ("*." is
 * written as "_wildcard."), valid for 825 days, with the name as SAN.
 */
#define INGRESS_CA_LEAF_DAYS  825
#define INGRESS_CA_RENEW_DAYS 30 /* a leaf expiring within this is renewed */

/* The CA's key and certificate in ca_dir (made when missing). */
int ingress_ca_ensure(const char *ca_dir, struct clbsd_err *err);
/* The paths of name's leaf (new strings). */
void ingress_ca_leaf_paths(const char *ca_dir, const char *name, char **cert, char **key);
/*
 * A leaf for name (checked with ingress_domain_check): kept when it exists,
 * was signed by this CA, carries exactly that name and is valid for more
 * than INGRESS_CA_RENEW_DAYS; issued anew otherwise. *issued (may be NULL)
 * says which.
 */
int ingress_ca_leaf(const char *ca_dir, const char *name, bool *issued, struct clbsd_err *err);
/*
 * The leaves every TLS name of routes needs under INGRESS_TLS_AUTO (routes
 * with their own :tls are skipped). Returns how many were issued, or a
 * negative errno.
 */
int ingress_ca_ensure_routes(const struct ingress_settings *s, const struct ingress_route *routes,
			     size_t n, struct clbsd_err *err);

/* ---- a set of settings and routes (route_set.c) ---- */

/* Settings and routes that own their strings (ingress_set_release()). */
struct ingress_set {
	struct ingress_settings settings;
	struct ingress_route *routes;
	size_t n;
	struct strv strings, listen, tls_listen; /* storage the above point into */
};
void ingress_set_release(struct ingress_set *set);
/* A copy of s (NULL stays NULL) that lives as long as the set. */
const char *ingress_set_keep(struct ingress_set *set, const char *s);

#endif
