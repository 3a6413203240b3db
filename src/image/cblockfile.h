/*
 * The Cblockfile language: a reader from a buffer to stages and
 * instructions, variable substitution as a separate step, and the build
 * plan (one cache key per step). docs/cblockfile.md is the reference.
 *
 * Reading is pure: no file system, no clock, no environment. Every error
 * is a struct clbsd_err with the message "FILE:LINE:COL: what", where the
 * position is that of the offending token in the original text (1-based;
 * a column counts bytes, so a tab is one column), also across line
 * continuations. The text must be UTF-8 (its values go into config.json).
 *
 * Invariants of a struct cbf_file that cbf_read() returned:
 *  - at least one stage; every instruction belongs to a stage, except the
 *    ARGs before the first FROM (cbf_file.args);
 *  - every COPY --from names an earlier stage (from_stage >= 0) and every
 *    FROM naming an earlier stage has base_kind CBF_BASE_STAGE;
 *  - stage names are unique (compared case-insensitively, stored lower case);
 *  - the cooked fields (argv, shell, value, kv, from, chown, chmod, health)
 *    hold the arguments with quotes removed and no variable substituted;
 *    cbf_expand() re-cooks them with the variables of a build, in place, so
 *    it can be run again with other build arguments.
 */
#ifndef CLBSD_CBLOCKFILE_H
#define CLBSD_CBLOCKFILE_H

#include "util/util.h"
#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Files larger than this are refused: a Cblockfile is a page, not a data set. */
#define CBF_MAX_SIZE (1024 * 1024)

enum cbf_kind {
	CBF_RUN,
	CBF_ADD,
	CBF_COPY,
	CBF_ENV,
	CBF_WORKDIR,
	CBF_ROOTPIVOT,
	CBF_ENTRYPOINT,
	CBF_CMD,
	CBF_OSRELEASE,
	CBF_AUDITCFG,
	CBF_ARG,
	CBF_LABEL,
	CBF_USER,
	CBF_EXPOSE,
	CBF_VOLUME,
	CBF_HEALTHCHECK,
	CBF_SHELL,
	CBF_KIND_COUNT
};

/* The upper-case keyword of a kind ("RUN"). */
const char *cbf_kind_name(enum cbf_kind kind);

/* A word as written: quotes and escapes kept, with its position. */
struct cbf_word {
	char *raw;
	int line, col;
	size_t off; /* where it starts in cbf_instr.rest */
};

/* ENV, LABEL and ARG pairs. value is NULL only for an ARG without default. */
struct cbf_kv {
	char *key;
	char *value;
};

/* HEALTHCHECK options; 0 means "the runtime's default". */
struct cbf_health {
	bool none; /* HEALTHCHECK NONE: disable a check inherited from the base */
	int64_t interval_ns, timeout_ns, start_period_ns;
	int retries;
};

/* What an ADD source is, decided from its text (as cblocks does). */
enum cbf_add_source {
	CBF_ADD_FILE,	 /* a file or directory of the context, copied */
	CBF_ADD_ARCHIVE, /* a local .tar, .tar.gz, .tgz, .tar.xz, .txz, .tar.bz2, .tbz2, .tar.zst */
	CBF_ADD_URL,	 /* http:// or https://, downloaded */
	CBF_ADD_ARCHIVE_URL, /* a URL ending like an archive: downloaded and extracted */
};
enum cbf_add_source cbf_add_source_kind(const char *src);

struct cbf_instr {
	enum cbf_kind kind;
	int line, col; /* of the keyword */

	/* As written (internal to the reader and cbf_expand()). */
	struct cbf_word *flags; /* "--name=value" words before the arguments */
	size_t nflags;
	struct cbf_word *words; /* the arguments split on blanks outside quotes */
	size_t nwords;
	char *rest; /* the argument text after the flags, continuations joined */
	int rest_line, rest_col;

	/*
	 * Cooked. exec_form: argv is a JSON array's strings (RUN, CMD,
	 * ENTRYPOINT, HEALTHCHECK CMD, SHELL, VOLUME). Otherwise:
	 *   RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD: shell holds the command;
	 *   COPY, ADD: argv = sources..., destination;
	 *   EXPOSE: argv = "PORT/PROTO" (proto defaulted to tcp; PORT may be a range);
	 *   VOLUME: argv = paths;
	 *   WORKDIR, ROOTPIVOT, USER, OSRELEASE, AUDITCFG: value;
	 *   ENV, LABEL, ARG: kv. After cbf_expand() an ARG's value is the one
	 *   in effect (the build argument, else the default), NULL when unset.
	 */
	bool exec_form;
	char **argv; /* NULL-terminated or NULL */
	char *shell;
	char *value;
	struct cbf_kv *kv;
	size_t nkv;
	char *from;	/* COPY --from as written (cooked) */
	int from_stage; /* its stage index, -1 without --from */
	char *chown, *chmod;
	struct cbf_health health;
};

enum cbf_base_kind { CBF_BASE_IMAGE, CBF_BASE_STAGE, CBF_BASE_SCRATCH };

struct cbf_stage {
	int line, col; /* of FROM */
	struct cbf_word base_word;
	char *base; /* cooked: an image reference, a stage name or "scratch" */
	enum cbf_base_kind base_kind;
	int base_stage; /* for CBF_BASE_STAGE, else -1 */
	char *name;	/* AS name (lower case) or NULL */
	struct cbf_instr *instrs;
	size_t n;
};

struct cbf_file {
	char *file;		/* the name used in messages */
	char escape;		/* '\\' or '`' (the "# escape=" directive) */
	struct cbf_instr *args; /* ARGs before the first FROM: visible in FROM lines */
	size_t nargs;
	struct cbf_stage *stages;
	size_t nstages;
};

/*
 * Read a Cblockfile from text[0..len) (need not be NUL-terminated). `file`
 * names it in messages. On success *out is a new file for cbf_file_free().
 */
int cbf_read(const char *file, const char *text, size_t len, struct cbf_file **out,
	     struct clbsd_err *err);
void cbf_file_free(struct cbf_file *f);

/* A stage by AS name (case-insensitive) or decimal index; -1 when none. */
int cbf_stage_find(const struct cbf_file *f, const char *ref);

/*
 * What a build sees: the build arguments ("NAME=value", NULL-terminated,
 * may be NULL; a later one wins) and, optionally, the environment of a
 * stage's base image ("NAME=value" list, borrowed, NULL for none), so that
 * `ENV PATH=$PATH:/opt/bin` extends the base image's PATH.
 */
struct cbf_expand_opts {
	char *const *build_args;
	char *const *(*base_env)(const char *image_ref, void *ctx);
	void *ctx;
};

/*
 * Substitute variables in place, as Docker does: in FROM (global ARGs
 * only), ADD, COPY, ENV, EXPOSE, LABEL, USER, VOLUME (word form), WORKDIR,
 * ARG defaults, and in the cblocks ROOTPIVOT, OSRELEASE and AUDITCFG. RUN,
 * CMD, ENTRYPOINT and HEALTHCHECK are left to the shell at run time. Forms:
 * $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word};
 * nothing inside single quotes, \$ for a literal dollar; an unset variable
 * is empty. In a stage the variables are its ARGs (build argument, else
 * default) and its ENVs (which win), including the base image's
 * environment. Errors (a bad ${...}, a port that is not one after
 * substitution) name the instruction's position.
 */
int cbf_expand(struct cbf_file *f, const struct cbf_expand_opts *opts, struct clbsd_err *err);

/*
 * The instruction as one canonical line after substitution, the same for
 * the same meaning (keyword, flags and cooked arguments as compact JSON):
 * what a cache key hashes. A new string.
 */
char *cbf_instr_canon(const struct cbf_instr *in);

/* ---- the build plan (buildplan.c) ---- */

/*
 * One step per instruction. key = sha256 of the parent key (the previous
 * step of the stage, else the stage's base: an image id, the last key of
 * an earlier stage, or sha256("scratch")), the canonical instruction, for
 * COPY and ADD the content hash of the sources (or of the --from stage's
 * last key), and for RUN the ARGs in scope with their values. See
 * docs/cblockfile.md for why each part is there.
 */
struct cbf_step {
	size_t stage, index;	       /* stage index and instruction index in it */
	const struct cbf_instr *instr; /* borrowed from the file */
	char *canon;
	char key[65];
};

struct cbf_plan {
	struct cbf_step *steps; /* in build order: stage by stage */
	size_t n;
	char (*stage_base)[65]; /* per stage: the key its first step builds on */
	char (*stage_key)[65];	/* per stage: the key of its result */
	size_t nstages;
};

/*
 * Callbacks of the plan: the id of a base image reference, and the content
 * hash of a COPY/ADD step's sources (normally cbf_hash_sources() on the
 * build context). Both follow the error contract.
 */
struct cbf_plan_ops {
	int (*image_id)(const char *ref, char id[65], void *ctx, struct clbsd_err *err);
	int (*source_hash)(const struct cbf_instr *in, char out[65], void *ctx,
			   struct clbsd_err *err);
	void *ctx;
};

/*
 * Plan an expanded file (run cbf_expand() first). Pure apart from the
 * callbacks. *out is written only on success; free it with cbf_plan_release().
 */
int cbf_plan_build(const struct cbf_file *f, const struct cbf_plan_ops *ops, struct cbf_plan *out,
		   struct clbsd_err *err);
void cbf_plan_release(struct cbf_plan *p);

/*
 * Which stages building the last one needs: itself, the stages it builds
 * FROM or copies --from, and theirs in turn. needed has f->nstages
 * entries; a stage not needed is skipped (a test or lint stage is built
 * only when asked for).
 */
void cbf_stages_needed(const struct cbf_file *f, bool *needed);

/*
 * Whether a step of this kind changes the file tree (RUN, COPY, ADD,
 * WORKDIR, ROOTPIVOT) and so produces a layer; the others change only the
 * image config and pass their key on.
 */
bool cbf_kind_changes_files(enum cbf_kind kind);

/* ---- the image config a stage leaves (buildconfig.c) ---- */

struct image_config;

/*
 * The config of stage `stage` of an expanded file: `base` (the base
 * image's config, an earlier stage's result for FROM stage, NULL for
 * scratch) with ENV, LABEL, WORKDIR (relative to the previous), USER, CMD,
 * ENTRYPOINT (shell forms through the stage's SHELL, default /bin/sh -c),
 * EXPOSE, VOLUME, HEALTHCHECK, OSRELEASE, AUDITCFG and ROOTPIVOT applied in
 * order. As in Docker, an ENTRYPOINT in the stage without a CMD in it
 * clears the base's CMD. *out is for image_config_release().
 */
int cbf_image_config(const struct cbf_file *f, size_t stage, const struct image_config *base,
		     struct image_config *out, struct clbsd_err *err);

/* ---- file steps on a layer's tree (buildstep.c) ---- */

struct cbf_step_env {
	const char *context;   /* the build context (COPY/ADD without --from) */
	const char *from_root; /* for COPY --from: the root of that stage's result */
	const char *workdir;   /* the WORKDIR in force ("/" or NULL for none) */
};

/*
 * Carry out a COPY, ADD of local files or directories, WORKDIR or
 * ROOTPIVOT on the tree at `rootfs` (a layer the builder prepared from the
 * parent). Every path inside the tree, the context and the --from root is
 * resolved as if that tree were the root, so an image's symlinks cannot
 * lead a write or a read outside it. Files get owner 0:0 (from --from:
 * their owner there) or --chown (names
 * from the tree's /etc/passwd and /etc/group), their own mode or --chmod;
 * .cblockignore applies to context sources. ADD of an archive or a URL is
 * refused (CLBSD_E_UNAVAIL): the builder fetches and extracts those. On
 * failure the tree may be half changed: the builder drops the layer.
 */
int cbf_apply_file_step(const struct cbf_instr *in, const char *rootfs,
			const struct cbf_step_env *env, struct clbsd_err *err);

/* ---- the build context (buildctx.c; reads the file system) ---- */

/*
 * The content hash of COPY/ADD sources below `context`: each source is a
 * path relative to the context (a glob pattern matches with glob(3)); a
 * directory is walked in byte order of names. Each file contributes its
 * relative path, type, permission bits and contents (a symlink its
 * target); owners and times do not count. Paths matched by `.cblockignore`
 * in the context are left out (see docs/cblockfile.md). URLs contribute
 * their text. A source that escapes the context or does not exist is an
 * error naming it.
 */
int cbf_hash_sources(const char *context, char *const *sources, char out[65],
		     struct clbsd_err *err);

/*
 * A ready source_hash callback for struct cbf_plan_ops: ctx is the
 * context directory (const char *); hashes the sources of a COPY or ADD
 * (its argv without the destination) with cbf_hash_sources().
 */
int cbf_source_hash_context(const struct cbf_instr *in, char out[65], void *ctx,
			    struct clbsd_err *err);

/* Whether a path relative to the context is excluded by these .cblockignore patterns. */
bool cbf_ignored(char *const *patterns, const char *rel);
/* Parse .cblockignore text into patterns (NULL-terminated; free with strv_free). */
char **cbf_ignore_parse(const char *text);

/*
 * ---- internal: shared by the lexer (cblockfile_lex.c) and the grammar
 * (cblockfile.c); not for other modules ----
 */

/* Set err to "FILE:LINE:COL: message" (CLBSD_E_INVALID); returns -EINVAL. */
int cbf_err_at(struct clbsd_err *err, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

struct cbf_lline {
	struct buf s;
	int *ln, *cl; /* position of each byte of s */
	size_t cap;
	int end_line, end_col; /* just past the last byte */
};

struct cbf_reader {
	const char *file;
	const char *s;
	size_t len, pos;
	int line;
	char esc;
	struct clbsd_err *err;
};

struct cbf_vars {
	/* Looked up in env first (latest wins), then in args. */
	struct strv env_names, env_values;
	struct strv arg_names, arg_values;
};

/* Where a cooking error points: the word's position plus the offset when on its line. */
struct cbf_site {
	const char *file;
	int line, col;
};

bool cbf_is_blank(int c);
size_t cbf_skip_blank(const char *s, size_t i, size_t end);
/* The line:column of byte i of a logical line (past the end: just after it). */
void cbf_ll_pos(const struct cbf_lline *l, size_t i, int *line, int *col);
/* The text must be UTF-8 (its values end up in JSON). */
int cbf_check_utf8(const char *file, const char *text, size_t len, struct clbsd_err *err);
/* "# escape=`" directives at the top of the file. */
void cbf_read_directives(struct cbf_reader *r);
/* The next logical line; false at the end or on an error (then *failed). */
bool cbf_next_lline(struct cbf_reader *r, struct cbf_lline *l, bool *failed);
/* Split l[from..to) on blanks outside quotes; words keep quotes and escapes. */
int cbf_split_words(const char *file, const struct cbf_lline *l, size_t from, size_t to, char esc,
		    struct cbf_word **out, size_t *nout, struct clbsd_err *err);
void cbf_vars_release(struct cbf_vars *v);
const char *cbf_vars_get(const struct cbf_vars *v, const char *name, size_t nlen);
bool cbf_is_name_start(int c);
bool cbf_is_name_char(int c);
/*
 * Remove quotes and escapes from s[0..len) and, with v, substitute
 * variables (without v, each $ stays as written but ${...} syntax is
 * checked). Errors point at `at` plus the offset of the problem.
 */
int cbf_cook_str(const struct cbf_site *at, const struct cbf_vars *v, char esc, const char *s,
		 size_t len, char **out, struct clbsd_err *err);
int cbf_cook_word(const char *file, const struct cbf_word *w, const struct cbf_vars *v, char esc,
		  char **out, struct clbsd_err *err);
/* l[from..to), starting with '[', as a JSON array of strings. */
int cbf_parse_json_array(const char *file, const struct cbf_lline *l, size_t from, size_t to,
			 char ***out, struct clbsd_err *err);

#endif
