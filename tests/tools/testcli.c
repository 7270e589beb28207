/*
 * wsmux-testcli: the test client of the e2e tests (talks to wsmux-testsrv,
 * directly or through the wsmux proxy).
 *
 * Usage: wsmux-testcli --connect HOST:PORT --mode MODE [options]
 *
 * Modes:
 *   echo           send "ECHO\n", then --bytes N pseudo-random bytes (seeded
 *                  by --seed) while concurrently reading the echo; verify
 *                  every byte; after sending everything shut down the write
 *                  side and expect EOF once all N bytes came back.
 *                  Success: prints "ok N bytes", exit 0.
 *   stall          send "SOURCE\n", read a few bytes (checked against the
 *                  server's pattern: byte i is i % 251), print "stalled"
 *                  (flushed), then never read again; wait until killed.
 *   expect-closed  connect and expect the far side to close the connection
 *                  (EOF or reset) with zero bytes received. Success: prints
 *                  "closed" (or "closed (connection refused)" when the
 *                  connect itself was refused), exit 0.
 *
 * Options:
 *   --bytes N      echo: bytes to send (suffixes K, M, G = 2^10, 2^20, 2^30)
 *   --rate R       echo: send at most R bytes per second (same suffixes;
 *                  default 0 = unlimited), to keep a transfer running for a
 *                  predictable time
 *   --seed S       echo: PRNG seed (default 1)
 *   --timeout S    give up after S seconds (default: echo 300, stall 600,
 *                  expect-closed 10). stall exits 0 when it runs out.
 *
 * Failures print "wsmux-testcli: <message>" on stderr and exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define PATTERN_PERIOD 251
#define STALL_READ 16

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("wsmux-testcli: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: wsmux-testcli --connect HOST:PORT --mode "
                  "echo|stall|expect-closed [--bytes N] [--rate R] "
                  "[--seed S] [--timeout S]\n");
  exit(1);
}

static uint64_t parse_size(const char *s) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) {
    usage();
  }
  switch (*end) {
  case '\0':
    return v;
  case 'K':
  case 'k':
    v <<= 10;
    break;
  case 'M':
  case 'm':
    v <<= 20;
    break;
  case 'G':
  case 'g':
    v <<= 30;
    break;
  default:
    usage();
  }
  if (end[1] != '\0') {
    usage();
  }
  return v;
}

/* splitmix64: a byte stream generated in whole CHUNK blocks, so the sender
 * and the verifier produce identical streams. */
struct prng {
  uint64_t s;
};

static uint64_t prng_next(struct prng *p) {
  uint64_t z = (p->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void prng_block(struct prng *p, unsigned char *buf) {
  for (size_t i = 0; i < CHUNK; i += 8) {
    uint64_t v = prng_next(p);
    for (int k = 0; k < 8; k++) {
      buf[i + (size_t)k] = (unsigned char)(v >> (8 * k));
    }
  }
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    return -1;
  }
  return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int ms_left(double deadline) {
  double left = deadline - now_s();
  if (left <= 0) {
    return 0;
  }
  return left > 1.0 ? 1000 : (int)(left * 1000) + 1;
}

/* Non-blocking connect bounded by the deadline. Returns the (non-blocking)
 * socket, or -1 with errno set (ETIMEDOUT when the deadline passed). */
static int connect_to(const char *spec, int rcvbuf, double deadline) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= sizeof host ||
      colon[1] == '\0') {
    die("bad --connect '%s' (want HOST:PORT)", spec);
  }
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0) {
    die("%s: %s", spec, gai_strerror(rc));
  }
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0 || set_nonblock(fd) != 0) {
    die("socket: %s", strerror(errno));
  }
  if (rcvbuf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  rc = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc == 0) {
    return fd;
  }
  if (errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int to = ms_left(deadline);
    if (to == 0) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    rc = poll(&pfd, 1, to);
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc > 0) {
      break;
    }
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static int run_echo(const char *target, uint64_t total, uint64_t rate,
                    uint64_t seed, double timeout) {
  const double start = now_s();
  const double deadline = start + timeout;
  int fd = connect_to(target, 0, deadline);
  if (fd < 0) {
    die("connect to %s: %s", target, strerror(errno));
  }
  static unsigned char wbuf[CHUNK], vbuf[CHUNK], rbuf[CHUNK];
  struct prng wgen = {seed}, vgen = {seed};
  /* The command line goes first, through the same write path. */
  memcpy(wbuf, "ECHO\n", 5);
  size_t wlen = 5, woff = 0;
  uint64_t generated = 0; /* payload bytes put into wbuf so far */
  uint64_t sent = 0;      /* payload bytes written to the socket */
  uint64_t received = 0;  /* payload bytes read and verified */
  size_t voff = CHUNK;    /* vbuf fully consumed: generate next block */
  int wr_done = 0, got_eof = 0;
  int cmd_pending = 1;

  while (!got_eof) {
    if (now_s() >= deadline) {
      die("echo: timed out after %.0f s (sent %llu, verified %llu of %llu "
          "bytes%s)",
          timeout, (unsigned long long)sent, (unsigned long long)received,
          (unsigned long long)total,
          received == total ? ", no EOF from the far side" : "");
    }
    if (!wr_done && woff == wlen) {
      if (generated < total) {
        prng_block(&wgen, wbuf);
        uint64_t n = total - generated;
        wlen = n < CHUNK ? (size_t)n : CHUNK;
        woff = 0;
        generated += wlen;
        cmd_pending = 0;
      } else {
        if (shutdown(fd, SHUT_WR) != 0) {
          die("echo: shutdown: %s", strerror(errno));
        }
        wr_done = 1;
      }
    }
    int timeout_ms = ms_left(deadline);
    int want_write = !wr_done && woff < wlen;
    if (want_write && rate > 0 && !cmd_pending) {
      double allowed = (now_s() - start) * (double)rate;
      if ((double)sent >= allowed) {
        want_write = 0;
        int wait_ms = (int)(((double)sent - allowed) * 1000 / (double)rate) + 1;
        if (wait_ms < timeout_ms) {
          timeout_ms = wait_ms;
        }
      }
    }
    struct pollfd pfd = {
        .fd = fd, .events = (short)(POLLIN | (want_write ? POLLOUT : 0))};
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      die("poll: %s", strerror(errno));
    }
    if (rc == 0) {
      continue;
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(fd, rbuf, sizeof rbuf);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        die("echo: read after %llu of %llu bytes: %s",
            (unsigned long long)received, (unsigned long long)total,
            strerror(errno));
      }
      if (n == 0) {
        if (received != total) {
          die("echo: connection closed after %llu of %llu bytes",
              (unsigned long long)received, (unsigned long long)total);
        }
        got_eof = 1;
      }
      for (ssize_t i = 0; i < n;) {
        if (received >= total) {
          die("echo: received more bytes than the %llu sent",
              (unsigned long long)total);
        }
        if (voff == CHUNK) {
          prng_block(&vgen, vbuf);
          voff = 0;
        }
        size_t seg = CHUNK - voff;
        if ((uint64_t)seg > total - received) {
          seg = (size_t)(total - received);
        }
        if (seg > (size_t)(n - i)) {
          seg = (size_t)(n - i);
        }
        if (memcmp(rbuf + i, vbuf + voff, seg) != 0) {
          size_t k = 0;
          while (rbuf[(size_t)i + k] == vbuf[voff + k]) {
            k++;
          }
          die("echo: mismatch at byte %llu: got 0x%02x, want 0x%02x",
              (unsigned long long)(received + k), rbuf[(size_t)i + k],
              vbuf[voff + k]);
        }
        voff += seg;
        received += seg;
        i += (ssize_t)seg;
      }
    }
    if (want_write && (pfd.revents & (POLLOUT | POLLERR))) {
      ssize_t n = write(fd, wbuf + woff, wlen - woff);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        die("echo: write after %llu of %llu bytes: %s",
            (unsigned long long)sent, (unsigned long long)total,
            strerror(errno));
      }
      if (n > 0) {
        woff += (size_t)n;
        if (!cmd_pending) {
          sent += (uint64_t)n;
        }
      }
    }
  }
  close(fd);
  printf("ok %llu bytes\n", (unsigned long long)total);
  fflush(stdout);
  return 0;
}

static int run_stall(const char *target, double timeout) {
  const double deadline = now_s() + timeout;
  /* A small receive buffer makes the stall reach the proxy sooner. */
  int fd = connect_to(target, 16 * 1024, deadline);
  if (fd < 0) {
    die("connect to %s: %s", target, strerror(errno));
  }
  const char *cmd = "SOURCE\n";
  size_t off = 0, len = strlen(cmd);
  unsigned char buf[STALL_READ];
  size_t got = 0;
  while (off < len || got < STALL_READ) {
    int to = ms_left(deadline);
    if (to == 0) {
      die("stall: timed out (sent %zu, read %zu bytes)", off, got);
    }
    struct pollfd pfd = {.fd = fd,
                         .events = (short)(off < len ? POLLOUT : POLLIN)};
    int rc = poll(&pfd, 1, to);
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc <= 0) {
      continue;
    }
    ssize_t n;
    if (off < len) {
      n = write(fd, cmd + off, len - off);
      if (n > 0) {
        off += (size_t)n;
      }
    } else {
      n = read(fd, buf + got, STALL_READ - got);
      if (n == 0) {
        die("stall: connection closed after %zu bytes", got);
      }
      if (n > 0) {
        got += (size_t)n;
      }
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      die("stall: %s", strerror(errno));
    }
  }
  for (size_t i = 0; i < STALL_READ; i++) {
    if (buf[i] != (unsigned char)(i % PATTERN_PERIOD)) {
      die("stall: byte %zu is 0x%02x, want 0x%02x", i, buf[i],
          (unsigned)(i % PATTERN_PERIOD));
    }
  }
  printf("stalled\n");
  fflush(stdout);
  /* Never read again; keep the connection open until killed. */
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) {
      fprintf(stderr, "wsmux-testcli: stall: --timeout reached, exiting\n");
      close(fd);
      return 0;
    }
    sleep(1);
  }
}

static int run_expect_closed(const char *target, double timeout) {
  const double deadline = now_s() + timeout;
  int fd = connect_to(target, 0, deadline);
  if (fd < 0) {
    if (errno == ECONNREFUSED) {
      printf("closed (connection refused)\n");
      fflush(stdout);
      return 0;
    }
    die("connect to %s: %s", target, strerror(errno));
  }
  for (;;) {
    int to = ms_left(deadline);
    if (to == 0) {
      die("expect-closed: connection still open after %.0f s", timeout);
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, to);
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc <= 0) {
      continue;
    }
    unsigned char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      die("expect-closed: received %zd unexpected bytes", n);
    }
    if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
      break;
    }
    if (errno != EAGAIN && errno != EINTR) {
      die("expect-closed: read: %s", strerror(errno));
    }
  }
  close(fd);
  printf("closed\n");
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *target = NULL, *mode = NULL;
  uint64_t bytes = 0, rate = 0, seed = 1;
  double timeout = 0;
  int have_bytes = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) {
      usage();
    }
    const char *v = argv[++i];
    if (strcmp(a, "--connect") == 0) {
      target = v;
    } else if (strcmp(a, "--mode") == 0) {
      mode = v;
    } else if (strcmp(a, "--bytes") == 0) {
      bytes = parse_size(v);
      have_bytes = 1;
    } else if (strcmp(a, "--rate") == 0) {
      rate = parse_size(v);
    } else if (strcmp(a, "--seed") == 0) {
      seed = parse_size(v);
    } else if (strcmp(a, "--timeout") == 0) {
      timeout = strtod(v, NULL);
      if (timeout <= 0) {
        usage();
      }
    } else {
      usage();
    }
  }
  if (target == NULL || mode == NULL) {
    usage();
  }
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(mode, "echo") == 0) {
    if (!have_bytes) {
      usage();
    }
    return run_echo(target, bytes, rate, seed, timeout > 0 ? timeout : 300);
  }
  if (strcmp(mode, "stall") == 0) {
    return run_stall(target, timeout > 0 ? timeout : 600);
  }
  if (strcmp(mode, "expect-closed") == 0) {
    return run_expect_closed(target, timeout > 0 ? timeout : 10);
  }
  usage();
  return 1;
}
