/*
 * Private to the spec's files: the key table (spec_keys.c) and the
 * functions its rows point at, one per key and direction: reading the
 * form (spec_form.c), printing it (spec_print.c), and reading and writing
 * the API's JSON (spec_json.c).
 *
 * A row with no form name is a key only the API has (stdin, auto_remove,
 * the flat memory/pids/cpus the form spells (:limits ...)); a row with no
 * JSON name one only the configuration has (hooks, health, routing,
 * snapshots). Printing, hashing and diffing walk the rows with a form name,
 * in table order; the hash takes the rows flagged recreate.
 */
#ifndef CLBSD_CORE_SPEC_KEYS_H
#define CLBSD_CORE_SPEC_KEYS_H

#include "conf/value_check.h"
#include "core/spec.h"
#include "util/util.h"

#include <jansson.h>

/* The state of reading one container form. */
struct ctr_parse {
	struct ctr_spec *ct;
	const struct sexp *health_http_port; /* set when :health :http has no :port */
	const struct sexp *sysctls_at;	     /* the :sysctls value, for the check across keys */
	bool image_seen;
	bool bad;
};

/* Form: read value v of the key into cp->ct; report and set cp->bad when wrong. */
typedef void (*ctr_form_read_fn)(struct vctx *c, struct ctr_parse *cp, const struct sexp *v);
/* Form: print the value; false (nothing printed) when unset. */
typedef bool (*ctr_form_print_fn)(struct buf *b, const struct ctr_spec *s);
/* JSON: read value v (never NULL, may be null) of key `key`; 0 or -errno with err set. */
typedef int (*ctr_json_read_fn)(const char *key, json_t *v, struct ctr_spec *s,
				struct clbsd_err *err);
/* JSON: the value, or NULL when unset (the key is left out). */
typedef json_t *(*ctr_json_write_fn)(const struct ctr_spec *s);

struct ctr_key {
	const char *form; /* ":image", or NULL */
	const char *json; /* "image", or NULL */
	bool recreate;	  /* a change recreates the container (and so is hashed) */
	ctr_form_read_fn read;
	ctr_form_print_fn print;
	ctr_json_read_fn jread;
	ctr_json_write_fn jwrite;
	const char *value; /* docs (markdown): the value and what it does */
	const char *dflt;  /* docs (markdown): the default */
	/*
	 * Hashed (recreate is set, so hashes recorded before stay valid), but
	 * a change is applied to an existing native container in place, its
	 * cgroup written, instead of recreating it: ctr_spec_hash_live().
	 */
	bool in_place;
};

extern const struct ctr_key ctr_keys[];
extern const size_t ctr_nkeys;
/* The form names, NULL-terminated, for walk_plist(), and each one's row. */
const char *const *ctr_form_names(const size_t **rows);

void ctr_volume_release(struct ctr_volume *v);
void ctr_hook_release(struct ctr_hook *h);
void ctr_publish_release(struct ctr_publish *p);

#define KEY_FNS(k)                                                                                 \
	void spec_r_##k(struct vctx *c, struct ctr_parse *cp, const struct sexp *v);               \
	bool spec_p_##k(struct buf *b, const struct ctr_spec *s);
#define JSON_FNS(k)                                                                                \
	int spec_j_##k(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err);     \
	json_t *spec_w_##k(const struct ctr_spec *s);

KEY_FNS(kind)
KEY_FNS(image)
KEY_FNS(command)
KEY_FNS(env)
KEY_FNS(workdir)
KEY_FNS(user)
KEY_FNS(hostname)
KEY_FNS(tty)
KEY_FNS(stop_signal)
KEY_FNS(userns)
KEY_FNS(volumes)
KEY_FNS(limits)
KEY_FNS(network)
KEY_FNS(ip)
KEY_FNS(aliases)
KEY_FNS(dns)
KEY_FNS(publish)
KEY_FNS(state)
KEY_FNS(restart)
KEY_FNS(depends)
KEY_FNS(health)
KEY_FNS(on)
KEY_FNS(domain)
KEY_FNS(port)
KEY_FNS(path)
KEY_FNS(ingress)
KEY_FNS(tls)
KEY_FNS(storage)
KEY_FNS(snapshots)
KEY_FNS(snap_before)
KEY_FNS(backup)
KEY_FNS(integrity)
KEY_FNS(entrypoint)
KEY_FNS(labels)
KEY_FNS(cap_add)
KEY_FNS(cap_drop)
KEY_FNS(sysctls)
KEY_FNS(devices)

JSON_FNS(name)
JSON_FNS(kind)
JSON_FNS(image)
JSON_FNS(command)
JSON_FNS(env)
JSON_FNS(workdir)
JSON_FNS(user)
JSON_FNS(hostname)
JSON_FNS(tty)
JSON_FNS(stdin)
JSON_FNS(auto_remove)
JSON_FNS(stop_signal)
JSON_FNS(userns)
JSON_FNS(volumes)
JSON_FNS(memory)
JSON_FNS(pids)
JSON_FNS(cpus)
JSON_FNS(network)
JSON_FNS(ip)
JSON_FNS(aliases)
JSON_FNS(dns)
JSON_FNS(publish)
JSON_FNS(restart)
JSON_FNS(storage)
JSON_FNS(entrypoint)
JSON_FNS(labels)
JSON_FNS(cap_add)
JSON_FNS(cap_drop)
JSON_FNS(sysctls)
JSON_FNS(devices)
JSON_FNS(integrity)

#endif
