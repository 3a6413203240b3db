#include "image/cblockfile.h"
#include "image/image.h"
#include "test.h"
#include "util/util.h"

static struct clbsd_err err;

static struct cbf_file *rd(const char *text)
{
	struct cbf_file *f = NULL;
	if (cbf_read("Cblockfile", text, strlen(text), &f, &err) < 0 ||
	    cbf_expand(f, NULL, &err) < 0) {
		printf("# %s\n", err.msg);
		cbf_file_free(f);
		return NULL;
	}
	return f;
}

static struct image_config base_config(void)
{
	struct image_config b = {0};
	char *ep[] = {NULL};
	char *cmd[] = {"/bin/sh", NULL};
	char *env[] = {"PATH=/usr/bin:/bin", "HOME=/root", NULL};
	b.entrypoint = strv_dup(ep);
	b.cmd = strv_dup(cmd);
	b.env = strv_dup(env);
	b.workdir = xstrdup("/srv");
	b.user = xstrdup("");
	return b;
}

TEST(every_config_instruction)
{
	struct cbf_file *f = rd("FROM base\n"
				"ENV PATH=$PATH:/opt/bin A=1\n"
				"ENV A=2\n"
				"WORKDIR app\n"
				"WORKDIR ../www/./html\n"
				"USER www:www\n"
				"LABEL a=1 b=2\n"
				"LABEL a=3\n"
				"EXPOSE 80 53/udp\n"
				"EXPOSE 80\n"
				"VOLUME /data\n"
				"VOLUME [\"/logs\", \"/data\"]\n"
				"SHELL [\"/bin/bash\", \"-euc\"]\n"
				"HEALTHCHECK --interval=10s --retries=2 CMD check --quick\n"
				"ROOTPIVOT /new\n"
				"ROOTPIVOT /root\n"
				"OSRELEASE 14.3-RELEASE\n"
				"AUDITCFG ex,pc\n"
				"ENTRYPOINT [\"/bin/app\"]\n");
	CHECK(f);
	struct image_config b = base_config();
	struct image_config c;
	CHECK_INT(cbf_image_config(f, 0, &b, &c, &err), 0);
	/* The base env is kept, but ENV $PATH is expanded without it here. */
	CHECK_INT(strv_len(c.env), 3);
	CHECK_STR(c.env[0], "PATH=:/opt/bin");
	CHECK_STR(c.env[2], "A=2");
	CHECK_STR(c.workdir, "/srv/www/html");
	CHECK_STR(c.user, "www:www");
	CHECK_INT(strv_len(c.labels), 2);
	CHECK_STR(c.labels[0], "a=3");
	CHECK_INT(strv_len(c.exposed), 2);
	CHECK_STR(c.exposed[1], "53/udp");
	CHECK_INT(strv_len(c.volumes), 2);
	CHECK(c.health != NULL);
	CHECK_STR(c.health->test[0], "/bin/bash");
	CHECK_STR(c.health->test[2], "check --quick");
	CHECK_INT(c.health->interval_ns, 10000000000LL);
	CHECK_INT(c.health->retries, 2);
	CHECK_STR(c.rootpivot, "/new/root");
	CHECK_STR(c.osrelease, "14.3-RELEASE");
	CHECK_STR(c.auditcfg, "ex,pc");
	CHECK_STR(c.entrypoint[0], "/bin/app");
	/* An ENTRYPOINT without a CMD in the stage drops the base's CMD. */
	CHECK_INT(strv_len(c.cmd), 0);

	/* JSON round trip through the store's functions. */
	json_t *j = image_config_to_json(&c);
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "labels"), "b")), "2");
	struct image_config back;
	CHECK_INT(image_config_from_json(j, &back, &err), 0);
	json_t *j2 = image_config_to_json(&back);
	CHECK(json_equal(j, j2));
	CHECK_STR(back.rootpivot, "/new/root");
	CHECK_INT(back.health->retries, 2);
	json_decref(j);
	json_decref(j2);
	image_config_release(&back);
	image_config_release(&c);
	image_config_release(&b);
	cbf_file_free(f);
}

TEST(cmd_shell_form_and_none)
{
	struct cbf_file *f = rd("FROM scratch\n"
				"CMD echo hello\n"
				"ENTRYPOINT [\"/bin/tini\", \"--\"]\n"
				"CMD [\"-x\"]\n"
				"HEALTHCHECK NONE\n");
	CHECK(f);
	struct image_config c;
	CHECK_INT(cbf_image_config(f, 0, NULL, &c, &err), 0);
	CHECK_STR(c.workdir, "/");
	CHECK_STR(c.cmd[0], "-x");
	CHECK_INT(strv_len(c.entrypoint), 2);
	CHECK(c.health && c.health->test && !c.health->test[0]);
	image_config_release(&c);
	cbf_file_free(f);
	f = rd("FROM scratch\nCMD echo hello\n");
	CHECK(f);
	CHECK_INT(cbf_image_config(f, 0, NULL, &c, &err), 0);
	CHECK_INT(strv_len(c.cmd), 3);
	CHECK_STR(c.cmd[0], "/bin/sh");
	CHECK_STR(c.cmd[2], "echo hello");
	CHECK(c.labels == NULL && c.health == NULL && c.osrelease == NULL);
	image_config_release(&c);
	cbf_file_free(f);
}

TEST(old_config_json_unchanged)
{
	/* A config without the build fields writes exactly the keys it had. */
	struct image_config b = base_config();
	json_t *j = image_config_to_json(&b);
	CHECK_INT(json_object_size(j), 5);
	json_decref(j);
	image_config_release(&b);
	json_t *bad = json_loads("{\"labels\": {\"a\": 1}}", 0, NULL);
	struct image_config c;
	CHECK(image_config_from_json(bad, &c, &err) < 0);
	CHECK(strstr(err.msg, "label") != NULL);
	json_decref(bad);
	bad = json_loads("{\"healthcheck\": {\"interval_ns\": 5}}", 0, NULL);
	CHECK(image_config_from_json(bad, &c, &err) < 0);
	json_decref(bad);
}

TEST_MAIN_BEGIN("buildconfig")
RUN(every_config_instruction);
RUN(cmd_shell_form_and_none);
RUN(old_config_json_unchanged);
TEST_MAIN_END
