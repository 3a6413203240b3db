/*
 * Building a configuration: the top-level forms, the host, image and network
 * forms, the override forms that amend a declared container (live changes
 * in conf.d/90-live.conf), the checks that need the whole configuration
 * (duplicate names across files, :depends-on targets and cycles, network
 * references), and loading the main file and conf.d.
 */
#include "conf/value_check.h"
#include "core/audit_rec.h"
#include "core/config.h"
#include "conf/live.h"
#include "util/hash.h"
#include "util/netaddr.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>

/* ---- host ---- */

static const char *const host_keys[] = {"storage", "network", "ingress", "userns", "lisp",
					"docker",  "metrics", "audit",	 "backup", NULL};
static const char *const metrics_keys[] = {"listen", NULL};
static const char *const audit_keys[] = {"max-size", "files", "fsync", NULL};
static const char *const docker_keys[] = {"endpoint", "tls-ca", "tls-cert", "tls-key", NULL};
static const char *const lisp_keys[] = {"swank", "init", "command", NULL};
static const char *const userns_keys[] = {"default", "start", "count", NULL};
static const char *const storage_keys[] = {"driver", "pool", "root", "path", NULL};
static const char *const hostnet_keys[] = {"bridge", "subnet", "subnet6", NULL};
static const char *const ingress_keys[] = {"listen", "tls-listen", "default-domain", "tls", NULL};
static const char *const tls_keys[] = {"ca", NULL};

struct host_parse {
	struct conf_host *h;
	const struct sexp *driver;
	bool bad;
};

static bool zfs_name_ok(const char *s)
{
	if (!*s || strlen(s) > 200 || s[0] == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
		return false;
	for (; *s; s++) {
		char ch = *s;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("_-.:/", ch);
		if (!ok)
			return false;
	}
	return true;
}

static void storage_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	bool ok = true;
	switch (key) {
	case 0:
		hp->driver = v;
		if (is_sym(v, "zfs"))
			h->driver = CONF_STORAGE_ZFS;
		else if (is_sym(v, "dir"))
			h->driver = CONF_STORAGE_DIR;
		else {
			vexpect(c, ":storage :driver", v, "zfs or dir");
			ok = false;
		}
		break;
	case 1:
	case 2: {
		const char *kn = key == 1 ? ":storage :pool" : ":storage :root";
		char **dst = key == 1 ? &h->pool : &h->root;
		if (v->type != SEXP_STRING || !zfs_name_ok(v->str) ||
		    (key == 1 && strchr(v->str, '/'))) {
			vexpect(c, kn, v,
				key == 1 ? "a ZFS pool name like \"tank\""
					 : "a ZFS dataset name like \"tank/clbsd\"");
			ok = false;
		} else {
			*dst = xstrdup(v->str);
		}
		break;
	}
	case 3:
		ok = chk_abs_path(c, ":storage :path", v, &h->dir_path);
		break;
	}
	if (!ok)
		hp->bad = true;
}

static void hostnet_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct host_parse *hp = obj;
	if (key == 0) {
		/* A Linux interface name: at most 15 bytes, no '/' or blanks. */
		bool ok = v->type == SEXP_STRING && v->len >= 1 && v->len <= 15;
		for (size_t i = 0; ok && i < v->len; i++) {
			char ch = v->str[i];
			ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
		}
		if (!ok) {
			vexpect(c, ":network :bridge", v,
				"an interface name of 1-15 letters, digits, '-', '_' or '.', like "
				"\"clbsd0\"");
			hp->bad = true;
			return;
		}
		free(hp->h->bridge);
		hp->h->bridge = xstrdup(v->str);
	} else if (key == 1 ? !chk_cidr(c, ":network :subnet", v, &hp->h->subnet)
			    : !chk_cidr6(c, ":network :subnet6", v, &hp->h->subnet6)) {
		hp->bad = true;
	}
}

static bool listen_list(struct vctx *c, const char *key, const struct sexp *v, char ***out)
{
	if (!chk_list(c, key, v, "a list of addresses like (\"0.0.0.0:80\")"))
		return false;
	struct strv sv = STRV_INIT;
	bool ok = true;
	for (size_t i = 0; v->type == SEXP_LIST && i < v->n; i++) {
		char *s;
		if (chk_listen(c, key, v->items[i], &s))
			strv_push_owned(&sv, s);
		else
			ok = false;
	}
	if (!ok) {
		strv_release(&sv);
		return false;
	}
	strv_free(*out);
	*out = sv.v;
	return true;
}

static void tls_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct host_parse *hp = obj;
	if (is_sym(v, "auto")) {
		hp->h->tls_ca = xstrdup("auto");
	} else if (v->type == SEXP_STRING) {
		if (!chk_abs_path(c, ":ingress :tls :ca", v, &hp->h->tls_ca))
			hp->bad = true;
	} else {
		vexpect(c, ":ingress :tls :ca", v,
			"auto (a local CA clbsd creates) or the path of a CA certificate");
		hp->bad = true;
	}
}

static void ingress_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	bool ok = true;
	switch (key) {
	case 0:
		ok = listen_list(c, ":ingress :listen", v, &h->listen);
		break;
	case 1:
		ok = listen_list(c, ":ingress :tls-listen", v, &h->tls_listen);
		break;
	case 2:
		ok = chk_hostname(c, ":ingress :default-domain", v, &h->default_domain);
		break;
	case 3:
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, ":ingress :tls", v, "TLS options like (:ca auto)");
			ok = false;
		} else {
			walk_plist(c, v, 0, tls_keys, ":ingress :tls", tls_key, hp);
		}
		break;
	}
	if (!ok)
		hp->bad = true;
}

static bool userns_mode(struct vctx *c, const char *key, const struct sexp *v, enum ctr_userns *out)
{
	if (is_sym(v, "auto"))
		*out = CTR_USERNS_AUTO;
	else if (is_sym(v, "host"))
		*out = CTR_USERNS_HOST;
	else {
		vexpect(c, key, v, "auto (a private range of host ids) or host (the host's ids)");
		return false;
	}
	return true;
}

static void userns_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		       const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	long long n;
	bool ok = true;
	switch (key) {
	case 0:
		ok = userns_mode(c, ":userns :default", v, &h->userns);
		break;
	case 1:
		/* Never id 0; the pool is checked whole once :count is known too. */
		if ((ok = chk_int(c, ":userns :start", v, 1, 4294967294LL, &n)))
			h->userns_start = n;
		break;
	case 2:
		if ((ok = chk_int(c, ":userns :count", v, 65536, 4294967294LL, &n)))
			h->userns_count = n;
		break;
	}
	if (!ok)
		hp->bad = true;
}

/* :userns auto|host, or (:default auto|host :start N :count N). */
static void host_userns(struct vctx *c, struct host_parse *hp, const struct sexp *v)
{
	struct conf_host *h = hp->h;
	if (v->type != SEXP_LIST) {
		if (!userns_mode(c, ":userns", v, &h->userns))
			hp->bad = true;
		return;
	}
	walk_plist(c, v, 0, userns_keys, ":userns", userns_key, hp);
	if (hp->bad)
		return;
	if (!h->userns_start != !h->userns_count) {
		verr(c, v, ":userns: :start and :count go together");
		hp->bad = true;
	} else if (h->userns_start + h->userns_count > 4294967295LL) {
		verr(c, v, ":userns: the pool must end below 4294967295");
		hp->bad = true;
	}
}

/* (host :lisp (:swank "127.0.0.1:4005" :init PATH :command PATH)): the control plane. */
static void lisp_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	bool ok = true;
	switch (key) {
	case 0:
		free(h->lisp_swank);
		h->lisp_swank = NULL;
		ok = chk_listen(c, ":lisp :swank", v, &h->lisp_swank);
		break;
	case 1:
		free(h->lisp_init);
		h->lisp_init = NULL;
		ok = chk_abs_path(c, ":lisp :init", v, &h->lisp_init);
		break;
	case 2:
		free(h->lisp_command);
		h->lisp_command = NULL;
		ok = chk_abs_path(c, ":lisp :command", v, &h->lisp_command);
		break;
	}
	if (!ok)
		hp->bad = true;
}

/*
 * (host :docker (:endpoint "unix:///run/docker.sock" :tls-ca P :tls-cert P
 * :tls-key P)): where Docker containers run. The scheme is checked here;
 * the daemon's driver parses the rest and reports what it refuses.
 */
static void docker_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		       const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	char **slot[] = {&h->docker_endpoint, &h->docker_tls_ca, &h->docker_tls_cert,
			 &h->docker_tls_key};
	free(*slot[key]);
	*slot[key] = NULL;
	static const char *const names[] = {":docker :endpoint", ":docker :tls-ca",
					    ":docker :tls-cert", ":docker :tls-key"};
	bool ok = key ? chk_abs_path(c, names[key], v, slot[key])
		      : chk_string(c, names[key], v, false, slot[key]);
	if (ok && key == 0 && strncmp(h->docker_endpoint, "unix:///", 8) != 0 &&
	    strncmp(h->docker_endpoint, "tcp://", 6) != 0 &&
	    strncmp(h->docker_endpoint, "ssh://", 6) != 0) {
		vexpect(c, names[0], v, "unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST");
		ok = false;
	}
	if (!ok)
		hp->bad = true;
}

/* (host :metrics (:listen "127.0.0.1:9323")): the Prometheus listener. */
static void metrics_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct host_parse *hp = obj;
	free(hp->h->metrics_listen);
	hp->h->metrics_listen = NULL;
	if (!chk_listen(c, ":metrics :listen", v, &hp->h->metrics_listen))
		hp->bad = true;
}

/* (host :audit (:max-size "10M" :files 5 :fsync t)): the audit log (docs/audit.md). */
static void audit_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		      const struct sexp *k)
{
	struct host_parse *hp = obj;
	struct conf_host *h = hp->h;
	bool ok = true, b;
	long long n;
	switch (key) {
	case 0:
		ok = chk_size(c, ":audit :max-size", v, &h->audit_max_size);
		if (ok && h->audit_max_size < 4096) {
			vexpect(c, ":audit :max-size", v, "a size of at least 4K, like \"10M\"");
			ok = false;
		}
		break;
	case 1:
		if ((ok = chk_int(c, ":audit :files", v, 1, AUDIT_KEEP_MAX, &n)))
			h->audit_files = (int)n;
		break;
	case 2:
		if ((ok = chk_bool(c, ":audit :fsync", v, &b)))
			h->audit_fsync = b;
		break;
	}
	if (!ok)
		hp->bad = true;
}

static void host_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct host_parse *hp = obj;
	if (key == 8) {
		/* The default :backup of every declared container (docs/backup.md). */
		if (!ctr_backup_read(c, ":backup", v, &hp->h->backup))
			hp->bad = true;
		return;
	}
	if (key == 6) {
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, ":metrics", v,
				"metrics options like (:listen \"127.0.0.1:9323\")");
			hp->bad = true;
			return;
		}
		walk_plist(c, v, 0, metrics_keys, ":metrics", metrics_key, hp);
		if (!hp->bad && !hp->h->metrics_listen) {
			verr(c, v,
			     ":metrics: :listen is required, like (:listen \"127.0.0.1:9323\")");
			hp->bad = true;
		}
		return;
	}
	if (key == 7) {
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, ":audit", v,
				"audit log options like (:max-size \"10M\" :files 5 :fsync t)");
			hp->bad = true;
			return;
		}
		hp->h->audit_set = true;
		walk_plist(c, v, 0, audit_keys, ":audit", audit_key, hp);
		return;
	}
	if (key == 5) {
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, ":docker", v,
				"Docker endpoint options like (:endpoint "
				"\"unix:///run/docker.sock\")");
			hp->bad = true;
			return;
		}
		walk_plist(c, v, 0, docker_keys, ":docker", docker_key, hp);
		return;
	}
	if (key == 3) {
		host_userns(c, hp, v);
		return;
	}
	if (key == 4) {
		if (v->type != SEXP_LIST || v->tail) {
			vexpect(c, ":lisp", v,
				"control plane options like (:swank \"127.0.0.1:4005\" :init "
				"\"/etc/clbsd/init.lisp\")");
			hp->bad = true;
			return;
		}
		hp->h->lisp_set = true;
		walk_plist(c, v, 0, lisp_keys, ":lisp", lisp_key, hp);
		return;
	}
	static const char *const examples[] = {
		"storage options like (:driver zfs :pool \"tank\" :root \"tank/clbsd\")",
		"network options like (:bridge \"clbsd0\" :subnet \"10.88.0.0/24\")",
		"ingress options like (:listen (\"0.0.0.0:80\") :default-domain \"home.lan\")",
	};
	static const char *const names[] = {":storage", ":network", ":ingress"};
	static const char *const *const subkeys[] = {storage_keys, hostnet_keys, ingress_keys};
	static const plist_fn fns[] = {storage_key, hostnet_key, ingress_key};
	if (v->type != SEXP_LIST || v->tail) {
		vexpect(c, names[key], v, examples[key]);
		hp->bad = true;
		return;
	}
	if (key == 1)
		hp->h->network_set = true;
	walk_plist(c, v, 0, subkeys[key], names[key], fns[key], hp);
}

static void host_defaults(struct conf_host *h)
{
	h->driver = CONF_STORAGE_DIR;
	h->bridge = xstrdup("clbsd0");
	h->subnet =
		(struct conf_cidr){.set = true, .addr = (10u << 24) | (88u << 16), .prefix = 24};
	h->listen = xcalloc(2, sizeof(char *));
	h->listen[0] = xstrdup("0.0.0.0:80");
	h->audit_fsync = -1;
}

static void host_release(struct conf_host *h)
{
	free(h->pool);
	free(h->root);
	free(h->dir_path);
	free(h->bridge);
	free(h->subnet6);
	strv_free(h->listen);
	strv_free(h->tls_listen);
	free(h->default_domain);
	free(h->tls_ca);
	free(h->lisp_swank);
	free(h->lisp_init);
	free(h->lisp_command);
	free(h->metrics_listen);
	free(h->docker_endpoint);
	free(h->docker_tls_ca);
	free(h->docker_tls_cert);
	free(h->docker_tls_key);
	ctr_backup_release(&h->backup);
}

static bool parse_host(struct vctx *c, const struct sexp *form, struct conf_host *h)
{
	struct host_parse hp = {.h = h};
	walk_plist(c, form, 1, host_keys, "", host_key, &hp);
	if (hp.bad)
		return false;
	if (h->driver == CONF_STORAGE_ZFS) {
		if (!h->pool || !h->root || h->dir_path) {
			verr(c, hp.driver,
			     ":storage: the zfs driver takes :pool and :root (and no :path)");
			return false;
		}
		size_t pl = strlen(h->pool);
		if (strncmp(h->root, h->pool, pl) != 0 || (h->root[pl] != '/' && h->root[pl])) {
			verr(c, hp.driver, ":storage :root: \"%s\" is not in pool \"%s\"", h->root,
			     h->pool);
			return false;
		}
	} else if (h->pool || h->root) {
		verr(c, hp.driver ? hp.driver : form,
		     ":storage: :pool and :root need (:driver zfs); the dir driver takes :path");
		return false;
	}
	return true;
}

/* ---- image ---- */

static const char *const image_keys[] = {"build", "file", "args", "from", "kind", NULL};

struct image_parse {
	struct conf_image *im;
	bool bad;
};

static void image_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		      const struct sexp *k)
{
	struct image_parse *ip = obj;
	struct conf_image *im = ip->im;
	bool ok = true;
	switch (key) {
	case 0:
		ok = chk_abs_path(c, ":build", v, &im->build);
		break;
	case 1:
		/* Relative to the build directory, or absolute. */
		if (v->type != SEXP_STRING || v->len == 0 || strstr(v->str, "..") ||
		    v->str[v->len - 1] == '/') {
			vexpect(c, ":file", v, "a file name like \"Cblockfile\" (without \"..\")");
			ok = false;
		} else {
			im->file = xstrdup(v->str);
		}
		break;
	case 2:
		ok = chk_pairs(c, ":args", v, &im->args, &im->nargs);
		break;
	case 3:
		if (v->type != SEXP_STRING || !valid_image_ref(v->str)) {
			vexpect(c, ":from", v, "an image reference like \"forge:latest\"");
			ok = false;
		} else {
			im->from = xstrdup(v->str);
		}
		break;
	case 4:
		if (v->type == SEXP_SYMBOL && strcmp(v->str, "docker") == 0) {
			im->docker = true;
		} else if (v->type == SEXP_SYMBOL && strcmp(v->str, "native") == 0) {
			im->docker = false;
		} else {
			vexpect(c, ":kind", v, "native or docker");
			ok = false;
		}
		break;
	}
	if (!ok)
		ip->bad = true;
}

static void image_free(struct conf_image *im)
{
	if (!im)
		return;
	free(im->name);
	free(im->build);
	free(im->file);
	conf_kvs_free(im->args, im->nargs);
	free(im->from);
	free(im);
}

/* ---- network ---- */

static const char *const network_keys[] = {"subnet", "subnet6", "internal", NULL};

struct net_parse {
	struct conf_network *net;
	bool bad;
};

static void network_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct net_parse *np = obj;
	bool ok = key == 0   ? chk_cidr(c, ":subnet", v, &np->net->subnet)
		  : key == 1 ? chk_cidr6(c, ":subnet6", v, &np->net->subnet6)
			     : chk_bool(c, ":internal", v, &np->net->internal);
	if (!ok)
		np->bad = true;
}

static void network_free(struct conf_network *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->subnet6);
	free(n);
}

/* ---- override ---- */

/*
 * (override NAME :key value ...) amends a container declared elsewhere: it
 * is how the daemon records a live change (clbsd stop/start, PATCH, clbsd
 * update) without a second (container NAME ...) form, which would be a
 * duplicate name. Any key of the container form may be overridden. The
 * overrides of a container are merged into its form before it is read, in
 * load order, a later one winning for the keys it sets; so an overridden
 * value is checked exactly as the file's, and a problem is reported at the
 * override's own position.
 */
struct override {
	char *name;
	struct conf_pos pos; /* of the name */
	bool undeclare;	     /* (undeclare NAME): the container is not declared after all */
	bool moved;	     /* (moved NAME ...): likewise, and never an error */
};

struct override_parse {
	bool any;
};

static void override_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			 const struct sexp *k)
{
	((struct override_parse *)obj)->any = true; /* the container's reader checks the value */
}

/* ---- the whole configuration ---- */

void conf_free(struct conf *c)
{
	if (!c)
		return;
	host_release(&c->host);
	for (size_t i = 0; i < c->nnetworks; i++)
		network_free(c->networks[i]);
	free(c->networks);
	for (size_t i = 0; i < c->nimages; i++)
		image_free(c->images[i]);
	free(c->images);
	for (size_t i = 0; i < c->ncontainers; i++)
		ctr_spec_free(c->containers[i]);
	free(c->containers);
	for (size_t i = 0; i < c->nmoved; i++) {
		free(c->moved[i].name);
		free(c->moved[i].to);
		free(c->moved[i].at);
	}
	free(c->moved);
	strv_free(c->files);
	free(c);
}

const struct conf_moved *conf_moved_find(const struct conf *c, const char *name)
{
	const struct conf_moved *found = NULL;
	for (size_t i = 0; c && i < c->nmoved; i++)
		if (strcmp(c->moved[i].name, name) == 0)
			found = &c->moved[i]; /* the last one read wins */
	return found;
}

struct builder {
	struct conf *c;
	struct conf_diags *diags;
	const struct sexp *host_form; /* the first (host) form, for duplicate reports */
	struct strv
		rejected; /* containers declared but invalid: not "undeclared" for :depends-on */
	struct override *overrides; /* in load order */
	size_t noverrides;
	/* Every well-formed (override NAME :key value ...) form, in load order. */
	const struct sexp **ovforms;
	size_t novforms;
	size_t cap_ct, cap_im, cap_net, cap_ov, cap_mv;
};

static const char *const form_names[] = {"host",     "container", "image", "network",
					 "override", "undeclare", "moved", NULL};

#define PUSH(arr, n, cap, item)                                                                    \
	do {                                                                                       \
		if ((n) == (cap)) {                                                                \
			(cap) = (cap) ? (cap)*2 : 8;                                               \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                           \
		}                                                                                  \
		(arr)[(n)++] = (item);                                                             \
	} while (0)

/* The name after the form's head; NULL (reported) when missing or invalid. */
static char *form_name(struct vctx *c, const struct sexp *form, const char *kind, bool image_ref)
{
	if (form->n < 2 || form->items[1]->type == SEXP_KEYWORD) {
		verr(c, form, "missing the name: expected (%s NAME :key value ...)", kind);
		return NULL;
	}
	const struct sexp *x = form->items[1];
	if (image_ref) {
		if ((x->type == SEXP_SYMBOL || x->type == SEXP_STRING) && valid_image_ref(x->str))
			return xstrdup(x->str);
		vexpect(c, "the name", x, "an image name like web or \"web:v2\"");
		return NULL;
	}
	char *name;
	return chk_name(c, "the name", x, &name) ? name : NULL;
}

/* (override NAME :key value ...) naming `name`, with an even, keyword-led tail. */
static bool override_of(const struct sexp *f, const char *name)
{
	if (f->type != SEXP_LIST || f->tail || f->n < 4 || f->n % 2 != 0 ||
	    f->items[0]->type != SEXP_SYMBOL || strcmp(f->items[0]->str, "override") != 0)
		return false;
	const struct sexp *n = f->items[1];
	if ((n->type != SEXP_SYMBOL && n->type != SEXP_STRING) || strcmp(n->str, name) != 0)
		return false;
	for (size_t i = 2; i < f->n; i += 2)
		if (f->items[i]->type != SEXP_KEYWORD)
			return false;
	return true;
}

/*
 * The container form with its overrides merged in: the form's pairs, an
 * overridden key taking the override's value in its place, new keys after.
 * The nodes are borrowed (free the list and its items array only). NULL
 * when nothing overrides it, or the form is malformed (its reader says so).
 */
static struct sexp *merge_overrides(const struct builder *b, const struct sexp *form,
				    const char *name)
{
	size_t extra = 0;
	for (size_t i = 0; i < b->novforms; i++)
		if (override_of(b->ovforms[i], name))
			extra += b->ovforms[i]->n - 2;
	if (!extra || form->tail || form->n % 2 != 0)
		return NULL;
	for (size_t i = 2; i < form->n; i += 2)
		if (form->items[i]->type != SEXP_KEYWORD)
			return NULL;
	struct sexp *m = xcalloc(1, sizeof(*m));
	*m = *form;
	m->items = xcalloc(form->n + extra, sizeof(*m->items));
	memcpy(m->items, form->items, form->n * sizeof(*m->items));
	m->n = form->n;
	for (size_t i = 0; i < b->novforms; i++) {
		const struct sexp *o = b->ovforms[i];
		if (!override_of(o, name))
			continue;
		for (size_t k = 2; k < o->n; k += 2) {
			size_t j = 2;
			while (j < m->n && strcmp(m->items[j]->str, o->items[k]->str) != 0)
				j += 2;
			if (j == m->n) {
				m->items[m->n++] = o->items[k];
				m->items[m->n++] = o->items[k + 1];
			} else {
				m->items[j + 1] = o->items[k + 1];
			}
		}
	}
	return m;
}

static void add_form(struct builder *b, const struct sexp *form)
{
	struct conf *c = b->c;
	struct vctx top = {.diags = b->diags, .what = "configuration"};
	if (form->type != SEXP_LIST || form->tail || form->n == 0 ||
	    form->items[0]->type != SEXP_SYMBOL) {
		autofree char *got = sexp_describe(form);
		verr(&top, form, "expected a form like (container NAME ...), got %s", got);
		return;
	}
	const struct sexp *head = form->items[0];
	int kind = 0;
	while (form_names[kind] && strcmp(form_names[kind], head->str) != 0)
		kind++;
	if (!form_names[kind]) {
		const char *m = did_you_mean(head->str, form_names);
		if (m)
			verr(&top, head, "unknown form (%s ...); did you mean (%s ...)?", head->str,
			     m);
		else
			verr(&top, head,
			     "unknown form (%s ...); expected host, container, image, network, "
			     "override, undeclare or moved",
			     head->str);
		return;
	}
	if (kind == 0) {
		struct vctx vc = {.diags = b->diags, .what = "host"};
		if (b->host_form) {
			verr(&vc, form, "duplicate (host) form; first given at %s:%d:%d",
			     b->host_form->file, b->host_form->line, b->host_form->col);
			return;
		}
		b->host_form = form;
		c->host.pos = (struct conf_pos){form->file, form->line, form->col};
		parse_host(&vc, form, &c->host);
		return;
	}
	struct vctx named = {.diags = b->diags, .what = form_names[kind]};
	char *name = form_name(&named, form, form_names[kind], kind == 2);
	if (!name)
		return;
	autofree char *what = xasprintf("%s %s", form_names[kind], name);
	struct vctx vc = {.diags = b->diags, .what = what};
	const struct sexp *nn = form->items[1];
	if (kind == 1) {
		if (strcmp(name, "ingress") == 0) {
			verr(&vc, nn,
			     "ingress is reserved (the routing container clbsd runs); "
			     "choose another name");
			free(name);
			return;
		}
		autofree char *keep = xstrdup(name);
		struct sexp *merged = merge_overrides(b, form, name);
		struct ctr_spec *ct = ctr_spec_read_form(&vc, merged ? merged : form, nn, name);
		if (merged) {
			free(merged->items);
			free(merged);
		}
		if (ct)
			PUSH(c->containers, c->ncontainers, b->cap_ct, ct);
		else
			strv_push(&b->rejected, keep);
	} else if (kind == 4) {
		struct override o = {.name = name, .pos = {nn->file, nn->line, nn->col}};
		struct override_parse op = {0};
		size_t before = conf_diags_count(b->diags);
		walk_plist(&vc, form, 2, ctr_form_names(NULL), "", override_key, &op);
		if (conf_diags_count(b->diags) == before && !op.any)
			verr(&vc, nn,
			     "changes nothing; expected a key to override, like :state "
			     "stopped");
		if (conf_diags_count(b->diags) != before) {
			free(o.name);
			return;
		}
		PUSH(b->overrides, b->noverrides, b->cap_ov, o);
	} else if (kind == 5) {
		/* (undeclare NAME): how a live removal of a declared container is written. */
		if (form->n != 2 || form->tail) {
			verr(&vc, form, "expected (undeclare %s) with nothing after the name",
			     name);
			free(name);
			return;
		}
		struct override o = {
			.name = name, .pos = {nn->file, nn->line, nn->col}, .undeclare = true};
		PUSH(b->overrides, b->noverrides, b->cap_ov, o);
	} else if (kind == 6) {
		/* (moved NAME :to "DEST" :at "TIME"): written by clbsd migrate. */
		struct conf_moved mv = {.pos = {nn->file, nn->line, nn->col}};
		bool bad = form->tail || form->n % 2 != 0;
		for (size_t i = 2; !bad && i < form->n; i += 2) {
			const struct sexp *k = form->items[i], *v = form->items[i + 1];
			char **slot = k->type != SEXP_KEYWORD	  ? NULL
				      : strcmp(k->str, "to") == 0 ? &mv.to
				      : strcmp(k->str, "at") == 0 ? &mv.at
								  : NULL;
			if (!slot || *slot) {
				verr(&vc, k, "expected :to \"DEST\" and :at \"TIME\", once each");
				bad = true;
			} else if (v->type != SEXP_STRING || !*v->str || strlen(v->str) > 1024) {
				vexpect(&vc, slot == &mv.to ? ":to" : ":at", v, "a string");
				bad = true;
			} else {
				*slot = xstrdup(v->str);
			}
		}
		if (!bad && !mv.to) {
			verr(&vc, nn, "expected (moved %s :to \"DEST\" :at \"TIME\")", name);
			bad = true;
		}
		if (bad) {
			free(mv.to);
			free(mv.at);
			free(name);
			return;
		}
		mv.name = xstrdup(name);
		PUSH(c->moved, c->nmoved, b->cap_mv, mv);
		struct override o = {.name = name,
				     .pos = {nn->file, nn->line, nn->col},
				     .undeclare = true,
				     .moved = true};
		PUSH(b->overrides, b->noverrides, b->cap_ov, o);
	} else if (kind == 2) {
		struct conf_image *im = xcalloc(1, sizeof(*im));
		im->name = name;
		im->pos = (struct conf_pos){nn->file, nn->line, nn->col};
		struct image_parse ip = {.im = im};
		walk_plist(&vc, form, 2, image_keys, "", image_key, &ip);
		if (!ip.bad && !im->build == !im->from) {
			verr(&vc, nn,
			     "expected exactly one of :build (a directory) or :from (an "
			     "image reference)");
			ip.bad = true;
		}
		if (!ip.bad && im->from && (im->file || im->nargs)) {
			verr(&vc, nn, ":file and :args only apply to :build");
			ip.bad = true;
		}
		if (!ip.bad && im->from && im->docker) {
			verr(&vc, nn,
			     ":kind docker goes with :build (dockerd pulls a reference itself: "
			     "clbsd pull --kind docker)");
			ip.bad = true;
		}
		if (ip.bad) {
			image_free(im);
			return;
		}
		/* A docker build picks Dockerfile, else Cblockfile (docker_image.c). */
		if (im->build && !im->file && !im->docker)
			im->file = xstrdup("Cblockfile");
		if (!im->args)
			im->args = xcalloc(1, sizeof(*im->args));
		PUSH(c->images, c->nimages, b->cap_im, im);
	} else {
		struct conf_network *net = xcalloc(1, sizeof(*net));
		net->name = name;
		net->pos = (struct conf_pos){nn->file, nn->line, nn->col};
		if (!strcmp(name, "bridge") || !strcmp(name, "host") || !strcmp(name, "none")) {
			verr(&vc, nn, "%s is reserved (a :network mode); choose another name",
			     name);
			network_free(net);
			return;
		}
		struct net_parse np = {.net = net};
		walk_plist(&vc, form, 2, network_keys, "", network_key, &np);
		if (np.bad) {
			network_free(net);
			return;
		}
		PUSH(c->networks, c->nnetworks, b->cap_net, net);
	}
}

static int cmp_ct(const void *a, const void *b)
{
	const struct ctr_spec *x = *(const struct ctr_spec *const *)a;
	const struct ctr_spec *y = *(const struct ctr_spec *const *)b;
	return strcmp(x->name, y->name);
}

static int cmp_im(const void *a, const void *b)
{
	const struct conf_image *x = *(const struct conf_image *const *)a;
	const struct conf_image *y = *(const struct conf_image *const *)b;
	return strcmp(x->name, y->name);
}

static int cmp_net(const void *a, const void *b)
{
	const struct conf_network *x = *(const struct conf_network *const *)a;
	const struct conf_network *y = *(const struct conf_network *const *)b;
	return strcmp(x->name, y->name);
}

/*
 * Report every name declared twice. Entries are sorted by name, with the
 * declaration order kept for equal names (merge by position order below),
 * so the first one is the original and each later one is the duplicate.
 */
#define DEDUP(kindname, arr, n, freefn)                                                            \
	do {                                                                                       \
		size_t _w = 0;                                                                     \
		for (size_t _i = 0; _i < (n); _i++) {                                              \
			if (_w > 0 && strcmp((arr)[_w - 1]->name, (arr)[_i]->name) == 0) {         \
				const struct conf_pos *_f = &(arr)[_w - 1]->pos;                   \
				const struct conf_pos *_p = &(arr)[_i]->pos;                       \
				conf_diags_add(                                                    \
					diags, _p->file, _p->line, _p->col,                        \
					"%s %s: duplicate name; first declared at %s:%d:%d",       \
					kindname, (arr)[_i]->name, _f->file, _f->line, _f->col);   \
				freefn((arr)[_i]);                                                 \
				continue;                                                          \
			}                                                                          \
			(arr)[_w++] = (arr)[_i];                                                   \
		}                                                                                  \
		(n) = _w;                                                                          \
	} while (0)

/*
 * Stable insertion sort by name: declaration order is kept among equal
 * names so a duplicate is reported against the first declaration. Linear
 * on input that is already sorted, which configurations usually are.
 */
static void stable_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	char *a = base;
	autofree char *tmp = xmalloc(size);
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		memcpy(tmp, a + i * size, size);
		while (j > 0 && cmp(a + (j - 1) * size, tmp) > 0) {
			memcpy(a + j * size, a + (j - 1) * size, size);
			j--;
		}
		memcpy(a + j * size, tmp, size);
	}
}

static size_t idx_of(const struct conf *c, const char *name)
{
	size_t lo = 0, hi = c->ncontainers;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(c->containers[mid]->name, name);
		if (r == 0)
			return mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (size_t)-1;
}

static const struct ctr_spec *find_ct(const struct conf *c, const char *name)
{
	size_t i = idx_of(c, name);
	return i == (size_t)-1 ? NULL : c->containers[i];
}

const struct ctr_spec *conf_container_find(const struct conf *c, const char *name)
{
	return find_ct(c, name);
}

/* Depth-first search for :depends-on cycles; 0 white, 1 on the stack, 2 done. */
struct dfs {
	const struct conf *c;
	struct conf_diags *diags;
	unsigned char *color;
	size_t *stack;
	size_t depth;
};

static void dfs_visit(struct dfs *d, size_t u)
{
	const struct ctr_spec *ct = d->c->containers[u];
	d->color[u] = 1;
	d->stack[d->depth++] = u;
	for (size_t k = 0; ct->depends_on[k]; k++) {
		size_t v = idx_of(d->c, ct->depends_on[k]);
		if (v == (size_t)-1)
			continue;
		if (d->color[v] == 1) {
			struct buf b = BUF_INIT;
			size_t from = 0;
			while (d->stack[from] != v)
				from++;
			for (size_t i = from; i < d->depth; i++)
				buf_addf(&b, "%s -> ", d->c->containers[d->stack[i]]->name);
			buf_adds(&b, d->c->containers[v]->name);
			const struct conf_pos *p = &ct->depends_pos[k];
			conf_diags_add(d->diags, p->file, p->line, p->col,
				       "container %s: :depends-on: dependency cycle %s; remove one "
				       "of these dependencies",
				       ct->name, b.data);
			buf_release(&b);
		} else if (d->color[v] == 0) {
			dfs_visit(d, v);
		}
	}
	d->depth--;
	d->color[u] = 2;
}

static bool is_rejected(char *const *rejected, const char *name)
{
	for (size_t j = 0; rejected && rejected[j]; j++)
		if (strcmp(rejected[j], name) == 0)
			return true;
	return false;
}

/* The declared container names, NULL-terminated, for did_you_mean(). */
static const char **ct_names(const struct conf *c)
{
	const char **names = xcalloc(c->ncontainers + 1, sizeof(char *));
	for (size_t j = 0; j < c->ncontainers; j++)
		names[j] = c->containers[j]->name;
	return names;
}

/* Apply the overrides in load order onto the declared containers. */
static void apply_overrides(struct conf *c, const struct override *ov, size_t n,
			    char *const *rejected, struct conf_diags *diags)
{
	for (size_t i = 0; i < n; i++) {
		const struct override *o = &ov[i];
		size_t k = idx_of(c, o->name);
		if (k != (size_t)-1 && o->undeclare) {
			ctr_spec_free(c->containers[k]);
			memmove(&c->containers[k], &c->containers[k + 1],
				(c->ncontainers - k - 1) * sizeof(*c->containers));
			c->ncontainers--;
			continue;
		}
		if (k != (size_t)-1 || o->moved)
			continue; /* merged into its form when it was read; moved: gone */
		/*
		 * The daemon's own record of a `clbsd stop`/`start` outlives the
		 * container's declaration: once it is gone from the files, the
		 * record means nothing, and must not make the files invalid.
		 */
		const char *base = o->pos.file ? strrchr(o->pos.file, '/') : NULL;
		if (strcmp(base ? base + 1 : o->pos.file ? o->pos.file : "", LIVE_FILE_NAME) == 0)
			continue;
		if (is_rejected(rejected, o->name))
			continue; /* declared with errors, which are reported */
		const char **names = ct_names(c);
		const char *m = did_you_mean(o->name, names);
		conf_diags_add(diags, o->pos.file, o->pos.line, o->pos.col,
			       "override %s: no container named %s is declared%s%s%s; an override "
			       "amends a declared container: declare it or remove the override",
			       o->name, o->name, m ? " (did you mean " : "", m ? m : "",
			       m ? "?)" : "");
		free(names);
	}
}

static void check_refs(struct conf *c, char *const *rejected, struct conf_diags *diags)
{
	for (size_t i = 0; i < c->ncontainers; i++) {
		const struct ctr_spec *ct = c->containers[i];
		for (size_t k = 0; ct->depends_on[k]; k++) {
			if (find_ct(c, ct->depends_on[k]))
				continue;
			if (is_rejected(rejected, ct->depends_on[k]))
				continue; /* its own errors are reported; do not cascade */
			if (conf_moved_find(c, ct->depends_on[k]))
				continue; /* it runs on another host now */
			const struct conf_pos *p = &ct->depends_pos[k];
			/* Suggest a declared container with a close name. */
			const char **names = ct_names(c);
			const char *m = did_you_mean(ct->depends_on[k], names);
			if (m)
				conf_diags_add(diags, p->file, p->line, p->col,
					       "container %s: :depends-on: no container named %s; "
					       "did you mean %s?",
					       ct->name, ct->depends_on[k], m);
			else
				conf_diags_add(
					diags, p->file, p->line, p->col,
					"container %s: :depends-on: no container named %s is "
					"declared",
					ct->name, ct->depends_on[k]);
			free(names);
		}
		if (ct->netmode == CTR_NET_NAMED) {
			for (size_t k = 0; ct->networks[k]; k++) {
				/* The host's bridge in a list: checked with the other network keys. */
				bool found = strcmp(ct->networks[k], "bridge") == 0;
				for (size_t j = 0; j < c->nnetworks; j++)
					found |= strcmp(c->networks[j]->name, ct->networks[k]) == 0;
				if (!found)
					conf_diags_add(
						diags, ct->pos.file, ct->pos.line, ct->pos.col,
						"container %s: :network: no network named %s "
						"is declared; declare (network %s ...) or use "
						"bridge, host or none",
						ct->name, ct->networks[k], ct->networks[k]);
			}
		}
	}
	struct dfs d = {
		.c = c,
		.diags = diags,
		.color = xcalloc(c->ncontainers + 1, 1),
		.stack = xcalloc(c->ncontainers + 1, sizeof(size_t)),
	};
	for (size_t i = 0; i < c->ncontainers; i++)
		if (d.color[i] == 0)
			dfs_visit(&d, i);
	free(d.color);
	free(d.stack);
}

static bool cidr_overlap(const struct conf_cidr *a, const struct conf_cidr *b)
{
	int p = a->prefix < b->prefix ? a->prefix : b->prefix;
	uint32_t mask = p ? (uint32_t)(0xffffffffu << (32 - p)) : 0;
	return (a->addr & mask) == (b->addr & mask);
}

static const struct conf_cidr *first_subnet(const struct conf *c, const struct ctr_spec *ct)
{
	if (ct->netmode == CTR_NET_BRIDGE)
		return &c->host.subnet;
	if (ct->netmode != CTR_NET_NAMED || !ct->networks[0])
		return NULL;
	if (strcmp(ct->networks[0], "bridge") == 0)
		return &c->host.subnet;
	for (size_t j = 0; j < c->nnetworks; j++)
		if (strcmp(c->networks[j]->name, ct->networks[0]) == 0)
			return c->networks[j]->subnet.set ? &c->networks[j]->subnet : NULL;
	return NULL;
}

static bool publish_clash(const struct ctr_publish *a, const struct ctr_publish *b)
{
	if (a->host_port != b->host_port || a->udp != b->udp)
		return false;
	return !a->ip || !b->ip || strcmp(a->ip, b->ip) == 0;
}

/*
 * The network keys against the whole configuration: the default mode (bridge
 * when the host has a :network, else none), keys that need a network, a
 * pinned :ip inside its subnet, and host ports published twice.
 */
static void check_networking(struct conf *c, struct conf_diags *diags)
{
	/* IPv6 subnets must not overlap either (IPv4 ones: check_subnets). */
	for (size_t i = 0; i < c->nnetworks; i++) {
		const struct conf_network *n = c->networks[i];
		struct net_prefix a, b;
		struct clbsd_err e;
		if (!n->subnet6 || net_prefix_parse(n->subnet6, &a, &e) < 0)
			continue;
		if (c->host.network_set && c->host.subnet6 &&
		    net_prefix_parse(c->host.subnet6, &b, &e) == 0 && net_prefix_overlaps(&a, &b))
			conf_diags_add(diags, n->pos.file, n->pos.line, n->pos.col,
				       "network %s: :subnet6 overlaps the host bridge's", n->name);
		for (size_t j = 0; j < i; j++)
			if (c->networks[j]->subnet6 &&
			    net_prefix_parse(c->networks[j]->subnet6, &b, &e) == 0 &&
			    net_prefix_overlaps(&a, &b))
				conf_diags_add(diags, n->pos.file, n->pos.line, n->pos.col,
					       "network %s: :subnet6 overlaps network %s's",
					       n->name, c->networks[j]->name);
	}
	for (size_t i = 0; i < c->ncontainers; i++) {
		struct ctr_spec *ct = c->containers[i];
		const struct conf_pos *p = &ct->pos;
		bool lists_bridge = false;
		for (size_t k = 0; ct->netmode == CTR_NET_NAMED && ct->networks[k]; k++)
			lists_bridge |= strcmp(ct->networks[k], "bridge") == 0;
		if (lists_bridge && !c->host.network_set)
			conf_diags_add(
				diags, p->file, p->line, p->col,
				"container %s: :network lists bridge, which needs the host's "
				"network: add :network (:bridge \"clbsd0\" :subnet "
				"\"10.88.0.0/24\") to the (host ...) form",
				ct->name);
		if (ct->netmode == CTR_NET_BRIDGE && !c->host.network_set) {
			if (ct->netmode_given)
				conf_diags_add(diags, p->file, p->line, p->col,
					       "container %s: :network bridge needs the host's "
					       "network: add :network (:bridge \"clbsd0\" :subnet "
					       "\"10.88.0.0/24\") to the (host ...) form",
					       ct->name);
			else
				ct->netmode = CTR_NET_NONE;
		}
		bool attached = ct->netmode == CTR_NET_BRIDGE || ct->netmode == CTR_NET_NAMED;
		const char *mode = ct->netmode == CTR_NET_HOST ? "host" : "none";
		if (!attached && (ct->npublish || ct->ip || (ct->aliases && ct->aliases[0])))
			conf_diags_add(diags, p->file, p->line, p->col,
				       "container %s: %s needs a network, but :network is %s; use "
				       "bridge or a network name",
				       ct->name,
				       ct->npublish ? ":publish"
				       : ct->ip	    ? ":ip"
						    : ":aliases",
				       mode);
		const struct conf_cidr *sn = first_subnet(c, ct);
		if (ct->ip && sn && sn->set) {
			struct in_addr a;
			uint32_t h = inet_pton(AF_INET, ct->ip, &a) == 1 ? ntohl(a.s_addr) : 0;
			uint32_t mask =
				sn->prefix ? (uint32_t)(0xffffffffu << (32 - sn->prefix)) : 0;
			uint32_t bcast = sn->addr | ~mask;
			if ((h & mask) != (sn->addr & mask))
				conf_diags_add(
					diags, p->file, p->line, p->col,
					"container %s: :ip %s is outside its network's subnet "
					"%u.%u.%u.%u/%d",
					ct->name, ct->ip, sn->addr >> 24, (sn->addr >> 16) & 255,
					(sn->addr >> 8) & 255, sn->addr & 255, sn->prefix);
			else if (h == sn->addr || h == sn->addr + 1 || h == bcast)
				conf_diags_add(diags, p->file, p->line, p->col,
					       "container %s: :ip %s is reserved (the network "
					       "address, the gateway or the broadcast address)",
					       ct->name, ct->ip);
		}
		for (size_t k = 0; k < ct->npublish; k++)
			for (size_t j = 0; j < i; j++) {
				const struct ctr_spec *o = c->containers[j];
				for (size_t m = 0; m < o->npublish; m++)
					if (publish_clash(&ct->publish[k], &o->publish[m]))
						conf_diags_add(diags, p->file, p->line, p->col,
							       "container %s: :publish: host port "
							       "%d/%s is also "
							       "published by container %s",
							       ct->name, ct->publish[k].host_port,
							       ct->publish[k].udp ? "udp" : "tcp",
							       o->name);
			}
	}
}

static void check_subnets(struct conf *c, struct conf_diags *diags)
{
	for (size_t i = 0; i < c->nnetworks; i++) {
		const struct conf_network *n = c->networks[i];
		if (!n->subnet.set)
			continue;
		if (cidr_overlap(&n->subnet, &c->host.subnet))
			conf_diags_add(diags, n->pos.file, n->pos.line, n->pos.col,
				       "network %s: :subnet overlaps the host bridge's subnet",
				       n->name);
		for (size_t j = 0; j < i; j++)
			if (c->networks[j]->subnet.set &&
			    cidr_overlap(&n->subnet, &c->networks[j]->subnet))
				conf_diags_add(diags, n->pos.file, n->pos.line, n->pos.col,
					       "network %s: :subnet overlaps network %s's", n->name,
					       c->networks[j]->name);
	}
}

int conf_build(const struct conf_source *srcs, size_t n, struct conf **out,
	       struct conf_diags *diags)
{
	size_t before = conf_diags_count(diags);
	struct conf *c = xcalloc(1, sizeof(*c));
	c->files = xcalloc(n + 1, sizeof(char *));
	host_defaults(&c->host);
	struct builder b = {.c = c, .diags = diags};
	struct sexp_doc **docs = xcalloc(n + 1, sizeof(*docs));
	for (size_t i = 0; i < n; i++) {
		c->files[i] = xstrdup(srcs[i].file ? srcs[i].file : "(config)");
		if (sexp_read(c->files[i], srcs[i].text, srcs[i].len, &docs[i], diags) < 0)
			docs[i] = NULL;
	}
	/* The overrides first: a container's are merged into its form as it is read. */
	size_t cap_of = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t f = 0; docs[i] && f < docs[i]->n; f++) {
			const struct sexp *x = docs[i]->forms[f];
			if (x->type == SEXP_LIST && x->n >= 2 && x->items[0]->type == SEXP_SYMBOL &&
			    strcmp(x->items[0]->str, "override") == 0)
				PUSH(b.ovforms, b.novforms, cap_of, x);
		}
	/* Positions must outlive the documents: point them at c->files. */
	for (size_t i = 0; i < n; i++)
		for (size_t f = 0; docs[i] && f < docs[i]->n; f++)
			add_form(&b, docs[i]->forms[f]);
	free(b.ovforms);
	/* Nodes' file pointers go into the docs; re-point model positions at c->files. */
	for (size_t i = 0; i < n; i++) {
		if (!docs[i])
			continue;
		const char *df = docs[i]->file, *cf = c->files[i];
		if (c->host.pos.file == df)
			c->host.pos.file = cf;
		for (size_t j = 0; j < c->ncontainers; j++) {
			struct ctr_spec *ct = c->containers[j];
			if (ct->pos.file == df)
				ct->pos.file = cf;
			for (size_t k = 0; ct->depends_on[k]; k++)
				if (ct->depends_pos[k].file == df)
					ct->depends_pos[k].file = cf;
			for (size_t k = 0; k < ct->nhooks; k++)
				if (ct->hooks[k].pos.file == df)
					ct->hooks[k].pos.file = cf;
		}
		for (size_t j = 0; j < c->nimages; j++)
			if (c->images[j]->pos.file == df)
				c->images[j]->pos.file = cf;
		for (size_t j = 0; j < c->nnetworks; j++)
			if (c->networks[j]->pos.file == df)
				c->networks[j]->pos.file = cf;
		for (size_t j = 0; j < b.noverrides; j++)
			if (b.overrides[j].pos.file == df)
				b.overrides[j].pos.file = cf;
		for (size_t j = 0; j < c->nmoved; j++)
			if (c->moved[j].pos.file == df)
				c->moved[j].pos.file = cf;
		sexp_doc_free(docs[i]);
	}
	free(docs);
	stable_sort(c->containers, c->ncontainers, sizeof(*c->containers), cmp_ct);
	stable_sort(c->images, c->nimages, sizeof(*c->images), cmp_im);
	stable_sort(c->networks, c->nnetworks, sizeof(*c->networks), cmp_net);
	DEDUP("container", c->containers, c->ncontainers, ctr_spec_free);
	DEDUP("image", c->images, c->nimages, image_free);
	DEDUP("network", c->networks, c->nnetworks, network_free);
	apply_overrides(c, b.overrides, b.noverrides, b.rejected.v, diags);
	for (size_t i = 0; i < b.noverrides; i++)
		free(b.overrides[i].name);
	free(b.overrides);
	check_refs(c, b.rejected.v, diags);
	strv_release(&b.rejected);
	check_subnets(c, diags);
	check_networking(c, diags);
	if (conf_diags_count(diags) != before) {
		conf_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

/* ---- loading ---- */

bool conf_is_confd_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".conf") == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load(const char *main_file, const char *confd_dir, const char *live, size_t live_len,
		struct conf **out, char digest[65], struct conf_diags *diags);

int conf_load(const char *main_file, const char *confd_dir, struct conf **out,
	      struct conf_diags *diags)
{
	return load(main_file, confd_dir, NULL, 0, out, NULL, diags);
}

int conf_load_digest(const char *main_file, const char *confd_dir, struct conf **out,
		     char digest[65], struct conf_diags *diags)
{
	return load(main_file, confd_dir, NULL, 0, out, digest, diags);
}

int conf_load_live(const char *main_file, const char *confd_dir, const char *live, size_t live_len,
		   struct conf **out, struct conf_diags *diags)
{
	return load(main_file, confd_dir, live, live_len, out, NULL, diags);
}

/*
 * One entry of a load's digest: the path with its NUL, then what was read
 * (a tag byte and the length, so that no two different sequences of
 * entries hash alike).
 */
static void digest_add(struct hash_stream *h, const char *path, char tag, const void *data,
		       uint64_t len)
{
	if (!h)
		return;
	hash_stream_add(h, path, strlen(path) + 1);
	hash_stream_add(h, &tag, 1);
	hash_stream_add(h, &len, sizeof(len));
	hash_stream_add(h, data, (size_t)len);
}

static int load(const char *main_file, const char *confd_dir, const char *live, size_t live_len,
		struct conf **out, char digest[65], struct conf_diags *diags)
{
	struct hash_stream *h = digest ? hash_sha256_begin() : NULL;
	struct strv paths = STRV_INIT;
	if (main_file)
		strv_push(&paths, main_file);
	if (confd_dir) {
		DIR *d = opendir(confd_dir);
		if (!d && errno != ENOENT && errno != ENOTDIR) {
			int32_t e = errno;
			digest_add(h, confd_dir, 'D', &e, sizeof(e));
			conf_diags_add(diags, confd_dir, 0, 0, "cannot read the directory: %s",
				       strerror(errno));
		} else if (d) {
			struct strv names = STRV_INIT;
			struct dirent *e;
			while ((e = readdir(d)))
				if (conf_is_confd_name(e->d_name))
					strv_push(&names, e->d_name);
			closedir(d);
			if (names.n)
				qsort(names.v, names.n, sizeof(char *), cmp_str);
			for (size_t i = 0; i < names.n; i++)
				if (!live || strcmp(names.v[i], LIVE_FILE_NAME) != 0)
					strv_push_owned(&paths,
							xasprintf("%s/%s", confd_dir, names.v[i]));
			strv_release(&names);
		}
	}
	size_t before = conf_diags_count(diags);
	struct conf_source *srcs = xcalloc(paths.n + 2, sizeof(*srcs));
	char **texts = xcalloc(paths.n + 2, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < paths.n; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		size_t len;
		int r = fs_read_file(paths.v[i], &texts[n], &len, &err);
		if (r < 0) {
			/* The error is in the digest: a file that becomes readable changes it. */
			int32_t e = -r;
			digest_add(h, paths.v[i], 'E', &e, sizeof(e));
		}
		if (r == -ENOENT && i == 0 && main_file)
			continue; /* no main file: an empty configuration */
		if (r < 0) {
			conf_diags_add(diags, paths.v[i], 0, 0, "cannot read: %s", strerror(-r));
			continue;
		}
		digest_add(h, paths.v[i], 'F', texts[n], len);
		srcs[n] = (struct conf_source){.file = paths.v[i], .text = texts[n], .len = len};
		n++;
	}
	/* The live file sorts after every other name of conf.d ("90-"): load it last. */
	autofree char *live_path =
		live && confd_dir ? xasprintf("%s/%s", confd_dir, LIVE_FILE_NAME) : NULL;
	if (live_path) {
		texts[n] = xstrndup(live, live_len);
		srcs[n] =
			(struct conf_source){.file = live_path, .text = texts[n], .len = live_len};
		n++;
	}
	if (h)
		hash_stream_end(h, digest);
	struct conf *c = NULL;
	int r = conf_build(srcs, n, &c, diags);
	if (r == 0 && conf_diags_count(diags) != before) {
		/* A file that could not be read makes the whole configuration invalid. */
		conf_free(c);
		r = -EINVAL;
	} else if (r == 0) {
		*out = c;
	}
	for (size_t i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(srcs);
	strv_release(&paths);
	return r;
}
