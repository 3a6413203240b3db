/*
 * The image config a stage leaves: its base's config with the stage's
 * config instructions applied in order. Pure; the builder calls it for the
 * last stage (and for each stage another one builds FROM).
 */
#include "image/cblockfile.h"
#include "image/image.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Replace or add "KEY=value" in a NULL-terminated vector (keys compared up to '='). */
static void set_pair(char ***v, const char *key, const char *value)
{
	size_t klen = strlen(key);
	size_t n = strv_len(*v);
	char *item = xasprintf("%s=%s", key, value ? value : "");
	for (size_t i = 0; i < n; i++)
		if (strncmp((*v)[i], key, klen) == 0 && (*v)[i][klen] == '=') {
			free((*v)[i]);
			(*v)[i] = item;
			return;
		}
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = item;
	(*v)[n + 1] = NULL;
}

static void add_unique(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	for (size_t i = 0; i < n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

/* A command's argv: exec form as is, shell form through the current shell. */
static char **command(const struct cbf_instr *in, char *const *shell)
{
	if (in->exec_form)
		return strv_dup(in->argv);
	struct strv v = STRV_INIT;
	for (size_t i = 0; shell[i]; i++)
		strv_push(&v, shell[i]);
	strv_push(&v, in->shell);
	return v.v;
}

/* Join a relative path to a directory and drop "." and ".." (never above /). */
static char *join_clean(const char *dir, const char *path)
{
	struct strv parts = STRV_INIT;
	autofree char *all = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", dir, path);
	char *save = NULL;
	for (char *t = strtok_r(all, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0)
			continue;
		if (strcmp(t, "..") == 0) {
			if (parts.n) {
				free(parts.v[--parts.n]);
				parts.v[parts.n] = NULL;
			}
			continue;
		}
		strv_push(&parts, t);
	}
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < parts.n; i++) {
		buf_addc(&b, '/');
		buf_adds(&b, parts.v[i]);
	}
	strv_release(&parts);
	if (!b.len)
		buf_addc(&b, '/');
	return buf_detach(&b, NULL);
}

static void copy_base(struct image_config *c, const struct image_config *base)
{
	memset(c, 0, sizeof(*c));
	if (!base) {
		c->entrypoint = xcalloc(1, sizeof(char *));
		c->cmd = xcalloc(1, sizeof(char *));
		c->env = xcalloc(1, sizeof(char *));
		c->workdir = xstrdup("/");
		c->user = xstrdup("");
		return;
	}
	c->entrypoint = base->entrypoint ? strv_dup(base->entrypoint) : xcalloc(1, sizeof(char *));
	c->cmd = base->cmd ? strv_dup(base->cmd) : xcalloc(1, sizeof(char *));
	c->env = base->env ? strv_dup(base->env) : xcalloc(1, sizeof(char *));
	c->workdir = xstrdup(base->workdir && *base->workdir ? base->workdir : "/");
	c->user = xstrdup(base->user ? base->user : "");
	image_config_copy_build(c, base);
}

int cbf_image_config(const struct cbf_file *f, size_t stage, const struct image_config *base,
		     struct image_config *out, struct clbsd_err *err)
{
	if (stage >= f->nstages)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL, "%s: no stage %zu", f->file,
					stage);
	const struct cbf_stage *st = &f->stages[stage];
	struct image_config c;
	copy_base(&c, base);
	static char *const default_shell[] = {"/bin/sh", "-c", NULL};
	char *const *shell = default_shell;
	bool cmd_set = false, entry_set = false;
	for (size_t i = 0; i < st->n; i++) {
		const struct cbf_instr *in = &st->instrs[i];
		switch (in->kind) {
		case CBF_ENV:
			for (size_t k = 0; k < in->nkv; k++)
				set_pair(&c.env, in->kv[k].key, in->kv[k].value);
			break;
		case CBF_LABEL:
			for (size_t k = 0; k < in->nkv; k++)
				set_pair(&c.labels, in->kv[k].key, in->kv[k].value);
			break;
		case CBF_WORKDIR: {
			/* A relative WORKDIR is below the previous one. */
			char *w = join_clean(c.workdir, in->value);
			free(c.workdir);
			c.workdir = w;
			break;
		}
		case CBF_USER:
			free(c.user);
			c.user = xstrdup(in->value);
			break;
		case CBF_SHELL:
			shell = in->argv;
			break;
		case CBF_CMD:
			strv_free(c.cmd);
			c.cmd = command(in, shell);
			cmd_set = true;
			break;
		case CBF_ENTRYPOINT:
			strv_free(c.entrypoint);
			c.entrypoint = command(in, shell);
			entry_set = true;
			break;
		case CBF_EXPOSE:
			for (size_t k = 0; in->argv && in->argv[k]; k++)
				add_unique(&c.exposed, in->argv[k]);
			break;
		case CBF_VOLUME:
			for (size_t k = 0; in->argv && in->argv[k]; k++)
				add_unique(&c.volumes, in->argv[k]);
			break;
		case CBF_HEALTHCHECK:
			if (!c.health)
				c.health = xcalloc(1, sizeof(*c.health));
			strv_free(c.health->test);
			if (in->health.none) {
				memset(c.health, 0, sizeof(*c.health));
				c.health->test = xcalloc(1, sizeof(char *));
			} else {
				c.health->test = command(in, shell);
				c.health->interval_ns = in->health.interval_ns;
				c.health->timeout_ns = in->health.timeout_ns;
				c.health->start_period_ns = in->health.start_period_ns;
				c.health->retries = in->health.retries;
			}
			break;
		case CBF_OSRELEASE:
			free(c.osrelease);
			c.osrelease = xstrdup(in->value);
			break;
		case CBF_AUDITCFG:
			free(c.auditcfg);
			c.auditcfg = xstrdup(in->value);
			break;
		case CBF_ROOTPIVOT: {
			/* A second pivot is below the first: record the whole path. */
			char *p = c.rootpivot ? join_clean(c.rootpivot, in->value + 1)
					      : xstrdup(in->value);
			free(c.rootpivot);
			c.rootpivot = p;
			break;
		}
		default:
			break;
		}
	}
	/* As in Docker: an ENTRYPOINT of this stage drops a CMD of the base. */
	if (entry_set && !cmd_set) {
		strv_free(c.cmd);
		c.cmd = xcalloc(1, sizeof(char *));
	}
	*out = c;
	return 0;
}
