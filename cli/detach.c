/* Running the proxy in the background (cli/detach.h). */
#include "cli/detach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/exitcode.h"

/* Records on the pipe: a type byte, a 4-byte length, the bytes. */
enum {
  REC_OUT = 'O',   /* text for stdout */
  REC_ERR = 'E',   /* first byte the log level, then the message */
  REC_READY = 'R', /* no payload */
  REC_EXIT = 'X',  /* one byte: the exit code */
};
#define REC_MAX (64 * 1024)
/* The child's end of the pipe, once the descriptors are tidied. */
#define CHILD_PIPE_FD 3

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

static void send_rec(detach_t *d, char type, const void *data, size_t len) {
  if (d->fd < 0)
    return;
  uint8_t hdr[5] = {(uint8_t)type, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8), (uint8_t)len};
  /* A parent gone (EPIPE) changes nothing for the child. */
  if (write_all(d->fd, hdr, sizeof(hdr)) == 0 && len > 0)
    write_all(d->fd, data, len);
}

static void finish(detach_t *d) {
  if (d->fd >= 0) {
    close(d->fd);
    d->fd = -1;
  }
}

void detach_out(detach_t *d, const char *text) {
  send_rec(d, REC_OUT, text, strlen(text));
}

void detach_err(detach_t *d, log_level_t level, const char *text) {
  size_t n = strlen(text);
  if (d->fd < 0 || n + 1 > REC_MAX)
    return;
  char *buf = malloc(n + 1);
  if (buf == NULL)
    return;
  buf[0] = (char)level;
  memcpy(buf + 1, text, n);
  send_rec(d, REC_ERR, buf, n + 1);
  free(buf);
}

void detach_ready(detach_t *d) {
  send_rec(d, REC_READY, NULL, 0);
  finish(d);
}

void detach_fail(detach_t *d, int code) {
  uint8_t c = (uint8_t)code;
  send_rec(d, REC_EXIT, &c, 1);
  finish(d);
}

int detach_pending(const detach_t *d) {
  return d->fd >= 0;
}

/* --- the parent -------------------------------------------------------- */

/* The child's exit status, as the command's exit code. */
static int child_code(pid_t pid, const char *log_path) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  log_print("wsmux", LOG_ERROR,
            "the background proxy died during start-up (signal %d); see %s",
            WIFSIGNALED(st) ? WTERMSIG(st) : 0, log_path);
  return EXIT_USAGE;
}

static int parent_relay(int fd, pid_t child, const char *log_path) {
  for (;;) {
    uint8_t hdr[5];
    if (read_all(fd, hdr, sizeof(hdr)) != 0) {
      /* The child ended without a word: it crashed. */
      int code = child_code(child, log_path);
      return code != EXIT_OK ? code : EXIT_USAGE;
    }
    size_t len = (size_t)hdr[1] << 24 | (size_t)hdr[2] << 16 |
                 (size_t)hdr[3] << 8 | hdr[4];
    char *buf = len <= REC_MAX ? malloc(len + 1) : NULL;
    if (buf == NULL || read_all(fd, buf, len) != 0) {
      free(buf);
      int code = child_code(child, log_path);
      return code != EXIT_OK ? code : EXIT_USAGE;
    }
    buf[len] = '\0';
    int type = hdr[0], code = -1;
    if (type == REC_OUT) {
      fputs(buf, stdout);
      fflush(stdout);
    } else if (type == REC_ERR && len >= 1) {
      log_print("wsmux", (log_level_t)buf[0], "%s", buf + 1);
    } else if (type == REC_READY) {
      code = EXIT_OK;
    } else if (type == REC_EXIT && len == 1) {
      /* Its files are gone already; wait for the process too. */
      child_code(child, log_path);
      code = (uint8_t)buf[0];
    }
    free(buf);
    if (code >= 0)
      return code;
  }
}

/* --- the child --------------------------------------------------------- */

/* Descriptors are first moved out of the way (a caller may have closed
 * stdin, so the log could be fd 0), then put where they belong. */
#define SCRATCH_FD 10

static int become_daemon(int log_fd, int pipe_fd) {
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (setsid() < 0 || chdir("/") != 0 || null_fd < 0)
    return -1;
  umask(077);
  int n = fcntl(null_fd, F_DUPFD_CLOEXEC, SCRATCH_FD);
  int l = fcntl(log_fd, F_DUPFD_CLOEXEC, SCRATCH_FD);
  int w = fcntl(pipe_fd, F_DUPFD_CLOEXEC, SCRATCH_FD);
  if (n < 0 || l < 0 || w < 0 || dup2(n, 0) < 0 || dup2(l, 1) < 0 ||
      dup2(l, 2) < 0 || dup2(w, CHILD_PIPE_FD) < 0)
    return -1;
  /* Nothing inherited may keep a caller's pipe or terminal open. */
  closefrom(CHILD_PIPE_FD + 1);
  return fcntl(CHILD_PIPE_FD, F_SETFD, FD_CLOEXEC) == 0 ? 0 : -1;
}

int detach_start(const char *log_path, detach_t *d, int *is_child) {
  *is_child = 0;
  d->fd = -1;
  int log_fd = open(
      log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log_fd < 0) {
    log_print("wsmux", LOG_ERROR, "cannot open the log file %s: %s", log_path,
              strerror(errno));
    return -1;
  }
  int p[2];
  if (pipe(p) != 0 || fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 ||
      fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0) {
    log_print("wsmux", LOG_ERROR, "pipe: %s", strerror(errno));
    close(log_fd);
    return -1;
  }
  /* What is buffered must not be written twice, by both processes. */
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    log_print("wsmux", LOG_ERROR, "fork: %s", strerror(errno));
    close(log_fd);
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid > 0) {
    close(log_fd);
    close(p[1]);
    int code = parent_relay(p[0], pid, log_path);
    close(p[0]);
    return code;
  }
  close(p[0]);
  if (become_daemon(log_fd, p[1]) != 0) {
    /* Only the log can tell: the parent sees EOF and a failure. */
    log_print("wsmux", LOG_ERROR, "cannot detach: %s", strerror(errno));
    _exit(EXIT_USAGE);
  }
  d->fd = CHILD_PIPE_FD;
  *is_child = 1;
  return 0;
}
