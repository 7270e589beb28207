/*
 * Whole-file reads and atomic writes, for the few small files wsmux keeps:
 * the edge config and state file, the CLI's contexts, key files.
 *
 * Reads are bounded (a huge file is a mistake, not data) and return the
 * text NUL-terminated. file_write_atomic() replaces a file so that a crash
 * leaves either the old or the new contents, never a mix.
 *
 * Messages name the file: "cannot open PATH: REASON", "PATH: file is
 * larger than 16 MiB". Ownership: text and paths returned are malloc'd and
 * the caller's to free.
 */
#ifndef WSMUX_FILE_H
#define WSMUX_FILE_H

#include <stddef.h>
#include <sys/types.h>

enum {
  /* file_read(): a missing file (ENOENT) is FILE_READ_MISSING, not an
   * error, for files that are optional. */
  FILE_READ_MISSING_OK = 1 << 0,
};

typedef enum {
  FILE_READ_OK = 0,
  FILE_READ_FAILED = -1, /* err says why */
  /* Only with FILE_READ_MISSING_OK; err is untouched. */
  FILE_READ_MISSING = 1,
  /* More than max bytes; err says so, and a caller with a more helpful
   * word for its kind of file may replace it. */
  FILE_READ_TOO_LARGE = 2,
} file_read_result_t;

/*
 * Read fd to its end, at most max bytes (also for pipes, whose size is not
 * known in advance); EINTR is retried. On FILE_READ_OK *text is the
 * malloc'd contents plus a NUL (which the contents may hold too: *len is
 * their length). name is what messages call the file. fd stays open.
 */
file_read_result_t file_read_fd(int fd, const char *name, size_t max,
                                char **text, size_t *len, char *err,
                                size_t errlen);
/* Open path and file_read_fd() it. A directory is refused ("cannot read
 * PATH: Is a directory"), and a regular file larger than max before any
 * read. flags: FILE_READ_MISSING_OK. */
file_read_result_t file_read(const char *path, size_t max, int flags,
                             char **text, size_t *len, char *err,
                             size_t errlen);

/* The directory part of path ("." when there is none, "/" for "/x");
 * NULL when out of memory. */
char *file_dirname(const char *path);
/* path as given when absolute or when base_dir is NULL or "", else
 * base_dir/path: relative paths in a config file are relative to the
 * file's directory, not to wherever the program was started. NULL when
 * out of memory. */
char *file_path_resolve(const char *base_dir, const char *path);

enum {
  /* file_write_atomic(): an existing file keeps its mode; mode is for a
   * new one. Without it the file always ends up with mode. */
  FILE_WRITE_KEEP_MODE = 1 << 0,
};

typedef enum {
  FILE_WRITE_OK = 0,
  /* Nothing changed on disk (the temporary file is removed). */
  FILE_WRITE_FAILED = -1,
  /* The new file is in place but its directory could not be fsync'd, so
   * a crash may still bring back the old one. err says so. */
  FILE_WRITE_NOT_SYNCED = 1,
} file_write_result_t;

/*
 * Replace path with data[0..len): a temporary file next to it (same
 * directory, so the rename is atomic), created 0600 and fchmod'ed to its
 * final mode before any byte is written (a file meant to stay private is
 * never readable by others, not even briefly), written, fsync'd, renamed
 * over path, then the directory fsync'd. flags: FILE_WRITE_KEEP_MODE.
 */
file_write_result_t file_write_atomic(const char *path, const void *data,
                                      size_t len, mode_t mode, int flags,
                                      char *err, size_t errlen);

#endif
