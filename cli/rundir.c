/* Runtime directory and pidfiles of the proxies (cli/rundir.h). */
#include "cli/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* An attempt at a name that changes under us (removed as stale between
 * our open and our lock) is retried this many times. */
#define ACQUIRE_TRIES 8

static int make_dir(const char *path, char *err, size_t errlen) {
  if (mkdir(path, 0700) == 0 || errno == EEXIST)
    return 0;
  snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
  return -1;
}

int rundir_dir(char *out, size_t len, char *err, size_t errlen) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  const char *home = getenv("HOME");
  char base[PATH_MAX];
  int n;
  if (xdg != NULL && xdg[0] == '/') {
    n = snprintf(out, len, "%s/wsmux", xdg);
  } else if (home != NULL && home[0] == '/') {
    snprintf(base, sizeof(base), "%s/.cache", home);
    if (make_dir(base, err, errlen) != 0)
      return -1;
    n = snprintf(out, len, "%s/.cache/wsmux", home);
  } else {
    snprintf(err, errlen,
             "cannot locate the runtime directory: set "
             "XDG_RUNTIME_DIR or HOME");
    return -1;
  }
  if (n < 0 || (size_t)n >= len) {
    snprintf(err, errlen, "runtime directory path too long");
    return -1;
  }
  if (make_dir(out, err, errlen) != 0)
    return -1;
  struct stat st;
  if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s is not a directory", out);
    return -1;
  }
  /* Others must not read the sockets or replace the pidfiles. */
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "%s belongs to another user", out);
    return -1;
  }
  if ((st.st_mode & 077) != 0 && chmod(out, 0700) != 0) {
    snprintf(err, errlen, "cannot chmod 700 %s: %s", out, strerror(errno));
    return -1;
  }
  return 0;
}

int rundir_path(char *out, size_t len, const char *dir, const char *project,
                const char *service, const char *ext) {
  int n = snprintf(out, len, "%s/%s.%s.%s", dir, project, service, ext);
  return n > 0 && (size_t)n < len ? 0 : -1;
}

/* --- the directory lock ------------------------------------------------ */

/* Held for a few file operations only, so waiting for it is short. */
static int dir_lock(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

static void dir_unlock(int fd) {
  if (fd >= 0)
    close(fd); /* releases the flock */
}

/* --- pidfiles ---------------------------------------------------------- */

static int write_content(int fd, const char *content) {
  size_t len = strlen(content);
  if (ftruncate(fd, 0) != 0)
    return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = pwrite(fd, content + off, len - off, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    off += (size_t)w;
  }
  return 0;
}

static void read_content(int fd, char *buf, size_t len) {
  size_t off = 0;
  while (off + 1 < len) {
    ssize_t r = pread(fd, buf + off, len - 1 - off, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    off += (size_t)r;
  }
  buf[off] = '\0';
}

/* fd is the file now at path (not one removed since it was opened). */
static int same_file(int fd, const char *path) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

/* Open path and try its lock. 1: we hold it now (so nobody else did);
 * 0: a live process holds it; -1: no such file or an error. *fd is open
 * unless -1. */
static int try_lock(const char *path, int flags, int *fd) {
  *fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (*fd < 0)
    return -1;
  if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
    return 1;
  if (errno == EWOULDBLOCK)
    return 0;
  close(*fd);
  *fd = -1;
  return -1;
}

int rundir_acquire(const char *dir, const char *project, const char *service,
                   const char *content, rundir_lock_t *lk, char *held,
                   size_t heldlen, char *err, size_t errlen) {
  memset(lk, 0, sizeof(*lk));
  lk->fd = -1;
  err[0] = '\0';
  snprintf(lk->dir, sizeof(lk->dir), "%s", dir);
  if (rundir_path(lk->pid_path, sizeof(lk->pid_path), dir, project, service,
                  "pid") != 0 ||
      rundir_path(lk->sock_path, sizeof(lk->sock_path), dir, project, service,
                  "sock") != 0) {
    snprintf(err, errlen, "runtime file name too long");
    return -1;
  }
  int dfd = dir_lock(dir);
  if (dfd < 0) {
    snprintf(err, errlen, "cannot lock %s: %s", dir, strerror(errno));
    return -1;
  }
  int rc = -1, fd = -1;
  for (int i = 0; i < ACQUIRE_TRIES && rc == -1; i++) {
    int got = try_lock(lk->pid_path, O_RDWR | O_CREAT, &fd);
    if (got == 0) {
      read_content(fd, held, heldlen);
      close(fd);
      rc = RUNDIR_HELD;
    } else if (got == 1 && same_file(fd, lk->pid_path)) {
      rc = 0;
    } else if (got == 1) {
      close(fd); /* removed meanwhile: take the new name */
    } else {
      snprintf(err, errlen, "cannot open %s: %s", lk->pid_path,
               strerror(errno));
      break;
    }
  }
  if (rc == 0) {
    /* Whoever had the socket before us is dead. */
    unlink(lk->sock_path);
    if (write_content(fd, content) != 0) {
      snprintf(err, errlen, "cannot write %s: %s", lk->pid_path,
               strerror(errno));
      unlink(lk->pid_path);
      close(fd);
      rc = -1;
    } else {
      lk->fd = fd;
    }
  } else if (rc == -1 && err[0] == '\0') {
    snprintf(err, errlen, "%s keeps changing", lk->pid_path);
  }
  dir_unlock(dfd);
  return rc;
}

int rundir_update(rundir_lock_t *lk, const char *content) {
  if (lk->fd < 0)
    return -1;
  int dfd = dir_lock(lk->dir);
  int rc = write_content(lk->fd, content);
  dir_unlock(dfd);
  return rc;
}

void rundir_release(rundir_lock_t *lk) {
  if (lk->fd < 0)
    return;
  int dfd = dir_lock(lk->dir);
  unlink(lk->sock_path);
  unlink(lk->pid_path);
  close(lk->fd);
  lk->fd = -1;
  dir_unlock(dfd);
}

/* Under the directory lock: 1 with the content when held, 0 when stale
 * (and then removed with its socket), -1 when missing or unreadable. */
static int inspect(const char *pid_path, const char *sock_path, char *buf,
                   size_t len) {
  int fd;
  int got = try_lock(pid_path, O_RDONLY, &fd);
  if (got < 0)
    return -1;
  if (got == 0)
    read_content(fd, buf, len);
  else {
    unlink(sock_path);
    unlink(pid_path);
  }
  close(fd);
  return got == 0;
}

static int sock_of(char *out, size_t len, const char *pid_path) {
  size_t n = strlen(pid_path);
  if (n < 4 || n - 4 + 5 >= len)
    return -1;
  memcpy(out, pid_path, n - 4);
  memcpy(out + n - 4, ".sock", 6);
  return 0;
}

int rundir_read_held(const char *dir, const char *pid_path, char *buf,
                     size_t len) {
  char sock[PATH_MAX];
  if (sock_of(sock, sizeof(sock), pid_path) != 0)
    return -1;
  int dfd = dir_lock(dir);
  if (dfd < 0)
    return -1;
  int rc = inspect(pid_path, sock, buf, len);
  dir_unlock(dfd);
  return rc > 0;
}

static int has_pid_suffix(const char *name) {
  size_t n = strlen(name);
  return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".pid") == 0;
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const rundir_entry_t *)a)->pid_path,
                ((const rundir_entry_t *)b)->pid_path);
}

int rundir_scan(const char *dir, rundir_entry_t **out, size_t *n, size_t *stale,
                char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  *stale = 0;
  int dfd = dir_lock(dir);
  DIR *d = dfd >= 0 ? opendir(dir) : NULL;
  if (d == NULL) {
    snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
    dir_unlock(dfd);
    return -1;
  }
  size_t cap = 0;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!has_pid_suffix(de->d_name))
      continue;
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      rundir_entry_t *grown = realloc(*out, ncap * sizeof(**out));
      if (grown == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        break;
      }
      *out = grown;
      cap = ncap;
    }
    rundir_entry_t *e = &(*out)[*n];
    int l =
        snprintf(e->pid_path, sizeof(e->pid_path), "%s/%s", dir, de->d_name);
    if (l < 0 || (size_t)l >= sizeof(e->pid_path) ||
        sock_of(e->sock_path, sizeof(e->sock_path), e->pid_path) != 0)
      continue;
    int got =
        inspect(e->pid_path, e->sock_path, e->content, sizeof(e->content));
    if (got > 0)
      (*n)++;
    else if (got == 0)
      (*stale)++;
  }
  closedir(d);
  dir_unlock(dfd);
  if (rc != 0) {
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
  }
  if (*n > 1)
    qsort(*out, *n, sizeof(**out), by_path);
  return 0;
}
