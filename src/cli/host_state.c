/*
 * What `clbsd host diff` compares (docs/host.md, "What diff compares"):
 * the configuration files as text (the main file without its :storage,
 * which is each daemon's own), the images by name and size, the networks
 * by name and subnet, and every container's kind, state, image and data
 * (but the routing container and its image, which each daemon makes).
 * A container's data is a content checksum of its trees, taken by walking
 * them: its writable layer (the whole rootfs with zfs or a copy, the
 * overlay's upper directory otherwise) and each named volume. Image ids
 * are not compared: an image loaded on another host is stored anew there
 * and gets a new id (docs/images.md), its names and size stay.
 */
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- the main file's :storage (text level: comments and layout are kept) ---- */

static size_t skip_ws(const char *t, size_t i)
{
	for (;;) {
		while (t[i] && isspace((unsigned char)t[i]))
			i++;
		if (t[i] != ';')
			return i;
		while (t[i] && t[i] != '\n')
			i++;
	}
}

/* The end of the datum starting at i (a list, a string or an atom). */
static size_t skip_datum(const char *t, size_t i)
{
	if (t[i] == '"') {
		for (i++; t[i] && t[i] != '"'; i++)
			if (t[i] == '\\' && t[i + 1])
				i++;
		return t[i] ? i + 1 : i;
	}
	if (t[i] == '(') {
		int depth = 0;
		while (t[i]) {
			if (t[i] == '"') {
				i = skip_datum(t, i);
				continue;
			}
			if (t[i] == ';') {
				while (t[i] && t[i] != '\n')
					i++;
				continue;
			}
			if (t[i] == '(')
				depth++;
			else if (t[i] == ')' && --depth == 0)
				return i + 1;
			i++;
		}
		return i;
	}
	if (t[i] == '\'')
		return skip_datum(t, i + 1);
	while (t[i] && !isspace((unsigned char)t[i]) && !strchr("()\";", t[i]))
		i++;
	return i;
}

static bool atom_is(const char *t, size_t i, const char *word)
{
	size_t n = strlen(word);
	return strncmp(t + i, word, n) == 0 &&
	       (!t[i + n] || isspace((unsigned char)t[i + n]) || strchr("()\";", t[i + n]));
}

/*
 * In the (host ...) form: where its head ends (*head), and the span of
 * ":storage VALUE" with the white space before it (*a, *b) and of the
 * value (*va). False when there is no host form; *a == *b when it has no
 * :storage.
 */
static bool find_storage(const char *t, size_t *head, size_t *a, size_t *b, size_t *va)
{
	size_t i = 0;
	for (;;) {
		i = skip_ws(t, i);
		if (!t[i])
			return false;
		if (t[i] == '(') {
			size_t j = skip_ws(t, i + 1);
			if (atom_is(t, j, "host")) {
				size_t k = j + 4, before = k;
				*head = k;
				*a = *b = *va = k;
				for (;;) {
					k = skip_ws(t, k);
					if (!t[k] || t[k] == ')')
						return true;
					if (atom_is(t, k, ":storage")) {
						*a = before;
						*va = skip_ws(t, k + 8);
						*b = t[*va] && t[*va] != ')' ? skip_datum(t, *va)
									     : *va;
						return true;
					}
					size_t e = skip_datum(t, k);
					before = e > k ? e : k + 1;
					k = before;
				}
			}
		}
		size_t e = skip_datum(t, i);
		i = e > i ? e : i + 1;
	}
}

char *host_conf_without_storage(const char *text, char **storage)
{
	size_t head, a, b, va;
	if (storage)
		*storage = NULL;
	if (!find_storage(text, &head, &a, &b, &va) || a == b)
		return xstrdup(text);
	if (storage)
		*storage = xstrndup(text + va, b - va);
	struct buf o = BUF_INIT;
	buf_add(&o, text, a);
	buf_adds(&o, text + b);
	return buf_detach(&o, NULL);
}

char *host_conf_with_storage(const char *text, const char *storage)
{
	autofree char *bare = host_conf_without_storage(text, NULL);
	if (!storage)
		return steal_ptr(&bare);
	size_t head, a, b, va;
	struct buf o = BUF_INIT;
	if (find_storage(bare, &head, &a, &b, &va)) {
		buf_add(&o, bare, head);
		buf_addf(&o, " :storage %s", storage);
		buf_adds(&o, bare + head);
	} else {
		buf_adds(&o, bare);
		buf_addf(&o, "%s(host :storage %s)\n",
			 *bare && bare[strlen(bare) - 1] != '\n' ? "\n" : "", storage);
	}
	return buf_detach(&o, NULL);
}

char *host_conf_settings(const char *text)
{
	static const char *const keep[] = {"host", "image", "network", NULL};
	struct buf o = BUF_INIT;
	for (size_t i = skip_ws(text, 0); text[i];) {
		size_t e = skip_datum(text, i);
		if (e <= i)
			e = i + 1;
		size_t j = text[i] == '(' ? skip_ws(text, i + 1) : i;
		for (size_t k = 0; text[i] == '(' && keep[k]; k++)
			if (atom_is(text, j, keep[k])) {
				buf_add(&o, text + i, e - i);
				buf_adds(&o, "\n");
				break;
			}
		i = skip_ws(text, e);
	}
	return buf_detach(&o, NULL);
}

bool host_conf_trivial(const char *text)
{
	autofree char *bare = host_conf_without_storage(text, NULL);
	struct buf o = BUF_INIT;
	for (size_t i = skip_ws(bare, 0); bare[i]; i = skip_ws(bare, i + 1))
		buf_add(&o, bare + i, 1);
	autofree char *s = buf_detach(&o, NULL);
	return !s || !*s || strcmp(s, "(host)") == 0;
}

/* ---- content checksums of trees ---- */

struct walk {
	XXH3_state_t *x;
	int files;
	bool error;
};

static void add_str(struct walk *w, const char *s)
{
	XXH3_128bits_update(w->x, s, strlen(s) + 1);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	if (depth > 1024) {
		w->error = true;
		return;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		w->error = true;
		return;
	}
	/* Sorted by name, so both hosts hash the same order. */
	size_t n = 0, cap = 0;
	char **names = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		autofree char *path = xasprintf("%s/%s", rel, names[i]);
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile: a running container's file */
		char meta[160];
		snprintf(meta, sizeof(meta), "%o %u %u %lld", (unsigned)st.st_mode, st.st_uid,
			 st.st_gid, S_ISREG(st.st_mode) ? (long long)st.st_size : 0LL);
		add_str(w, path);
		add_str(w, meta);
		if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t k = readlinkat(dirfd(d), names[i], target, sizeof(target) - 1);
			target[k > 0 ? k : 0] = 0;
			add_str(w, target);
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			snprintf(meta, sizeof(meta), "%llu", (unsigned long long)st.st_rdev);
			add_str(w, meta);
		} else if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd(d), names[i],
					O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			char buf[1 << 16];
			ssize_t k;
			off_t left = st.st_size;
			while (fd >= 0 && left > 0 && (k = read(fd, buf, sizeof(buf))) > 0) {
				XXH3_128bits_update(w->x, buf, (size_t)k);
				left -= k;
			}
			if (fd >= 0)
				close(fd);
			w->files++;
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), names[i],
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				walk_dir(w, sub, path, depth + 1);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
}

/* The checksum of the tree at path (hex), or NULL when it is not a directory. */
static json_t *tree_sum(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct walk w = {.x = XXH3_createState()};
	XXH3_128bits_reset(w.x);
	walk_dir(&w, fd, ".", 0);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w.x));
	XXH3_freeState(w.x);
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
	return json_string(hex);
}

/* ---- the state ---- */

static int call(struct clbsd_client *cl, const char *method, const char *path, json_t **out,
		struct clbsd_err *err)
{
	if (!cl)
		return cli_call(method, path, NULL, out, err);
	autofree char *resp = NULL;
	int r = clbsd_client_request(cl, method, path, NULL, &resp, NULL, err);
	if (r < 0)
		return r;
	*out = json_loads(resp ? resp : "null", JSON_DECODE_ANY, NULL);
	return 0;
}

static void read_into(json_t *cfg, const char *key, const char *path, bool strip)
{
	autofree char *text = NULL;
	size_t len;
	struct clbsd_err e;
	if (fs_read_file(path, &text, &len, &e) < 0)
		return;
	if (strip) {
		char *bare = host_conf_without_storage(text, NULL);
		free(text);
		text = bare;
	}
	json_object_set_new(cfg, key, json_string(text));
}

bool host_is_routing_ctr(const json_t *host, const json_t *c)
{
	const json_t *r = json_object_get(host, "routing");
	const char *name = json_string_value(json_object_get(r, "container"));
	const char *img = json_string_value(json_object_get(r, "image"));
	const char *cn = json_string_value(json_object_get(c, "name"));
	const char *ci = json_string_value(json_object_get(c, "image"));
	return name && img && cn && ci && strcmp(name, cn) == 0 && strcmp(img, ci) == 0;
}

bool host_is_routing_image(const json_t *host, const json_t *img)
{
	const char *ref =
		json_string_value(json_object_get(json_object_get(host, "routing"), "image"));
	size_t i;
	json_t *nm;
	json_array_foreach(json_object_get(img, "names"), i, nm)
	{
		const char *n = json_string_value(nm);
		if (ref && n && strcmp(ref, n) == 0)
			return true;
	}
	return false;
}

json_t *host_state(struct clbsd_client *cl, struct clbsd_err *err)
{
	json_t *h = NULL, *imgs = NULL, *nets = NULL, *ctrs = NULL;
	if (call(cl, "GET", "/v1/host", &h, err) < 0 ||
	    call(cl, "GET", "/v1/images", &imgs, err) < 0 ||
	    call(cl, "GET", "/v1/networks", &nets, err) < 0 ||
	    call(cl, "GET", "/v1/containers?all=1", &ctrs, err) < 0) {
		json_decref(h);
		json_decref(imgs);
		json_decref(nets);
		return NULL;
	}
	json_t *s = json_pack("{s:o,s:o,s:o,s:o}", "config", json_object(), "images", json_object(),
			      "networks", json_object(), "containers", json_object());
	json_t *cfg = json_object_get(s, "config");
	read_into(cfg, "main", json_string_value(json_object_get(h, "config")), true);
	/* No main file, or one with nothing but its :storage: the same empty configuration. */
	const char *mt = json_string_value(json_object_get(cfg, "main"));
	if (!mt || host_conf_trivial(mt))
		json_object_set_new(cfg, "main", json_string(""));
	const char *confd = json_string_value(json_object_get(h, "confd"));
	DIR *d = confd ? opendir(confd) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".conf") != 0)
			continue;
		autofree char *p = xasprintf("%s/%s", confd, e->d_name);
		autofree char *k = xasprintf("conf.d/%s", e->d_name);
		read_into(cfg, k, p, false);
		/* An empty file (a live layer with nothing live) is no file. */
		const char *t = json_string_value(json_object_get(cfg, k));
		if (t && t[strspn(t, " \t\n")] == 0)
			json_object_del(cfg, k);
	}
	if (d)
		closedir(d);
	const char *init = json_string_value(json_object_get(h, "lisp_init"));
	if (init)
		read_into(cfg, "lisp_init", init, false);
	size_t i;
	json_t *v;
	json_array_foreach(imgs, i, v)
	{
		if (host_is_routing_image(h, v))
			continue;
		size_t j;
		json_t *nm;
		json_array_foreach(json_object_get(v, "names"), j, nm)
			json_object_set(json_object_get(s, "images"), json_string_value(nm),
					json_object_get(v, "size"));
	}
	json_array_foreach(nets, i, v)
	{
		const char *nm = json_string_value(json_object_get(v, "name"));
		if (nm)
			json_object_set(json_object_get(s, "networks"), nm,
					json_object_get(v, "subnet"));
	}
	const char *root = json_string_value(json_object_get(h, "root"));
	json_array_foreach(ctrs, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *kind = json_string_value(json_object_get(v, "kind"));
		if (!name || host_is_routing_ctr(h, v))
			continue;
		json_t *c = json_pack("{s:s?,s:O?,s:O?,s:o}", "kind", kind, "state",
				      json_object_get(v, "state"), "image",
				      json_object_get(v, "image"), "volumes", json_object());
		if (root && kind && strcmp(kind, "docker") != 0) {
			autofree char *upper = xasprintf("%s/containers/%s/upper", root, name);
			autofree char *rootfs = xasprintf("%s/containers/%s/rootfs", root, name);
			struct stat sb;
			bool ov = stat(upper, &sb) == 0 && S_ISDIR(sb.st_mode);
			json_t *sum = tree_sum(ov ? upper : rootfs);
			if (sum) {
				json_object_set_new(c, "layer",
						    json_string(ov ? "upper" : "rootfs"));
				json_object_set_new(c, "rootfs", sum);
			}
		}
		autofree char *vdir = root ? xasprintf("%s/volumes/%s", root, name) : NULL;
		DIR *vd = vdir ? opendir(vdir) : NULL;
		while (vd && (e = readdir(vd))) {
			if (e->d_name[0] == '.')
				continue;
			autofree char *vp = xasprintf("%s/%s", vdir, e->d_name);
			json_t *sum = tree_sum(vp);
			if (sum)
				json_object_set_new(json_object_get(c, "volumes"), e->d_name, sum);
		}
		if (vd)
			closedir(vd);
		json_object_set_new(json_object_get(s, "containers"), name, c);
	}
	json_decref(h);
	json_decref(imgs);
	json_decref(nets);
	json_decref(ctrs);
	return s;
}

/* ---- differences ---- */

static char **split_lines(const char *t, size_t *n)
{
	struct strv v = STRV_INIT;
	const char *p = t;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		strv_push_owned(&v, xstrndup(p, len));
		p = nl ? nl + 1 : NULL;
	}
	*n = v.n;
	if (!v.v)
		return xcalloc(1, sizeof(char *));
	return v.v;
}

/* A line diff of a and b (LCS), as "-line"/"+line" entries in lines. */
static void text_diff(const char *file, const char *a, const char *b, struct strv *lines)
{
	size_t na, nb;
	char **la = split_lines(a, &na), **lb = split_lines(b, &nb);
	if ((na + 1) * (nb + 1) > 4000000) {
		strv_push_owned(lines, xasprintf("  (%s: too long to show line by line)", file));
		goto out;
	}
	unsigned *t = xcalloc((na + 1) * (nb + 1), sizeof(*t));
#define T(i, j) t[(i) * (nb + 1) + (j)]
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			T(i, j) = strcmp(la[i], lb[j]) == 0
					  ? T(i + 1, j + 1) + 1
					  : (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		if (i < na && j < nb && strcmp(la[i], lb[j]) == 0) {
			i++, j++;
		} else if (j < nb && (i == na || T(i, j + 1) >= T(i + 1, j))) {
			strv_push_owned(lines, xasprintf("  +%s", lb[j++]));
		} else {
			strv_push_owned(lines, xasprintf("  -%s", la[i++]));
		}
	}
#undef T
	free(t);
out:
	strv_free(la);
	strv_free(lb);
}

static bool same(const json_t *a, const json_t *b)
{
	return (!a && !b) || (a && b && json_equal(a, b));
}

static const char *str(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : json_is_integer(v) ? "(a size)" : "(none)";
}

/* Members of objects a and b that differ, with what(kind, key, a's, b's) saying so. */
static size_t diff_keys(json_t *a, json_t *b, const char *what, const char *there,
			struct strv *lines)
{
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(a, k, v)
	{
		json_t *w = json_object_get(b, k);
		if (!w) {
			strv_push_owned(lines, xasprintf("%s %s: here, not in %s", what, k, there));
			n++;
		} else if (!same(v, w)) {
			if (json_is_integer(v))
				strv_push_owned(lines,
						xasprintf("%s %s: %lld bytes here, %lld in %s",
							  what, k, (long long)json_integer_value(v),
							  (long long)json_integer_value(w), there));
			else
				strv_push_owned(lines, xasprintf("%s %s: %s here, %s in %s", what,
								 k, str(v), str(w), there));
			n++;
		}
	}
	json_object_foreach(b, k, v)
	{
		if (!json_object_get(a, k)) {
			strv_push_owned(lines, xasprintf("%s %s: in %s, not here", what, k, there));
			n++;
		}
	}
	return n;
}

size_t host_state_diff(json_t *here, json_t *there, const char *there_name, struct strv *lines)
{
	size_t n = 0;
	const char *k;
	json_t *v;
	json_t *ca = json_object_get(here, "config"), *cb = json_object_get(there, "config");
	json_object_foreach(ca, k, v)
	{
		json_t *w = json_object_get(cb, k);
		if (!w) {
			strv_push_owned(lines,
					xasprintf("config %s: here, not in %s", k, there_name));
			n++;
		} else if (!same(v, w)) {
			strv_push_owned(lines, xasprintf("config %s differs (- here, + %s):", k,
							 there_name));
			text_diff(k, json_string_value(v), json_string_value(w), lines);
			n++;
		}
	}
	json_object_foreach(cb, k, v)
	{
		if (!json_object_get(ca, k)) {
			strv_push_owned(lines,
					xasprintf("config %s: in %s, not here", k, there_name));
			n++;
		}
	}
	n += diff_keys(json_object_get(here, "images"), json_object_get(there, "images"), "image",
		       there_name, lines);
	n += diff_keys(json_object_get(here, "networks"), json_object_get(there, "networks"),
		       "network", there_name, lines);
	json_t *xa = json_object_get(here, "containers"),
	       *xb = json_object_get(there, "containers");
	json_object_foreach(xa, k, v)
	{
		json_t *w = json_object_get(xb, k);
		if (!w) {
			strv_push_owned(lines,
					xasprintf("container %s: here, not in %s", k, there_name));
			n++;
			continue;
		}
		static const char *const keys[] = {"kind", "state", "image"};
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			json_t *p = json_object_get(v, keys[i]), *q = json_object_get(w, keys[i]);
			if (!same(p, q)) {
				strv_push_owned(lines,
						xasprintf("container %s: %s %s here, %s in %s", k,
							  keys[i], str(p), str(q), there_name));
				n++;
			}
		}
		/* Layers compare only when both are of one kind (a whole rootfs, or an upper). */
		if (same(json_object_get(v, "layer"), json_object_get(w, "layer")) &&
		    !same(json_object_get(v, "rootfs"), json_object_get(w, "rootfs"))) {
			strv_push_owned(lines, xasprintf("container %s: its files differ from %s's",
							 k, there_name));
			n++;
		}
		autofree char *what = xasprintf("container %s: volume", k);
		n += diff_keys(json_object_get(v, "volumes"), json_object_get(w, "volumes"), what,
			       there_name, lines);
	}
	json_object_foreach(xb, k, v)
	{
		if (!json_object_get(xa, k)) {
			strv_push_owned(lines,
					xasprintf("container %s: in %s, not here", k, there_name));
			n++;
		}
	}
	return n;
}
