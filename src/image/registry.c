/*
 * Pulling an image over the OCI distribution API with libcurl: ping /v2/,
 * a bearer token when the registry asks for one, the manifest (an OCI index
 * or Docker manifest list picks linux/<host arch>), the config blob and the
 * layers, each checked against its digest, then the layers applied in order
 * like a load does (oci.c).
 *
 * TLS is always tried first. Plain http is a fallback only for loopback
 * hosts and the hosts the daemon was told to trust (insecure list), so a
 * registry elsewhere cannot be downgraded by an attacker on the path.
 */
#include "oci.h"
#include "util/curl_lib.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/util.h"

#include <clbsd/clbsd.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_JSON (4 << 20)

static const char accept_manifests[] =
	"Accept: " OCI_MT_INDEX ", " OCI_MT_MANIFEST ", " DOCKER_MT_LIST ", " DOCKER_MT_MANIFEST;

struct reg {
	struct oci_ref ref;
	const struct oci_pull_opts *o;
	const char *scheme; /* "https" or "http" */
	char *auth;	    /* an Authorization header line, or NULL */
	bool basic;	    /* the registry asked for Basic credentials */
	bool http_ok;
};

/* One response: body into memory (capped) or a file, hashed as it comes. */
struct resp {
	long status;
	struct buf body;
	size_t cap;
	int fd;
	struct hash_stream *hash;
	int64_t got;
	int wr_errno;
	char *www_auth;
	char *ctype;
	/* Progress of a large download: a line each quarter. */
	const struct reg *reg;
	const char *label;
	int64_t total, next;
};

static void progress(const struct reg *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void progress(const struct reg *r, const char *fmt, ...)
{
	if (!r->o || !r->o->progress)
		return;
	va_list ap;
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->o->progress(r->o->ctx, msg);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct resp *rs = arg;
	size_t len = size * n;
	if (rs->status >= 300 || rs->status < 200) {
		/* An error's body: keep a little for the message. */
		if (rs->body.len < 4096)
			buf_add(&rs->body, p, len < 4096 ? len : 4096);
		return len;
	}
	if (rs->hash)
		hash_stream_add(rs->hash, p, len);
	rs->got += (int64_t)len;
	if (rs->fd >= 0) {
		if (write_all(rs->fd, p, len) < 0) {
			rs->wr_errno = errno;
			return 0;
		}
		if (rs->label && rs->total > (4 << 20) && rs->got >= rs->next &&
		    rs->got < rs->total) {
			progress(rs->reg, "%s: %lld of %lld MB", rs->label,
				 (long long)(rs->got >> 20), (long long)(rs->total >> 20));
			rs->next += rs->total / 4;
		}
		return len;
	}
	if (rs->body.len + len > rs->cap)
		return 0;
	buf_add(&rs->body, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct resp *rs = arg;
	size_t len = size * n;
	autofree char *line = xstrndup(p, len);
	size_t l = strlen(line);
	while (l && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		line[--l] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect): forget the last one's headers. */
		const char *sp = strchr(line, ' ');
		rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		free(rs->www_auth);
		free(rs->ctype);
		rs->www_auth = rs->ctype = NULL;
		return len;
	}
	if (strncasecmp(line, "WWW-Authenticate:", 17) == 0) {
		free(rs->www_auth);
		rs->www_auth = xstrdup(line + 17 + strspn(line + 17, " \t"));
	} else if (strncasecmp(line, "Content-Type:", 13) == 0) {
		free(rs->ctype);
		rs->ctype = xstrdup(line + 13 + strspn(line + 13, " \t"));
		char *semi = strchr(rs->ctype, ';');
		if (semi)
			*semi = '\0';
	}
	return len;
}

static void resp_release(struct resp *rs)
{
	buf_release(&rs->body);
	free(rs->www_auth);
	free(rs->ctype);
	if (rs->hash) {
		char ignore[65];
		hash_stream_end(rs->hash, ignore);
	}
	memset(rs, 0, sizeof(*rs));
	rs->fd = -1;
}

/*
 * GET url. basic: "user:password" for a token request, or NULL. Fills rs;
 * returns 0 once an HTTP answer came (any status), else an error.
 */
static int get(const struct reg *r, const char *url, const char *accept, const char *basic,
	       struct resp *rs, struct clbsd_err *err)
{
	if (curl_lib_load(err) < 0)
		return -err->code;
	CURL *c = CL(curl_easy_init)();
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM, "cannot start libcurl");
	struct curl_slist *h = NULL;
	if (accept)
		h = CL(curl_slist_append)(h, accept);
	if (r->auth && !basic)
		h = CL(curl_slist_append)(h, r->auth);
	h = CL(curl_slist_append)(h, "User-Agent: clbsd/" CLBSD_VERSION);
	char ebuf[CURL_ERROR_SIZE] = "";
	CL(curl_easy_setopt)(c, CURLOPT_URL, url);
	CL(curl_easy_setopt)(c, CURLOPT_HTTPHEADER, h);
	CL(curl_easy_setopt)(c, CURLOPT_WRITEFUNCTION, on_data);
	CL(curl_easy_setopt)(c, CURLOPT_WRITEDATA, rs);
	CL(curl_easy_setopt)(c, CURLOPT_HEADERFUNCTION, on_header);
	CL(curl_easy_setopt)(c, CURLOPT_HEADERDATA, rs);
	CL(curl_easy_setopt)(c, CURLOPT_ERRORBUFFER, ebuf);
	CL(curl_easy_setopt)(c, CURLOPT_NOSIGNAL, 1L);
	CL(curl_easy_setopt)(c, CURLOPT_CONNECTTIMEOUT, 15L);
	/* A stalled transfer (under 1 KB/s for a minute) is given up. */
	CL(curl_easy_setopt)(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	CL(curl_easy_setopt)(c, CURLOPT_LOW_SPEED_TIME, 60L);
	/* Blobs are often redirected to storage; credentials do not follow. */
	CL(curl_easy_setopt)(c, CURLOPT_FOLLOWLOCATION, 1L);
	CL(curl_easy_setopt)(c, CURLOPT_MAXREDIRS, 5L);
	CL(curl_easy_setopt)(c, CURLOPT_PROTOCOLS_STR, r->http_ok ? "http,https" : "https");
	CL(curl_easy_setopt)(c, CURLOPT_REDIR_PROTOCOLS_STR, r->http_ok ? "http,https" : "https");
	if (basic) {
		CL(curl_easy_setopt)(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		CL(curl_easy_setopt)(c, CURLOPT_USERPWD, basic);
	}
	CURLcode cc = CL(curl_easy_perform)(c);
	int rc = 0;
	if (cc != CURLE_OK) {
		if (rs->wr_errno)
			rc = clbsd_err_set(err, CLBSD_E_INTERNAL, rs->wr_errno, "write %s", url);
		else if (cc == CURLE_WRITE_ERROR)
			rc = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EFBIG,
					      "GET %s: the answer is larger than expected", url);
		else
			rc = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL,
					      cc == CURLE_COULDNT_CONNECT ? ECONNREFUSED : EIO,
					      "GET %s: %s", url,
					      *ebuf ? ebuf : CL(curl_easy_strerror)(cc));
	}
	CL(curl_easy_getinfo)(c, CURLINFO_RESPONSE_CODE, &rs->status);
	CL(curl_slist_free_all)(h);
	CL(curl_easy_cleanup)(c);
	return rc;
}

/* The value of key="value" in a WWW-Authenticate challenge (new string). */
static char *challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = ch; (p = strcasestr(p, key)); p += kl) {
		if (p != ch && p[-1] != ' ' && p[-1] != ',')
			continue;
		if (p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		if (*v == '"') {
			const char *e = strchr(v + 1, '"');
			return e ? xstrndup(v + 1, (size_t)(e - v - 1)) : NULL;
		}
		size_t n = strcspn(v, ", ");
		return xstrndup(v, n);
	}
	return NULL;
}

static char *esc(const char *s)
{
	char *e = CL(curl_easy_escape)(NULL, s, 0);
	char *r = xstrdup(e ? e : "");
	CL(curl_free)(e);
	return r;
}

/* Answer a 401: a bearer token from the realm, or basic credentials. */
static int authenticate(struct reg *r, const char *challenge, struct clbsd_err *err)
{
	const char *user = r->o ? r->o->username : NULL, *pass = r->o ? r->o->password : NULL;
	autofree char *basic = user ? xasprintf("%s:%s", user, pass ? pass : "") : NULL;
	if (challenge && strncasecmp(challenge, "Basic", 5) == 0) {
		if (!basic)
			return clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EACCES,
						"registry %s wants a user name and password",
						r->ref.host);
		free(r->auth);
		r->auth = NULL;
		r->basic = true; /* reg_get() sends them from now on */
		return 0;
	}
	if (!challenge || strncasecmp(challenge, "Bearer", 6) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EACCES,
					"registry %s refused access and offers no token "
					"(WWW-Authenticate: %s)",
					r->ref.host, challenge ? challenge : "none");
	autofree char *realm = challenge_param(challenge, "realm");
	autofree char *service = challenge_param(challenge, "service");
	if (!realm || (strncmp(realm, "https://", 8) != 0 &&
		       !(r->http_ok && strncmp(realm, "http://", 7) == 0)))
		return clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EACCES,
					"registry %s names no usable token realm (\"%s\")",
					r->ref.host, realm ? realm : "");
	autofree char *scope = xasprintf("repository:%s:pull", r->ref.repo);
	autofree char *escope = esc(scope);
	autofree char *eservice = service ? esc(service) : NULL;
	autofree char *url =
		xasprintf("%s%cscope=%s%s%s", realm, strchr(realm, '?') ? '&' : '?', escope,
			  eservice ? "&service=" : "", eservice ? eservice : "");
	struct resp rs = {.fd = -1, .cap = MAX_JSON};
	int rc = get(r, url, "Accept: application/json", basic, &rs, err);
	if (rc == 0 && rs.status != 200)
		rc = clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EACCES,
				      "token from %s: HTTP %ld (wrong credentials?)", realm,
				      rs.status);
	json_t *j = rc == 0 ? json_loadb(rs.body.data, rs.body.len, 0, NULL) : NULL;
	const char *tok = json_str(j, "token");
	if (!tok)
		tok = json_str(j, "access_token");
	if (rc == 0 && !tok)
		rc = clbsd_err_setmsg(err, CLBSD_E_FORBIDDEN, EACCES,
				      "token from %s: no token in the answer", realm);
	if (rc == 0) {
		free(r->auth);
		r->auth = xasprintf("Authorization: Bearer %s", tok);
	}
	json_decref(j);
	resp_release(&rs);
	return rc;
}

/* GET path below /v2/ with one authentication round on 401. */
static int reg_get(struct reg *r, const char *path, const char *accept, struct resp *rs,
		   struct clbsd_err *err)
{
	autofree char *url = xasprintf("%s://%s/v2/%s", r->scheme, r->ref.host, path);
	for (int round = 0;; round++) {
		struct resp fresh = {.fd = rs->fd,
				     .cap = rs->cap,
				     .reg = rs->reg,
				     .label = rs->label,
				     .total = rs->total,
				     .next = rs->next};
		if (rs->hash)
			fresh.hash = hash_sha256_begin();
		resp_release(rs);
		*rs = fresh;
		if (rs->fd >= 0 && (ftruncate(rs->fd, 0) < 0 || lseek(rs->fd, 0, SEEK_SET) < 0))
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "truncate download");
		const char *user = r->o ? r->o->username : NULL;
		/* Credentials go only to a registry that asked for them, never unasked. */
		autofree char *basic =
			(r->basic && user)
				? xasprintf("%s:%s", user, r->o->password ? r->o->password : "")
				: NULL;
		if (get(r, url, accept, basic, rs, err) < 0)
			return -err->code;
		if (rs->status != 401 || round > 0)
			return 0;
		if (authenticate(r, rs->www_auth, err) < 0)
			return -err->code;
	}
}

static int http_fail(const struct reg *r, const char *what, const struct resp *rs,
		     struct clbsd_err *err)
{
	enum clbsd_err_kind k = rs->status == 404			 ? CLBSD_E_NOTFOUND
				: rs->status == 401 || rs->status == 403 ? CLBSD_E_FORBIDDEN
									 : CLBSD_E_UNAVAIL;
	autofree char *body = xstrndup(rs->body.data ? rs->body.data : "",
				       rs->body.len > 300 ? 300 : rs->body.len);
	return clbsd_err_setmsg(err, k, rs->status == 404 ? ENOENT : EIO, "%s/%s: %s: HTTP %ld %s",
				r->ref.host, r->ref.repo, what, rs->status, body);
}

/* Ping /v2/ over https, then plain http where that is allowed. */
static int ping(struct reg *r, struct clbsd_err *err)
{
	struct resp rs = {.fd = -1, .cap = MAX_JSON};
	r->scheme = "https";
	int rc = reg_get(r, "", NULL, &rs, err);
	if (rc < 0 && r->http_ok) {
		struct clbsd_err e2;
		clbsd_err_init(&e2);
		r->scheme = "http";
		resp_release(&rs);
		rs.cap = MAX_JSON;
		rc = reg_get(r, "", NULL, &rs, &e2);
		if (rc < 0)
			*err = e2;
	}
	if (rc == 0 && rs.status != 200)
		rc = http_fail(r, "ping /v2/", &rs, err);
	else if (rc < 0 && !r->http_ok) {
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n,
			 " (https only: plain http is only used for loopback registries and the "
			 "hosts in clbsdd's CLBSD_INSECURE_REGISTRIES)");
	}
	resp_release(&rs);
	return rc;
}

static void digest_hex(struct hash_stream *h, char out[OCI_DIGEST_LEN])
{
	char hex[65];
	hash_stream_end(h, hex);
	snprintf(out, OCI_DIGEST_LEN, "sha256:%s", hex);
}

/* A manifest by tag or digest: its JSON, media type and digest. */
static json_t *get_manifest(struct reg *r, const char *ref, char digest[OCI_DIGEST_LEN],
			    char **mtype, struct clbsd_err *err)
{
	autofree char *path = xasprintf("%s/manifests/%s", r->ref.repo, ref);
	struct resp rs = {.fd = -1, .cap = MAX_JSON, .hash = hash_sha256_begin()};
	json_t *j = NULL;
	if (reg_get(r, path, accept_manifests, &rs, err) < 0)
		goto out;
	if (rs.status != 200) {
		autofree char *what = xasprintf("manifest %s", ref);
		http_fail(r, what, &rs, err);
		goto out;
	}
	digest_hex(rs.hash, digest);
	rs.hash = NULL;
	if (oci_digest_valid(ref) && strcmp(ref, digest) != 0) {
		clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EBADMSG,
				 "manifest %s: the registry sent content that hashes to %s", ref,
				 digest);
		goto out;
	}
	json_error_t je;
	j = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, &je);
	if (!j) {
		/* Where, not what: the content stays out of messages. */
		clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL,
				 "manifest %s: not valid JSON (line %d, column %d)", ref, je.line,
				 je.column);
		goto out;
	}
	const char *mt = json_str(j, "mediaType");
	*mtype = xstrdup(mt ? mt : rs.ctype ? rs.ctype : "");
out:
	resp_release(&rs);
	return j;
}

/*
 * A blob into fd (or memory when fd is -1), checked against its digest;
 * label and size (for progress) may be NULL and 0.
 */
static int get_blob(struct reg *r, const char *digest, int fd, struct buf *mem, const char *label,
		    int64_t size, struct clbsd_err *err)
{
	if (!oci_digest_valid(digest))
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL,
					"unsupported or malformed digest \"%s\" (sha256 only)",
					digest ? digest : "");
	autofree char *path = xasprintf("%s/blobs/%s", r->ref.repo, digest);
	struct resp rs = {.fd = fd,
			  .cap = MAX_JSON,
			  .hash = hash_sha256_begin(),
			  .reg = r,
			  .label = label,
			  .total = size,
			  .next = size / 4};
	int rc = reg_get(r, path, NULL, &rs, err);
	if (rc == 0 && rs.status != 200) {
		autofree char *what = xasprintf("blob %s", digest);
		rc = http_fail(r, what, &rs, err);
	}
	if (rc == 0) {
		char got[OCI_DIGEST_LEN];
		digest_hex(rs.hash, got);
		rs.hash = NULL;
		if (strcmp(got, digest) != 0)
			rc = clbsd_err_setmsg(
				err, CLBSD_E_UNAVAIL, EBADMSG,
				"blob %s: the registry sent content that hashes to %s", digest,
				got);
	}
	if (rc == 0 && mem) {
		*mem = rs.body;
		rs.body = (struct buf)BUF_INIT;
	}
	resp_release(&rs);
	return rc;
}

static bool host_listed(char *const *list, const char *host)
{
	for (size_t i = 0; list && list[i]; i++) {
		if (strcmp(list[i], host) == 0)
			return true;
		/* "host" allows every port of it. */
		size_t n = strlen(list[i]);
		if (strncmp(host, list[i], n) == 0 && host[n] == ':' && !strchr(list[i], ':'))
			return true;
	}
	return false;
}

int oci_stage_pull(const char *staging, const char *refs, const struct oci_pull_opts *o,
		   struct oci_loaded *out, struct clbsd_err *err)
{
	struct reg r = {.o = o};
	if (oci_ref_parse(refs, &r.ref, err) < 0)
		return -err->code;
	r.http_ok =
		oci_host_is_loopback(r.ref.host) || host_listed(o ? o->insecure : NULL, r.ref.host);
	struct oci_loaded l = {0};
	json_t *m = NULL;
	char *mtype = NULL;
	struct buf cfgb = BUF_INIT;
	autofree char *blobs = xasprintf("%s/blobs", staging);
	autofree char *rootfs = xasprintf("%s/rootfs", staging);
	char digest[OCI_DIGEST_LEN];
	int rc = ping(&r, err);
	if (rc < 0)
		goto out;
	const char *want = r.ref.digest ? r.ref.digest : r.ref.tag;
	progress(&r, "resolving %s/%s:%s", r.ref.host, r.ref.repo, want);
	if (!(m = get_manifest(&r, want, digest, &mtype, err))) {
		rc = -err->code;
		goto out;
	}
	if (strcmp(mtype, OCI_MT_INDEX) == 0 || strcmp(mtype, DOCKER_MT_LIST) == 0) {
		json_t *d = oci_index_pick(m, oci_host_arch());
		if (!d) {
			rc = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					      "%s has no linux/%s image", refs, oci_host_arch());
			goto out;
		}
		autofree char *dg = xstrdup(json_str(d, "digest") ? json_str(d, "digest") : "");
		json_decref(m);
		free(mtype);
		mtype = NULL;
		if (!(m = get_manifest(&r, dg, digest, &mtype, err))) {
			rc = -err->code;
			goto out;
		}
	}
	if (strcmp(mtype, OCI_MT_MANIFEST) != 0 && strcmp(mtype, DOCKER_MT_MANIFEST) != 0) {
		rc = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
				      "%s: manifest type \"%s\" is not supported (OCI or Docker "
				      "schema 2 only)",
				      refs, mtype);
		goto out;
	}
	progress(&r, "manifest %s", digest);
	const char *cd = json_str(json_object_get(m, "config"), "digest");
	if ((rc = get_blob(&r, cd, -1, &cfgb, NULL, 0, err)) < 0)
		goto out;
	json_t *cj = json_loadb(cfgb.data ? cfgb.data : "", cfgb.len, 0, NULL);
	rc = oci_config_parse(cj, &l.cfg, err);
	json_decref(cj);
	if (rc < 0)
		goto out;
	if (mkdir(blobs, 0700) < 0 || (mkdir(rootfs, 0755) < 0 && errno != EEXIST)) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", blobs);
		goto out;
	}
	json_t *layers = json_object_get(m, "layers");
	size_t n = json_array_size(layers);
	for (size_t i = 0; i < n; i++) {
		json_t *ld = json_array_get(layers, i);
		const char *dg = json_str(ld, "digest");
		if (!oci_digest_valid(dg)) {
			rc = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EINVAL,
					      "layer %zu: malformed digest \"%s\"", i + 1,
					      dg ? dg : "");
			goto out;
		}
		progress(&r, "layer %zu/%zu %.19s: downloading %lld bytes", i + 1, n, dg,
			 (long long)json_int(ld, "size", 0));
		autofree char *file = xasprintf("%s/%s", blobs, dg + 7);
		int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", file);
			goto out;
		}
		autofree char *label = xasprintf("layer %zu/%zu %.19s", i + 1, n, dg);
		rc = get_blob(&r, dg, fd, NULL, label, json_int(ld, "size", 0), err);
		close(fd);
		if (rc == 0)
			rc = oci_apply_layer(rootfs, file, err);
		unlink(file);
		if (rc < 0) {
			clbsd_err_prefix(err, "layer %zu", i + 1);
			goto out;
		}
		progress(&r, "layer %zu/%zu %.19s: applied", i + 1, n, dg);
	}
	l.name = xstrdup(r.ref.name);
	l.source = xasprintf("%s/%s@%s", r.ref.host, r.ref.repo, digest);
out : {
	struct clbsd_err ignore;
	fs_rm_rf(blobs, &ignore);
}
	buf_release(&cfgb);
	json_decref(m);
	free(mtype);
	free(r.auth);
	oci_ref_release(&r.ref);
	if (rc < 0) {
		oci_loaded_release(&l);
		return clbsd_err_prefix(err, "pull %s", refs);
	}
	*out = l;
	return 0;
}

/* ---- plain downloads (ADD URL in a build) ---- */

int oci_download(const char *url, int fd, struct clbsd_err *err)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s: only http:// and https:// URLs are fetched", url);
	struct reg r = {.http_ok = true};
	struct resp rs = {.body = BUF_INIT, .fd = fd};
	int rc = get(&r, url, NULL, NULL, &rs, err);
	if (rc == 0 && (rs.status < 200 || rs.status >= 300))
		rc = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, EIO, "GET %s: HTTP %ld", url,
				      rs.status);
	resp_release(&rs);
	return rc;
}
