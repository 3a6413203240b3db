/*
 * `clbsd host import FILE` (docs/host.md): checks the whole archive (the
 * manifest's checksum, every member's size and checksum, every name it
 * gives, what its configuration asks of this host) before it makes
 * anything, then installs the CA and the configuration's settings, loads
 * the images and imports the containers, and installs the configuration
 * last; a configuration that does not load here is put back as it was.
 */
#include "cli.h"
#include "core/backup_plan.h"
#include "core/config.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct importer {
	const char *path;
	int fd;
	bool force;
	bool stream;	     /* host import -: read front to back (rd), members as they come */
	struct host_tarr rd; /* the stream */
	uint64_t in_memory;  /* the bytes of the members read into memory from it */
	json_t *m;	     /* the manifest; from a stream, its plan (docs/host.md) */
	json_t *host;	     /* GET /v1/host of this daemon */
	struct host_member *mem;
	size_t nmem;
	json_t *idmap; /* source image id -> id here */
	/* the routes' own certificates and keys the archive's configuration names (archive_tls) */
	struct strv tls_certs, tls_keys;
	struct prev_file {
		char *path, *text;
		size_t len;
		bool existed;
		mode_t mode;
	} * prev; /* what the config files held before the import wrote them */
	size_t nprev;
};

static const struct host_member *member(const struct importer *im, const char *name)
{
	for (size_t i = 0; name && i < im->nmem; i++)
		if (strcmp(im->mem[i].name, name) == 0)
			return &im->mem[i];
	return NULL;
}

/* The whole archive: the manifest's checksum, then every member's size and checksum. */
static int check_archive(struct importer *im, struct clbsd_err *err)
{
	if (host_tar_list(im->fd, im->path, &im->mem, &im->nmem, err) < 0)
		return -err->code;
	const struct host_member *mm = im->nmem ? &im->mem[im->nmem - 1] : NULL;
	if (!mm || strcmp(mm->name, HOST_MANIFEST) != 0 || mm->size > (64u << 20))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s is not a clbsd host archive, or is cut short (its last "
					"member is not %s)",
					im->path, HOST_MANIFEST);
	autofree char *text = xmalloc(mm->size + 1);
	if (pread(im->fd, text, mm->size, mm->data) != (ssize_t)mm->size)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", im->path);
	text[mm->size] = 0;
	if (host_manifest_check(text, mm->size, &im->m, im->path, err) < 0)
		return -err->code;
	json_t *list = json_object_get(im->m, "members");
	if (json_array_size(list) + 1 != im->nmem)
		return clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, EINVAL,
			"%s is damaged: it holds %zu members, its manifest lists %zu", im->path,
			im->nmem - 1, json_array_size(list));
	for (size_t i = 0; i + 1 < im->nmem; i++) {
		json_t *e = json_array_get(list, i);
		const struct host_member *x = &im->mem[i];
		char hex[33];
		if (strcmp(json_string_value(json_object_get(e, "name")) ?: "", x->name) != 0 ||
		    (uint64_t)json_integer_value(json_object_get(e, "size")) != x->size)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
						"%s is damaged: member %s is not what its manifest "
						"lists",
						im->path, x->name);
		if (host_member_copy(im->fd, x, NULL, hex, err) < 0)
			return -err->code;
		if (strcmp(hex, json_string_value(json_object_get(e, "xxh3")) ?: "") != 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s is damaged: member %s does not match its checksum", im->path,
				x->name);
	}
	return 0;
}

/* A single plain file name: no '/', not "." or "..", no leading '.'. */
static bool plain_name(const char *s)
{
	return s && *s && s[0] != '.' && !strchr(s, '/') && strlen(s) < 200;
}

/* The rest of name after prefix, or NULL when name does not start with it. */
static const char *after(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	return name && strncmp(name, prefix, n) == 0 ? name + n : NULL;
}

/*
 * Where a config member goes here, and its text as it will be there; NULL
 * with the reason in why when it has no place. A destination is never
 * taken from the archive (docs/host.md "What is refused"): each role has
 * its place on this daemon, and a member's name only picks a file name in
 * it, checked to be one plain name.
 */
static char *config_target(const struct importer *im, const json_t *c, char **text, char *why,
			   size_t whylen)
{
	const char *role = json_string_value(json_object_get(c, "role"));
	const char *mname = json_string_value(json_object_get(c, "member"));
	const struct host_member *x = member(im, mname);
	*text = NULL;
	snprintf(why, whylen, "it is not in the archive, or larger than 16 MiB");
	if (!role || !x || x->size > (16u << 20))
		return NULL;
	const char *cfg = json_string_value(json_object_get(im->host, "config"));
	const char *confd = json_string_value(json_object_get(im->host, "confd"));
	const char *root = json_string_value(json_object_get(im->host, "root"));
	const char *init = json_string_value(json_object_get(im->host, "lisp_init"));
	const char *rest;
	char *dst = NULL;
	bool main = strcmp(role, "main") == 0;
	if (main) {
		if (strcmp(mname, "config/main.conf") != 0)
			snprintf(why, whylen, "the main file's member is config/main.conf");
		else if (!cfg)
			snprintf(why, whylen, "this daemon has no config file");
		else
			dst = xstrdup(cfg);
	} else if (strcmp(role, "confd") == 0) {
		rest = after(mname, "config/conf.d/");
		size_t n = rest ? strlen(rest) : 0;
		if (!rest || !plain_name(rest) || n <= 5 || strcmp(rest + n - 5, ".conf") != 0)
			snprintf(why, whylen,
				 "a conf.d member is config/conf.d/NAME.conf, NAME one plain file "
				 "name");
		else if (!confd)
			snprintf(why, whylen, "this daemon has no conf.d");
		else
			dst = xasprintf("%s/%s", confd, rest);
	} else if (strcmp(role, "lisp_init") == 0) {
		/* This daemon's own init file; else one beside its config, by a plain name. */
		const char *src = json_string_value(json_object_get(c, "path"));
		const char *base = src ? strrchr(src, '/') : NULL;
		base = base ? base + 1 : src;
		if (strcmp(mname, "config/lisp-init.lisp") != 0)
			snprintf(why, whylen,
				 "the Lisp init file's member is config/lisp-init.lisp");
		else if (init && init[0] == '/')
			dst = xstrdup(init);
		else if (!cfg || !strchr(cfg, '/'))
			snprintf(why, whylen,
				 "this daemon has neither a Lisp init file nor a config file to "
				 "put one beside");
		else if (!plain_name(base))
			snprintf(why, whylen, "its file name (\"%s\") is not one plain file name",
				 base ? base : "");
		else
			dst = xasprintf("%.*s/%s", (int)(strrchr(cfg, '/') - cfg), cfg, base);
	} else if (strcmp(role, "ca") == 0) {
		rest = after(mname, "ca/");
		if (!rest || (strcmp(rest, "ca.pem") != 0 && strcmp(rest, "ca.key") != 0))
			snprintf(why, whylen, "the CA's members are ca/ca.pem and ca/ca.key");
		else if (!root)
			snprintf(why, whylen, "this daemon names no root");
		else
			dst = xasprintf("%s/ingress/ca/%s", root, rest);
	} else if (strcmp(role, "tls_cert") == 0 || strcmp(role, "tls_key") == 0) {
		/* Where the archive's configuration reads it, and nowhere else. */
		const char *src = json_string_value(json_object_get(c, "path"));
		const struct strv *named = role[4] == 'c' ? &im->tls_certs : &im->tls_keys;
		bool ok = false;
		for (size_t i = 0; src && i < named->n && !ok; i++)
			ok = strcmp(named->v[i], src) == 0;
		if (!after(mname, "tls/") || !plain_name(after(mname, "tls/")))
			snprintf(why, whylen, "a TLS file's member is tls/NAME");
		else if (!ok)
			snprintf(why, whylen,
				 "\"%.80s\" is no :tls %s the archive's configuration names",
				 src ? src : "", role + 4);
		else
			dst = xstrdup(src);
	} else {
		snprintf(why, whylen,
			 "its role \"%.40s\" is none of main, confd, lisp_init, ca, tls_cert, "
			 "tls_key",
			 role);
	}
	if (!dst)
		return NULL;
	char *t = xmalloc(x->size + 1);
	if (x->mem)
		memcpy(t, x->mem, x->size);
	else if (pread(im->fd, t, x->size, x->data) != (ssize_t)x->size) {
		snprintf(why, whylen, "it cannot be read: %s", strerror(errno));
		free(t);
		free(dst);
		return NULL;
	}
	t[x->size] = 0;
	if (main) {
		/* This daemon keeps its own :storage (its driver, its pool). */
		autofree char *cur = NULL, *storage = NULL;
		size_t len;
		struct clbsd_err e;
		if (fs_read_file(cfg, &cur, &len, &e) == 0)
			free(host_conf_without_storage(cur, &storage));
		*text = host_conf_with_storage(t, storage);
		free(t);
		return dst;
	}
	*text = t;
	return dst;
}

/*
 * The archive's configuration (its main file, as it will be here, and
 * conf.d), built; NULL when it does not build here (it is not installed:
 * its apply fails and everything is put back, docs/host.md). Lisp init
 * members are said in lines when not NULL.
 */
static struct conf *archive_conf(const struct importer *im, struct strv *lines)
{
	struct strv names = STRV_INIT, texts = STRV_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(im->m, "config"), i, c)
	{
		const char *role = json_string_value(json_object_get(c, "role"));
		const char *mname = json_string_value(json_object_get(c, "member"));
		if (!role || !mname)
			continue;
		if (lines && strcmp(role, "lisp_init") == 0) {
			strv_push_owned(lines, xasprintf("%s: a Lisp init file, which the daemon's "
							 "Lisp control plane runs",
							 mname));
			continue;
		}
		if (strcmp(role, "main") != 0 && strcmp(role, "confd") != 0)
			continue;
		char *text = NULL;
		char why[160];
		autofree char *dst = config_target(im, c, &text, why, sizeof(why));
		if (!dst) /* refused when it is installed, saying why */
			continue;
		strv_push(&names, mname);
		strv_push_owned(&texts, text);
	}
	struct conf_source *src = xcalloc(names.n + 1, sizeof(*src));
	for (i = 0; i < names.n; i++)
		src[i] = (struct conf_source){names.v[i], texts.v[i], strlen(texts.v[i])};
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	if (conf_build(src, names.n, &conf, &d) < 0)
		conf = NULL;
	conf_diags_release(&d);
	free(src);
	strv_release(&names);
	strv_release(&texts);
	return conf;
}

/* What the archive's configuration asks of this host (conf_host_access), and its Lisp init file. */
static void archive_host_access(const struct importer *im, struct strv *lines)
{
	struct conf *conf = archive_conf(im, lines);
	if (conf)
		conf_host_access(conf, lines);
	conf_free(conf);
}

/* The TLS files the archive's configuration names: the only places its tls members go. */
static void archive_tls(struct importer *im)
{
	struct conf *conf = archive_conf(im, NULL);
	if (conf)
		conf_tls_files(conf, &im->tls_certs, &im->tls_keys);
	conf_free(conf);
}

/* Config files that exist here with other content (not just a :storage of their own). */
static size_t config_conflicts(const struct importer *im, struct strv *lines)
{
	size_t n = 0, i;
	json_t *c;
	json_array_foreach(json_object_get(im->m, "config"), i, c)
	{
		autofree char *text = NULL, *cur = NULL;
		char why[160];
		autofree char *dst = config_target(im, c, &text, why, sizeof(why));
		size_t len;
		struct clbsd_err e;
		if (!dst || fs_read_file(dst, &cur, &len, &e) < 0 || strcmp(cur, text) == 0)
			continue;
		const char *role = json_string_value(json_object_get(c, "role"));
		if (strcmp(role, "main") == 0 ? host_conf_trivial(cur) : len == 0)
			continue;
		strv_push_owned(lines, xasprintf("%s differs from the archive's:", dst));
		json_t *a = json_pack("{s:{s:s}}", "config", "f", cur);
		json_t *b = json_pack("{s:{s:s}}", "config", "f", text);
		struct strv d = STRV_INIT;
		host_state_diff(a, b, "the archive", &d);
		for (size_t k = 1; k < d.n; k++)
			strv_push(lines, d.v[k]);
		strv_release(&d);
		json_decref(a);
		json_decref(b);
		n++;
	}
	return n;
}

static bool hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/*
 * Every name the manifest gives that becomes a path or part of an API
 * URL, checked before anything is made: container and network names as
 * the daemon takes them, image ids as 64 hex digits, each member named as
 * the export names it, and every config member with its place here. The
 * manifest's checksum guards against damage, not against whoever wrote it.
 */
static int check_names(const struct importer *im, struct clbsd_err *err)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(im->m, "containers"), i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *mname = json_string_value(json_object_get(e, "member"));
		autofree char *want = name ? xasprintf("containers/%s.clbsd", name) : NULL;
		if (!name || !valid_name(name) || !mname || strcmp(mname, want) != 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
						"%s: refused: container %zu of its manifest has an "
						"invalid name (\"%.80s\") or member",
						im->path, i, name ? name : "");
	}
	json_array_foreach(json_object_get(im->m, "images"), i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *mname = json_string_value(json_object_get(e, "member"));
		autofree char *want = id ? xasprintf("images/%s.tar", id) : NULL;
		if (!hex64(id) || !mname || strcmp(mname, want) != 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s: refused: image %zu of its manifest has an "
				"invalid id (\"%.80s\", want 64 hex digits) or member",
				im->path, i, id ? id : "");
	}
	json_array_foreach(json_object_get(im->m, "networks"), i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		if (!name || !valid_name(name))
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
						"%s: refused: network %zu of its manifest has an "
						"invalid name (\"%.80s\")",
						im->path, i, name ? name : "");
	}
	json_array_foreach(json_object_get(im->m, "config"), i, e)
	{
		autofree char *text = NULL;
		char why[160];
		autofree char *dst = config_target(im, e, &text, why, sizeof(why));
		if (!dst)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s: refused: config member \"%.80s\" has no place "
				"here: %s",
				im->path, json_string_value(json_object_get(e, "member")) ?: "",
				why);
	}
	return 0;
}

/* Keep what path holds (or that it is absent) before the import first writes it. */
static void keep_prev(struct importer *im, const char *path, mode_t mode)
{
	for (size_t i = 0; i < im->nprev; i++)
		if (strcmp(im->prev[i].path, path) == 0)
			return;
	im->prev = xrealloc(im->prev, (im->nprev + 1) * sizeof(*im->prev));
	struct prev_file *p = &im->prev[im->nprev++];
	struct clbsd_err e;
	*p = (struct prev_file){.path = xstrdup(path), .mode = mode};
	p->existed = fs_read_file(path, &p->text, &p->len, &e) == 0;
}

/* Every file the import wrote back as it was (its contents, or absent). */
static void restore_prev(struct importer *im)
{
	for (size_t i = im->nprev; i-- > 0;) {
		struct prev_file *p = &im->prev[i];
		struct clbsd_err e;
		if (p->existed ? fs_write_atomic(p->path, p->text, p->len, p->mode, &e) < 0
			       : unlink(p->path) < 0 && errno != ENOENT)
			host_say("put %s back: %s", p->path, p->existed ? e.msg : strerror(errno));
	}
}

static void free_prev(struct importer *im)
{
	for (size_t i = 0; i < im->nprev; i++) {
		free(im->prev[i].path);
		free(im->prev[i].text);
	}
	free(im->prev);
	im->prev = NULL;
	im->nprev = 0;
}

/*
 * Install the config members of one group: "host" (the ingress CA and the
 * routes' own TLS files), "main", "files" (conf.d but the live layer,
 * Lisp init), "live", or "settings": the main file and conf.d (not the
 * live layer) with only their host, image and network forms, where this
 * daemon has no configuration yet.
 */
static int install_config(struct importer *im, const char *group, struct clbsd_err *err)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(im->m, "config"), i, c)
	{
		const char *role = json_string_value(json_object_get(c, "role"));
		if (!role)
			continue;
		const char *mname = json_string_value(json_object_get(c, "member"));
		bool live = mname && strcmp(mname, "config/conf.d/90-live.conf") == 0;
		bool settings = strcmp(group, "settings") == 0;
		bool host = strcmp(role, "ca") == 0 || strncmp(role, "tls_", 4) == 0;
		bool in =
			strcmp(group, "live") == 0    ? live
			: strcmp(group, "host") == 0  ? host
			: strcmp(group, "files") == 0 ? !live && !host && strcmp(role, "main") != 0
			: settings
				? !live && (strcmp(role, "main") == 0 || strcmp(role, "confd") == 0)
				: strcmp(role, group) == 0;
		if (!in)
			continue;
		autofree char *text = NULL;
		char why[160];
		autofree char *dst = config_target(im, c, &text, why, sizeof(why));
		if (!dst)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s: config member %s has no place here: %s", im->path,
				json_string_value(json_object_get(c, "member")), why);
		/*
		 * Settings go only where there is no configuration yet (a fresh
		 * target): a file with one (an import run again, or --force
		 * onto a host's own) keeps its declarations until the whole
		 * file replaces it, so nothing declared is removed meanwhile.
		 */
		autofree char *cur = NULL;
		size_t clen;
		struct clbsd_err ce;
		if (settings && fs_read_file(dst, &cur, &clen, &ce) == 0 &&
		    !(strcmp(role, "main") == 0 ? host_conf_trivial(cur)
						: cur[strspn(cur, " \t\n")] == 0))
			continue;
		if (settings) {
			char *forms = host_conf_settings(text);
			free(text);
			text = forms;
		}
		autofree char *copy = xstrdup(dst);
		bool ca = strcmp(role, "ca") == 0;
		mode_t mode = ca || strcmp(role, "tls_key") == 0 ? 0600 : 0644;
		keep_prev(im, dst, mode);
		if (fs_mkdir_p(dirname(copy), ca ? 0700 : 0755, err) < 0 ||
		    fs_write_atomic(dst, text, strlen(text), mode, err) < 0)
			return clbsd_err_prefix(err, "install %s", dst);
	}
	return 0;
}

/*
 * The container archive at dst with its header's image id made this
 * host's (a loaded image gets a new id: docs/images.md), the header's
 * checksum computed again as transfer.c does; the stream and its checksum
 * are as they were.
 */
#define HDR	4096
#define HDR_TAG "{\"header_xxh3\":\""
static int remap_image(struct importer *im, const char *dst, struct clbsd_err *err)
{
	char block[HDR + 1], hex[33];
	int fd = open(dst, O_RDWR | O_CLOEXEC);
	ssize_t got = fd < 0 ? -1 : pread(fd, block, HDR, 0);
	if (got >= 0 && got < HDR) { /* no header to remap: the daemon's import says what it is */
		close(fd);
		return 0;
	}
	if (got < 0) {
		if (fd >= 0)
			close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", dst);
	}
	block[HDR] = 0;
	size_t off = strlen(HDR_TAG);
	json_t *h = strncmp(block, HDR_TAG, off) == 0 ? json_loads(block, 0, NULL) : NULL;
	json_t *img = json_object_get(h, "image");
	const char *id = json_string_value(json_object_get(img, "id"));
	const char *to = id ? json_string_value(json_object_get(im->idmap, id)) : NULL;
	int r = 0;
	if (to && strcmp(to, id) != 0) {
		json_object_set_new(img, "id", json_string(to));
		json_object_set_new(json_object_get(h, "container"), "image_id", json_string(to));
		json_object_del(h, "header_xxh3");
		autofree char *line = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
		size_t n = strlen(line), tl = off + 32 + 2;
		if (tl + n - 1 >= HDR) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, E2BIG, "%s: header too large",
					     dst);
		} else {
			memset(block, ' ', HDR);
			memcpy(block, HDR_TAG, off);
			memset(block + off, '0', 32);
			memcpy(block + off + 32, "\",", 2);
			memcpy(block + tl, line + 1, n - 1);
			block[HDR - 1] = '\n';
			host_xxh3_hex(block, HDR, hex);
			memcpy(block + off, hex, 32);
			if (pwrite(fd, block, HDR, 0) != HDR)
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "write %s", dst);
		}
	}
	json_decref(h);
	close(fd);
	return r;
}

/* Copy a container's archive out of the file, remapped. */
static int extract_container(struct importer *im, const struct host_member *x, const char *dst,
			     bool *made, struct clbsd_err *err)
{
	char hex[33];
	if (host_member_copy(im->fd, x, dst, hex, err) < 0)
		return -err->code; /* made nothing (O_EXCL), or removed what it made */
	*made = true;
	return remap_image(im, dst, err);
}

static int clear_live(struct importer *im, struct clbsd_err *err)
{
	const char *live = json_string_value(json_object_get(im->host, "live"));
	if (!live || access(live, F_OK) < 0)
		return 0;
	keep_prev(im, live, 0644);
	if (fs_write_atomic(live, "", 0, 0644, err) < 0)
		return clbsd_err_prefix(err, "empty %s", live);
	return 0;
}

/*
 * From a stream: the next member, which must be the one named want: its
 * data written to a new file dst, or read into memory (at most 64 MiB,
 * NUL-terminated, kept with the member: *mem points to it), or read past
 * (both NULL); recorded with its size and checksum for the manifest at
 * the end.
 */
static int stream_member(struct importer *im, const char *want, const char *dst, char **mem,
			 struct clbsd_err *err)
{
	struct host_member x;
	int r = host_tarr_next(&im->rd, &x, err);
	if (r < 0)
		return r;
	if (r > 0 || strcmp(x.name, want) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s: %s%s where its plan puts %s (a host archive is read "
					"in the order its export writes it)",
					im->path, r > 0 ? "the archive ends" : "member ",
					r > 0 ? "" : x.name, want);
	if (mem && (x.size > (64u << 20) || im->in_memory + x.size > (256u << 20)))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EFBIG,
					"%s: member %s is %llu bytes; a manifest or configuration "
					"file is at most 64 MiB, and all of them 256 MiB",
					im->path, x.name, (unsigned long long)x.size);
	if (mem)
		im->in_memory += x.size;
	int out = -1;
	if (dst && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", dst);
	x.mem = mem ? xmalloc(x.size + 1) : NULL;
	r = host_tarr_data(&im->rd, &x, out, x.mem, x.xxh3, err);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "write %s", dst);
	if (r < 0) {
		if (dst)
			unlink(dst);
		free(x.mem);
		return r;
	}
	if (mem) {
		x.mem[x.size] = 0;
		*mem = x.mem;
	}
	im->mem = xrealloc(im->mem, (im->nmem + 1) * sizeof(*im->mem));
	im->mem[im->nmem++] = x;
	return 0;
}

/* Whether an image of that id is in the list (GET /v1/images). */
static bool image_here(const json_t *here, const char *id)
{
	size_t j;
	json_t *h;
	json_array_foreach(here, j, h)
	{
		if (strcmp(json_string_value(json_object_get(h, "id")) ?: "", id) == 0)
			return true;
	}
	return false;
}

/* Load the image archive at file as image entry e says, tagged with its other names. */
static int load_image(struct importer *im, const json_t *e, const char *file, struct clbsd_err *err)
{
	const char *id = json_string_value(json_object_get(e, "id"));
	json_t *names = json_object_get(e, "names");
	const char *first = json_string_value(json_array_get(names, 0));
	/* With its creation time, the image gets its id here too (docs/host.md). */
	json_t *body = json_pack("{s:s,s:s,s:b}", "path", file, "name", first, "keep_created", 1),
	       *res = NULL;
	int r = cli_call("POST", "/v1/images/load", body, &res, err);
	json_decref(body);
	if (r < 0)
		return clbsd_err_prefix(err, "load image %s", first);
	const char *nid = json_string_value(json_object_get(res, "id"));
	json_object_set_new(im->idmap, id, json_string(nid ? nid : id));
	if (nid && strcmp(nid, id) != 0)
		host_say("image %s has id %.12s here, %.12s there: its containers are moved to it "
			 "(a dir overlay layer needs the same image and is refused)",
			 first, nid, id);
	size_t k;
	json_t *nm;
	json_array_foreach(names, k, nm)
	{
		if (k == 0 || !nid)
			continue;
		autofree char *p = xasprintf("/v1/images/%s/tag", nid);
		json_t *tb = json_pack("{s:O}", "name", nm);
		struct clbsd_err e2;
		if (cli_call("POST", p, tb, NULL, &e2) < 0)
			host_say("tag image %s as %s: %s", first, json_string_value(nm), e2.msg);
		json_decref(tb);
	}
	host_say("image %s loaded", first);
	json_decref(res);
	return 0;
}

/* The images this host lacks, by id (check_names: 64 hex digits, member images/ID.tar). */
static int import_images(struct importer *im, struct clbsd_err *err)
{
	json_t *here = NULL;
	if (cli_call("GET", "/v1/images", NULL, &here, err) < 0)
		return -err->code;
	size_t i;
	json_t *e;
	int r = 0;
	json_array_foreach(json_object_get(im->m, "images"), i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *mname = json_string_value(json_object_get(e, "member"));
		bool named = json_is_string(json_array_get(json_object_get(e, "names"), 0));
		/* Here already (a rerun, or the same image): by its id. */
		bool have = image_here(here, id);
		bool want = named && !have;
		autofree char *file = xasprintf("%s/image-%s.tar", host_stage_dir, id);
		const struct host_member *x = im->stream ? NULL : member(im, mname);
		char hex[33];
		if (im->stream)
			r = stream_member(im, mname, want ? file : NULL, NULL, err);
		else if (want && !x)
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL, "%s: no image member",
					     im->path);
		else if (want)
			r = host_member_copy(im->fd, x, file, hex, err);
		if (r < 0)
			break;
		if (have)
			json_object_set_new(im->idmap, id, json_string(id));
		if (!want)
			continue;
		r = load_image(im, e, file, err);
		unlink(file);
		if (r < 0)
			break;
	}
	json_decref(here);
	return r;
}

static void import_networks(struct importer *im)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(im->m, "networks"), i, n)
	{
		const char *name = json_string_value(json_object_get(n, "name"));
		autofree char *p = xasprintf("/v1/networks/%s", name ? name : "");
		struct clbsd_err e;
		json_t *have = NULL;
		if (!name || cli_call("GET", p, NULL, &have, &e) == 0) {
			json_decref(have);
			continue;
		}
		json_t *body = json_deep_copy(n);
		if (json_is_null(json_object_get(body, "subnet6")))
			json_object_del(body, "subnet6");
		if (json_is_null(json_object_get(body, "internal")))
			json_object_del(body, "internal");
		if (cli_call("POST", "/v1/networks", body, NULL, &e) < 0)
			host_say("network %s was not made (%s); its containers come without it",
				 name, e.msg);
		json_decref(body);
	}
}

static bool ctr_exists(const char *name, json_t **out)
{
	autofree char *p = xasprintf("/v1/containers/%s", name);
	struct clbsd_err e;
	return cli_call("GET", p, NULL, out, &e) == 0;
}

/* Whether container name has snapshot label. */
static bool has_snapshot(const char *name, const char *label)
{
	autofree char *p = xasprintf("/v1/containers/%s/snapshots", name);
	json_t *list = NULL;
	struct clbsd_err e;
	if (cli_call("GET", p, NULL, &list, &e) < 0)
		return false;
	bool found = false;
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
	{
		const char *l = json_string_value(json_object_get(s, "label"));
		found = found || (l && strcmp(l, label) == 0);
	}
	json_decref(list);
	return found;
}

/* Import container entry c from spooled, its member read out and remapped (the caller removes it). */
static int import_one(struct importer *im, const json_t *c, bool declared, const char *spooled,
		      struct clbsd_err *err)
{
	bool incr = json_is_string(json_object_get(im->m, "since"));
	const char *name = json_string_value(json_object_get(c, "name"));
	json_t *have = NULL;
	bool exists = ctr_exists(name, &have);
	const char *st = json_string_value(json_object_get(have, "state"));
	bool was_running = exists && st && strcmp(st, "running") == 0;
	json_decref(have);
	if (exists && !incr) {
		host_say("container %s is here already: left as it is", name);
		return 0;
	}
	/* An increment run again: one that has its snapshot got it whole (the receive is atomic). */
	const char *label = json_string_value(json_object_get(im->m, "label"));
	if (exists && incr && label && has_snapshot(name, label)) {
		host_say("container %s is at %s already: left as it is", name, label);
		/* A run cut short after the update, before the start: it runs as it ran there. */
		if (!was_running && json_is_true(json_object_get(c, "running"))) {
			autofree char *p = xasprintf("/v1/containers/%s/start", name);
			if (cli_call("POST", p, NULL, NULL, err) < 0)
				return clbsd_err_prefix(err, "start %s", name);
		}
		return 0;
	}
	if (exists && was_running) {
		autofree char *p = xasprintf("/v1/containers/%s/stop", name);
		if (cli_call("POST", p, NULL, NULL, err) < 0)
			return clbsd_err_prefix(err, "stop %s to update it", name);
	}
	int r = 0;
	/*
	 * The host's own containers, as they ran there: what they reach of
	 * the host was allowed when they were made (as for migrate). A
	 * declared one goes into its declaration, recorded in the live layer
	 * by the import itself so that no pass makes an empty one meanwhile;
	 * the configuration files installed afterwards declare it the same.
	 */
	json_t *body = json_pack("{s:s}", "path", spooled);
	const char *decl = json_string_value(json_object_get(c, "declaration"));
	if (declared && decl && !incr)
		json_object_set_new(body, "declaration", json_string(decl));
	if (r == 0)
		r = cli_call("POST",
			     declared ? "/v1/import?declared=1" : "/v1/import?allow_host_access=1",
			     body, NULL, err);
	json_decref(body);
	if (r < 0)
		clbsd_err_prefix(err, "import container %s", name);
	/* One that ran runs again, also when its update failed (it is as it was then). */
	if (was_running || (r == 0 && !exists && json_is_true(json_object_get(c, "running")))) {
		autofree char *p = xasprintf("/v1/containers/%s/start", name);
		struct clbsd_err e2;
		if (cli_call("POST", p, NULL, NULL, &e2) < 0) {
			if (r < 0) {
				host_say("start %s again: %s", name, e2.msg);
			} else {
				*err = e2;
				return clbsd_err_prefix(err, "start %s", name);
			}
		}
	}
	if (r < 0)
		return r;
	host_say("container %s %s", name, exists ? "updated" : "imported");
	return 0;
}

/*
 * The containers, in the order import makes them (host_import_order), on
 * threads, two at a time (one on zfs, below), while the next container's
 * member is read out
 * of the file or the stream: from a stream the export's send and this
 * import's receives overlap, as in `zfs send | zfs recv`, and one
 * container's zfs round trips overlap another's data. The main thread
 * only reads members and writes files meanwhile (no API call, nothing the
 * imports read); at most three containers' archives are spooled at once.
 * A container waits for the imports of those it depends on.
 */
#define IMPORT_JOBS 2

struct ctr_job {
	struct importer *im;
	const json_t *c;
	char *file; /* the spooled member; NULL: no job */
	size_t seq; /* its place in the order: the oldest is waited for first */
	pthread_t t;
	int r;
	struct clbsd_err err;
};

static void *ctr_job_run(void *arg)
{
	struct ctr_job *j = arg;
	clbsd_err_init(&j->err);
	j->r = import_one(j->im, j->c, host_entry_declared(j->c), j->file, &j->err);
	unlink(j->file);
	return NULL;
}

/* The job's end; its error is the result when r was 0. */
static int ctr_job_wait(struct ctr_job *j, int r, struct clbsd_err *err)
{
	if (!j->file)
		return r;
	pthread_join(j->t, NULL);
	free(j->file);
	j->file = NULL;
	if (j->r < 0 && r == 0) {
		*err = j->err;
		r = j->r;
	}
	return r;
}

/* Whether entry c depends on the container of entry d. */
static bool depends(const json_t *c, const json_t *d)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "depends_on"), i, n)
	{
		if (json_equal(n, json_object_get(d, "name")))
			return true;
	}
	return false;
}

static int import_containers(struct importer *im, struct clbsd_err *err)
{
	json_t *order = host_import_order(json_object_get(im->m, "containers"));
	/*
	 * On zfs one at a time: zfs-fuse was seen to leave the FUSE mounts of
	 * two receives at once never answered (their INIT pending), which
	 * hangs whatever touches them, the daemon included.
	 */
	const char *drv = json_string_value(json_object_get(im->host, "driver"));
	size_t njobs = drv && strcmp(drv, "zfs") == 0 ? 1 : IMPORT_JOBS;
	struct ctr_job jobs[IMPORT_JOBS];
	for (size_t k = 0; k < IMPORT_JOBS; k++)
		jobs[k] = (struct ctr_job){.im = im};
	size_t i;
	json_t *c;
	int r = 0;
	json_array_foreach(order, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *mname = json_string_value(json_object_get(c, "member"));
		autofree char *file = xasprintf("%s/%s.clbsd", host_stage_dir, name);
		const struct host_member *x = im->stream ? NULL : member(im, mname);
		bool made = false;
		if (im->stream) {
			r = stream_member(im, mname, file, NULL, err);
			if (r == 0 && (r = remap_image(im, file, err)) < 0)
				unlink(file);
		} else if (!x) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s: no member for container %s", im->path, name);
		} else if ((r = extract_container(im, x, file, &made, err)) < 0 && made) {
			unlink(file);
		}
		struct ctr_job *slot = NULL;
		for (size_t k = 0; k < njobs; k++) {
			if (jobs[k].file && depends(c, jobs[k].c))
				r = ctr_job_wait(&jobs[k], r, err);
			if (!jobs[k].file)
				slot = &jobs[k];
		}
		/* None free: the one that started first is waited for. */
		if (!slot) {
			slot = &jobs[0];
			for (size_t k = 1; k < njobs; k++)
				if (jobs[k].seq < slot->seq)
					slot = &jobs[k];
		}
		r = ctr_job_wait(slot, r, err);
		if (r < 0) {
			unlink(file);
			break;
		}
		*slot = (struct ctr_job){.im = im, .c = c, .file = steal_ptr(&file), .seq = i};
		if (pthread_create(&slot->t, NULL, ctr_job_run, slot) != 0) {
			r = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EAGAIN, "start a thread");
			unlink(slot->file);
			free(slot->file);
			slot->file = NULL;
			break;
		}
	}
	for (size_t k = 0; k < IMPORT_JOBS; k++)
		r = ctr_job_wait(&jobs[k], r, err);
	json_decref(order);
	return r;
}

/*
 * A stream's start: its plan (the manifest as the export knew it before
 * any data, with its own checksum), then the configuration members it
 * lists with their sizes and checksums, each checked as it is read. What
 * import checks before making anything is checked against the plan.
 */
static int stream_begin(struct importer *im, struct clbsd_err *err)
{
	char *text = NULL;
	if (stream_member(im, HOST_PLAN, NULL, &text, err) < 0)
		return clbsd_err_prefix(err, "not a clbsd host archive, or one of a clbsd older "
					     "than streams (import that one from a file)");
	if (host_manifest_check(text, im->mem[im->nmem - 1].size, &im->m, im->path, err) < 0)
		return -err->code;
	if (!json_is_true(json_object_get(im->m, "plan")))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s: its first member is not a plan", im->path);
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(im->m, "members"), i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *sum = json_string_value(json_object_get(e, "xxh3"));
		char *mem;
		if (!name)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
						"%s: its plan lists a member without a name",
						im->path);
		if (stream_member(im, name, NULL, &mem, err) < 0)
			return -err->code;
		const struct host_member *x = &im->mem[im->nmem - 1];
		if ((json_int_t)x->size != json_integer_value(json_object_get(e, "size")) || !sum ||
		    strcmp(sum, x->xxh3) != 0)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s is damaged: member %s does not match its size or checksum",
				im->path, name);
	}
	return 0;
}

/* The fields of entries a and b that import acts on are equal. */
static bool same_entries(const json_t *a, const json_t *b, const char *const *keys)
{
	if (json_array_size(a) != json_array_size(b))
		return false;
	for (size_t i = 0; i < json_array_size(a); i++)
		for (size_t k = 0; keys[k]; k++) {
			json_t *x = json_object_get(json_array_get(a, i), keys[k]);
			json_t *y = json_object_get(json_array_get(b, i), keys[k]);
			if (!(x == y || (x && y && json_equal(x, y))))
				return false;
		}
	return true;
}

/*
 * A stream's end: the manifest, which must list every member read (names,
 * sizes, checksums) and say what the plan said, then the end of the
 * archive. Until it is read, no configuration file but the CA and the
 * settings is written.
 */
static int stream_end(struct importer *im, struct clbsd_err *err)
{
	char *text = NULL;
	json_t *m = NULL;
	if (stream_member(im, HOST_MANIFEST, NULL, &text, err) < 0 ||
	    host_manifest_check(text, im->mem[im->nmem - 1].size, &m, im->path, err) < 0)
		return -err->code;
	json_t *list = json_object_get(m, "members");
	int r = 0;
	if (json_array_size(list) + 1 != im->nmem)
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is damaged: it held %zu members, its manifest lists %zu",
				     im->path, im->nmem - 1, json_array_size(list));
	for (size_t i = 0; r == 0 && i + 1 < im->nmem; i++) {
		json_t *e = json_array_get(list, i);
		const struct host_member *x = &im->mem[i];
		if (strcmp(json_string_value(json_object_get(e, "name")) ?: "", x->name) != 0 ||
		    (uint64_t)json_integer_value(json_object_get(e, "size")) != x->size ||
		    strcmp(json_string_value(json_object_get(e, "xxh3")) ?: "", x->xxh3) != 0)
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s is damaged: member %s does not match its manifest",
					     im->path, x->name);
	}
	static const char *const ctr_keys[] = {"name",	      "member",	    "kind",    "managed",
					       "declaration", "depends_on", "running", NULL};
	static const char *const img_keys[] = {"id", "member", "names", NULL};
	static const char *const top[] = {"label", "since", "config", "networks", NULL};
	json_t *one_a = json_pack("[O]", im->m), *one_b = json_pack("[O]", m);
	if (r == 0 && (!same_entries(one_a, one_b, top) ||
		       !same_entries(json_object_get(im->m, "containers"),
				     json_object_get(m, "containers"), ctr_keys) ||
		       !same_entries(json_object_get(im->m, "images"), json_object_get(m, "images"),
				     img_keys)))
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s is damaged: its manifest does not say what its plan said",
				     im->path);
	json_decref(one_a);
	json_decref(one_b);
	json_decref(m);
	struct host_member x;
	int end = r == 0 ? host_tarr_next(&im->rd, &x, err) : r;
	if (end == 0)
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "%s: member %s after the manifest", im->path, x.name);
	else if (end < 0)
		r = end;
	return r;
}

int cmd_host_import(const struct cli_args *a)
{
	struct importer im = {.path = NULL, .force = cli_has(a, "force"), .fd = -1};
	im.stream = strcmp(a->argv[0], "-") == 0;
	if (im.stream && isatty(STDIN_FILENO))
		return cli_usage("-: standard input is a terminal; pipe an archive in (clbsd host "
				 "export -o - | clbsd host import -) or give a FILE");
	autofree char *path = im.stream ? xstrdup("standard input") : cli_abs_target(a->argv[0]);
	if (!path)
		return cli_usage("cannot read \"%s\"", a->argv[0]);
	im.path = path;
	im.rd = (struct host_tarr){.fd = STDIN_FILENO, .path = path};
	struct clbsd_err err;
	clbsd_err_init(&err);
	im.fd = im.stream ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (!im.stream && im.fd < 0) {
		clbsd_err_set(&err, CLBSD_E_NOTFOUND, errno, "open %s", path);
		return cli_fail(&err);
	}
	im.idmap = json_object();
	int r = im.stream ? stream_begin(&im, &err) : check_archive(&im, &err);
	if (r == 0)
		r = cli_call("GET", "/v1/host", NULL, &im.host, &err);
	if (r == 0) {
		archive_tls(&im);
		r = check_names(&im, &err);
	}
	const char *src =
		json_string_value(json_object_get(json_object_get(im.m, "source"), "driver"));
	const char *drv = json_string_value(json_object_get(im.host, "driver"));
	bool incr = json_is_string(json_object_get(im.m, "since"));
	if (r == 0 && src && drv && strcmp(src, drv) != 0 &&
	    json_array_size(json_object_get(im.m, "containers")))
		r = clbsd_err_setmsg(
			&err, CLBSD_E_CONFLICT, EINVAL,
			"%s holds containers of %s storage; this daemon uses %s storage. A %s "
			"stream is received only by %s (docs/host.md: export from a daemon of "
			"this daemon's driver, or give this daemon %s storage)",
			path, src, drv, src, src, src);
	/* An increment updates what a previous import made; a full one goes on a fresh host. */
	struct strv lines = STRV_INIT;
	if (r == 0 && !incr && !im.force && config_conflicts(&im, &lines) > 0) {
		for (size_t i = 0; i < lines.n; i++)
			fprintf(stderr, "%s\n", lines.v[i]);
		r = clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EEXIST,
				     "this daemon has a configuration of its own (above); import "
				     "onto a fresh one, or replace it with --force");
	}
	strv_release(&lines);
	/* Before anything is made: what the configuration would do on this host, allowed or not. */
	if (r == 0) {
		archive_host_access(&im, &lines);
		if (lines.n && !cli_has(a, "allow-host-access")) {
			for (size_t i = 0; i < lines.n; i++)
				fprintf(stderr, "  %s\n", lines.v[i]);
			r = clbsd_err_setmsg(
				&err, CLBSD_E_FORBIDDEN, EPERM,
				"%s: its configuration asks for access to this host (above): it "
				"would run with this host's trust. Import it only if you trust "
				"where it comes from, with clbsd host import --allow-host-access",
				path);
		} else if (lines.n) {
			host_say("allowed host access: %zu item%s of its configuration", lines.n,
				 lines.n == 1 ? "" : "s");
		}
		strv_release(&lines);
	}
	if (r == 0) {
		host_catch_signals();
		r = host_stage_make(im.stream ? NULL : path, &err);
	}
	/*
	 * Order: the CA, the configuration's settings (its host, image and
	 * network forms: the network, ingress and docker endpoint the
	 * containers need) and images first; then the containers nothing
	 * declares (a plain import, as `clbsd import`), the declared ones into
	 * their declarations (dependencies first), and then the whole
	 * configuration.
	 */
	if (r == 0)
		r = install_config(&im, "host", &err);
	if (r == 0 && !incr && (r = install_config(&im, "settings", &err)) == 0 &&
	    cli_call("POST", "/v1/apply", NULL, NULL, &err) < 0)
		r = clbsd_err_prefix(&err, "the archive's host, image and network forms do not "
					   "load here; this daemon's files are put back as they "
					   "were");
	if (r == 0)
		r = import_images(&im, &err);
	if (r == 0)
		import_networks(&im);
	if (r == 0)
		r = import_containers(&im, &err);
	if (r == 0 && im.stream)
		r = stream_end(&im, &err);
	/*
	 * The main file, then conf.d, the live layer last: until it is
	 * replaced, the forms the declared imports wrote there keep every
	 * declared container declared.
	 */
	if (r == 0)
		r = install_config(&im, "main", &err);
	if (r == 0)
		r = install_config(&im, "files", &err);
	if (r == 0)
		r = install_config(&im, "live", &err);
	/* A source without a live layer: the one the declared imports wrote goes. */
	if (r == 0 && !member(&im, "config/conf.d/90-live.conf"))
		r = clear_live(&im, &err);
	if (r == 0 && cli_call("POST", "/v1/apply", NULL, NULL, &err) < 0) {
		/*
		 * The archive's configuration does not load here: every file the
		 * import wrote goes back as it was, and that is loaded again, so
		 * the host keeps the configuration it had (docs/host.md).
		 */
		r = clbsd_err_prefix(&err, "the archive's configuration does not load here; this "
					   "daemon's files are put back as they were");
		restore_prev(&im);
		struct clbsd_err e2;
		if (cli_call("POST", "/v1/apply", NULL, NULL, &e2) < 0)
			host_say("apply the configuration put back: %s", e2.msg);
	} else if (r < 0 && im.nprev) {
		restore_prev(&im);
		struct clbsd_err e2;
		if (cli_call("POST", "/v1/apply", NULL, NULL, &e2) < 0)
			host_say("apply the configuration put back: %s", e2.msg);
	}
	free_prev(&im);
	host_stage_rm();
	if (im.fd >= 0)
		close(im.fd);
	for (size_t i = 0; i < im.nmem; i++)
		free(im.mem[i].mem);
	free(im.mem);
	json_decref(im.m);
	json_decref(im.host);
	json_decref(im.idmap);
	strv_release(&im.tls_certs);
	strv_release(&im.tls_keys);
	if (r < 0)
		return cli_fail(&err);
	printf("%s\n", path);
	return 0;
}

/* The state of a host archive: the one its export recorded. */
json_t *host_archive_state(const char *file, struct clbsd_err *err)
{
	struct importer im = {.path = file};
	im.fd = open(file, O_RDONLY | O_CLOEXEC);
	if (im.fd < 0) {
		clbsd_err_set(err, CLBSD_E_NOTFOUND, errno, "open %s", file);
		return NULL;
	}
	json_t *s = NULL;
	if (check_archive(&im, err) == 0)
		s = json_incref(json_object_get(im.m, "state"));
	close(im.fd);
	free(im.mem);
	json_decref(im.m);
	if (!s && err->code == 0)
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL, "%s records no state", file);
	return s;
}
