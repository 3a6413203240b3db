/*
 * Private to src/compose/: the translation's state (struct ctx) and the
 * helpers its three files share. compose_doc.c reads the YAML document
 * (merge keys, interpolated scalars, messages with positions) and writes
 * pieces of forms; compose_svc.c translates one service, key by key
 * (compose_pv.c its ports and volumes);
 * compose_tr.c does the file (project, networks, volumes, names, the
 * check with conf_build).
 *
 * Invariant: a warning names where (libyaml's mark), the service being
 * translated (c->svc) and the key; cx_fatal() also makes the result
 * unusable.
 */
#ifndef CLBSD_COMPOSE_INT_H
#define CLBSD_COMPOSE_INT_H

#include "compose/compose.h"
#include "conf/conf.h"
#include "util/netaddr.h"
#include "util/util.h"

#include <yaml.h>

struct kvp {
	yaml_node_t *k, *v;
};

struct net_out {
	char *yname;	      /* the file's name */
	char *name;	      /* clbsd's */
	struct net_prefix v4; /* family 0: none declared (clbsd allocates one) */
	struct net_prefix v6; /* family 0: none */
	bool used;
};

struct svc_info {
	char *yname; /* the service's name in the file */
	char *name;  /* the container's */
	yaml_node_t *node;
	bool has_health;
	bool usable; /* it has an image or a local build: it becomes a container */
};

struct vol_use {
	char *name; /* clbsd's name of a named volume */
	const yaml_node_t *at;
	struct strv svcs;
};

struct warning {
	int line, col;
	size_t seq;
	char *text;
};

/* Resource limits collected from the keys that give them. */
struct limits {
	int64_t memory;
	double cpus;
	long long pids;
	const yaml_node_t *at;
};

struct ctx {
	const struct compose_opts *o;
	struct warning *w; /* sorted by position at the end */
	yaml_document_t doc;
	char *project;
	struct buf out, warn;
	size_t nwarn;
	bool fatal;
	struct conf_kv *dotenv;
	size_t ndotenv;
	struct strv unset_seen;
	struct net_out *nets;
	size_t nnets;
	struct svc_info *svcs;
	size_t nsvcs;
	bool need_default_net;
	struct strv published; /* "ip:port/proto" already published */
	struct strv built;     /* the images an (image ... :build) form was written for */
	struct vol_use *vols;
	size_t nvols;
	const yaml_node_t *top_vols; /* the top-level volumes: mapping */
	/* The service being translated and its collected form. */
	const char *svc;
	struct buf f;
	struct buf notes; /* comment lines above the form */
	struct strv deps;
	struct strv edges; /* "from\tto": the dependencies written so far */
	bool netmode_host;
	bool netmode_none;
	bool restart_given;	 /* the service has restart: (deploy.restart_policy yields) */
	struct conf_kv *env_acc; /* env_file and environment, until env_finish() */
	size_t env_n;
	struct limits lim; /* mem_limit, cpus, pids_limit and deploy's, until limits_finish() */
};

/* ---- compose_doc.c ---- */

void cx_warn(struct ctx *c, const yaml_node_t *at, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void cx_fatal(struct ctx *c, const yaml_node_t *at, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
yaml_node_t *cx_node(struct ctx *c, int i);
bool cx_is_map(const yaml_node_t *n);
bool cx_is_seq(const yaml_node_t *n);
bool cx_is_scalar(const yaml_node_t *n);
/* A scalar's text as written, or NULL for a list or a mapping. */
const char *cx_raw(const yaml_node_t *n);
/* Absent, or a plain scalar YAML reads as null ("", ~, null). */
bool cx_is_null(const yaml_node_t *n);
size_t cx_seq_len(const yaml_node_t *n);
yaml_node_t *cx_seq_at(struct ctx *c, const yaml_node_t *n, size_t i);
/* A mapping's pairs with merge keys (<<) folded in; *out is free()d by the caller. */
size_t cx_map_pairs(struct ctx *c, const yaml_node_t *m, struct kvp **out);
yaml_node_t *cx_map_get(struct ctx *c, const yaml_node_t *m, const char *key);
/* A variable: the caller's environment, then the .env beside the file. */
const char *cx_dotenv_get(const char *name, void *arg);
/* A scalar interpolated (new), or NULL after a warning. */
char *cx_str(struct ctx *c, const yaml_node_t *n, const char *key);
/* A list of scalars or one scalar (new, NULL-terminated), or NULL after a warning. */
char **cx_strs(struct ctx *c, const yaml_node_t *n, const char *key);
/* A DNS label made from a Compose name, or NULL when nothing is left. */
char *cx_label(const char *s);
/* rel against base, clean and absolute. */
char *cx_abs_path(const char *base, const char *rel);
const char *cx_base_dir(struct ctx *c);
/* A path the configuration takes: clean, absolute, no control characters, < 4096. */
bool cx_path_ok(const char *p);
/* s into a ';' comment: control characters (a line break would end it) as '?'. */
void cx_comment(struct buf *b, const char *s);
void cx_key_str(struct ctx *c, const char *key, const char *v);
void cx_key_strs(struct ctx *c, const char *key, char *const *v);
void cx_add_pair(struct buf *b, const char *k, const char *v);
bool cx_env_name_ok(const char *s);
void cx_kv_set(struct conf_kv **v, size_t *n, const char *k, const char *val);
/* "KEY=VALUE" items or a mapping; bare (a key without value) as bare() says. */
void cx_pairs(struct ctx *c, const yaml_node_t *n, const char *key, struct conf_kv **v, size_t *nv,
	      void (*bare)(struct ctx *, const yaml_node_t *, const char *, struct conf_kv **,
			   size_t *));
int cx_kv_cmp(const void *a, const void *b);
void cx_key_pairs(struct ctx *c, const char *key, struct conf_kv *v, size_t n);

/* ---- compose_svc.c ---- */

/* Warn about the keys of mapping m that are not in known (x-* are skipped). */
void cx_unknown_keys(struct ctx *c, const yaml_node_t *m, const char *where,
		     const char *const *known);
const struct svc_info *cx_svc_find(struct ctx *c, const char *yname);
/* Whether a healthcheck: mapping checks (a test, not NONE, not disabled). */
bool cx_health_on(struct ctx *c, const yaml_node_t *h);
/* Whether a service has what a container needs: a usable image or a local build. */
bool cx_svc_usable(struct ctx *c, const yaml_node_t *svc);
/* One service: its (image ...) form to imgs, its (container ...) form to ctrs. */
void cx_service(struct ctx *c, const struct svc_info *si, struct buf *imgs, struct buf *ctrs);

/* ---- compose_pv.c: the ports, expose and volumes keys of a service ---- */

void cx_k_ports(struct ctx *c, const yaml_node_t *v, const char *key);
void cx_k_expose(struct ctx *c, const yaml_node_t *v, const char *key);
void cx_k_volumes(struct ctx *c, const yaml_node_t *v, const char *key);

#endif
