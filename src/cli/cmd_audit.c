/* clbsd audit: the audit log through GET /v1/audit (docs/audit.md). */
#include "cli.h"
#include "util/json.h"
#include "util/util.h"

#include <string.h>
#include <unistd.h>

struct audit_ctx {
	struct buf line;
	bool broken;
};

static void audit_line(struct audit_ctx *x, const char *line, size_t len)
{
	if (!len)
		return;
	autofree char *s = NULL;
	if (cli.json) {
		s = xstrndup(line, len);
	} else {
		json_t *rec = json_loadb(line, len, 0, NULL);
		if (rec) {
			s = fmt_audit(rec);
		} else {
			struct buf b = BUF_INIT;
			fmt_add_safe(&b, line, len);
			s = buf_detach(&b, NULL);
		}
		json_decref(rec);
	}
	if (write_all(STDOUT_FILENO, s, strlen(s)) < 0 || write_all(STDOUT_FILENO, "\n", 1) < 0)
		x->broken = true;
}

static int on_audit(const char *data, size_t len, void *ctx)
{
	struct audit_ctx *x = ctx;
	buf_add(&x->line, data, len);
	size_t start = 0;
	const char *nl;
	while ((nl = memchr(x->line.data + start, '\n', x->line.len - start))) {
		size_t n = (size_t)(nl - (x->line.data + start));
		audit_line(x, x->line.data + start, n);
		start += n + 1;
	}
	buf_consume(&x->line, start);
	return x->broken ? -1 : 0;
}

int cmd_audit(const struct cli_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	const char *ctr = cli_get(a, "container"), *sv = cli_get(a, "since");
	if (ctr && !valid_name(ctr))
		return cli_usage("invalid --container \"%s\": expected a container name", ctr);
	char since[48];
	if (sv && cli_log_time("since", sv, time_now_ns(), since, sizeof(since), &err) < 0)
		return cli_usage("%s", err.msg);
	struct buf path = BUF_INIT;
	buf_adds(&path, "/v1/audit?");
	if (sv)
		buf_addf(&path, "since=%s&", since);
	if (cli_has(a, "follow"))
		buf_adds(&path, "follow=1&");
	if (ctr)
		buf_addf(&path, "container=%s&", ctr);
	path.data[--path.len] = '\0';
	struct audit_ctx x = {.line = BUF_INIT};
	int r = clbsd_client_stream(cli_client(), path.data, on_audit, &x, NULL, &err);
	buf_release(&path);
	if (x.line.len)
		audit_line(&x, x.line.data, x.line.len);
	buf_release(&x.line);
	return r < 0 ? cli_fail(&err) : 0;
}
