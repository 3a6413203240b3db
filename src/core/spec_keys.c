/*
 * THE key table of a container. Each row names a key in the configuration
 * form and in the API's JSON, says whether changing it recreates the
 * container, and points at the code that reads, prints and encodes it. The
 * form reader, the printer, the hash, the diff, the JSON decoder and
 * encoder, and the documentation's key list all walk this table, so a key
 * cannot be read one way and printed, hashed or documented another.
 *
 * Order: the form's canonical key order (what the printer writes), first
 * the keys that define what runs, then the ones applied to a running
 * container; then the keys only the API has.
 */
#include "core/spec_keys.h"

#define FORM(f, j, rc, k, value, dflt)                                                             \
	{                                                                                          \
		f, j, rc, spec_r_##k, spec_p_##k, NULL, NULL, value, dflt, false                   \
	}
#define BOTH(f, j, rc, k, value, dflt)                                                             \
	{                                                                                          \
		f, j, rc, spec_r_##k, spec_p_##k, spec_j_##k, spec_w_##k, value, dflt, false       \
	}
#define IN_PLACE(f, k, value, dflt)                                                                \
	{                                                                                          \
		f, NULL, true, spec_r_##k, spec_p_##k, NULL, NULL, value, dflt, true               \
	}
#define API(j, k, value, dflt)                                                                     \
	{                                                                                          \
		NULL, j, true, NULL, NULL, spec_j_##k, spec_w_##k, value, dflt, false              \
	}

const struct ctr_key ctr_keys[] = {
	BOTH(":kind", "kind", true, kind,
	     "`native` (clbsd's own runtime) or `docker` (created and run by dockerd through "
	     "`(host :docker (:endpoint ...))`; docs/docker.md lists what differs)",
	     "`native`"),
	BOTH(":image", "image", true, image, "image reference, **required**", ""),
	BOTH(":entrypoint", "entrypoint", true, entrypoint,
	     "list of strings replacing the image's ENTRYPOINT (`\"\"` or `()`: none); as with "
	     "`docker --entrypoint`, the image's CMD is then not used either, only `:command`",
	     "the image's"),
	BOTH(":command", "command", true, command, "list of strings (argv)", "the image's"),
	BOTH(":env", "env", true, env,
	     "list of `(\"NAME\" . \"value\")`; names `[A-Za-z_][A-Za-z0-9_]*`, unique", "none"),
	BOTH(":labels", "labels", true, labels,
	     "list of `(\"KEY\" . \"value\")` (or `(\"KEY\" \"value\")`); keys 1-255 printable "
	     "characters without spaces or `=`, unique. Metadata: shown by `inspect`, Docker "
	     "labels for `:kind docker`",
	     "none"),
	BOTH(":workdir", "workdir", true, workdir, "path", "the image's"),
	BOTH(":user", "user", true, user, "`\"UID[:GID]\"`, `\"name[:group]\"` or an integer UID",
	     "the image's"),
	BOTH(":hostname", "hostname", true, hostname, "DNS name", "the container's name"),
	BOTH(":tty", "tty", true, tty, "bool", "`nil`"),
	BOTH(":stop-signal", "stop_signal", true, stop_signal,
	     "a signal: a name with or without `SIG` (`\"SIGTERM\"`, `\"TERM\"`, `sigusr1`) or a "
	     "number (`15`); what `clbsd stop` and the reconciler's stops send first, SIGKILL "
	     "following after the timeout",
	     "`SIGTERM`"),
	BOTH(":userns", "userns", true, userns,
	     "`auto`: a user namespace with a private range of 65536 host ids, root inside an "
	     "unprivileged uid outside (stable across restarts and recreates); `host`: the host's "
	     "ids. Refused at create where the storage cannot be idmapped (zfs on zfs-fuse)",
	     "the host's `:userns`"),
	BOTH(":cap-add", "cap_add", true, cap_add,
	     "capability name or list of them (`net_admin`, `sys_time`, as in capabilities(7) "
	     "without `CAP_`, any case) added to the default set, or `all`",
	     "none"),
	BOTH(":cap-drop", "cap_drop", true, cap_drop,
	     "capability name or list of them removed from the default set, or `all` (then only "
	     "`:cap-add`'s remain); an add wins over a drop of the same name, as in Docker",
	     "none"),
	BOTH(":sysctls", "sysctls", true, sysctls,
	     "list of `(\"KEY\" . \"value\")`: namespaced sysctls written inside the container "
	     "at start: `net.*` (not with `:network host`), `kernel.shm*`, `kernel.msg*`, "
	     "`kernel.sem`, `kernel.domainname`, `fs.mqueue.*`",
	     "none"),
	BOTH(":devices", "devices", true, devices,
	     "list of `\"HOST[:CONTAINER][:PERMS]\"` (`\"/dev/net/tun\"`, "
	     "`\"/dev/fuse:/dev/fuse:rwm\"`): host device nodes below `/dev` made available "
	     "inside and allowed by the cgroup; PERMS letters of `rwm`",
	     "none"),
	BOTH(":volumes", "volumes", true, volumes, "list of volumes (below)", "none"),
	IN_PLACE(":limits", limits,
		 "`(:memory SIZE :cpus NUMBER :pids INT)`; memory at least 4M (below that not even "
		 "a "
		 "shell starts reliably; a size under one byte, `\"0.0000001\"`, is an error, not "
		 "\"no "
		 "limit\"), cpus 0.01-1024, pids 1-4194304; each optional",
		 "unlimited"),
	BOTH(":network", "network", true, network,
	     "`bridge`, `host`, `none`, a network's name, or a list of network names (`bridge` "
	     "needs the host's `:network`)",
	     "`bridge` when the host has a `:network`, else `none`"),
	BOTH(":ip", "ip", true, ip,
	     "IPv4 address on the first network, inside its subnet and not reserved",
	     "allocated (stable across restarts and recreates)"),
	BOTH(":aliases", "aliases", true, aliases, "DNS name or list of them", "none"),
	BOTH(":dns", "dns", true, dns, "list of IPv4 addresses", "the host's"),
	BOTH(":publish", "publish", true, publish,
	     "list of `\"HOST:CTR\"` or `\"IP:HOST:CTR\"`, optionally `/tcp` or `/udp`; a host "
	     "port may be published by one container only; `:publish`, `:ip` and `:aliases` need a "
	     "network (not `host` or `none`)",
	     "none"),
	FORM(":state", NULL, false, state, "`running` or `stopped`", "`running`"),
	BOTH(":restart", "restart", false, restart,
	     "`no`, `always`, `on-failure`, or `(on-failure N)` (at most N restarts)", "`no`"),
	FORM(":depends-on", NULL, false, depends,
	     "list of container names; must be declared; no cycles", "none"),
	FORM(":health", NULL, false, health, "a health check (below)", "none"),
	FORM(":on", NULL, false, on, "list of hooks (below)", "none"),
	FORM(":domain", NULL, false, domain, "DNS name (a bare label is allowed) or a list of them",
	     "none"),
	FORM(":port", NULL, false, port, "port the service listens on (routing, `:http` checks)",
	     "none"),
	FORM(":path", NULL, false, path, "URL path to route, printed only with `:domain`",
	     "`\"/\"`"),
	FORM(":ingress", NULL, false, ingress,
	     "`(:websocket BOOL :max-body SIZE)`; needs `:domain`",
	     "`(:websocket nil)` with a domain"),
	FORM(":tls", NULL, false, tls, "`(:cert PATH :key PATH)`; needs `:domain`", "none"),
	BOTH(":storage", "storage", false, storage,
	     "`(:quota SIZE :reservation SIZE :compression SYM :recordsize SIZE)` for the "
	     "container's own dataset",
	     "the driver's"),
	FORM(":snapshots", NULL, false, snapshots,
	     "`(:every DURATION :keep N)`: a snapshot `auto-YYYYmmdd-HHMMSS` every DURATION (at "
	     "least 10s; the schedule restarts when the file is reloaded), keeping the newest N "
	     "scheduled ones; snapshots taken by hand are never pruned",
	     "none"),
	FORM(":backup", NULL, false, backup,
	     "`(:every DURATION :keep (:daily N :weekly N :monthly N) :to DEST)`: a snapshot "
	     "`backup-YYYYmmdd-HHMMSS` every DURATION (at least 1m, default 1d) sent, "
	     "incrementally where it can, to DEST: `ssh://[user@]host[:port][/socket]`, "
	     "`unix:/path/to/socket` or a directory (`/dir`, `file:///dir`); pruned on both ends "
	     "by "
	     "the tiers (default 7, 4, 6); `nil` opts out of the host's `(host :backup ...)`. "
	     "docs/backup.md",
	     "the host's `:backup`, else none"),
	FORM(":snapshot-before-change", NULL, false, snap_before,
	     "bool: when the reconciler recreates the container, the old one is stopped and set "
	     "aside whole (files, snapshots, settings; not named volumes) instead of destroyed, "
	     "and `clbsd undo NAME` brings it back",
	     "`t`"),
	BOTH(":integrity", "integrity", false, integrity,
	     "`(:every DURATION :exclude (PATH ...) :include (PATH ...) :on-drift CMD)`, each "
	     "optional: the root file system checked against the manifest recorded at create "
	     "every DURATION (at least 1s; off the event loop), an `integrity.drift` event (with "
	     "the counts) and CMD (a hook command, as in `:on`) when it differs, `integrity.ok` "
	     "when it does not. Every check, `clbsd verify` too, leaves out `/dev`, `/proc`, "
	     "`/sys`, the files clbsd writes, the volumes' and devices' paths, the image's "
	     "`VOLUME` paths and the `:exclude` PATHs (absolute); an `:include` PATH is checked "
	     "again although one of those holds it (the deepest path decides). The API's "
	     "`integrity` is `{\"every\": DURATION, \"exclude\": [...], \"include\": [...]}` "
	     "(no hook; `clbsd run --integrity-every`, `--integrity-exclude`, "
	     "`--integrity-include`). docs/integrity.md",
	     "`clbsd verify` by hand only"),
	API("name", name, "the container's name, a DNS label",
	    "one is made up (`c-` and 10 hex digits)"),
	API("stdin", stdin, "bool: keep its standard input open", "`false`"),
	API("auto_remove", auto_remove,
	    "bool: remove it when it exits (`--rm`); no restart policy with it", "`false`"),
	API("memory", memory, "a size (`\"256M\"`) or bytes: the form's `:limits :memory`",
	    "unlimited"),
	API("pids", pids, "an integer: the form's `:limits :pids`", "unlimited"),
	API("cpus", cpus, "a number, at most the host's CPUs: the form's `:limits :cpus`",
	    "unlimited"),
};

const size_t ctr_nkeys = sizeof(ctr_keys) / sizeof(ctr_keys[0]);

const char *const *ctr_form_names(const size_t **rows)
{
	static const char *names[sizeof(ctr_keys) / sizeof(ctr_keys[0]) + 1];
	static size_t idx[sizeof(ctr_keys) / sizeof(ctr_keys[0])];
	static bool made;
	if (!made) {
		size_t n = 0;
		for (size_t i = 0; i < ctr_nkeys; i++)
			if (ctr_keys[i].form) {
				idx[n] = i;
				names[n++] = ctr_keys[i].form + 1;
			}
		names[n] = NULL;
		made = true;
	}
	if (rows)
		*rows = idx;
	return names;
}

/* ---- the documentation ---- */

char *ctr_spec_keys_markdown(void)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "| Key | Value | Default | On change | API (JSON) |\n");
	buf_adds(&b, "|---|---|---|---|---|\n");
	for (size_t i = 0; i < ctr_nkeys; i++) {
		const struct ctr_key *k = &ctr_keys[i];
		if (!k->form)
			continue;
		buf_addf(&b, "| `%s` | %s | %s | %s | ", k->form, k->value, k->dflt,
			 k->in_place   ? "in place"
			 : k->recreate ? "recreate"
				       : "live");
		if (k->json)
			buf_addf(&b, "`%s` |\n", k->json);
		else
			buf_adds(&b, "|\n");
	}
	return buf_detach(&b, NULL);
}

/*
 * Markdown to man(7) text: `code` loses its quotes, **bold** its stars,
 * backslashes and hyphens are escaped, and a line never starts with a
 * control character.
 */
static void man_text(struct buf *b, const char *s)
{
	if (*s == '.' || *s == '\'')
		buf_adds(b, "\\&");
	for (; *s; s++) {
		if (*s == '`' || (*s == '*' && s[1] == '*')) {
			if (*s == '*')
				s++;
			continue;
		}
		if (*s == '\\')
			buf_adds(b, "\\e");
		else if (*s == '-')
			buf_adds(b, "\\-");
		else
			buf_addc(b, *s);
	}
}

char *ctr_spec_keys_man(void)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < ctr_nkeys; i++) {
		const struct ctr_key *k = &ctr_keys[i];
		if (!k->form)
			continue;
		buf_adds(&b, ".TP\n.B ");
		man_text(&b, k->form);
		buf_adds(&b, "\n");
		man_text(&b, k->value);
		buf_adds(&b, ".\nDefault: ");
		man_text(&b, *k->dflt ? k->dflt : "none");
		buf_addf(&b, ". A change %s.",
			 k->in_place   ? "is written to the running container's cgroup in place"
			 : k->recreate ? "recreates the container"
				       : "applies to the running container");
		if (k->json) {
			buf_adds(&b, " API key: ");
			man_text(&b, k->json);
			buf_adds(&b, ".");
		}
		buf_adds(&b, "\n");
	}
	return buf_detach(&b, NULL);
}
