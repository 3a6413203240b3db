/*
 * What a configuration asks of the host it runs on: commands run on the
 * host, host paths bound or read, the host's network and devices, extra
 * capabilities, the Lisp control plane, where data is sent. `clbsd host
 * import` lists these from an archive's configuration and installs it only
 * with --allow-host-access (docs/host.md), as `clbsd import` does for one
 * container's binds. Pure: read from a built configuration.
 */
#include "core/config.h"
#include "util/util.h"

#include <stdarg.h>
#include <string.h>

static void add(struct strv *out, const struct conf_pos *pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(struct strv *out, const struct conf_pos *pos, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	if (pos && pos->file)
		buf_addf(&b, "%s:%d:%d: ", pos->file, pos->line, pos->col);
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	strv_push_owned(out, buf_detach(&b, NULL));
}

/* A host command, as it would run: "sh -c TEXT" or the argv joined. */
static char *cmd_text(const struct ctr_cmd *cmd)
{
	struct buf b = BUF_INIT;
	if (cmd->type == CTR_CMD_SHELL)
		buf_addf(&b, "/bin/sh -c %s", cmd->argv[0]);
	else
		for (size_t i = 0; cmd->argv[i]; i++)
			buf_addf(&b, "%s%s", i ? " " : "", cmd->argv[i]);
	return buf_detach(&b, NULL);
}

static bool on_host(const struct ctr_cmd *cmd)
{
	return cmd->argv && (cmd->type == CTR_CMD_SHELL || cmd->type == CTR_CMD_ARGV);
}

/* As :on names them. */
static const char *const hook_names[] = {
	[CTR_HOOK_START] = ":start",
	[CTR_HOOK_EXIT] = ":exit",
	[CTR_HOOK_OOM] = ":oom",
	[CTR_HOOK_HEALTH] = ":health",
	[CTR_HOOK_FILE_CHANGE] = ":file-change",
	[CTR_HOOK_EVERY] = ":every",
};

static void container_access(const struct ctr_spec *s, struct strv *out)
{
	const struct conf_pos *pos = &s->pos;
	const char *n = s->name;
	for (size_t i = 0; i < s->nhooks; i++) {
		const struct ctr_hook *h = &s->hooks[i];
		if (!on_host(&h->cmd))
			continue;
		autofree char *t = cmd_text(&h->cmd);
		add(out, h->pos.file ? &h->pos : pos,
		    "container %s: hook (:on (%s ...)) runs on the host: %s", n,
		    (size_t)h->event < ARRAY_SIZE(hook_names) ? hook_names[h->event] : "?", t);
	}
	if (on_host(&s->integrity_on_drift)) {
		autofree char *t = cmd_text(&s->integrity_on_drift);
		add(out, pos, "container %s: :integrity :on-drift runs on the host: %s", n, t);
	}
	for (size_t i = 0; i < s->nvolumes; i++)
		if (s->volumes[i].type == CTR_VOL_BIND)
			add(out, pos, "container %s: binds the host's %s at %s (%s)", n,
			    s->volumes[i].source, s->volumes[i].path,
			    s->volumes[i].ro ? "read-only" : "read-write");
	for (size_t i = 0; i < s->ndevices; i++)
		add(out, pos, "container %s: uses the host device %s (%s)", n, s->devices[i].host,
		    s->devices[i].perms);
	if (s->netmode == CTR_NET_HOST)
		add(out, pos, "container %s: shares the host's network (:network host)", n);
	for (size_t i = 0; s->cap_add && s->cap_add[i]; i++)
		add(out, pos, "container %s: gains the capability %s", n, s->cap_add[i]);
	if (s->tls_cert)
		add(out, pos, "container %s: serves the host file %s as its certificate", n,
		    s->tls_cert);
	if (s->tls_key)
		add(out, pos, "container %s: reads the host file %s as its TLS key", n, s->tls_key);
	if (s->backup.set && !s->backup.off && s->backup.to)
		add(out, pos, "container %s: sends its backups to %s", n, s->backup.to);
}

void conf_host_access(const struct conf *c, struct strv *out)
{
	const struct conf_host *h = &c->host;
	const struct conf_pos *hp = &h->pos;
	if (h->lisp_set)
		add(out, hp,
		    "(host :lisp ...): runs the Lisp control plane (%s) with the init file %s",
		    h->lisp_command ? h->lisp_command : "clbsd-lisp",
		    h->lisp_init ? h->lisp_init : "of its default place");
	if (h->tls_ca && strcmp(h->tls_ca, "auto") != 0)
		add(out, hp, "(host :tls-ca %s): signs certificates with the host's CA there",
		    h->tls_ca);
	if (h->docker_endpoint)
		add(out, hp, "(host :docker ...): talks to the Docker endpoint %s",
		    h->docker_endpoint);
	const char *const tls[] = {h->docker_tls_ca, h->docker_tls_cert, h->docker_tls_key};
	for (size_t i = 0; i < ARRAY_SIZE(tls); i++)
		if (tls[i])
			add(out, hp, "(host :docker ...): reads the host file %s", tls[i]);
	if (h->backup.set && !h->backup.off && h->backup.to)
		add(out, hp, "(host :backup ...): sends every declared container's backups to %s",
		    h->backup.to);
	for (size_t i = 0; i < c->nimages; i++)
		if (c->images[i]->build)
			add(out, &c->images[i]->pos, "image %s: builds from the host directory %s",
			    c->images[i]->name, c->images[i]->build);
	for (size_t i = 0; i < c->ncontainers; i++)
		container_access(c->containers[i], out);
}

static bool listed(const struct strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

void conf_tls_files(const struct conf *c, struct strv *certs, struct strv *keys)
{
	for (size_t i = 0; i < c->ncontainers; i++) {
		const struct ctr_spec *s = c->containers[i];
		if (s->tls_cert && !listed(certs, s->tls_cert))
			strv_push(certs, s->tls_cert);
		if (s->tls_key && !listed(keys, s->tls_key))
			strv_push(keys, s->tls_key);
	}
}
