#include "image/image.h"
#include "test.h"
#include "util/util.h"

#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static bool used_id_in_use;
static char used_id[65];
static bool in_use(const char *id, void *ctx)
{
	return used_id_in_use && strcmp(id, used_id) == 0;
}

static void make_tree(const char *dir)
{
	struct clbsd_err err;
	char *p = xasprintf("%s/etc", dir);
	fs_mkdir_p(p, 0755, &err);
	free(p);
	p = xasprintf("%s/etc/hostname", dir);
	fs_write_atomic(p, "x\n", 2, 0644, &err);
	free(p);
}

TEST(import_commit_lookup)
{
	struct clbsd_err err;
	struct image_store st;
	CHECK_INT(image_store_open(root, &st, &err), 0);
	char *src = xasprintf("%s/src", root);
	make_tree(src);
	char *staging;
	CHECK_INT(image_staging_new(&st, &staging, &err), 0);
	struct image_config cfg;
	CHECK_INT(image_stage_import(staging, src, &cfg, &err), 0);
	CHECK_STR(cfg.cmd[0], "/bin/sh");
	struct image *img;
	CHECK_INT(image_commit(&st, staging, &cfg, "web", in_use, NULL, &img, &err), 0);
	CHECK(image_lookup(&st, "web") == img);
	CHECK(image_lookup(&st, "web:latest") == img);
	char prefix[13];
	memcpy(prefix, img->id, 12);
	prefix[12] = '\0';
	CHECK(image_lookup(&st, prefix) == img);
	CHECK(image_lookup(&st, "web:other") == NULL);
	char *f = xasprintf("%s/rootfs/etc/hostname", img->dir);
	CHECK(fs_exists(f));
	free(f);
	image_config_release(&cfg);
	image_store_release(&st);
	/* Reopening finds the same image by name. */
	CHECK_INT(image_store_open(root, &st, &err), 0);
	CHECK(image_lookup(&st, "web") != NULL);
	image_store_release(&st);
	free(src);
	free(staging);
}

TEST(retag_replaces_and_drops_unused)
{
	struct clbsd_err err;
	struct image_store st;
	CHECK_INT(image_store_open(root, &st, &err), 0);
	struct image *old = image_lookup(&st, "web");
	CHECK(old != NULL);
	char *old_dir = xstrdup(old->dir);
	char *src = xasprintf("%s/src", root);
	char *staging;
	struct image_config cfg;
	struct image *img;
	CHECK_INT(image_staging_new(&st, &staging, &err), 0);
	CHECK_INT(image_stage_import(staging, src, &cfg, &err), 0);
	CHECK_INT(image_commit(&st, staging, &cfg, "web:latest", in_use, NULL, &img, &err), 0);
	CHECK(image_lookup(&st, "web") == img);
	CHECK(!fs_exists(old_dir));
	image_config_release(&cfg);
	image_store_release(&st);
	free(old_dir), free(src), free(staging);
}

TEST(remove_refuses_in_use)
{
	struct clbsd_err err;
	struct image_store st;
	CHECK_INT(image_store_open(root, &st, &err), 0);
	struct image *img = image_lookup(&st, "web");
	CHECK(img != NULL);
	memcpy(used_id, img->id, sizeof(used_id));
	used_id_in_use = true;
	CHECK(image_remove(&st, "web", false, in_use, NULL, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(image_lookup(&st, "web") != NULL);
	used_id_in_use = false;
	char *dir = xstrdup(img->dir);
	CHECK_INT(image_remove(&st, "web", false, in_use, NULL, &err), 0);
	CHECK(image_lookup(&st, "web") == NULL);
	CHECK(!fs_exists(dir));
	CHECK(image_remove(&st, "web", false, in_use, NULL, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	image_store_release(&st);
	free(dir);
}

TEST(import_rejects_bad_paths)
{
	struct clbsd_err err;
	struct image_config cfg;
	char *staging = xasprintf("%s/st", root);
	mkdir(staging, 0700);
	CHECK(image_stage_import(staging, "relative/dir", &cfg, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(image_stage_import(staging, "/nonexistent/clbsd", &cfg, &err) < 0);
	free(staging);
}

TEST(refs)
{
	char *n = image_ref_normalise("forge");
	CHECK_STR(n, "forge:latest");
	free(n);
	n = image_ref_normalise("reg:5000/x");
	CHECK_STR(n, "reg:5000/x:latest");
	free(n);
	n = image_ref_normalise("web:1.0");
	CHECK_STR(n, "web:1.0");
	free(n);
}

int main(void)
{
	test_prog = "image";
	snprintf(root, sizeof(root), "/tmp/clbsd-image-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	RUN(import_commit_lookup);
	RUN(retag_replaces_and_drops_unused);
	RUN(remove_refuses_in_use);
	RUN(import_rejects_bad_paths);
	RUN(refs);
	struct clbsd_err err;
	fs_rm_rf(root, &err);
	return test_failed_cases ? 1 : 0;
}
