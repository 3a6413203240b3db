#include "image/oci.h"
#include "test.h"
#include "util/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

TEST(ref_parse)
{
	struct clbsd_err err;
	struct oci_ref r;
	CHECK_INT(oci_ref_parse("127.0.0.1:5000/test/forge:1", &r, &err), 0);
	CHECK_STR(r.host, "127.0.0.1:5000");
	CHECK_STR(r.repo, "test/forge");
	CHECK_STR(r.tag, "1");
	CHECK(!r.digest);
	CHECK_STR(r.name, "test/forge:1");
	oci_ref_release(&r);

	/* Docker Hub defaults: host, library/ and latest. */
	CHECK_INT(oci_ref_parse("alpine", &r, &err), 0);
	CHECK_STR(r.host, "registry-1.docker.io");
	CHECK_STR(r.repo, "library/alpine");
	CHECK_STR(r.tag, "latest");
	CHECK_STR(r.name, "alpine:latest");
	oci_ref_release(&r);

	CHECK_INT(oci_ref_parse("docker.io/me/app:2.1", &r, &err), 0);
	CHECK_STR(r.repo, "me/app");
	CHECK_STR(r.name, "me/app:2.1");
	oci_ref_release(&r);

	/* A first component without '.' or ':' is part of the repo. */
	CHECK_INT(oci_ref_parse("me/app", &r, &err), 0);
	CHECK_STR(r.host, "registry-1.docker.io");
	CHECK_STR(r.repo, "me/app");
	oci_ref_release(&r);

	CHECK_INT(oci_ref_parse("localhost/app", &r, &err), 0);
	CHECK_STR(r.host, "localhost");
	CHECK_STR(r.repo, "app");
	oci_ref_release(&r);

	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char s[200];
	snprintf(s, sizeof(s), "[::1]:5000/x/y@%s", d);
	CHECK_INT(oci_ref_parse(s, &r, &err), 0);
	CHECK_STR(r.host, "[::1]:5000");
	CHECK_STR(r.repo, "x/y");
	CHECK(!r.tag);
	CHECK_STR(r.digest, d);
	oci_ref_release(&r);

	static const char *const bad[] = {
		"",
		"UPPER/case",
		"a//b",
		"host:5000/x:",
		"x@sha256:abc",
		"x@md5:0123456789abcdef0123456789abcdef",
		"x:-tag",
		"-x",
		"x/",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (oci_ref_parse(bad[i], &r, &err) == 0) {
			oci_ref_release(&r);
			FAILF("accepted \"%s\"", bad[i]);
		}
		CHECK_INT(err.kind, CLBSD_E_INVALID);
	}
}

TEST(local_name)
{
	static const char *const cases[][2] = {
		{"docker.io/dock/forge:2", "dock/forge:2"},
		{"docker.io/library/busybox:1", "busybox:1"},
		{"busybox", "busybox:latest"},
		{"forge:latest", "forge:latest"},
		{"127.0.0.1:5000/test/forge:1", "test/forge:1"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *n = oci_local_name(cases[i][0]);
		if (!n || strcmp(n, cases[i][1]) != 0)
			FAILF("\"%s\" -> \"%s\", expected \"%s\"", cases[i][0], n ? n : "(null)",
			      cases[i][1]);
		free(n);
	}
	CHECK(!oci_local_name("Not A Ref"));
}

TEST(loopback)
{
	CHECK(oci_host_is_loopback("127.0.0.1:5000"));
	CHECK(oci_host_is_loopback("127.3.2.1"));
	CHECK(oci_host_is_loopback("localhost:80"));
	CHECK(oci_host_is_loopback("[::1]:5000"));
	CHECK(oci_host_is_loopback("::1"));
	CHECK(!oci_host_is_loopback("128.0.0.1:5000"));
	CHECK(!oci_host_is_loopback("registry-1.docker.io"));
	CHECK(!oci_host_is_loopback("localhost.evil.com"));
	CHECK(!oci_host_is_loopback("[::2]:5000"));
	CHECK(!oci_host_is_loopback("127.0.0.1.nip.io"));
}

TEST(digest_valid)
{
	CHECK(oci_digest_valid(
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!oci_digest_valid(
		"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!oci_digest_valid("sha256:../../etc/passwd"));
	CHECK(!oci_digest_valid("sha512:00"));
	CHECK(!oci_digest_valid(NULL));
}

TEST(index_pick)
{
	json_t *idx = json_loads(
		"{\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"arm\","
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"att\","
		"\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
		"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"digest\":\"amd\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"win\","
		"\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}",
		0, NULL);
	CHECK(idx);
	CHECK_STR(json_string_value(json_object_get(oci_index_pick(idx, "amd64"), "digest")),
		  "amd");
	CHECK_STR(json_string_value(json_object_get(oci_index_pick(idx, "arm64"), "digest")),
		  "arm");
	CHECK(!oci_index_pick(idx, "s390x"));
	json_decref(idx);
	/* A plain layout: one manifest, no platform. */
	idx = json_loads("{\"manifests\":[{\"mediaType\":"
			 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"one\"}]}",
			 0, NULL);
	CHECK_STR(json_string_value(json_object_get(oci_index_pick(idx, "amd64"), "digest")),
		  "one");
	json_decref(idx);
	/* Two without platforms: no guess. */
	idx = json_loads("{\"manifests\":[{\"digest\":\"a\"},{\"digest\":\"b\"}]}", 0, NULL);
	CHECK(!oci_index_pick(idx, "amd64"));
	json_decref(idx);
}

TEST(member_classify)
{
	static const struct {
		const char *name;
		enum oci_member kind;
		const char *path;
	} cases[] = {
		{"etc/passwd", OCI_MEMBER_FILE, "etc/passwd"},
		{"./etc/passwd", OCI_MEMBER_FILE, "etc/passwd"},
		{"etc/", OCI_MEMBER_FILE, "etc"},
		{"./", OCI_MEMBER_ROOT, NULL},
		{".", OCI_MEMBER_ROOT, NULL},
		{"etc/.wh.passwd", OCI_MEMBER_WHITEOUT, "etc/passwd"},
		{".wh.bin", OCI_MEMBER_WHITEOUT, "bin"},
		{"./var/.wh..wh..opq", OCI_MEMBER_OPAQUE, "var"},
		{".wh..wh..opq", OCI_MEMBER_OPAQUE, ""},
		{"a/.wh..wh.plnk/x", OCI_MEMBER_FILE, "a/.wh..wh.plnk/x"},
		{".wh..wh.plnk", OCI_MEMBER_SKIP, NULL},
		{"/etc/passwd", OCI_MEMBER_BAD, NULL},
		{"../etc/passwd", OCI_MEMBER_BAD, NULL},
		{"etc/../../x", OCI_MEMBER_BAD, NULL},
		{"etc/..", OCI_MEMBER_BAD, NULL},
		{"etc//x", OCI_MEMBER_BAD, NULL},
		{"etc/./x", OCI_MEMBER_BAD, NULL},
		{"etc/.wh...", OCI_MEMBER_BAD, NULL},
		{"etc/.wh.", OCI_MEMBER_BAD, NULL},
		{"x/..wh.y", OCI_MEMBER_FILE, "x/..wh.y"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *p = NULL;
		enum oci_member k = oci_member_classify(cases[i].name, &p);
		if (k != cases[i].kind)
			FAILF("\"%s\": kind %d, expected %d", cases[i].name, k, cases[i].kind);
		if (cases[i].path && (!p || strcmp(p, cases[i].path) != 0))
			FAILF("\"%s\": path \"%s\", expected \"%s\"", cases[i].name,
			      p ? p : "(null)", cases[i].path);
		free(p);
	}
}

static void put(const char *dir, const char *rel, const char *text)
{
	struct clbsd_err err;
	char *p = xasprintf("%s/%s", dir, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	fs_mkdir_p(p, 0755, &err);
	*slash = '/';
	fs_write_atomic(p, text, strlen(text), 0644, &err);
	free(p);
}

static bool there(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

/* A tree as a layer file (the export's own layer writer). */
static int layer_of(const char *tree, const char *file, struct oci_layer *l)
{
	struct clbsd_err err;
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int r = oci_layer_write(tree, fd, l, &err);
	close(fd);
	if (r < 0)
		printf("# %s\n", err.msg);
	return r;
}

TEST(layer_deterministic)
{
	char *tree = xasprintf("%s/det", root);
	put(tree, "b/z", "z");
	put(tree, "a/y", "y");
	put(tree, "c", "c");
	struct oci_layer l1, l2;
	char *f = xasprintf("%s/det.tar.gz", root);
	CHECK_INT(layer_of(tree, f, &l1), 0);
	struct clbsd_err err;
	CHECK_INT(oci_layer_write(tree, -1, &l2, &err), 0);
	CHECK_STR(l1.digest, l2.digest);
	CHECK_STR(l1.diff_id, l2.diff_id);
	CHECK_INT(l1.size, l2.size);
	char fd[OCI_DIGEST_LEN];
	CHECK_INT(oci_file_digest(f, fd, &err), 0);
	CHECK_STR(fd, l1.digest);
	/* The same config and created time give the same image digest. */
	char *env[] = {"PATH=/bin", NULL}, *cmd[] = {"/bin/sh", NULL}, *none[] = {NULL};
	struct image_config cfg = {
		.entrypoint = none, .cmd = cmd, .env = env, .workdir = "/", .user = ""};
	char d1[OCI_DIGEST_LEN], d2[OCI_DIGEST_LEN];
	oci_image_digest(&cfg, 1700000000000000000LL, &l1, d1);
	oci_image_digest(&cfg, 1700000000000000000LL, &l2, d2);
	CHECK_STR(d1, d2);
	oci_image_digest(&cfg, 1700000000000000001LL, &l2, d2);
	CHECK(strcmp(d1, d2) != 0);
	free(tree);
	free(f);
}

TEST(whiteouts)
{
	struct clbsd_err err;
	char *lower = xasprintf("%s/lower", root), *upper = xasprintf("%s/upper", root);
	char *rootfs = xasprintf("%s/rootfs", root);
	put(lower, "etc/gone", "1");
	put(lower, "etc/kept", "1");
	put(lower, "var/old/deep", "1");
	put(lower, "var/old2", "1");
	put(lower, "bin/tool", "1");
	put(upper, "etc/.wh.gone", "");
	put(upper, "var/.wh..wh..opq", "");
	put(upper, "var/new", "2");
	put(upper, ".wh.bin", "");
	char *l1 = xasprintf("%s/l1.tar.gz", root), *l2 = xasprintf("%s/l2.tar.gz", root);
	struct oci_layer l;
	CHECK_INT(layer_of(lower, l1, &l), 0);
	CHECK_INT(layer_of(upper, l2, &l), 0);
	mkdir(rootfs, 0755);
	CHECK_INT(oci_apply_layer(rootfs, l1, &err), 0);
	CHECK(there(rootfs, "etc/gone") && there(rootfs, "var/old/deep"));
	if (oci_apply_layer(rootfs, l2, &err) < 0)
		FAILF("apply: %s", err.msg);
	CHECK(!there(rootfs, "etc/gone"));
	CHECK(there(rootfs, "etc/kept"));
	CHECK(!there(rootfs, "etc/.wh.gone"));
	CHECK(!there(rootfs, "var/old"));
	CHECK(!there(rootfs, "var/old2"));
	CHECK(there(rootfs, "var/new"));
	CHECK(!there(rootfs, "var/.wh..wh..opq"));
	CHECK(!there(rootfs, "bin"));
	free(lower), free(upper), free(rootfs), free(l1), free(l2);
}

/* A minimal ustar writer, to make members the layer writer never would. */
static void tar_member(FILE *f, const char *name, char type, const char *link, const char *data)
{
	char h[512] = {0};
	size_t len = data ? strlen(data) : 0;
	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011o", (unsigned)len);
	snprintf(h + 136, 12, "%011o", 0);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (link)
		snprintf(h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	fwrite(h, 1, 512, f);
	if (len) {
		char pad[512] = {0};
		fwrite(data, 1, len, f);
		fwrite(pad, 1, (512 - len % 512) % 512, f);
	}
}

static void tar_end(FILE *f)
{
	char z[1024] = {0};
	fwrite(z, 1, sizeof(z), f);
	fclose(f);
}

TEST(escapes_refused)
{
	struct clbsd_err err;
	char *rootfs = xasprintf("%s/erootfs", root);
	char *outside = xasprintf("%s/outside", root);
	mkdir(outside, 0755);
	mkdir(rootfs, 0755);
	put(outside, "victim", "keep me");
	char *l1 = xasprintf("%s/e1.tar", root);
	FILE *f = fopen(l1, "w");
	tar_member(f, "esc", '2', outside, NULL); /* a symlink to outside the rootfs */
	tar_end(f);
	CHECK_INT(oci_apply_layer(rootfs, l1, &err), 0);
	static const struct {
		const char *name;
		char type;
		const char *link;
	} bad[] = {
		{"esc/victim", '0', NULL},     /* write through the symlink */
		{"esc/.wh.victim", '0', NULL}, /* delete through it */
		{"esc/.wh..wh..opq", '0', NULL}, {"../victim", '0', NULL},
		{"/victim", '0', NULL},		 {"hl", '1', "../outside/victim"},
		{"hl2", '1', "esc/victim"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *ln = xasprintf("%s/bad%zu.tar", root, i);
		f = fopen(ln, "w");
		tar_member(f, bad[i].name, bad[i].type, bad[i].link, "overwritten");
		tar_end(f);
		int r = oci_apply_layer(rootfs, ln, &err);
		free(ln);
		if (r == 0)
			FAILF("member \"%s\" was applied", bad[i].name);
		CHECK_INT(err.kind, CLBSD_E_INVALID);
	}
	char *text = NULL;
	char *victim = xasprintf("%s/victim", outside);
	CHECK_INT(fs_read_file(victim, &text, NULL, &err), 0);
	CHECK_STR(text, "keep me");
	/* A directory member over the symlink replaces it, as docker does. */
	char *l2 = xasprintf("%s/e2.tar", root);
	f = fopen(l2, "w");
	tar_member(f, "esc/", '5', NULL, NULL);
	tar_member(f, "esc/victim", '0', NULL, "inside");
	tar_end(f);
	CHECK_INT(oci_apply_layer(rootfs, l2, &err), 0);
	free(text);
	text = NULL;
	CHECK_INT(fs_read_file(victim, &text, NULL, &err), 0);
	CHECK_STR(text, "keep me");
	free(text), free(victim), free(rootfs), free(outside), free(l1), free(l2);
}

/* Regression: a hard link to a file (not a directory) was refused. */
TEST(hard_link_applies)
{
	struct clbsd_err err;
	char *rootfs = xasprintf("%s/hrootfs", root);
	mkdir(rootfs, 0755);
	char *l = xasprintf("%s/h.tar", root);
	FILE *f = fopen(l, "w");
	tar_member(f, "./bin/", '5', NULL, NULL);
	tar_member(f, "./bin/busybox", '0', NULL, "binary");
	tar_member(f, "./bin/hard", '1', "./bin/busybox", NULL);
	tar_end(f);
	if (oci_apply_layer(rootfs, l, &err) < 0)
		FAILF("apply: %s", err.msg);
	char *p = xasprintf("%s/bin/hard", rootfs);
	struct stat st;
	CHECK_INT(lstat(p, &st), 0);
	CHECK_INT(st.st_nlink, 2);
	free(p), free(l), free(rootfs);
}

TEST(config_parse)
{
	struct clbsd_err err;
	json_t *j = json_loads("{\"config\":{\"Entrypoint\":[\"/e\"],\"Cmd\":null,"
			       "\"WorkingDir\":\"/app/\",\"User\":\"1000:1000\"}}",
			       0, NULL);
	struct image_config c;
	CHECK_INT(oci_config_parse(j, &c, &err), 0);
	CHECK_STR(c.entrypoint[0], "/e");
	CHECK(!c.cmd[0]);
	CHECK(c.env[0] && strncmp(c.env[0], "PATH=", 5) == 0);
	CHECK_STR(c.workdir, "/app");
	CHECK_STR(c.user, "1000:1000");
	CHECK(c.volumes == NULL);
	image_config_release(&c);
	json_decref(j);
	/* Volumes (docker's VOLUME): the paths, kept like a Cblockfile's, and written back. */
	j = json_loads("{\"config\":{\"Volumes\":{\"/data\":{},\"/var/log/app\":{}}}}", 0, NULL);
	CHECK_INT(oci_config_parse(j, &c, &err), 0);
	json_decref(j);
	CHECK(c.volumes != NULL);
	CHECK_INT(strv_len(c.volumes), 2);
	/* jansson keeps an object's keys in insertion order. */
	CHECK_STR(c.volumes[0], "/data");
	CHECK_STR(c.volumes[1], "/var/log/app");
	struct oci_layer l = {.diff_id = "sha256:00"};
	autofree char *blob = oci_config_blob(&c, 0, &l);
	CHECK(strstr(blob, "\"Volumes\":{\"/data\":{},\"/var/log/app\":{}}") != NULL);
	image_config_release(&c);
	j = json_loads("{\"config\":{\"WorkingDir\":\"app/../..\"}}", 0, NULL);
	CHECK(oci_config_parse(j, &c, &err) < 0);
	json_decref(j);
}

static bool none_in_use(const char *id, void *ctx)
{
	return false;
}

/* A new image named `name` from a one-file tree. */
static struct image *commit_one(struct image_store *st, const char *name, const char *text)
{
	struct clbsd_err err;
	char *staging;
	if (image_staging_new(st, &staging, &err) < 0)
		return NULL;
	char *rootfs = xasprintf("%s/rootfs", staging);
	put(rootfs, "etc/hostname", text);
	free(rootfs);
	char *env[] = {NULL}, *cmd[] = {"/bin/sh", NULL};
	struct image_config cfg = {
		.entrypoint = env, .cmd = cmd, .env = env, .workdir = "/", .user = ""};
	struct image *img = NULL;
	image_commit(st, staging, &cfg, name, none_in_use, NULL, &img, &err);
	free(staging);
	return img;
}

TEST(store_tag_digest)
{
	struct clbsd_err err;
	struct image_store st;
	char *sroot = xasprintf("%s/store", root);
	CHECK_INT(image_store_open(sroot, &st, &err), 0);
	struct image *a = commit_one(&st, "a", "a");
	struct image *b = commit_one(&st, "b:1", "b");
	CHECK(a && b);
	CHECK_STR(a->digest, "");
	char id_a[65], id_b[65];
	memcpy(id_a, a->id, 65);
	memcpy(id_b, b->id, 65);
	/* Tag: a second name, then moving b's only name away drops b. */
	CHECK_INT(image_tag(&st, "a", "other:2", none_in_use, NULL, &err), 0);
	CHECK(image_lookup(&st, "other:2") == a);
	CHECK(image_lookup(&st, "a:latest") == a);
	CHECK_INT(image_tag(&st, "a", "b:1", none_in_use, NULL, &err), 0);
	CHECK(image_lookup(&st, "b:1") == a);
	CHECK(!image_by_id(&st, id_b));
	CHECK(image_tag(&st, "nope", "x", none_in_use, NULL, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	/* The digest survives a reopen, and so do stores without one. */
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	CHECK_INT(image_set_digest(a, d, d, d, 42, "h/r@x", &err), 0);
	image_store_release(&st);
	CHECK_INT(image_store_open(sroot, &st, &err), 0);
	a = image_by_id(&st, id_a);
	CHECK(a);
	CHECK_STR(a->digest, d);
	CHECK_STR(a->layer_digest, d);
	CHECK_INT(a->layer_size, 42);
	CHECK_STR(a->source, "h/r@x");
	json_t *j = image_to_json(&st, a);
	CHECK_STR(json_string_value(json_object_get(j, "digest")), d);
	json_decref(j);
	/* A new id moves the tree and the names, and survives a reopen. */
	char id_new[65];
	memset(id_new, 'c', 64);
	id_new[64] = '\0';
	CHECK(image_rekey(&st, a, "not-an-id", &err) < 0);
	CHECK_INT(image_rekey(&st, a, id_new, &err), 0);
	CHECK_STR(a->id, id_new);
	CHECK(image_lookup(&st, "other:2") == a);
	CHECK(image_lookup(&st, "b:1") == a);
	CHECK(!image_by_id(&st, id_a));
	char *cfgpath = xasprintf("%s/config.json", a->dir);
	CHECK(fs_exists(cfgpath));
	free(cfgpath);
	image_store_release(&st);
	CHECK_INT(image_store_open(sroot, &st, &err), 0);
	a = image_lookup(&st, "other:2");
	CHECK(a && strcmp(a->id, id_new) == 0);
	CHECK_STR(a->digest, d); /* config.json kept its other keys */
	image_store_release(&st);
	free(sroot);
}

TEST_MAIN_BEGIN("image.oci")
snprintf(root, sizeof(root), "/tmp/clbsd-test-oci.XXXXXX");
if (!mkdtemp(root))
	return 1;
RUN(ref_parse);
RUN(local_name);
RUN(loopback);
RUN(digest_valid);
RUN(index_pick);
RUN(member_classify);
RUN(layer_deterministic);
RUN(whiteouts);
RUN(escapes_refused);
RUN(hard_link_applies);
RUN(config_parse);
RUN(store_tag_digest);
struct clbsd_err e;
fs_rm_rf(root, &e);
TEST_MAIN_END
