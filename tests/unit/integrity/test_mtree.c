/*
 * File integrity manifests (src/integrity/): the comparison of two
 * manifests, the exclusions, and a real tree written by libarchive's mtree
 * writer and read back by its reader, with the entries a hostile tree
 * plants (a FIFO, a symlink to /) recorded and never opened or followed.
 */
#include "integrity/integrity.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct mtree_entry ent(const char *path, char type, unsigned mode, const char *sum,
			      const char *link)
{
	struct mtree_entry e = {.path = xstrdup(path), .type = type, .mode = mode};
	if (type == 'f') {
		e.size = 3;
		snprintf(e.sha256, sizeof(e.sha256), "%s", sum ? sum : "");
	}
	e.link = link ? xstrdup(link) : NULL;
	return e;
}

static void add(struct mtree_set *s, struct mtree_entry e)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = e;
}

/* A base tree and a copy of it, for each case to change. */
static void base(struct mtree_set *s)
{
	memset(s, 0, sizeof(*s));
	add(s, ent("/", 'd', 0755, NULL, NULL));
	add(s, ent("/etc", 'd', 0755, NULL, NULL));
	add(s, ent("/etc/passwd", 'f', 0644, "aa", NULL));
	add(s, ent("/bin", 'd', 0755, NULL, NULL));
	add(s, ent("/bin/sh", 'l', 0777, NULL, "busybox"));
	add(s, ent("/var/log", 'd', 0755, NULL, NULL));
	add(s, ent("/var/log/old", 'f', 0644, "bb", NULL));
	mtree_set_sort(s);
}

static struct mtree_entry *find(struct mtree_set *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].path, path) == 0)
			return &s->v[i];
	return NULL;
}

TEST(clean)
{
	struct mtree_set a, b;
	base(&a);
	base(&b);
	struct drift *d;
	CHECK_INT(integrity_diff(&a, &b, NULL, NULL, &d), 0);
	CHECK(d == NULL);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

TEST(each_change_named)
{
	struct mtree_set a, b;
	base(&a);
	base(&b);
	strcpy(find(&b, "/etc/passwd")->sha256, "cc"); /* content */
	find(&b, "/etc")->mode = 0700;		       /* chmod */
	free(find(&b, "/bin/sh")->link);	       /* retarget */
	find(&b, "/bin/sh")->link = xstrdup("/tmp/evil");
	add(&b, ent("/etc/cron", 'f', 0644, "dd", NULL));   /* added */
	add(&b, ent("/etc/shadow", 'd', 0700, NULL, NULL)); /* added */
	mtree_set_sort(&b);
	struct drift *d;
	size_t n = integrity_diff(&a, &b, NULL, NULL, &d);
	CHECK_INT(n, 5);
	/* In path order. */
	CHECK_STR(d[0].now->path, "/bin/sh");
	CHECK_INT(d[0].kind, DRIFT_CHANGED);
	CHECK_INT(d[0].what, DRIFT_TARGET);
	CHECK_STR(d[1].now->path, "/etc");
	CHECK_INT(d[1].what, DRIFT_MODE);
	CHECK_STR(d[2].now->path, "/etc/cron");
	CHECK_INT(d[2].kind, DRIFT_ADDED);
	CHECK(d[2].was == NULL);
	CHECK_STR(d[3].now->path, "/etc/passwd");
	CHECK_INT(d[3].what, DRIFT_DIGEST);
	CHECK_INT(d[4].kind, DRIFT_ADDED);
	free(d);
	/* The other way round: the added ones are removed. */
	n = integrity_diff(&b, &a, NULL, NULL, &d);
	CHECK_INT(n, 5);
	CHECK_INT(d[2].kind, DRIFT_REMOVED);
	CHECK_STR(d[2].was->path, "/etc/cron");
	CHECK(d[2].now == NULL);
	free(d);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

TEST(type_owner_size)
{
	struct mtree_set a, b;
	base(&a);
	base(&b);
	struct mtree_entry *p = find(&b, "/etc/passwd");
	p->uid = 1000;
	p->size = 4;
	struct mtree_entry *sh = find(&b, "/bin/sh");
	sh->type = 'f';
	free(sh->link);
	sh->link = NULL;
	struct drift *d;
	size_t n = integrity_diff(&a, &b, NULL, NULL, &d);
	CHECK_INT(n, 2);
	CHECK_INT(d[0].what, DRIFT_TYPE); /* only the type: the rest follows from it */
	CHECK_INT(d[1].what, DRIFT_OWNER | DRIFT_SIZE);
	char w[64];
	integrity_what_str(d[1].what, w, sizeof(w));
	CHECK_STR(w, "owner,size");
	json_t *j = integrity_report_json(d, n, 1);
	CHECK(json_is_false(json_object_get(j, "clean")));
	CHECK_INT(json_integer_value(json_object_get(j, "changed")), 2);
	CHECK_INT(json_array_size(json_object_get(j, "drift")), 1);
	CHECK(json_is_true(json_object_get(j, "truncated")));
	json_decref(j);
	free(d);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

TEST(excluded)
{
	char *ex[] = {"/var/log", "/srv/data/", NULL};
	CHECK(integrity_excluded("/var/log", ex, NULL));
	CHECK(integrity_excluded("/var/log/x/y", ex, NULL));
	CHECK(!integrity_excluded("/var/logs", ex, NULL));
	CHECK(!integrity_excluded("/var", ex, NULL));
	CHECK(integrity_excluded("/srv/data", ex, NULL));
	CHECK(!integrity_excluded("/srv", ex, NULL));
	char *all[] = {"/", NULL};
	CHECK(integrity_excluded("/etc", all, NULL));
	struct mtree_set a, b;
	base(&a);
	base(&b);
	strcpy(find(&b, "/var/log/old")->sha256, "ee");
	add(&b, ent("/var/log/new", 'f', 0644, "ff", NULL));
	mtree_set_sort(&b);
	struct drift *d;
	CHECK_INT(integrity_diff(&a, &b, ex, NULL, &d), 0);
	CHECK_INT(integrity_diff(&a, &b, NULL, NULL, &d), 2);
	free(d);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

/*
 * :integrity :include takes a path back from an exclusion (a default one,
 * like a volume's path, or a wider :exclude): the deepest path decides.
 */
TEST(included_back)
{
	char *ex[] = {"/var", "/var/log/audit/tmp", NULL};
	char *in[] = {"/var/log/audit", "/srv", NULL};
	CHECK(integrity_excluded("/var/cache", ex, in));
	CHECK(integrity_excluded("/var/log", ex, in));
	CHECK(!integrity_excluded("/var/log/audit", ex, in));
	CHECK(!integrity_excluded("/var/log/audit/x", ex, in));
	CHECK(integrity_excluded("/var/log/audit/tmp/y", ex, in));
	CHECK(!integrity_excluded("/srv/x", ex, in)); /* never excluded at all */
	char *all[] = {"/", NULL};
	char *etc[] = {"/etc", NULL};
	CHECK(integrity_excluded("/bin/sh", all, etc));
	CHECK(!integrity_excluded("/etc/passwd", all, etc));
	char *same[] = {"/var/log", NULL};
	CHECK(!integrity_excluded("/var/log/x", same, same)); /* both: checked */
	struct mtree_set a, b;
	base(&a);
	base(&b);
	strcpy(find(&b, "/var/log/old")->sha256, "ee");
	add(&b, ent("/var/log/new", 'f', 0644, "ff", NULL));
	mtree_set_sort(&b);
	struct drift *d;
	char *vl[] = {"/var/log", NULL};
	char *old[] = {"/var/log/old", NULL};
	CHECK_INT(integrity_diff(&a, &b, vl, NULL, &d), 0);
	CHECK_INT(integrity_diff(&a, &b, vl, old, &d), 1);
	CHECK_STR(d[0].now->path, "/var/log/old");
	free(d);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

/*
 * A mount point's parents the runtime made (a volume at /srv/app/data in an
 * image without /srv) are not drift; a file put there, or a directory
 * that is not on the way to an excluded path, is.
 */
TEST(mount_point_parents)
{
	struct mtree_set a, b;
	base(&a);
	base(&b);
	add(&b, ent("/srv", 'd', 0755, NULL, NULL));
	add(&b, ent("/srv/app", 'd', 0755, NULL, NULL));
	add(&b, ent("/srv/app/data", 'd', 0755, NULL, NULL));
	add(&b, ent("/srv/app/planted", 'f', 0644, "aa", NULL));
	add(&b, ent("/srv/other", 'd', 0755, NULL, NULL));
	add(&b, ent("/srv/app/datax", 'd', 0755, NULL, NULL));
	mtree_set_sort(&b);
	char *ex[] = {"/srv/app/data", NULL};
	struct drift *d;
	size_t n = integrity_diff(&a, &b, ex, NULL, &d);
	CHECK_INT(n, 3);
	CHECK_STR(d[0].now->path, "/srv/app/datax");
	CHECK_STR(d[1].now->path, "/srv/app/planted");
	CHECK_STR(d[2].now->path, "/srv/other");
	free(d);
	/* Taken back by :include, the mount point and its parents are checked. */
	char *in[] = {"/srv/app/data", NULL};
	CHECK_INT(integrity_diff(&a, &b, ex, in, &d), 6);
	free(d);
	mtree_set_release(&a);
	mtree_set_release(&b);
}

TEST(sort_keeps_last)
{
	struct mtree_set s = {0};
	add(&s, ent("/b", 'd', 0755, NULL, NULL));
	add(&s, ent("/a", 'f', 0644, "11", NULL));
	add(&s, ent("/a", 'f', 0600, "22", NULL));
	mtree_set_sort(&s);
	CHECK_INT(s.n, 2);
	CHECK_STR(s.v[0].path, "/a");
	CHECK_STR(s.v[0].sha256, "22");
	mtree_set_release(&s);
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

TEST(real_tree_round_trip)
{
	char tmpl[] = "/tmp/clbsd-mtree-XXXXXX";
	char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL);
	autofree char *f = xasprintf("%s/hello", dir);
	autofree char *sub = xasprintf("%s/sub dir", dir);
	autofree char *fifo = xasprintf("%s/sub dir/fifo", dir);
	autofree char *root = xasprintf("%s/sub dir/root", dir);
	autofree char *odd = xasprintf("%s/odd\nname\x01", dir);
	put(f, "hello\n");
	mkdir(sub, 0750);
	mkfifo(fifo, 0600); /* opening it would wait for a writer forever */
	CHECK(symlink("/", root) == 0);
	put(odd, "");
	struct clbsd_err err;
	char *text;
	size_t len, files;
	int r = mtree_record_dir(dir, NULL, &text, &len, &files, &err);
	if (r < 0 && err.kind == CLBSD_E_UNAVAIL) {
		printf("skip: %s\n", err.msg);
		return;
	}
	CHECK_INT(r, 0);
	CHECK_INT(files, 6);
	struct mtree_set s;
	CHECK_INT(mtree_parse(text, len, &s, &err), 0);
	CHECK_INT(s.n, 6);
	struct mtree_entry *h = find(&s, "/hello");
	CHECK(h != NULL);
	CHECK_INT(h->type, 'f');
	CHECK_INT(h->mode, 0640);
	CHECK_INT(h->size, 6);
	/* sha256("hello\n") */
	CHECK_STR(h->sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
	CHECK_INT(find(&s, "/sub dir")->mode, 0750);
	CHECK_INT(find(&s, "/sub dir/fifo")->type, 'p');
	/* The link is recorded as a link: its target is never walked. */
	CHECK_INT(find(&s, "/sub dir/root")->type, 'l');
	CHECK_STR(find(&s, "/sub dir/root")->link, "/");
	CHECK(find(&s, "/odd\nname\x01") != NULL);
	/* A change shows against the recorded manifest. */
	put(f, "hellO\n");
	char *text2;
	size_t len2;
	CHECK_INT(mtree_record_dir(dir, NULL, &text2, &len2, &files, &err), 0);
	struct mtree_set s2;
	CHECK_INT(mtree_parse(text2, len2, &s2, &err), 0);
	struct drift *d;
	CHECK_INT(integrity_diff(&s, &s2, NULL, NULL, &d), 1);
	CHECK_INT(d[0].what, DRIFT_DIGEST);
	free(d);
	mtree_set_release(&s);
	mtree_set_release(&s2);
	free(text);
	free(text2);
	fs_rm_rf(dir, &err);
}

TEST(hostile_manifest)
{
	struct clbsd_err err;
	struct mtree_set s;
	/* Absolute and classic relative names are refused, not resolved. */
	static const char *const bad[] = {
		"#mtree\n/etc/shadow type=file\n",
		"#mtree\nx type=file\n",
		"#mtree\n./a type=bogus\n",
		"not an mtree at all\n",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = mtree_parse(bad[i], strlen(bad[i]), &s, &err);
		if (r == 0) {
			mtree_set_release(&s);
			FAILF("accepted %s", bad[i]);
		}
	}
	/* contents= and a FIFO's name are data: nothing is opened, the read returns. */
	static const char ok[] = "#mtree\n./p type=file size=1 contents=/dev/stdin\n"
				 "./q/.. type=file mode=600\n";
	CHECK_INT(mtree_parse(ok, strlen(ok), &s, &err), 0);
	CHECK_INT(s.n, 2);
	mtree_set_release(&s);
}

/*
 * A container's tree is hostile: a sparse 8 TiB file is refused at once
 * (its size is what hashing it would cost) and so is a tree with more
 * entries than the budget; the error names the file and the limit.
 */
TEST(budget)
{
	char tmpl[] = "/tmp/clbsd-mtree-XXXXXX";
	char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL);
	autofree char *big = xasprintf("%s/big", dir);
	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	bool sparse_ok = ftruncate(fd, (off_t)8 << 40) == 0;
	close(fd);
	struct clbsd_err err;
	char *text = NULL;
	size_t len, files;
	if (sparse_ok) {
		int64_t t0 = time_mono_ns();
		int r = mtree_record_dir(dir, NULL, &text, &len, &files, &err);
		if (r < 0 && err.kind == CLBSD_E_UNAVAIL) {
			printf("skip: %s\n", err.msg);
			fs_rm_rf(dir, &err);
			return;
		}
		CHECK(r < 0);
		CHECK_INT(err.kind, CLBSD_E_CONFLICT);
		CHECK(strstr(err.msg, "sparse") != NULL);
		CHECK(strstr(err.msg, "big") != NULL);
		CHECK(time_mono_ns() - t0 < 5000000000ll);
	} else {
		printf("skip sparse: %s\n", strerror(errno));
	}
	unlink(big);
	for (int i = 0; i < 5; i++) {
		autofree char *f = xasprintf("%s/f%d", dir, i);
		put(f, "");
	}
	struct mtree_budget b = {.max_entries = 3};
	CHECK(mtree_record_dir(dir, &b, &text, &len, &files, &err) < 0);
	CHECK(strstr(err.msg, "more than 3 entries") != NULL);
	b.max_entries = 6;
	CHECK_INT(mtree_record_dir(dir, &b, &text, &len, &files, &err), 0);
	CHECK_INT(files, 6);
	free(text);
	/* The bytes hashed: two files of 4 bytes pass a budget of 8, not of 7. */
	autofree char *a = xasprintf("%s/f0", dir), *c = xasprintf("%s/f1", dir);
	put(a, "abcd");
	put(c, "efgh");
	b = (struct mtree_budget){.max_bytes = 8};
	CHECK_INT(mtree_record_dir(dir, &b, &text, &len, &files, &err), 0);
	free(text);
	b.max_bytes = 7;
	CHECK(mtree_record_dir(dir, &b, &text, &len, &files, &err) < 0);
	CHECK(strstr(err.msg, "past 7") != NULL);
	fs_rm_rf(dir, &err);
}

int main(void)
{
	test_prog = "integrity";
	RUN(clean);
	RUN(each_change_named);
	RUN(type_owner_size);
	RUN(excluded);
	RUN(included_back);
	RUN(mount_point_parents);
	RUN(sort_keeps_last);
	RUN(real_tree_round_trip);
	RUN(hostile_manifest);
	RUN(budget);
	return test_failed_cases ? 1 : 0;
}
