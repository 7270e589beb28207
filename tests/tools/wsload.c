/*
 * wsmux-wsload: the load tool of scripts/bench: a sink/echo server, a bulk
 * sender, a round-trip prober, a new-stream prober and an idle-stream
 * holder. Plain epoll, non-blocking sockets, 256 KiB reads and writes, no
 * per-byte work, so that it is not the bottleneck of what it measures.
 *
 * Usage:
 *   wsmux-wsload sink --listen HOST:PORT [--max-seconds S]
 *   wsmux-wsload send --connect HOST:PORT (--bytes N | --seconds S)
 *                     [--streams K]
 *   wsmux-wsload rtt --connect HOST:PORT --count N [--interval-us U]
 *                    [--warmup W]
 *   wsmux-wsload connect-rtt --connect HOST:PORT --count N
 *                            [--interval-us U]
 *   wsmux-wsload idle --connect HOST:PORT --streams N [--parallel P]
 *                     [--max-seconds S]
 * Sizes take a K/M/G suffix (powers of 1024): --bytes 4G.
 *
 * The wire protocol between the clients and the sink (so that one sink
 * port serves every kind of connection, as one wsmux service can only have
 * one upstream): each connection starts with one hello byte.
 *   'E'  echo: the sink echoes every byte, the hello byte included.
 *   'S'  sink: an 8-byte big-endian count N follows, then the payload; the
 *        sink discards the payload and, once exactly N bytes have arrived,
 *        answers one byte 'K' (so the sender's clock stops when the last
 *        byte has really arrived, and the count is checked). N = 2^64-1:
 *        never answered (an endless sender).
 * Anything else, or more than N payload bytes, and the sink closes the
 * connection.
 *
 * Modes:
 *   sink         accepts any number of connections; prints "listening PORT"
 *                on stdout once it listens; runs until SIGTERM/SIGINT
 *                (exit 0) or --max-seconds (default 3600; exit 2). Each
 *                echo connection is read only while its echo is written.
 *   send         opens K streams (default 1), then sends --bytes N in all
 *                (N/K each) and waits for every 'K'; or, with --seconds S,
 *                sends without end until S seconds have passed or
 *                SIGTERM/SIGINT. Prints "ready" on stdout once every stream
 *                is connected, then at the end one JSON line:
 *                {"mode":"send","streams":K,"bytes":B,"seconds":T,
 *                 "mib_per_s":R}; the clock starts once all are connected.
 *   rtt          one stream: the hello, W (default 10) unrecorded pings,
 *                then N pings of 1 byte each answered by its echo, U µs
 *                apart (default 0). JSON: {"mode":"rtt","count":N,
 *                "min_us","p50_us","p90_us","p99_us","max_us","mean_us"}.
 *   connect-rtt  N times: connect, send the hello, receive its echo, close;
 *                the time of each from before connect(2) to the echo. Same
 *                JSON with "mode":"connect-rtt".
 *   idle         opens N streams (at most P, default 64, waiting for their
 *                echo at once): each sends the hello and waits for its
 *                echo, so it is open end to end. Then prints
 *                {"mode":"idle","streams":N,"seconds":T} on stdout and
 *                holds them until SIGTERM/SIGINT (exit 0, or 3 when a
 *                stream was closed by the other side meanwhile) or
 *                --max-seconds (default 3600; exit 2).
 * Percentiles are nearest-rank over the recorded samples. Every socket
 * operation of the probers times out after 30 s. Errors go to stderr with
 * exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_BUF (256 * 1024)
#define HELLO_ECHO 'E'
#define HELLO_SINK 'S'
#define SINK_ACK 'K'
#define SINK_HDR_LEN 9 /* 'S' + 8-byte count */
#define COUNT_ENDLESS UINT64_MAX
#define EVENTS_MAX 256
#define LISTEN_BACKLOG 4096
#define PROBE_TIMEOUT_S 30
#define DEFAULT_MAX_SECONDS 3600
#define DEFAULT_WARMUP 10
#define DEFAULT_PARALLEL 64

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_DEADLINE = 2, EXIT_CLOSED = 3 };

typedef struct {
  const char *mode;
  const char *listen;
  const char *connect;
  uint64_t bytes;
  double seconds;
  unsigned long streams;
  unsigned long count;
  unsigned long interval_us;
  unsigned long warmup;
  unsigned long parallel;
  double max_seconds;
} opts_t;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("wsmux-wsload: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(EXIT_ERR);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    die("fcntl: %s", strerror(errno));
}

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void set_timeouts(int fd) {
  struct timeval tv = {.tv_sec = PROBE_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void resolve(const char *spec, int passive, struct sockaddr_storage *ss,
                    socklen_t *sl) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= sizeof host ||
      colon[1] == '\0')
    die("bad address '%s' (want HOST:PORT)", spec);
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0)
    die("%s: %s", spec, gai_strerror(rc));
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  freeaddrinfo(res);
}

/* A blocking connected socket, or exit. */
static int connect_to(const struct sockaddr_storage *ss, socklen_t sl) {
  int fd = socket(ss->ss_family, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  if (connect(fd, (const struct sockaddr *)ss, sl) != 0)
    die("connect: %s", strerror(errno));
  return fd;
}

static void write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
    b += w;
    n -= (size_t)w;
  }
}

/* Read exactly one byte and check it. */
static void read_byte(int fd, uint8_t want, const char *what) {
  uint8_t c;
  ssize_t r;
  do {
    r = read(fd, &c, 1);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    die("%s: read: %s", what, errno == EAGAIN ? "timed out" : strerror(errno));
  if (r == 0)
    die("%s: connection closed by the other side", what);
  if (c != want)
    die("%s: got byte 0x%02x, want 0x%02x", what, c, want);
}

/* SIGTERM/SIGINT as events of the loop, not as asynchronous handlers. */
static int signal_fd(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
    die("sigprocmask: %s", strerror(errno));
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    die("signalfd: %s", strerror(errno));
  return fd;
}

static void ep_ctl(int ep, int op, int fd, uint32_t events, void *ptr) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(ep, op, fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
}

/* Milliseconds epoll_wait may block before the deadline (-1: none). */
static int wait_ms(double deadline) {
  if (deadline <= 0)
    return -1;
  double left = deadline - now_s();
  return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* --- percentiles ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double rank(const double *sorted, size_t n, double p) {
  size_t k = (size_t)(p * (double)n + 0.999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return sorted[k - 1];
}

static void print_latency(const char *mode, double *us, size_t n) {
  qsort(us, n, sizeof *us, cmp_double);
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += us[i];
  printf("{\"mode\":\"%s\",\"count\":%zu,\"min_us\":%.1f,\"p50_us\":%.1f,"
         "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
         mode, n, us[0], rank(us, n, 0.50), rank(us, n, 0.90),
         rank(us, n, 0.99), us[n - 1], sum / (double)n);
}

static void pause_us(unsigned long us) {
  if (us == 0)
    return;
  struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
                        .tv_nsec = (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* --- sink ---------------------------------------------------------------- */

typedef enum { SK_HELLO, SK_HEADER, SK_PAYLOAD, SK_DONE, SK_ECHO } sink_state_t;

typedef struct sink_conn {
  struct sink_conn *prev, *next; /* every open connection, for the exit */
  int fd;
  sink_state_t state;
  uint8_t hdr[SINK_HDR_LEN];
  size_t hdr_len;
  uint64_t want; /* payload bytes announced */
  uint64_t got;
  uint8_t *pend; /* echo bytes the socket did not take yet */
  size_t pend_len, pend_off;
} sink_conn_t;

typedef struct {
  int ep;
  unsigned long accepted, open;
  uint8_t *buf;
  sink_conn_t *conns;
} sink_t;

static void sink_close(sink_t *sk, sink_conn_t *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    sk->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  close(c->fd); /* also leaves the epoll set */
  free(c->pend);
  free(c);
  sk->open--;
}

/* Echo n bytes; keep what the socket does not take and stop reading until
 * it is written. Returns -1 when the connection is gone. */
static int sink_echo(sink_t *sk, sink_conn_t *c, const uint8_t *p, size_t n) {
  ssize_t w = write(c->fd, p, n);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    return -1;
  size_t done = w > 0 ? (size_t)w : 0;
  if (done == n)
    return 0;
  c->pend = malloc(n - done);
  if (c->pend == NULL)
    die("out of memory");
  memcpy(c->pend, p + done, n - done);
  c->pend_len = n - done;
  c->pend_off = 0;
  ep_ctl(sk->ep, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
  return 0;
}

static int sink_flush(sink_t *sk, sink_conn_t *c) {
  ssize_t w = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
  if (w < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  c->pend_off += (size_t)w;
  if (c->pend_off == c->pend_len) {
    free(c->pend);
    c->pend = NULL;
    ep_ctl(sk->ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
  }
  return 0;
}

/* Consume n received bytes of a sink ('S') connection. */
static int sink_take(sink_conn_t *c, const uint8_t *p, size_t n) {
  while (n > 0 && c->state == SK_HEADER) {
    c->hdr[c->hdr_len++] = *p++;
    n--;
    if (c->hdr_len == SINK_HDR_LEN) {
      c->want = 0;
      for (int i = 1; i < SINK_HDR_LEN; i++)
        c->want = c->want << 8 | c->hdr[i];
      c->state = SK_PAYLOAD;
    }
  }
  if (n == 0)
    return 0;
  if (c->state != SK_PAYLOAD || n > c->want - c->got)
    return -1; /* more than announced */
  c->got += n;
  if (c->got == c->want && c->want != COUNT_ENDLESS) {
    uint8_t ack = SINK_ACK;
    if (write(c->fd, &ack, 1) != 1)
      return -1;
    c->state = SK_DONE;
  }
  return 0;
}

static int sink_read(sink_t *sk, sink_conn_t *c) {
  ssize_t r = read(c->fd, sk->buf, IO_BUF);
  if (r < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  if (r == 0)
    return -1;
  const uint8_t *p = sk->buf;
  size_t n = (size_t)r;
  if (c->state == SK_HELLO) {
    if (p[0] == HELLO_ECHO) {
      c->state = SK_ECHO;
      set_nodelay(c->fd);
    } else if (p[0] == HELLO_SINK) {
      c->state = SK_HEADER;
    } else {
      return -1;
    }
  }
  if (c->state == SK_ECHO)
    return sink_echo(sk, c, p, n);
  return sink_take(c, p, n);
}

static void sink_accept(sink_t *sk, int lfd) {
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
          errno == ECONNABORTED)
        return;
      /* EMFILE and the like: report, keep serving the others. */
      fprintf(stderr, "wsmux-wsload: accept: %s\n", strerror(errno));
      return;
    }
    set_nonblock(fd);
    sink_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
      die("out of memory");
    c->fd = fd;
    c->next = sk->conns;
    if (c->next != NULL)
      c->next->prev = c;
    sk->conns = c;
    ep_ctl(sk->ep, EPOLL_CTL_ADD, fd, EPOLLIN, c);
    sk->accepted++;
    sk->open++;
  }
}

static int run_sink(const opts_t *o) {
  struct sockaddr_storage ss;
  socklen_t sl;
  resolve(o->listen, 1, &ss, &sl);
  int lfd = socket(ss.ss_family, SOCK_STREAM, 0);
  int one = 1;
  if (lfd < 0)
    die("socket: %s", strerror(errno));
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&ss, sl) != 0 ||
      listen(lfd, LISTEN_BACKLOG) != 0)
    die("listen on %s: %s", o->listen, strerror(errno));
  set_nonblock(lfd);
  sl = sizeof ss;
  getsockname(lfd, (struct sockaddr *)&ss, &sl);
  unsigned port = ss.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);

  sink_t sk = {.ep = epoll_create1(EPOLL_CLOEXEC), .buf = malloc(IO_BUF)};
  if (sk.ep < 0 || sk.buf == NULL)
    die("epoll_create1 / malloc failed");
  int sfd = signal_fd();
  /* The listener and the signalfd are told apart by these two addresses. */
  int lfd_tag = 0, sfd_tag = 0;
  ep_ctl(sk.ep, EPOLL_CTL_ADD, lfd, EPOLLIN, &lfd_tag);
  ep_ctl(sk.ep, EPOLL_CTL_ADD, sfd, EPOLLIN, &sfd_tag);
  printf("listening %u\n", port);
  fflush(stdout);

  double deadline = now_s() + o->max_seconds;
  struct epoll_event evs[EVENTS_MAX];
  int status = -1;
  while (status < 0) {
    int n = epoll_wait(sk.ep, evs, EVENTS_MAX, wait_ms(deadline));
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    if (now_s() >= deadline) {
      fprintf(stderr, "wsmux-wsload: --max-seconds reached, exiting\n");
      status = EXIT_DEADLINE;
      break;
    }
    for (int i = 0; i < n && status < 0; i++) {
      void *tag = evs[i].data.ptr;
      if (tag == &sfd_tag) {
        fprintf(stderr, "wsmux-wsload: sink: %lu connections, %lu open\n",
                sk.accepted, sk.open);
        status = EXIT_OK;
        continue;
      }
      if (tag == &lfd_tag) {
        sink_accept(&sk, lfd);
        continue;
      }
      sink_conn_t *c = tag;
      int rc = c->pend != NULL ? sink_flush(&sk, c) : sink_read(&sk, c);
      if (rc != 0)
        sink_close(&sk, c);
    }
  }
  while (sk.conns != NULL)
    sink_close(&sk, sk.conns);
  free(sk.buf);
  close(sk.ep);
  close(sfd);
  close(lfd);
  return status;
}

/* --- send ---------------------------------------------------------------- */

typedef struct {
  int fd;
  uint8_t hdr[SINK_HDR_LEN];
  size_t hdr_off;
  uint64_t left; /* payload bytes still to write */
  uint64_t sent;
  int acked;
} send_conn_t;

static void send_header(send_conn_t *c, uint64_t count) {
  c->hdr[0] = HELLO_SINK;
  for (int i = 0; i < 8; i++)
    c->hdr[1 + i] = (uint8_t)(count >> (56 - 8 * i));
}

/* Write what the socket takes. Returns -1 when the stream failed. */
static int send_some(send_conn_t *c, const uint8_t *buf) {
  if (c->hdr_off < SINK_HDR_LEN) {
    ssize_t w = write(c->fd, c->hdr + c->hdr_off, SINK_HDR_LEN - c->hdr_off);
    if (w < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->hdr_off += (size_t)w;
    if (c->hdr_off < SINK_HDR_LEN)
      return 0;
  }
  size_t n = c->left < IO_BUF ? (size_t)c->left : IO_BUF;
  ssize_t w = write(c->fd, buf, n);
  if (w < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  c->left -= (uint64_t)w;
  c->sent += (uint64_t)w;
  return 0;
}

static int run_send(const opts_t *o) {
  struct sockaddr_storage ss;
  socklen_t sl;
  resolve(o->connect, 0, &ss, &sl);
  int endless = o->seconds > 0;
  unsigned long k = o->streams;
  uint8_t *buf = malloc(IO_BUF);
  send_conn_t *cs = calloc(k, sizeof *cs);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (buf == NULL || cs == NULL || ep < 0)
    die("out of memory / epoll_create1");
  for (size_t i = 0; i < IO_BUF; i++)
    buf[i] = (uint8_t)(i * 131 + 7);
  int sfd = signal_fd();
  int sfd_tag = 0;
  ep_ctl(ep, EPOLL_CTL_ADD, sfd, EPOLLIN, &sfd_tag);
  for (unsigned long i = 0; i < k; i++) {
    send_conn_t *c = &cs[i];
    c->left =
        endless ? COUNT_ENDLESS : o->bytes / k + (i < o->bytes % k ? 1 : 0);
    send_header(c, c->left);
    c->fd = connect_to(&ss, sl);
    set_nonblock(c->fd);
  }
  printf("ready\n");
  fflush(stdout);
  double t0 = now_s();
  double deadline = endless ? t0 + o->seconds : 0;
  for (unsigned long i = 0; i < k; i++)
    ep_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, EPOLLOUT, &cs[i]);

  unsigned long done = 0;
  struct epoll_event evs[EVENTS_MAX];
  while (done < k) {
    int n = epoll_wait(ep, evs, EVENTS_MAX, wait_ms(deadline));
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    if (endless && now_s() >= deadline)
      break;
    int stop = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &sfd_tag) {
        stop = 1;
        continue;
      }
      send_conn_t *c = evs[i].data.ptr;
      if (c->left > 0 || c->hdr_off < SINK_HDR_LEN) {
        if (send_some(c, buf) != 0)
          die("stream %ld: write failed after %" PRIu64 " bytes: %s",
              (long)(c - cs), c->sent, strerror(errno));
        if (c->left == 0 && c->hdr_off == SINK_HDR_LEN)
          ep_ctl(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
        continue;
      }
      uint8_t ack;
      ssize_t r = read(c->fd, &ack, 1);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r != 1 || ack != SINK_ACK)
        die("stream %ld: no acknowledgement from the sink after %" PRIu64
            " bytes (%s)",
            (long)(c - cs), c->sent, r == 0 ? "closed" : "error");
      ep_ctl(ep, EPOLL_CTL_DEL, c->fd, 0, NULL);
      c->acked = 1;
      done++;
    }
    if (stop) {
      if (!endless)
        die("interrupted");
      break;
    }
  }
  double secs = now_s() - t0;
  uint64_t total = 0;
  for (unsigned long i = 0; i < k; i++) {
    total += cs[i].sent;
    close(cs[i].fd);
  }
  printf("{\"mode\":\"send\",\"streams\":%lu,\"bytes\":%" PRIu64
         ",\"seconds\":%.6f,\"mib_per_s\":%.1f}\n",
         k, total, secs, (double)total / 1048576.0 / secs);
  free(cs);
  free(buf);
  return EXIT_OK;
}

/* --- rtt, connect-rtt ---------------------------------------------------- */

static int run_rtt(const opts_t *o) {
  struct sockaddr_storage ss;
  socklen_t sl;
  resolve(o->connect, 0, &ss, &sl);
  double *us = malloc(o->count * sizeof *us);
  if (us == NULL)
    die("out of memory");
  int fd = connect_to(&ss, sl);
  set_nodelay(fd);
  set_timeouts(fd);
  uint8_t hello = HELLO_ECHO;
  write_all(fd, &hello, 1);
  read_byte(fd, HELLO_ECHO, "hello");
  for (unsigned long i = 0; i < o->warmup + o->count; i++) {
    uint8_t b = (uint8_t)i;
    double t0 = now_s();
    write_all(fd, &b, 1);
    read_byte(fd, b, "ping");
    double dt = (now_s() - t0) * 1e6;
    if (i >= o->warmup)
      us[i - o->warmup] = dt;
    pause_us(o->interval_us);
  }
  close(fd);
  print_latency("rtt", us, o->count);
  free(us);
  return EXIT_OK;
}

static int run_connect_rtt(const opts_t *o) {
  struct sockaddr_storage ss;
  socklen_t sl;
  resolve(o->connect, 0, &ss, &sl);
  double *us = malloc(o->count * sizeof *us);
  if (us == NULL)
    die("out of memory");
  for (unsigned long i = 0; i < o->count; i++) {
    double t0 = now_s();
    int fd = connect_to(&ss, sl);
    set_nodelay(fd);
    set_timeouts(fd);
    uint8_t hello = HELLO_ECHO;
    write_all(fd, &hello, 1);
    read_byte(fd, HELLO_ECHO, "new stream");
    us[i] = (now_s() - t0) * 1e6;
    close(fd);
    pause_us(o->interval_us);
  }
  print_latency("connect-rtt", us, o->count);
  free(us);
  return EXIT_OK;
}

/* --- idle ---------------------------------------------------------------- */

typedef struct {
  int fd;
  int open; /* its hello came back */
} idle_conn_t;

static int run_idle(const opts_t *o) {
  struct sockaddr_storage ss;
  socklen_t sl;
  resolve(o->connect, 0, &ss, &sl);
  unsigned long n = o->streams;
  idle_conn_t *cs = calloc(n, sizeof *cs);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (cs == NULL || ep < 0)
    die("out of memory / epoll_create1");
  int sfd = signal_fd();
  int sfd_tag = 0;
  ep_ctl(ep, EPOLL_CTL_ADD, sfd, EPOLLIN, &sfd_tag);
  double t0 = now_s();
  double deadline = t0 + o->max_seconds;
  unsigned long started = 0, ready = 0, closed = 0;
  int announced = 0;
  struct epoll_event evs[EVENTS_MAX];
  for (;;) {
    while (started < n && started - ready < o->parallel) {
      idle_conn_t *c = &cs[started++];
      c->fd = connect_to(&ss, sl);
      set_nonblock(c->fd);
      uint8_t hello = HELLO_ECHO;
      if (write(c->fd, &hello, 1) != 1)
        die("stream %lu: hello: %s", started, strerror(errno));
      ep_ctl(ep, EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLRDHUP, c);
    }
    if (ready == n && !announced) {
      printf("{\"mode\":\"idle\",\"streams\":%lu,\"seconds\":%.3f}\n", n,
             now_s() - t0);
      fflush(stdout);
      announced = 1;
    }
    int k = epoll_wait(ep, evs, EVENTS_MAX, wait_ms(deadline));
    if (k < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    if (now_s() >= deadline) {
      fprintf(stderr, "wsmux-wsload: --max-seconds reached, exiting\n");
      return EXIT_DEADLINE;
    }
    for (int i = 0; i < k; i++) {
      if (evs[i].data.ptr == &sfd_tag) {
        for (unsigned long j = 0; j < started; j++)
          close(cs[j].fd);
        free(cs);
        if (closed > 0)
          fprintf(stderr, "wsmux-wsload: %lu streams were closed early\n",
                  closed);
        return closed > 0 ? EXIT_CLOSED : EXIT_OK;
      }
      idle_conn_t *c = evs[i].data.ptr;
      uint8_t b;
      ssize_t r = read(c->fd, &b, 1);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (!c->open && r == 1 && b == HELLO_ECHO) {
        c->open = 1;
        ready++;
        continue;
      }
      if (!c->open)
        die("stream %ld: no echo of its hello (%s)", (long)(c - cs),
            r == 0  ? "closed"
            : r < 0 ? strerror(errno)
                    : "wrong byte");
      /* An open stream that becomes readable was closed or misbehaves. */
      ep_ctl(ep, EPOLL_CTL_DEL, c->fd, 0, NULL);
      closed++;
    }
  }
}

/* --- arguments ----------------------------------------------------------- */

static void usage(void) {
  fputs("usage: wsmux-wsload sink --listen HOST:PORT [--max-seconds S]\n"
        "       wsmux-wsload send --connect HOST:PORT (--bytes N | --seconds "
        "S) [--streams K]\n"
        "       wsmux-wsload rtt --connect HOST:PORT --count N "
        "[--interval-us U] [--warmup W]\n"
        "       wsmux-wsload connect-rtt --connect HOST:PORT --count N "
        "[--interval-us U]\n"
        "       wsmux-wsload idle --connect HOST:PORT --streams N "
        "[--parallel P] [--max-seconds S]\n",
        stderr);
  exit(EXIT_ERR);
}

/* A positive size: digits with an optional K, M or G (powers of 1024). */
static uint64_t parse_size(const char *name, const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  uint64_t mul = 1;
  if (*end == 'K' || *end == 'k')
    mul = 1024;
  else if (*end == 'M' || *end == 'm')
    mul = 1024 * 1024;
  else if (*end == 'G' || *end == 'g')
    mul = 1024 * 1024 * 1024;
  if (mul != 1)
    end++;
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 ||
      v > UINT64_MAX / 2 / mul)
    die("%s: expected a positive size (digits, optional K/M/G), got '%s'", name,
        s);
  return (uint64_t)v * mul;
}

static double parse_seconds(const char *name, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0))
    die("%s: expected a positive number of seconds, got '%s'", name, s);
  return v;
}

static opts_t parse_args(int argc, char **argv) {
  if (argc < 2)
    usage();
  opts_t o = {.mode = argv[1],
              .streams = 1,
              .warmup = DEFAULT_WARMUP,
              .parallel = DEFAULT_PARALLEL,
              .max_seconds = DEFAULT_MAX_SECONDS};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (strcmp(a, "--listen") == 0)
      o.listen = v;
    else if (strcmp(a, "--connect") == 0)
      o.connect = v;
    else if (strcmp(a, "--bytes") == 0)
      o.bytes = parse_size(a, v);
    else if (strcmp(a, "--seconds") == 0)
      o.seconds = parse_seconds(a, v);
    else if (strcmp(a, "--max-seconds") == 0)
      o.max_seconds = parse_seconds(a, v);
    else if (strcmp(a, "--streams") == 0)
      o.streams = (unsigned long)parse_size(a, v);
    else if (strcmp(a, "--count") == 0)
      o.count = (unsigned long)parse_size(a, v);
    else if (strcmp(a, "--parallel") == 0)
      o.parallel = (unsigned long)parse_size(a, v);
    else if (strcmp(a, "--interval-us") == 0)
      o.interval_us = strcmp(v, "0") == 0 ? 0 : (unsigned long)parse_size(a, v);
    else if (strcmp(a, "--warmup") == 0)
      o.warmup = strcmp(v, "0") == 0 ? 0 : (unsigned long)parse_size(a, v);
    else
      usage();
  }
  return o;
}

int main(int argc, char **argv) {
  opts_t o = parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(o.mode, "sink") == 0) {
    if (o.listen == NULL)
      usage();
    return run_sink(&o);
  }
  if (o.connect == NULL)
    usage();
  if (strcmp(o.mode, "send") == 0) {
    if ((o.bytes == 0) == (o.seconds == 0))
      die("send: give exactly one of --bytes and --seconds");
    if (o.bytes > 0 && o.streams > o.bytes)
      die("send: more streams than bytes");
    return run_send(&o);
  }
  if (strcmp(o.mode, "rtt") == 0 || strcmp(o.mode, "connect-rtt") == 0) {
    if (o.count == 0)
      die("%s: --count is required", o.mode);
    return o.mode[0] == 'r' ? run_rtt(&o) : run_connect_rtt(&o);
  }
  if (strcmp(o.mode, "idle") == 0) {
    return run_idle(&o);
  }
  usage();
  return EXIT_ERR;
}
