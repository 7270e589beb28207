/*
 * wsmux-testsrv: the upstream test server of the e2e tests.
 *
 * Usage: wsmux-testsrv --listen HOST:PORT [--max-seconds S]
 *
 * Single-threaded, poll(2), non-blocking sockets, any number of concurrent
 * connections. PORT 0 lets the kernel pick; the real port is printed on
 * stdout as "listening PORT" (flushed) once the socket listens.
 *
 * The first line a client sends chooses what the connection does:
 *   ECHO\n    echo every byte back until the client's EOF, then close.
 *   SOURCE\n  write an endless deterministic pattern (the byte at stream
 *             offset i is i % 251) until the client goes away (write error
 *             or EOF from the client).
 *   SINK\n    read until EOF, then write "<count>\n" (bytes read after the
 *             command line) and close.
 * Anything else (or a line longer than 63 bytes) closes the connection.
 *
 * Other stdout lines, each flushed, for tests to wait on:
 *   "conn N MODE"      connection N (1, 2, ...) chose MODE
 *   "listener closed"  after SIGUSR1
 *
 * Signals: SIGUSR1 closes the listening socket (existing connections go on;
 * new connections are refused by the kernel). SIGTERM/SIGINT exit 0.
 * The process exits by itself (status 2) after --max-seconds (default 3600)
 * so that a test killed hard never leaves it running forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_BUF (256 * 1024)
#define IO_CHUNK (64 * 1024)
#define PATTERN_PERIOD 251
#define CMD_MAX 64

enum mode { M_CMD, M_ECHO, M_SOURCE, M_SINK, M_SINK_REPLY };

struct conn {
  int fd;
  unsigned long id;
  enum mode mode;
  char cmd[CMD_MAX];
  size_t cmdlen;
  unsigned char *buf; /* ECHO: pending bytes at buf[head .. head+len) */
  size_t head, len;
  int rd_eof;
  uint64_t count; /* SINK: bytes read; SOURCE: bytes written */
  char reply[32];
  size_t replen, repoff;
};

static int sig_pipe[2] = {-1, -1};
static unsigned char pattern[PATTERN_PERIOD + IO_CHUNK];
static unsigned char iobuf[IO_CHUNK];

static void on_signal(int sig) {
  int saved = errno;
  char c = sig == SIGUSR1 ? 'u' : 't';
  ssize_t r = write(sig_pipe[1], &c, 1);
  (void)r;
  errno = saved;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    return -1;
  }
  return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(const char *argv0) {
  fprintf(stderr, "usage: %s --listen HOST:PORT [--max-seconds S]\n", argv0);
  exit(1);
}

static int listen_on(const char *spec, unsigned *port_out) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= sizeof host ||
      colon[1] == '\0') {
    fprintf(stderr, "wsmux-testsrv: bad --listen '%s' (want HOST:PORT)\n",
            spec);
    return -1;
  }
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "wsmux-testsrv: %s: %s\n", spec, gai_strerror(rc));
    return -1;
  }
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0) {
    perror("wsmux-testsrv: socket");
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0 ||
      set_nonblock(fd) != 0) {
    fprintf(stderr, "wsmux-testsrv: listen on %s: %s\n", spec, strerror(errno));
    close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    perror("wsmux-testsrv: getsockname");
    close(fd);
    return -1;
  }
  char serv[16];
  if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, serv, sizeof serv,
                  NI_NUMERICSERV) != 0) {
    close(fd);
    return -1;
  }
  *port_out = (unsigned)strtoul(serv, NULL, 10);
  return fd;
}

static void conn_free(struct conn *c) {
  if (c->fd >= 0) {
    close(c->fd);
  }
  free(c->buf);
  free(c);
}

/* Bytes that arrived after the command line, in the same read. */
static int take_extra(struct conn *c, const unsigned char *p, size_t n) {
  if (c->mode == M_ECHO) {
    memcpy(c->buf, p, n); /* n < IO_CHUNK <= ECHO_BUF */
    c->head = 0;
    c->len = n;
  } else if (c->mode == M_SINK) {
    c->count += n;
  }
  return 0;
}

/* Returns -1 when the connection must be closed. */
static int handle_cmd(struct conn *c) {
  ssize_t n = read(c->fd, iobuf, sizeof iobuf);
  if (n < 0) {
    return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  }
  if (n == 0) {
    return -1;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (iobuf[i] == '\n') {
      c->cmd[c->cmdlen] = '\0';
      if (strcmp(c->cmd, "ECHO") == 0) {
        c->mode = M_ECHO;
        c->buf = malloc(ECHO_BUF);
        if (c->buf == NULL) {
          return -1;
        }
      } else if (strcmp(c->cmd, "SOURCE") == 0) {
        c->mode = M_SOURCE;
      } else if (strcmp(c->cmd, "SINK") == 0) {
        c->mode = M_SINK;
      } else {
        fprintf(stderr, "wsmux-testsrv: conn %lu: unknown command '%s'\n",
                c->id, c->cmd);
        return -1;
      }
      printf("conn %lu %s\n", c->id, c->cmd);
      fflush(stdout);
      return take_extra(c, iobuf + i + 1, (size_t)(n - i - 1));
    }
    if (c->cmdlen + 1 >= CMD_MAX) {
      fprintf(stderr, "wsmux-testsrv: conn %lu: command line too long\n",
              c->id);
      return -1;
    }
    c->cmd[c->cmdlen++] = (char)iobuf[i];
  }
  return 0;
}

static int handle_echo(struct conn *c, short rev) {
  if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->rd_eof && c->len < ECHO_BUF) {
    if (c->head + c->len == ECHO_BUF) {
      memmove(c->buf, c->buf + c->head, c->len);
      c->head = 0;
    }
    ssize_t n =
        read(c->fd, c->buf + c->head + c->len, ECHO_BUF - c->head - c->len);
    if (n > 0) {
      c->len += (size_t)n;
    } else if (n == 0) {
      c->rd_eof = 1;
    } else if (errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (c->len > 0) {
    ssize_t n = write(c->fd, c->buf + c->head, c->len);
    if (n > 0) {
      c->head += (size_t)n;
      c->len -= (size_t)n;
      if (c->len == 0) {
        c->head = 0;
      }
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (c->rd_eof && c->len == 0) {
    shutdown(c->fd, SHUT_WR);
    return -1;
  }
  return 0;
}

static int handle_source(struct conn *c, short rev) {
  if (rev & (POLLIN | POLLHUP | POLLERR)) {
    ssize_t n = read(c->fd, iobuf, sizeof iobuf);
    if (n == 0) {
      return -1;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (rev & (POLLOUT | POLLERR)) {
    size_t off = (size_t)(c->count % PATTERN_PERIOD);
    ssize_t n = write(c->fd, pattern + off, IO_CHUNK);
    if (n > 0) {
      c->count += (uint64_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  return 0;
}

static int handle_sink(struct conn *c, short rev) {
  if (c->mode == M_SINK) {
    ssize_t n = read(c->fd, iobuf, sizeof iobuf);
    if (n > 0) {
      c->count += (uint64_t)n;
      return 0;
    }
    if (n < 0) {
      return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    }
    int len = snprintf(c->reply, sizeof c->reply, "%llu\n",
                       (unsigned long long)c->count);
    c->replen = (size_t)len;
    c->repoff = 0;
    c->mode = M_SINK_REPLY;
  }
  ssize_t n = write(c->fd, c->reply + c->repoff, c->replen - c->repoff);
  if (n > 0) {
    c->repoff += (size_t)n;
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    return -1;
  }
  if (c->repoff == c->replen) {
    shutdown(c->fd, SHUT_WR);
    return -1;
  }
  return 0;
}

static short conn_events(const struct conn *c) {
  switch (c->mode) {
  case M_CMD:
  case M_SINK:
    return POLLIN;
  case M_ECHO:
    return (short)((c->len > 0 ? POLLOUT : 0) |
                   (!c->rd_eof && c->len < ECHO_BUF ? POLLIN : 0));
  case M_SOURCE:
    return POLLIN | POLLOUT;
  case M_SINK_REPLY:
    return POLLOUT;
  }
  return 0;
}

static int conn_step(struct conn *c, short rev) {
  switch (c->mode) {
  case M_CMD:
    if (handle_cmd(c) != 0) {
      return -1;
    }
    /* Bytes that came with the command line may need echoing right away. */
    return c->mode == M_ECHO && c->len > 0 ? handle_echo(c, 0) : 0;
  case M_ECHO:
    return handle_echo(c, rev);
  case M_SOURCE:
    return handle_source(c, rev);
  case M_SINK:
  case M_SINK_REPLY:
    return handle_sink(c, rev);
  }
  return -1;
}

int main(int argc, char **argv) {
  const char *listen_spec = NULL;
  double max_seconds = 3600;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen_spec = argv[++i];
    } else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) {
      max_seconds = strtod(argv[++i], NULL);
    } else {
      usage(argv[0]);
    }
  }
  if (listen_spec == NULL || max_seconds <= 0) {
    usage(argv[0]);
  }
  for (size_t i = 0; i < sizeof pattern; i++) {
    pattern[i] = (unsigned char)(i % PATTERN_PERIOD);
  }

  if (pipe(sig_pipe) != 0 || set_nonblock(sig_pipe[0]) != 0 ||
      set_nonblock(sig_pipe[1]) != 0) {
    perror("wsmux-testsrv: pipe");
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  unsigned port = 0;
  int lfd = listen_on(listen_spec, &port);
  if (lfd < 0) {
    return 1;
  }
  printf("listening %u\n", port);
  fflush(stdout);

  struct conn **conns = NULL;
  struct pollfd *pfds = NULL;
  size_t nconns = 0, cap = 0;
  unsigned long next_id = 1;
  const double deadline = now_s() + max_seconds;
  int status = 0;

  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) {
      fprintf(stderr, "wsmux-testsrv: --max-seconds reached, exiting\n");
      status = 2;
      break;
    }
    if (cap < nconns + 2) {
      size_t ncap = cap ? cap : 64;
      while (ncap < nconns + 2) {
        ncap *= 2;
      }
      struct pollfd *np = realloc(pfds, ncap * sizeof *np);
      if (np == NULL) {
        fprintf(stderr, "wsmux-testsrv: out of memory\n");
        status = 1;
        break;
      }
      pfds = np;
      cap = ncap;
    }
    pfds[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
    pfds[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (size_t i = 0; i < nconns; i++) {
      pfds[i + 2] =
          (struct pollfd){.fd = conns[i]->fd, .events = conn_events(conns[i])};
    }
    int timeout_ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
    int rc = poll(pfds, nconns + 2, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      perror("wsmux-testsrv: poll");
      status = 1;
      break;
    }
    if (pfds[0].revents & POLLIN) {
      char sigs[16];
      ssize_t n = read(sig_pipe[0], sigs, sizeof sigs);
      int stop = 0;
      for (ssize_t i = 0; i < n; i++) {
        if (sigs[i] == 't') {
          stop = 1;
        } else if (sigs[i] == 'u' && lfd >= 0) {
          close(lfd);
          lfd = -1;
          printf("listener closed\n");
          fflush(stdout);
        }
      }
      if (stop) {
        break;
      }
    }
    /* Service the existing connections first (the array grows below). */
    size_t kept = 0;
    for (size_t i = 0; i < nconns; i++) {
      struct conn *c = conns[i];
      short rev = pfds[i + 2].revents;
      if (rev != 0 && conn_step(c, rev) != 0) {
        conn_free(c);
        continue;
      }
      conns[kept++] = c;
    }
    nconns = kept;
    if (lfd >= 0 && (pfds[1].revents & POLLIN)) {
      for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
          if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            perror("wsmux-testsrv: accept");
          }
          break;
        }
        struct conn *c = calloc(1, sizeof *c);
        struct conn **nc = realloc(conns, (nconns + 1) * sizeof *nc);
        if (c == NULL || nc == NULL || set_nonblock(fd) != 0) {
          fprintf(stderr, "wsmux-testsrv: cannot take a connection\n");
          free(c);
          if (nc != NULL) {
            conns = nc;
          }
          close(fd);
          break;
        }
        conns = nc;
        c->fd = fd;
        c->id = next_id++;
        c->mode = M_CMD;
        conns[nconns++] = c;
      }
    }
  }

  for (size_t i = 0; i < nconns; i++) {
    conn_free(conns[i]);
  }
  free(conns);
  free(pfds);
  if (lfd >= 0) {
    close(lfd);
  }
  return status;
}
