/*
 * Compose files in: a docker-compose file (version 2, 3 or the unversioned
 * Compose Specification) translated into clbsd's configuration forms, for
 * `clbsd import-compose`. docs/compose.md has the key-by-key table.
 *
 * Layers: compose_vars.c is pure text work (Compose's ${VAR} interpolation,
 * .env and env_file lines, the shell-word split of a string command);
 * compose_tr.c walks the YAML document (libyaml) and writes the forms. The
 * only files read are the ones the compose file names (env_file, .env),
 * relative to its directory; nothing asks a daemon or needs an image (the
 * caller says which images are native, through a callback).
 *
 * Imports: core/ (the result is checked with conf_build, the same check
 * as `clbsdd -n`, so a translation is never handed out unusable), conf/,
 * util/.
 *
 * Invariants:
 * - Every key of the file is translated, or named on a warning line
 *   "FILE:LINE:COL: service S: key K: why"; none is dropped silently
 *   (x-* extension keys are Compose's own "ignore me" and are skipped).
 * - compose_translate() returns 0 only with a text that conf_build()
 *   accepts as it is.
 */
#ifndef CLBSD_COMPOSE_COMPOSE_H
#define CLBSD_COMPOSE_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>

enum compose_kind {
	COMPOSE_KIND_DOCKER, /* every service :kind docker */
	COMPOSE_KIND_NATIVE, /* every service native */
	COMPOSE_KIND_AUTO,   /* native when is_native(image) says so, else docker */
};

struct compose_opts {
	const char *file; /* as the user named it: messages and the output's header */
	const char *text;
	size_t len;
	const char *dir;       /* the file's directory: env_file and .env are read there */
	const char *path_base; /* what relative bind paths are made absolute against; NULL: dir */
	const char *project;   /* NULL: the file's `name:`, else the directory's name */
	enum compose_kind kind;
	bool (*is_native)(const char *image, void *arg); /* AUTO only */
	void *native_arg;
	/* The environment for ${VAR} (before .env); NULL: none. */
	const char *(*getenv)(const char *name, void *arg);
	void *env_arg;
};

struct compose_result {
	char *text;	/* the configuration forms (free()); NULL when not usable */
	char *warnings; /* the lines for stderr, each ending in '\n' (free()); never NULL */
	size_t nwarnings;
};

/*
 * Translate. 0: r->text is a usable configuration (warnings or not);
 * -EINVAL: not usable (a YAML error, no services, a required variable
 * unset, or a result conf_build refuses), said in r->warnings.
 */
int compose_translate(const struct compose_opts *o, struct compose_result *r);
void compose_result_release(struct compose_result *r);

/* ---- compose_vars.c ---- */

/* Looks a variable up: the value, or NULL when unset. */
typedef const char *(*compose_lookup_fn)(const char *name, void *arg);
/*
 * Compose's interpolation of s: $$ is '$'; $VAR and ${VAR} the value ("" when
 * unset, and *unset gets the name, first one only); ${VAR:-def} ${VAR-def}
 * ${VAR:+alt} ${VAR+alt}; ${VAR:?msg} ${VAR?msg} fail. Returns the new
 * string, or NULL with why (a sentence, 256 bytes) when it fails.
 */
char *compose_interpolate(const char *s, compose_lookup_fn look, void *arg, char **unset,
			  char *why);
/*
 * One line of a .env or env_file: "KEY=VALUE", "export KEY=VALUE", a
 * quoted value ('...' literal, "..." with \n \" \\), "# comment" and blank
 * lines (0: nothing). 1 with *key and *value (free()), or -1 when the line
 * is not one (no '=' and not a bare KEY; a bare KEY gives *value NULL).
 */
int compose_env_line(const char *line, char **key, char **value);
/*
 * A string command split into words as POSIX sh would without expansions
 * (Compose's shlex split): quotes group, backslash escapes. NULL with why
 * when a quote is not closed.
 */
char **compose_shell_split(const char *s, char *why, size_t n);

#endif
