/* Bounded reads and atomic writes of small files. See file.h. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 4096
#define TMP_SUFFIX ".tmp-XXXXXX"
#define MIB (1024u * 1024u)
#define KIB 1024u

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* "16 MiB", "64 KiB" or "100 bytes": the limit as people state it. */
static void size_text(char *dst, size_t n, size_t max) {
  if (max >= MIB && max % MIB == 0)
    snprintf(dst, n, "%zu MiB", max / MIB);
  else if (max >= KIB && max % KIB == 0)
    snprintf(dst, n, "%zu KiB", max / KIB);
  else
    snprintf(dst, n, "%zu bytes", max);
}

static file_read_result_t too_large(const char *name, size_t max, char *err,
                                    size_t errlen) {
  char limit[32];

  size_text(limit, sizeof limit, max);
  fail(err, errlen, "%s: file is larger than %s", name, limit);
  return FILE_READ_TOO_LARGE;
}

/* ---- reading ----------------------------------------------------------- */

file_read_result_t file_read_fd(int fd, const char *name, size_t max,
                                char **text, size_t *len, char *err,
                                size_t errlen) {
  size_t cap = 0, n = 0;
  char *buf = NULL, *nbuf;
  ssize_t r;

  *text = NULL;
  *len = 0;
  for (;;) {
    if (n == cap) {
      /* Room for max + 1 bytes tells a file of max bytes from a larger
       * one; the + 1 of the allocation is the NUL. */
      cap = cap == 0 ? READ_CHUNK : cap * 2;
      if (cap > max + 1)
        cap = max + 1;
      nbuf = realloc(buf, cap + 1);
      if (nbuf == NULL) {
        free(buf);
        fail(err, errlen, "%s: out of memory", name);
        return FILE_READ_FAILED;
      }
      buf = nbuf;
    }
    r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      fail(err, errlen, "cannot read %s: %s", name, strerror(errno));
      free(buf);
      return FILE_READ_FAILED;
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > max) {
      free(buf);
      return too_large(name, max, err, errlen);
    }
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return FILE_READ_OK;
}

file_read_result_t file_read(const char *path, size_t max, int flags,
                             char **text, size_t *len, char *err,
                             size_t errlen) {
  file_read_result_t rc = FILE_READ_FAILED;
  struct stat st;
  int fd;

  *text = NULL;
  *len = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && (flags & FILE_READ_MISSING_OK))
    return FILE_READ_MISSING;
  if (fd < 0) {
    fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return FILE_READ_FAILED;
  }
  /* A directory opens fine and only fails at read(), and a huge file
   * should not be read at all to be refused. */
  if (fstat(fd, &st) != 0)
    fail(err, errlen, "cannot stat %s: %s", path, strerror(errno));
  else if (S_ISDIR(st.st_mode))
    fail(err, errlen, "cannot read %s: %s", path, strerror(EISDIR));
  else if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > max)
    rc = too_large(path, max, err, errlen);
  else
    rc = file_read_fd(fd, path, max, text, len, err, errlen);
  close(fd);
  return rc;
}

/* ---- paths ------------------------------------------------------------- */

char *file_dirname(const char *path) {
  const char *slash = strrchr(path, '/');

  if (slash == NULL)
    return strdup(".");
  if (slash == path)
    return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

char *file_path_resolve(const char *base_dir, const char *path) {
  size_t blen, n;
  int slash;
  char *s;

  if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0')
    return strdup(path);
  blen = strlen(base_dir);
  slash = base_dir[blen - 1] == '/';
  n = blen + !slash + strlen(path) + 1;
  s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s%s%s", base_dir, slash ? "" : "/", path);
  return s;
}

/* ---- atomic writes ----------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    if (w == 0) {
      errno = EIO; /* no progress and no reason: do not spin */
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* data into the temporary file fd, durably; fd is closed in every case. */
static int tmp_write(int fd, const char *tmp, mode_t mode, const void *data,
                     size_t len, char *err, size_t errlen) {
  int rc = 0;

  if (fchmod(fd, mode) != 0)
    rc = fail(err, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
  else if (write_all(fd, data, len) != 0 || fsync(fd) != 0)
    rc = fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
  /* close() may report a delayed write error (NFS). */
  if (close(fd) != 0 && rc == 0)
    rc = fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
  return rc;
}

/* Without this the rename itself may not survive a crash. Returns 0 or an
 * errno value. EINVAL: the file system cannot sync directories, nothing
 * more we can do. */
static int dir_sync(const char *path) {
  char *dir = file_dirname(path);
  int fd, e = 0;

  if (dir == NULL)
    return ENOMEM;
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0)
    return errno;
  if (fsync(fd) != 0 && errno != EINVAL)
    e = errno;
  close(fd);
  return e;
}

file_write_result_t file_write_atomic(const char *path, const void *data,
                                      size_t len, mode_t mode, int flags,
                                      char *err, size_t errlen) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof TMP_SUFFIX);
  struct stat st;
  int fd, e;

  if (tmp == NULL) {
    fail(err, errlen, "cannot write %s: out of memory", path);
    return FILE_WRITE_FAILED;
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, TMP_SUFFIX, sizeof TMP_SUFFIX);
  if ((flags & FILE_WRITE_KEEP_MODE) && stat(path, &st) == 0)
    mode = st.st_mode & 07777;
  /* mkstemp creates the file 0600: nobody else can open it before the
   * fchmod, whatever the final mode. */
  fd = mkstemp(tmp);
  if (fd < 0) {
    fail(err, errlen, "cannot create a temporary file next to %s: %s", path,
         strerror(errno));
    goto fail;
  }
  if (tmp_write(fd, tmp, mode, data, len, err, errlen) != 0)
    goto fail_unlink;
  if (rename(tmp, path) != 0) {
    fail(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    goto fail_unlink;
  }
  free(tmp);
  if ((e = dir_sync(path)) != 0) {
    fail(err, errlen,
         "%s was written but its directory could not be synced: %s", path,
         strerror(e));
    return FILE_WRITE_NOT_SYNCED;
  }
  return FILE_WRITE_OK;
fail_unlink:
  unlink(tmp);
fail:
  free(tmp);
  return FILE_WRITE_FAILED;
}
