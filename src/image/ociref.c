/*
 * The pure parts of OCI handling: references, digests, manifest selection
 * and what a layer member name means. No I/O, so the unit tests cover them.
 */
#include "oci.h"
#include "util/json.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

bool oci_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void oci_ref_release(struct oci_ref *r)
{
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

static bool repo_ok(const char *s)
{
	/* Lowercase components of [a-z0-9] joined by . _ __ - and /. */
	if (!*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (!strchr("/._-", c) || i == 0 || !s[i + 1])
			return false;
		char prev = s[i - 1];
		if (strchr("/._-", prev) && !(c == '_' && prev == '_') &&
		    !(c == '-' && prev == '-'))
			return false;
	}
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || strchr("_.-", t[i])))
			return false;
	return true;
}

static bool host_ok(const char *h)
{
	if (!*h || strlen(h) > 255)
		return false;
	if (h[0] == '[') { /* [v6]:port */
		const char *e = strchr(h, ']');
		return e && (e[1] == '\0' || e[1] == ':');
	}
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(".-:", *p)))
			return false;
	return true;
}

int oci_ref_parse(const char *s, struct oci_ref *out, struct clbsd_err *err)
{
	if (!s || !*s || strlen(s) > 512)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image reference \"%s\" is empty or too long", s ? s : "");
	struct oci_ref r = {0};
	autofree char *rest = NULL;
	const char *slash = strchr(s, '/');
	if (slash && (memchr(s, '.', (size_t)(slash - s)) || memchr(s, ':', (size_t)(slash - s)) ||
		      (slash - s == 9 && strncmp(s, "localhost", 9) == 0) || s[0] == '[')) {
		r.host = xstrndup(s, (size_t)(slash - s));
		rest = xstrdup(slash + 1);
	} else {
		r.host = xstrdup("docker.io");
		rest = xstrdup(s);
	}
	char *at = strchr(rest, '@');
	if (at) {
		*at = '\0';
		if (!oci_digest_valid(at + 1)) {
			oci_ref_release(&r);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"image reference \"%s\": the digest must be "
						"sha256: and 64 lowercase hex digits",
						s);
		}
		r.digest = xstrdup(at + 1);
	}
	char *colon = strrchr(rest, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = '\0';
		r.tag = xstrdup(colon + 1);
	}
	if (!r.tag && !r.digest)
		r.tag = xstrdup("latest");
	if (!host_ok(r.host) || !repo_ok(rest) || (r.tag && !tag_ok(r.tag))) {
		oci_ref_release(&r);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image reference \"%s\" is invalid: expected "
					"[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST], like "
					"127.0.0.1:5000/test/forge:1",
					s);
	}
	bool hub = strcmp(r.host, "docker.io") == 0 || strcmp(r.host, "index.docker.io") == 0;
	if (hub && !strchr(rest, '/'))
		r.repo = xasprintf("library/%s", rest);
	else
		r.repo = xstrdup(rest);
	if (hub) {
		free(r.host);
		r.host = xstrdup("registry-1.docker.io");
	}
	const char *local = hub && strncmp(r.repo, "library/", 8) == 0 ? r.repo + 8 : r.repo;
	r.name = xasprintf("%s:%s", local, r.tag ? r.tag : "latest");
	*out = r;
	return 0;
}

char *oci_local_name(const char *ref)
{
	struct oci_ref r;
	struct clbsd_err err;
	if (oci_ref_parse(ref, &r, &err) < 0)
		return NULL;
	char *n = steal_ptr(&r.name);
	oci_ref_release(&r);
	return n;
}

bool oci_host_is_loopback(const char *host)
{
	if (!host)
		return false;
	autofree char *h = NULL;
	if (host[0] == '[') {
		const char *e = strchr(host, ']');
		if (!e)
			return false;
		h = xstrndup(host + 1, (size_t)(e - host - 1));
	} else {
		const char *c = strchr(host, ':');
		/* More than one ':' without brackets: a bare IPv6 address. */
		if (c && strchr(c + 1, ':'))
			h = xstrdup(host);
		else
			h = c ? xstrndup(host, (size_t)(c - host)) : xstrdup(host);
	}
	if (strcmp(h, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

const char *oci_host_arch(void)
{
	static const struct {
		const char *uname, *oci;
	} map[] = {
		{"x86_64", "amd64"}, {"aarch64", "arm64"},   {"armv7l", "arm"},
		{"i686", "386"},     {"i386", "386"},	     {"ppc64le", "ppc64le"},
		{"s390x", "s390x"},  {"riscv64", "riscv64"},
	};
	static char other[65];
	struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(u.machine, map[i].uname) == 0)
			return map[i].oci;
	snprintf(other, sizeof(other), "%s", u.machine);
	return other;
}

json_t *oci_index_pick(json_t *index, const char *arch)
{
	json_t *ms = json_object_get(index, "manifests");
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_str(p, "os");
		const char *a = json_str(p, "architecture");
		const char *mt = json_str(m, "mediaType");
		/* Attestations and other non-images carry an unknown platform. */
		if (mt && strcmp(mt, OCI_MT_MANIFEST) != 0 && strcmp(mt, DOCKER_MT_MANIFEST) != 0)
			continue;
		if (os && a && strcmp(os, "linux") == 0 && strcmp(a, arch) == 0)
			return m;
	}
	/* An index without platforms (a plain layout) with one image: that one. */
	if (json_array_size(ms) == 1 && !json_object_get(json_array_get(ms, 0), "platform"))
		return json_array_get(ms, 0);
	return NULL;
}

enum oci_member oci_member_classify(const char *name, char **path)
{
	if (!name || name[0] == '/')
		return OCI_MEMBER_BAD;
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	while (*name == '/')
		name++;
	if (!*name || strcmp(name, ".") == 0)
		return OCI_MEMBER_ROOT;
	autofree char *p = xstrdup(name);
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		p[--n] = '\0';
	/* No empty, "." or ".." component anywhere. */
	for (char *c = p;;) {
		char *e = strchr(c, '/');
		size_t l = e ? (size_t)(e - c) : strlen(c);
		if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return OCI_MEMBER_BAD;
		if (!e)
			break;
		c = e + 1;
	}
	char *base = strrchr(p, '/');
	base = base ? base + 1 : p;
	if (strncmp(base, ".wh.", 4) != 0) {
		*path = steal_ptr(&p);
		return OCI_MEMBER_FILE;
	}
	if (strcmp(base, ".wh..wh..opq") == 0) {
		base[base == p ? 0 : -1] = '\0';
		*path = steal_ptr(&p);
		return OCI_MEMBER_OPAQUE;
	}
	const char *target = base + 4;
	if (strncmp(target, ".wh.", 4) == 0)
		return OCI_MEMBER_SKIP;
	if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return OCI_MEMBER_BAD;
	memmove(base, target, strlen(target) + 1);
	*path = steal_ptr(&p);
	return OCI_MEMBER_WHITEOUT;
}
