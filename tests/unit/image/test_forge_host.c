/*
 * forge --from-host: nginx staged from the host runs in a chroot of the
 * staged tree alone, which shows the loader and every library came along.
 */
#include "image/image.h"
#include "test.h"
#include "util/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static const char *nginx = "/usr/sbin/nginx";

static bool have_nginx(void)
{
	return access(nginx, X_OK) == 0;
}

TEST(deps_of_nginx)
{
	struct clbsd_err err;
	struct strv files = STRV_INIT;
	CHECK_INT(image_host_deps(nginx, &files, &err), 0);
	CHECK_STR(files.v[0], nginx);
	bool loader = false, libc = false, libssl = false;
	for (size_t i = 0; i < files.n; i++) {
		loader |= strstr(files.v[i], "ld-linux") != NULL;
		libc |= strstr(files.v[i], "/libc.so.6") != NULL;
		libssl |= strstr(files.v[i], "/libssl.so") != NULL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(files.v[i], files.v[j]) == 0)
				FAILF("%s listed twice", files.v[i]);
	}
	strv_release(&files);
	CHECK(loader);
	CHECK(libc);
	CHECK(libssl);
}

TEST(refusals)
{
	struct clbsd_err err;
	struct strv files = STRV_INIT;
	/* Not ELF. */
	CHECK(image_host_deps("/etc/passwd", &files, &err) < 0);
	CHECK(strstr(err.msg, "ELF") != NULL);
	CHECK(image_host_deps("/nonexistent/bin", &files, &err) < 0);
	struct image_config cfg;
	autofree char *staging = xasprintf("%s/bad", dir);
	static const char *const rel[] = {"usr/sbin/nginx", NULL};
	CHECK(image_stage_from_host(staging, rel, &cfg, &err) < 0);
	static const char *const none[] = {NULL};
	CHECK(image_stage_from_host(staging, none, &cfg, &err) < 0);
}

TEST(stage_nginx_runs_in_chroot)
{
	struct clbsd_err err;
	autofree char *staging = xasprintf("%s/nginx", dir);
	static const char *const bins[] = {"/usr/sbin/nginx", NULL};
	struct image_config cfg;
	CHECK_INT(image_stage_from_host(staging, bins, &cfg, &err), 0);
	CHECK_STR(cfg.entrypoint[0], "/usr/sbin/nginx");
	image_config_release(&cfg);
	autofree char *root = xasprintf("%s/rootfs", staging);
	/* Every file at its host path, reachable inside the tree. */
	struct strv files = STRV_INIT;
	CHECK_INT(image_host_deps(nginx, &files, &err), 0);
	for (size_t i = 0; i < files.n; i++) {
		autofree char *p = xasprintf("%s%s", root, files.v[i]);
		struct stat st;
		if (lstat(p, &st) < 0) {
			strv_release(&files);
			FAILF("%s is missing in the staged tree", files.v[i]);
		}
	}
	strv_release(&files);
	autofree char *passwd = xasprintf("%s/etc/passwd", root);
	CHECK(fs_exists(passwd));
	if (geteuid() != 0)
		FAILF("needs root for chroot");
	/* nginx -v inside a chroot of the staged tree: nothing from the host helps. */
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (chroot(root) < 0 || chdir("/") < 0)
			_exit(126);
		execl("/usr/sbin/nginx", "nginx", "-v", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
}

int main(void)
{
	test_prog = "image.forge_host";
	snprintf(dir, sizeof(dir), "/tmp/clbsd-forge-host.%d", (int)getpid());
	struct clbsd_err err;
	fs_mkdir_p(dir, 0755, &err);
	RUN(refusals);
	if (have_nginx() && geteuid() == 0) {
		RUN(deps_of_nginx);
		RUN(stage_nginx_runs_in_chroot);
	} else {
		printf("skip image.forge_host.nginx: needs root and nginx (scripts/deps.sh check "
		       "installs it)\n");
	}
	fs_rm_rf(dir, &err);
	return test_failed_cases ? 1 : 0;
}
