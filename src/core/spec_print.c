/*
 * Canonical printing of a validated configuration, and the spec hash and
 * diff built on it.
 *
 * The key table (spec_keys.c), in canonical order, drives all three: the
 * printer walks its rows with a form name, the hash covers the rows flagged
 * recreate, and the diff compares each row's printing. So a key cannot be
 * printed one way and hashed another, and a new key needs one row.
 */
#include "core/config.h"
#include "core/spec_keys.h"
#include "util/hash.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static void add_size(struct buf *b, int64_t v)
{
	autofree char *s = conf_size_str(v);
	sexp_print_string(b, s);
}

static void add_duration(struct buf *b, int64_t v)
{
	autofree char *s = conf_duration_str(v);
	sexp_print_string(b, s);
}

static void add_bool(struct buf *b, bool v)
{
	buf_adds(b, v ? "t" : "nil");
}

static void add_strings(struct buf *b, char *const *v)
{
	buf_addc(b, '(');
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			buf_addc(b, ' ');
		sexp_print_string(b, v[i]);
	}
	buf_addc(b, ')');
}

static void add_names(struct buf *b, char *const *v)
{
	buf_addc(b, '(');
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			buf_addc(b, ' ');
		sexp_print_name(b, v[i]);
	}
	buf_addc(b, ')');
}

static void add_pairs(struct buf *b, const struct conf_kv *v, size_t n)
{
	buf_addc(b, '(');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ' ');
		buf_addc(b, '(');
		sexp_print_string(b, v[i].key);
		buf_adds(b, " . ");
		sexp_print_string(b, v[i].value);
		buf_addc(b, ')');
	}
	buf_addc(b, ')');
}

static void add_cidr(struct buf *b, const struct conf_cidr *c)
{
	autofree char *s = xasprintf("%u.%u.%u.%u/%d", c->addr >> 24, (c->addr >> 16) & 255,
				     (c->addr >> 8) & 255, c->addr & 255, c->prefix);
	sexp_print_string(b, s);
}

/* ---- container keys: each prints the value, or returns false when the key is unset ---- */

bool spec_p_kind(struct buf *b, const struct ctr_spec *ct)
{
	buf_adds(b, ct->kind == CTR_KIND_DOCKER ? "docker" : "native");
	return true;
}

bool spec_p_image(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->image)
		return false;
	sexp_print_string(b, ct->image);
	return true;
}

bool spec_p_command(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->command)
		return false;
	add_strings(b, ct->command);
	return true;
}

bool spec_p_env(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->nenv)
		return false;
	add_pairs(b, ct->env, ct->nenv);
	return true;
}

bool spec_p_workdir(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->workdir)
		return false;
	sexp_print_string(b, ct->workdir);
	return true;
}

bool spec_p_user(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->user)
		return false;
	sexp_print_string(b, ct->user);
	return true;
}

bool spec_p_hostname(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->hostname) /* only an API spec: the daemon takes the name */
		return false;
	sexp_print_string(b, ct->hostname);
	return true;
}

bool spec_p_tty(struct buf *b, const struct ctr_spec *ct)
{
	add_bool(b, ct->tty);
	return true;
}

bool spec_p_stop_signal(struct buf *b, const struct ctr_spec *ct)
{
	char name[16];
	if (!ct->stop_signal)
		return false;
	sexp_print_string(b, ctr_signal_name(ct->stop_signal, name));
	return true;
}

bool spec_p_userns(struct buf *b, const struct ctr_spec *ct)
{
	if (ct->userns == CTR_USERNS_UNSET)
		return false;
	buf_adds(b, ct->userns == CTR_USERNS_AUTO ? "auto" : "host");
	return true;
}

bool spec_p_volumes(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->nvolumes)
		return false;
	buf_addc(b, '(');
	for (size_t i = 0; i < ct->nvolumes; i++) {
		const struct ctr_volume *v = &ct->volumes[i];
		if (i)
			buf_addc(b, ' ');
		buf_adds(b, v->type == CTR_VOL_BIND ? "(:bind " : "(:dataset ");
		sexp_print_string(b, v->source);
		buf_adds(b, " :path ");
		sexp_print_string(b, v->path);
		buf_adds(b, " :ro ");
		add_bool(b, v->ro);
		if (v->quota) {
			buf_adds(b, " :quota ");
			add_size(b, v->quota);
		}
		if (v->reservation) {
			buf_adds(b, " :reservation ");
			add_size(b, v->reservation);
		}
		if (v->compression)
			buf_addf(b, " :compression %s", v->compression);
		if (v->recordsize) {
			buf_adds(b, " :recordsize ");
			add_size(b, v->recordsize);
		}
		buf_addc(b, ')');
	}
	buf_addc(b, ')');
	return true;
}

bool spec_p_limits(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->memory && !ct->cpus && !ct->pids)
		return false;
	const char *sep = "";
	buf_addc(b, '(');
	if (ct->memory) {
		buf_adds(b, ":memory ");
		add_size(b, ct->memory);
		sep = " ";
	}
	if (ct->cpus) {
		buf_addf(b, "%s:cpus ", sep);
		sexp_print_float(b, ct->cpus);
		sep = " ";
	}
	if (ct->pids)
		buf_addf(b, "%s:pids %lld", sep, (long long)ct->pids);
	buf_addc(b, ')');
	return true;
}

bool spec_p_network(struct buf *b, const struct ctr_spec *ct)
{
	switch (ct->netmode) {
	case CTR_NET_BRIDGE:
		buf_adds(b, "bridge");
		break;
	case CTR_NET_HOST:
		buf_adds(b, "host");
		break;
	case CTR_NET_NONE:
		buf_adds(b, "none");
		break;
	case CTR_NET_NAMED:
		add_names(b, ct->networks);
		break;
	}
	return true;
}

bool spec_p_ip(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->ip)
		return false;
	sexp_print_string(b, ct->ip);
	return true;
}

bool spec_p_aliases(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->aliases)
		return false;
	add_strings(b, ct->aliases);
	return true;
}

bool spec_p_dns(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->dns)
		return false;
	add_strings(b, ct->dns);
	return true;
}

char *ctr_publish_str(const struct ctr_publish *p)
{
	bool v6 = p->ip && strchr(p->ip, ':');
	return xasprintf("%s%s%s%s%d:%d/%s", v6 ? "[" : "", p->ip ? p->ip : "", v6 ? "]" : "",
			 p->ip ? ":" : "", p->host_port, p->ctr_port, p->udp ? "udp" : "tcp");
}

bool spec_p_publish(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->npublish)
		return false;
	buf_addc(b, '(');
	for (size_t i = 0; i < ct->npublish; i++) {
		autofree char *s = ctr_publish_str(&ct->publish[i]);
		if (i)
			buf_addc(b, ' ');
		sexp_print_string(b, s);
	}
	buf_addc(b, ')');
	return true;
}

bool spec_p_state(struct buf *b, const struct ctr_spec *ct)
{
	buf_adds(b, ct->state == CTR_DESIRED_STOPPED ? "stopped" : "running");
	return true;
}

bool spec_p_restart(struct buf *b, const struct ctr_spec *ct)
{
	switch (ct->restart) {
	case CTR_RESTART_NO:
		buf_adds(b, "no");
		break;
	case CTR_RESTART_ALWAYS:
		buf_adds(b, "always");
		break;
	case CTR_RESTART_ON_FAILURE:
		if (ct->restart_max)
			buf_addf(b, "(on-failure %d)", ct->restart_max);
		else
			buf_adds(b, "on-failure");
		break;
	}
	return true;
}

bool spec_p_depends(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->depends_on || !ct->depends_on[0])
		return false;
	add_names(b, ct->depends_on);
	return true;
}

bool spec_p_health(struct buf *b, const struct ctr_spec *ct)
{
	const struct ctr_health *h = &ct->health;
	switch (h->type) {
	case CTR_HEALTH_NONE:
		return false;
	case CTR_HEALTH_CMD:
		buf_adds(b, "(:cmd ");
		add_strings(b, h->cmd);
		break;
	case CTR_HEALTH_HTTP:
		buf_adds(b, "(:http ");
		sexp_print_string(b, h->http_path);
		buf_addf(b, " :port %d", h->port);
		break;
	case CTR_HEALTH_TCP:
		buf_addf(b, "(:tcp %d", h->port);
		break;
	}
	buf_adds(b, " :interval ");
	add_duration(b, h->interval_ns);
	buf_adds(b, " :timeout ");
	add_duration(b, h->timeout_ns);
	buf_addf(b, " :retries %d :start-period ", h->retries);
	add_duration(b, h->start_period_ns);
	buf_adds(b, " :restart-unhealthy ");
	add_bool(b, h->restart_unhealthy);
	buf_addc(b, ')');
	return true;
}

static const char *const hook_names[] = {"start", "exit", "oom", "health", "file-change", "every"};

static void add_cmd(struct buf *b, const struct ctr_cmd *c)
{
	if (c->type == CTR_CMD_SHELL) {
		sexp_print_string(b, c->argv[0]);
		return;
	}
	buf_addc(b, '(');
	if (c->type == CTR_CMD_EXEC)
		buf_adds(b, ":exec ");
	for (size_t i = 0; c->argv[i]; i++) {
		if (i)
			buf_addc(b, ' ');
		sexp_print_string(b, c->argv[i]);
	}
	buf_addc(b, ')');
}

bool spec_p_on(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->nhooks)
		return false;
	buf_addc(b, '(');
	for (size_t i = 0; i < ct->nhooks; i++) {
		const struct ctr_hook *h = &ct->hooks[i];
		if (i)
			buf_addc(b, ' ');
		buf_addf(b, "(:%s ", hook_names[h->event]);
		if (h->event == CTR_HOOK_FILE_CHANGE) {
			sexp_print_string(b, h->path);
			buf_addc(b, ' ');
		} else if (h->event == CTR_HOOK_EVERY) {
			add_duration(b, h->every_ns);
			buf_addc(b, ' ');
		}
		add_cmd(b, &h->cmd);
		if (h->event == CTR_HOOK_FILE_CHANGE) {
			buf_adds(b, " :recursive ");
			add_bool(b, h->recursive);
		}
		buf_adds(b, " :timeout ");
		add_duration(b, h->timeout_ns);
		buf_addc(b, ')');
	}
	buf_addc(b, ')');
	return true;
}

bool spec_p_domain(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->domains)
		return false;
	if (!ct->domains[1])
		sexp_print_string(b, ct->domains[0]);
	else
		add_strings(b, ct->domains);
	return true;
}

bool spec_p_port(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->port)
		return false;
	buf_addf(b, "%d", ct->port);
	return true;
}

bool spec_p_path(struct buf *b, const struct ctr_spec *ct)
{
	/* Only routing gives the URL path meaning. */
	if (!ct->domains || !ct->path)
		return false;
	sexp_print_string(b, ct->path);
	return true;
}

bool spec_p_ingress(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->domains)
		return false;
	buf_adds(b, "(:websocket ");
	add_bool(b, ct->ingress_websocket);
	if (ct->ingress_max_body) {
		buf_adds(b, " :max-body ");
		add_size(b, ct->ingress_max_body);
	}
	buf_addc(b, ')');
	return true;
}

bool spec_p_tls(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->tls_cert)
		return false;
	buf_adds(b, "(:cert ");
	sexp_print_string(b, ct->tls_cert);
	buf_adds(b, " :key ");
	sexp_print_string(b, ct->tls_key);
	buf_addc(b, ')');
	return true;
}

bool spec_p_storage(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->storage_quota && !ct->storage_reservation && !ct->storage_compression &&
	    !ct->storage_recordsize)
		return false;
	struct buf in = BUF_INIT;
	if (ct->storage_quota) {
		buf_adds(&in, " :quota ");
		add_size(&in, ct->storage_quota);
	}
	if (ct->storage_reservation) {
		buf_adds(&in, " :reservation ");
		add_size(&in, ct->storage_reservation);
	}
	if (ct->storage_compression)
		buf_addf(&in, " :compression %s", ct->storage_compression);
	if (ct->storage_recordsize) {
		buf_adds(&in, " :recordsize ");
		add_size(&in, ct->storage_recordsize);
	}
	buf_addf(b, "(%s)", in.data + 1);
	buf_release(&in);
	return true;
}

bool spec_p_snapshots(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->snap_every_ns)
		return false;
	buf_adds(b, "(:every ");
	add_duration(b, ct->snap_every_ns);
	buf_addf(b, " :keep %d)", ct->snap_keep);
	return true;
}

bool spec_p_backup(struct buf *b, const struct ctr_spec *ct)
{
	return ctr_backup_print(b, &ct->backup);
}

bool spec_p_snap_before(struct buf *b, const struct ctr_spec *ct)
{
	add_bool(b, ct->snapshot_before_change);
	return true;
}

bool spec_p_integrity(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->integrity_set)
		return false;
	struct buf in = BUF_INIT;
	if (ct->integrity_every_ns) {
		buf_adds(&in, " :every ");
		add_duration(&in, ct->integrity_every_ns);
	}
	if (ct->integrity_exclude) {
		buf_adds(&in, " :exclude ");
		add_strings(&in, ct->integrity_exclude);
	}
	if (ct->integrity_include) {
		buf_adds(&in, " :include ");
		add_strings(&in, ct->integrity_include);
	}
	if (ct->integrity_on_drift.argv) {
		buf_adds(&in, " :on-drift ");
		add_cmd(&in, &ct->integrity_on_drift);
	}
	buf_addf(b, "(%s)", in.len ? in.data + 1 : "");
	buf_release(&in);
	return true;
}

bool spec_p_entrypoint(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->entrypoint)
		return false;
	add_strings(b, ct->entrypoint);
	return true;
}

bool spec_p_labels(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->nlabels)
		return false;
	add_pairs(b, ct->labels, ct->nlabels);
	return true;
}

bool spec_p_sysctls(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->nsysctls)
		return false;
	add_pairs(b, ct->sysctls, ct->nsysctls);
	return true;
}

static bool add_caps(struct buf *b, char *const *v)
{
	if (!v || !v[0])
		return false;
	buf_addc(b, '(');
	for (size_t i = 0; v[i]; i++)
		buf_addf(b, "%s%s", i ? " " : "", v[i]);
	buf_addc(b, ')');
	return true;
}

bool spec_p_cap_add(struct buf *b, const struct ctr_spec *ct)
{
	return add_caps(b, ct->cap_add);
}

bool spec_p_cap_drop(struct buf *b, const struct ctr_spec *ct)
{
	return add_caps(b, ct->cap_drop);
}

bool spec_p_devices(struct buf *b, const struct ctr_spec *ct)
{
	if (!ct->ndevices)
		return false;
	buf_addc(b, '(');
	for (size_t i = 0; i < ct->ndevices; i++) {
		autofree char *s = ctr_device_str(&ct->devices[i]);
		if (i)
			buf_addc(b, ' ');
		sexp_print_string(b, s);
	}
	buf_addc(b, ')');
	return true;
}

static void print_container(struct buf *b, const struct ctr_spec *ct)
{
	buf_adds(b, "(container ");
	sexp_print_name(b, ct->name);
	for (size_t i = 0; i < ctr_nkeys; i++) {
		if (!ctr_keys[i].form)
			continue;
		size_t mark = b->len;
		buf_addf(b, "\n  %s ", ctr_keys[i].form);
		if (!ctr_keys[i].print(b, ct)) {
			b->len = mark;
			b->data[mark] = '\0';
		}
	}
	buf_adds(b, ")\n");
}

char *ctr_spec_print(const struct ctr_spec *ct)
{
	struct buf b = BUF_INIT;
	print_container(&b, ct);
	return buf_detach(&b, NULL);
}

static void print_host(struct buf *b, const struct conf_host *h)
{
	buf_adds(b, "(host\n  :storage (:driver ");
	if (h->driver == CONF_STORAGE_ZFS) {
		buf_adds(b, "zfs :pool ");
		sexp_print_string(b, h->pool);
		buf_adds(b, " :root ");
		sexp_print_string(b, h->root);
	} else {
		buf_adds(b, "dir");
		if (h->dir_path) {
			buf_adds(b, " :path ");
			sexp_print_string(b, h->dir_path);
		}
	}
	buf_addc(b, ')');
	if (h->network_set) {
		buf_adds(b, "\n  :network (:bridge ");
		sexp_print_string(b, h->bridge);
		buf_adds(b, " :subnet ");
		add_cidr(b, &h->subnet);
		if (h->subnet6) {
			buf_adds(b, " :subnet6 ");
			sexp_print_string(b, h->subnet6);
		}
		buf_addc(b, ')');
	}
	buf_adds(b, "\n  :ingress (:listen ");
	add_strings(b, h->listen);
	if (h->tls_listen) {
		buf_adds(b, " :tls-listen ");
		add_strings(b, h->tls_listen);
	}
	if (h->default_domain) {
		buf_adds(b, " :default-domain ");
		sexp_print_string(b, h->default_domain);
	}
	if (h->tls_ca) {
		buf_adds(b, " :tls (:ca ");
		if (strcmp(h->tls_ca, "auto") == 0)
			buf_adds(b, "auto");
		else
			sexp_print_string(b, h->tls_ca);
		buf_addc(b, ')');
	}
	buf_addc(b, ')');
	if (h->userns != CTR_USERNS_UNSET || h->userns_start) {
		buf_addf(b, "\n  :userns (:default %s",
			 h->userns == CTR_USERNS_AUTO ? "auto" : "host");
		if (h->userns_start)
			buf_addf(b, " :start %lld :count %lld", (long long)h->userns_start,
				 (long long)h->userns_count);
		buf_addc(b, ')');
	}
	if (h->lisp_set) {
		const char *sep = "";
		buf_adds(b, "\n  :lisp (");
		const char *const keys[] = {":swank ", ":init ", ":command "};
		const char *const vals[] = {h->lisp_swank, h->lisp_init, h->lisp_command};
		for (size_t i = 0; i < 3; i++)
			if (vals[i]) {
				buf_addf(b, "%s%s", sep, keys[i]);
				sexp_print_string(b, vals[i]);
				sep = " ";
			}
		buf_addc(b, ')');
	}
	if (h->metrics_listen) {
		buf_adds(b, "\n  :metrics (:listen ");
		sexp_print_string(b, h->metrics_listen);
		buf_addc(b, ')');
	}
	if (h->audit_set) {
		const char *sep = "";
		buf_adds(b, "\n  :audit (");
		if (h->audit_max_size) {
			buf_addf(b, ":max-size %lld", (long long)h->audit_max_size);
			sep = " ";
		}
		if (h->audit_files) {
			buf_addf(b, "%s:files %d", sep, h->audit_files);
			sep = " ";
		}
		if (h->audit_fsync >= 0)
			buf_addf(b, "%s:fsync %s", sep, h->audit_fsync ? "t" : "nil");
		buf_addc(b, ')');
	}
	/* Only when given: the default endpoint is the daemon's, not the file's. */
	const char *const dvals[] = {h->docker_endpoint, h->docker_tls_ca, h->docker_tls_cert,
				     h->docker_tls_key};
	if (dvals[0] || dvals[1] || dvals[2] || dvals[3]) {
		const char *const keys[] = {":endpoint ", ":tls-ca ", ":tls-cert ", ":tls-key "};
		const char *sep = "";
		buf_adds(b, "\n  :docker (");
		for (size_t i = 0; i < 4; i++)
			if (dvals[i]) {
				buf_addf(b, "%s%s", sep, keys[i]);
				sexp_print_string(b, dvals[i]);
				sep = " ";
			}
		buf_addc(b, ')');
	}
	if (h->backup.set) {
		buf_adds(b, "\n  :backup ");
		ctr_backup_print(b, &h->backup);
	}
	buf_adds(b, ")\n");
}

char *conf_print(const struct conf *c)
{
	struct buf b = BUF_INIT;
	print_host(&b, &c->host);
	for (size_t i = 0; i < c->nnetworks; i++) {
		const struct conf_network *n = c->networks[i];
		buf_adds(&b, "\n(network ");
		sexp_print_name(&b, n->name);
		if (n->subnet.set) {
			buf_adds(&b, "\n  :subnet ");
			add_cidr(&b, &n->subnet);
		}
		if (n->subnet6) {
			buf_adds(&b, "\n  :subnet6 ");
			sexp_print_string(&b, n->subnet6);
		}
		buf_adds(&b, "\n  :internal ");
		add_bool(&b, n->internal);
		buf_adds(&b, ")\n");
	}
	for (size_t i = 0; i < c->nimages; i++) {
		const struct conf_image *im = c->images[i];
		buf_adds(&b, "\n(image ");
		sexp_print_name(&b, im->name);
		if (im->build) {
			buf_adds(&b, "\n  :build ");
			sexp_print_string(&b, im->build);
			if (im->file) {
				buf_adds(&b, "\n  :file ");
				sexp_print_string(&b, im->file);
			}
			if (im->docker)
				buf_adds(&b, "\n  :kind docker");
			if (im->nargs) {
				buf_adds(&b, "\n  :args ");
				add_pairs(&b, im->args, im->nargs);
			}
		} else {
			buf_adds(&b, "\n  :from ");
			sexp_print_string(&b, im->from);
		}
		buf_adds(&b, ")\n");
	}
	for (size_t i = 0; i < c->ncontainers; i++) {
		buf_addc(&b, '\n');
		print_container(&b, c->containers[i]);
	}
	return buf_detach(&b, NULL);
}

void ctr_spec_hash(const struct ctr_spec *ct, char out[65])
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < ctr_nkeys; i++) {
		if (!ctr_keys[i].form || !ctr_keys[i].recreate)
			continue;
		size_t mark = b.len;
		/* Not buf_addf: a pass hashes every declared container. */
		buf_adds(&b, ctr_keys[i].form);
		buf_addc(&b, ' ');
		if (ctr_keys[i].print(&b, ct)) {
			buf_addc(&b, '\n');
		} else {
			b.len = mark;
			b.data[mark] = '\0';
		}
	}
	hash_sha256_hex(b.data ? b.data : "", b.len, out);
	buf_release(&b);
}

void ctr_spec_live(const struct ctr_spec *s, struct ctr_live *out)
{
	*out = (struct ctr_live){.memory = s->memory, .cpus = s->cpus, .pids = s->pids};
}

bool ctr_live_equal(const struct ctr_live *a, const struct ctr_live *b)
{
	return a->memory == b->memory && a->cpus == b->cpus && a->pids == b->pids;
}

void ctr_spec_hash_live(const struct ctr_spec *s, const struct ctr_live *live, char out[65])
{
	/* A shallow copy: the hash only reads, and the pointers stay s's. */
	struct ctr_spec t = *s;
	t.memory = live->memory;
	t.cpus = live->cpus;
	t.pids = live->pids;
	ctr_spec_hash(&t, out);
}

size_t ctr_spec_diff(const struct ctr_spec *a, const struct ctr_spec *b,
		     struct ctr_spec_change **out)
{
	struct ctr_spec_change *v = NULL;
	size_t n = 0;
	struct buf pa = BUF_INIT, pb = BUF_INIT;
	for (size_t i = 0; i < ctr_nkeys; i++) {
		if (!ctr_keys[i].form)
			continue;
		buf_reset(&pa);
		buf_reset(&pb);
		buf_adds(&pa, "");
		buf_adds(&pb, "");
		bool ha = a && ctr_keys[i].print(&pa, a);
		bool hb = b && ctr_keys[i].print(&pb, b);
		if (ha == hb && (!ha || strcmp(pa.data, pb.data) == 0))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = (struct ctr_spec_change){.key = ctr_keys[i].form,
						  .recreate = ctr_keys[i].recreate &&
							      !ctr_keys[i].in_place,
						  .in_place = ctr_keys[i].in_place};
	}
	buf_release(&pa);
	buf_release(&pb);
	*out = v;
	return n;
}

char *ctr_spec_print_key(const struct ctr_spec *s, const char *key)
{
	for (size_t i = 0; s && i < ctr_nkeys; i++) {
		if (!ctr_keys[i].form || strcmp(ctr_keys[i].form, key) != 0)
			continue;
		struct buf b = BUF_INIT;
		if (!ctr_keys[i].print(&b, s)) {
			buf_release(&b);
			return NULL;
		}
		return buf_detach(&b, NULL);
	}
	return NULL;
}
