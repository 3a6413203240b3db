/*
 * libarchive, loaded on demand: the one loader for every user (the dir
 * driver's send/receive stream in storage/tar.c, OCI layers and archives in
 * image/oci.c, the forge's layer digest through them, the integrity
 * manifests' mtree writer and reader in integrity/mtree_io.c).
 *
 * libarchive is not linked: with its dependencies (libxml2, ICU, libstdc++,
 * compressors) it would cost the daemon ~2.2 MB of memory from the moment it
 * starts, for something used now and then. archive_lib_acquire() loads it
 * when no one holds it and fills the table below; the last
 * archive_lib_release() unloads it. Users on several workers at once share
 * one load.
 *
 * Invariants: the table (archive_lib) may be called through only between a
 * successful archive_lib_acquire() and its archive_lib_release(); it is
 * filled, under the loader's lock, only while no one holds the library, so
 * a holder never sees it change. A function missing from the installed
 * libarchive fails the acquire (UNAVAIL), never a call.
 */
#ifndef CLBSD_ARCHIVE_LIB_H
#define CLBSD_ARCHIVE_LIB_H

#include <archive.h>
#include <archive_entry.h>
#include <clbsd/error.h>
#include <stdint.h>

/* Every libarchive function clbsd calls. */
#define ARCHIVE_LIB_FUNCS                                                                          \
	X(archive_entry_clear)                                                                     \
	X(archive_entry_copy_sourcepath)                                                           \
	X(archive_entry_digest)                                                                    \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_free)                                                                      \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_new)                                                                       \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_gid)                                                                   \
	X(archive_entry_set_hardlink)                                                              \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_set_rdev)                                                                  \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_symlink)                                                               \
	X(archive_entry_set_uid)                                                                   \
	X(archive_entry_size)                                                                      \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_uid)                                                                       \
	X(archive_errno)                                                                           \
	X(archive_error_string)                                                                    \
	X(archive_read_close)                                                                      \
	X(archive_read_data)                                                                       \
	X(archive_read_data_block)                                                                 \
	X(archive_read_data_skip)                                                                  \
	X(archive_read_disk_entry_from_file)                                                       \
	X(archive_read_disk_new)                                                                   \
	X(archive_read_disk_set_behavior)                                                          \
	X(archive_read_disk_set_standard_lookup)                                                   \
	X(archive_read_free)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_next_header)                                                                \
	X(archive_read_open_fd)                                                                    \
	X(archive_read_open_filename)                                                              \
	X(archive_read_open_memory)                                                                \
	X(archive_read_support_filter_all)                                                         \
	X(archive_read_support_format_mtree)                                                       \
	X(archive_read_support_format_tar)                                                         \
	X(archive_write_add_filter_gzip)                                                           \
	X(archive_write_close)                                                                     \
	X(archive_write_data)                                                                      \
	X(archive_write_data_block)                                                                \
	X(archive_write_disk_new)                                                                  \
	X(archive_write_disk_set_options)                                                          \
	X(archive_write_disk_set_standard_lookup)                                                  \
	X(archive_write_finish_entry)                                                              \
	X(archive_write_free)                                                                      \
	X(archive_write_header)                                                                    \
	X(archive_write_new)                                                                       \
	X(archive_write_open)                                                                      \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_set_bytes_in_last_block)                                                   \
	X(archive_write_set_bytes_per_block)                                                       \
	X(archive_write_set_format_mtree)                                                          \
	X(archive_write_set_format_pax_restricted)                                                 \
	X(archive_write_set_format_raw)                                                            \
	X(archive_write_set_options)

struct archive_lib {
#define X(f) __typeof__(f) *f;
	ARCHIVE_LIB_FUNCS
#undef X
};
extern struct archive_lib archive_lib;

/* Hold libarchive for one operation; UNAVAIL when it is missing or too old. */
int archive_lib_acquire(struct clbsd_err *err);
/* Let go of it: the last holder unloads it. */
void archive_lib_release(void);
/* Call a libarchive function through the table: AL(archive_read_new)(). */
#define AL(f) (*archive_lib.f)

/*
 * The error of archive a as err (kind, prefixed with `what`); a full disk
 * is UNAVAIL with advice, whatever `kind` says.
 */
int archive_lib_err(struct archive *a, enum clbsd_err_kind kind, const char *what,
		    struct clbsd_err *err);
/*
 * Write the data of the regular file open at fd into an archive being
 * written, whose header said `size` bytes: at most that many are read (a
 * file that grows meanwhile is cut there, one that shrinks is padded with
 * zeros by libarchive when the entry ends). `path` names the file and `what`
 * the write in errors.
 */
int archive_lib_put_file_data(struct archive *a, int fd, int64_t size, const char *path,
			      const char *what, struct clbsd_err *err);

#endif
