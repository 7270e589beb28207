/*
 * wsmux-faultrelay: a TCP relay that injects network faults, for the e2e
 * tests of dead-link detection, reconnect and resume (proxy -> relay ->
 * edge).
 *
 * Usage:
 *   wsmux-faultrelay --listen HOST:PORT --to HOST:PORT --control PATH
 *                    [--max-seconds S]
 *   wsmux-faultrelay --send PATH COMMAND [ARG...]
 *
 * Relay mode: every connection accepted on --listen is forwarded to --to,
 * both directions, half-closes (EOF) and resets passed on. PORT 0 lets the
 * kernel pick; the real port is printed on stdout as "listening PORT"
 * (flushed) once the relay listens and the control socket is ready.
 * Single-threaded, poll(2), non-blocking sockets, TCP_NODELAY. Each
 * direction of a connection has a 256 KiB buffer; a side is not read while
 * its buffer is full.
 *
 * Commands, one per line, on the UNIX stream socket --control PATH (created
 * at start, removed at exit). Each line is answered on the same connection
 * with one line, "ok[ DETAILS]" or "error: MESSAGE", once the command has
 * taken effect:
 *   cut            reset (RST: SO_LINGER 0, both ends) every connection and,
 *                  until restore, accept and immediately reset new ones:
 *                  the network is down.
 *   reset          reset every current connection; new ones are forwarded.
 *   stall          keep the connections open but forward nothing, in either
 *                  direction, and accept nothing new (the kernel's backlog
 *                  holds new connections) until restore: a stalled path.
 *   delay MS PCT   hold PCT % (0-100, decimals allowed) of the chunks read
 *                  (one read = one chunk, at most 64 KiB) for MS ms; later
 *                  chunks of the same direction wait behind a held one, so
 *                  the byte order is kept.
 *   throttle BPS   forward at most BPS bytes per second in each direction
 *                  (shared by all connections); 0 = off.
 *   restore        normal forwarding again: ends cut, stall, delay and
 *                  throttle; held chunks are released at once.
 *   retarget PORT  new connections go to PORT on the --to host (existing
 *                  ones stay where they are); restore keeps the target.
 *   corrupt FROM TO  once: in the next chunk read downstream (from --to
 *                  towards the client) that holds the bytes FROM, overwrite
 *                  their first occurrence with TO (hex, the same length,
 *                  1-32 bytes); for a plain ws:// edge, whose frames are
 *                  readable, to play an edge that breaks the protocol.
 *                  restore disarms it.
 *   stats          "ok accepted=N refused=N open=N up=BYTES down=BYTES
 *                  held=N port=PORT mode=M corrupted=N": connections
 *                  forwarded, reset at accept (cut), open now; bytes
 *                  written upstream (client to --to) and downstream; chunks
 *                  held by delay; the current target port; mode: normal or
 *                  cut,stall,delay,throttle,corrupt (armed); corruptions
 *                  done.
 * Stderr gets one line per connection event and per command.
 *
 * Send mode: connects to the control socket PATH, sends the arguments
 * joined by spaces as one command, prints the answer on stdout. Exit 0 when
 * the answer starts with "ok", 1 on "error: ...", 2 when the relay cannot be
 * reached or does not answer within 10 s.
 *
 * Signals: SIGTERM/SIGINT exit 0. The process exits by itself (status 2)
 * after --max-seconds (default 3600), so a test killed hard never leaves it
 * running forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/text.h"

#define BUF_CAP (256 * 1024) /* per direction of a connection */
#define IO_CHUNK (64 * 1024) /* at most one chunk per read */
#define SEG_MAX 1024         /* held chunks in flight per direction */
#define CTL_LINE_MAX 256
#define CTL_OUT_MAX 4096
#define SEND_TIMEOUT_MS 10000
#define CORRUPT_MAX 32

/* One direction: bytes read from src, waiting to be written to dst, in a
 * ring buffer indexed by absolute stream offsets. Held chunks form a queue
 * of (start offset, release time): bytes from the first held chunk on wait
 * until its release time; a later chunk with an earlier release time
 * simply waits behind it. */
struct seg {
  uint64_t start;
  int64_t release_ms;
};

struct dir {
  unsigned char *buf;
  uint64_t in, out; /* bytes read from src / written to dst */
  struct seg segs[SEG_MAX];
  size_t seg_head, seg_len;
  int src_eof;  /* EOF read from src */
  int dst_shut; /* shutdown(SHUT_WR) done on dst */
};

struct pair {
  unsigned long id;
  int fd[2];       /* [0] the accepted client, [1] the upstream (--to) */
  int connecting;  /* upstream connect in progress */
  struct dir d[2]; /* d[0]: fd[0] -> fd[1] (up), d[1]: fd[1] -> fd[0] */
};

struct ctl {
  int fd;
  char in[CTL_LINE_MAX];
  size_t inlen;
  char out[CTL_OUT_MAX];
  size_t outlen, outoff;
  int eof;      /* the client closed its side, or we will close */
  int too_long; /* discarding the rest of an over-long line */
};

static struct {
  int cut, stall;
  int64_t delay_ms;
  double delay_pct;
  uint64_t throttle;
  double tokens[2];
  int64_t tokens_at_ms;
  uint64_t accepted, refused, bytes[2], held;
  struct sockaddr_storage to;
  socklen_t tolen;
  char to_host[256];
  unsigned long next_id;
  struct pair **pairs;
  size_t npairs;
  uint64_t rng;
  unsigned char corrupt_from[CORRUPT_MAX], corrupt_to[CORRUPT_MAX];
  size_t corrupt_len; /* armed when > 0 */
  uint64_t corrupted;
} g;

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  char c = 't';
  ssize_t r = write(sig_pipe[1], &c, 1);
  (void)r;
  errno = saved;
}

static void logf_(const char *fmt, ...) {
  va_list ap;
  char line[512];
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "wsmux-faultrelay: %s\n", line);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    return -1;
  }
  return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Close with SO_LINGER 0: the peer gets a RST, not a FIN. */
static void rst_close(int fd) {
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

/* xorshift64*: uniform in [0, 100). */
static double rnd_pct(void) {
  g.rng ^= g.rng >> 12;
  g.rng ^= g.rng << 25;
  g.rng ^= g.rng >> 27;
  uint64_t v = g.rng * 0x2545F4914F6CDD1DULL;
  return (double)(v >> 11) / 9007199254740992.0 * 100.0;
}

static void usage(void) {
  fprintf(stderr, "usage: wsmux-faultrelay --listen HOST:PORT --to HOST:PORT "
                  "--control PATH [--max-seconds S]\n"
                  "       wsmux-faultrelay --send PATH COMMAND [ARG...]\n");
  exit(1);
}

static int split_hostport(const char *spec, char *host, size_t hostlen,
                          const char **port) {
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= hostlen || colon[1] == '\0') {
    return -1;
  }
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  *port = colon + 1;
  return 0;
}

static int resolve(const char *spec, int passive, struct sockaddr_storage *ss,
                   socklen_t *sl, char *host, size_t hostlen) {
  const char *port;
  if (split_hostport(spec, host, hostlen, &port) != 0) {
    logf_("bad address '%s' (want HOST:PORT)", spec);
    return -1;
  }
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    logf_("%s: %s", spec, gai_strerror(rc));
    return -1;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static unsigned addr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6) {
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  }
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void addr_set_port(struct sockaddr_storage *ss, unsigned port) {
  if (ss->ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  } else {
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  }
}

static int listen_tcp(const char *spec, unsigned *port_out) {
  struct sockaddr_storage ss;
  socklen_t sl;
  char host[256];
  if (resolve(spec, 1, &ss, &sl, host, sizeof host) != 0) {
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) {
    logf_("socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 512) != 0 ||
      set_nonblock(fd) != 0) {
    logf_("listen on %s: %s", spec, strerror(errno));
    close(fd);
    return -1;
  }
  sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    logf_("getsockname: %s", strerror(errno));
    close(fd);
    return -1;
  }
  *port_out = addr_port(&ss);
  return fd;
}

static int unix_addr(const char *path, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path) {
    logf_("control path too long (max %zu bytes): %s", sizeof sa->sun_path - 1,
          path);
    return -1;
  }
  memcpy(sa->sun_path, path, strlen(path) + 1);
  return 0;
}

static int listen_unix(const char *path) {
  struct sockaddr_un sa;
  if (unix_addr(path, &sa) != 0) {
    return -1;
  }
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      logf_("%s exists and is not a socket", path);
      return -1;
    }
    unlink(path); /* a stale socket of an earlier run */
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    logf_("socket(AF_UNIX): %s", strerror(errno));
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
      set_nonblock(fd) != 0) {
    logf_("control socket %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- directions ---------------------------------------------------------- */

static size_t dir_used(const struct dir *d) {
  return (size_t)(d->in - d->out);
}

static int dir_can_read(const struct dir *d) {
  return !d->src_eof && dir_used(d) < BUF_CAP && d->seg_len < SEG_MAX;
}

/* Bytes that may be written now: up to the first held chunk still held. */
static size_t dir_releasable(struct dir *d, int64_t now) {
  while (d->seg_len > 0 && d->segs[d->seg_head].release_ms <= now) {
    d->seg_head = (d->seg_head + 1) % SEG_MAX;
    d->seg_len--;
  }
  uint64_t limit = d->seg_len > 0 ? d->segs[d->seg_head].start : d->in;
  return (size_t)(limit - d->out);
}

/* A chunk starting at offset start was just read: maybe hold it. */
static void dir_chunk(struct dir *d, uint64_t start, int64_t now) {
  int64_t rel = 0;
  if (g.delay_ms > 0 && g.delay_pct > 0 && rnd_pct() < g.delay_pct) {
    rel = now + g.delay_ms;
    g.held++;
  }
  if (d->seg_len > 0) {
    const struct seg *last = &d->segs[(d->seg_head + d->seg_len - 1) % SEG_MAX];
    if (rel <= last->release_ms) {
      return; /* waits behind the last held chunk anyway */
    }
  } else if (rel == 0) {
    return;
  }
  d->segs[(d->seg_head + d->seg_len) % SEG_MAX] =
      (struct seg){.start = start, .release_ms = rel};
  d->seg_len++;
}

static int64_t dir_next_release(const struct dir *d) {
  return d->seg_len > 0 ? d->segs[d->seg_head].release_ms : INT64_MAX;
}

/* ---- throttle ------------------------------------------------------------ */

static double throttle_cap(void) {
  double cap = (double)g.throttle / 10.0;
  return cap < 1.0 ? 1.0 : cap;
}

static void throttle_refill(int64_t now) {
  if (g.throttle == 0) {
    g.tokens_at_ms = now;
    return;
  }
  double add = (double)(now - g.tokens_at_ms) * (double)g.throttle / 1000.0;
  g.tokens_at_ms = now;
  for (int k = 0; k < 2; k++) {
    g.tokens[k] += add;
    if (g.tokens[k] > throttle_cap()) {
      g.tokens[k] = throttle_cap();
    }
  }
}

/* Bytes direction k may write now (SIZE_MAX when not throttled). */
static size_t throttle_allow(int k) {
  if (g.throttle == 0) {
    return SIZE_MAX;
  }
  return g.tokens[k] >= 1.0 ? (size_t)g.tokens[k] : 0;
}

/* When direction k will have enough tokens for a worthwhile write. */
static int64_t throttle_wake(int k, int64_t now) {
  double want = throttle_cap() < 4096.0 ? throttle_cap() : 4096.0;
  double ms = (want - g.tokens[k]) * 1000.0 / (double)g.throttle;
  return now + (ms < 1.0 ? 1 : (int64_t)ms + 1);
}

/* ---- connections --------------------------------------------------------- */

static const char *side_name(int i) {
  return i == 0 ? "client" : "upstream";
}

static void pair_free(struct pair *p, int reset) {
  for (int i = 0; i < 2; i++) {
    if (p->fd[i] >= 0) {
      if (reset) {
        rst_close(p->fd[i]);
      } else {
        close(p->fd[i]);
      }
    }
    free(p->d[i].buf);
  }
  free(p);
}

static void pair_close(struct pair *p, int reset, const char *why) {
  logf_("conn %lu: %s (up %llu, down %llu bytes)", p->id, why,
        (unsigned long long)p->d[0].out, (unsigned long long)p->d[1].out);
  pair_free(p, reset);
}

static int pair_add(struct pair *p) {
  struct pair **np = realloc(g.pairs, (g.npairs + 1) * sizeof *np);
  if (np == NULL) {
    return -1;
  }
  g.pairs = np;
  g.pairs[g.npairs++] = p;
  return 0;
}

static void pair_new(int cfd) {
  struct pair *p = calloc(1, sizeof *p);
  if (p == NULL || set_nonblock(cfd) != 0) {
    logf_("cannot take a connection: %s", strerror(errno));
    free(p);
    rst_close(cfd);
    return;
  }
  p->id = g.next_id++;
  p->fd[0] = cfd;
  p->fd[1] = -1;
  g.accepted++;
  set_nodelay(cfd);
  p->d[0].buf = malloc(BUF_CAP);
  p->d[1].buf = malloc(BUF_CAP);
  int ufd = socket(g.to.ss_family, SOCK_STREAM, 0);
  if (p->d[0].buf == NULL || p->d[1].buf == NULL || ufd < 0 ||
      set_nonblock(ufd) != 0) {
    logf_("conn %lu: cannot set up: %s", p->id, strerror(errno));
    if (ufd >= 0) {
      close(ufd);
    }
    pair_free(p, 1);
    return;
  }
  p->fd[1] = ufd;
  set_nodelay(ufd);
  if (connect(ufd, (struct sockaddr *)&g.to, g.tolen) == 0) {
    p->connecting = 0;
  } else if (errno == EINPROGRESS) {
    p->connecting = 1;
  } else {
    logf_("conn %lu: connect to %s:%u: %s; client reset", p->id, g.to_host,
          addr_port(&g.to), strerror(errno));
    pair_free(p, 1);
    return;
  }
  if (pair_add(p) != 0) {
    logf_("conn %lu: out of memory", p->id);
    pair_free(p, 1);
    return;
  }
  logf_("conn %lu: accepted, forwarding to %s:%u", p->id, g.to_host,
        addr_port(&g.to));
}

static short pair_events(struct pair *p, int i, int64_t now) {
  short ev = 0;
  if (i == 1 && p->connecting) {
    return POLLOUT;
  }
  if (dir_can_read(&p->d[i]) && !(i == 1 && p->connecting)) {
    ev |= POLLIN;
  }
  /* fd[i] is the destination of d[1 - i]. */
  struct dir *d = &p->d[1 - i];
  if (!d->dst_shut && dir_releasable(d, now) > 0 && throttle_allow(1 - i) > 0) {
    ev |= POLLOUT;
  }
  return ev;
}

/* Moves what it can in direction k. Returns -1 when the pair is gone
 * (closed here), 0 otherwise. */
/* The first occurrence of corrupt_from in buf[0..n), or NULL. */
static unsigned char *find_bytes(unsigned char *buf, size_t n) {
  for (size_t i = 0; i + g.corrupt_len <= n; i++) {
    if (memcmp(buf + i, g.corrupt_from, g.corrupt_len) == 0) {
      return buf + i;
    }
  }
  return NULL;
}

static int dir_step(struct pair *p, int k, short rev_src, int64_t now) {
  struct dir *d = &p->d[k];
  int src = p->fd[k], dst = p->fd[1 - k];
  int src_ready = (rev_src & (POLLIN | POLLHUP | POLLERR)) != 0;
  if (src_ready && dir_can_read(d) && !(k == 1 && p->connecting)) {
    size_t idx = (size_t)(d->in % BUF_CAP);
    size_t room = BUF_CAP - dir_used(d);
    if (room > BUF_CAP - idx) {
      room = BUF_CAP - idx;
    }
    if (room > IO_CHUNK) {
      room = IO_CHUNK;
    }
    ssize_t n = read(src, d->buf + idx, room);
    if (n > 0 && k == 1 && g.corrupt_len > 0) {
      unsigned char *at = find_bytes(d->buf + idx, (size_t)n);
      if (at != NULL) {
        memcpy(at, g.corrupt_to, g.corrupt_len);
        logf_("conn %lu: corrupted %zu bytes at downstream offset %llu", p->id,
              g.corrupt_len,
              (unsigned long long)(d->in + (uint64_t)(at - (d->buf + idx))));
        g.corrupt_len = 0;
        g.corrupted++;
      }
    }
    if (n > 0) {
      dir_chunk(d, d->in, now);
      d->in += (uint64_t)n;
    } else if (n == 0) {
      d->src_eof = 1;
    } else if (errno != EAGAIN && errno != EINTR) {
      char why[256];
      snprintf(why, sizeof why, "%s read failed: %.100s; reset both",
               side_name(k), strerror(errno));
      pair_close(p, 1, why);
      return -1;
    }
  }
  if (k == 0 && p->connecting) {
    return 0; /* nothing is written upstream before the connect is done */
  }
  size_t n = dir_releasable(d, now);
  size_t allow = throttle_allow(k);
  size_t idx = (size_t)(d->out % BUF_CAP);
  if (n > BUF_CAP - idx) {
    n = BUF_CAP - idx;
  }
  if (n > allow) {
    n = allow;
  }
  if (n > 0 && !d->dst_shut) {
    ssize_t w = write(dst, d->buf + idx, n);
    if (w > 0) {
      d->out += (uint64_t)w;
      g.bytes[k] += (uint64_t)w;
      if (g.throttle != 0) {
        g.tokens[k] -= (double)w;
      }
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      char why[256];
      snprintf(why, sizeof why, "%s write failed: %.100s; reset both",
               side_name(1 - k), strerror(errno));
      pair_close(p, 1, why);
      return -1;
    }
  }
  if (d->src_eof && d->out == d->in && !d->dst_shut) {
    shutdown(dst, SHUT_WR);
    d->dst_shut = 1;
  }
  return 0;
}

static int sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    return errno;
  }
  return err;
}

/* Returns -1 when the pair is gone (closed here). */
static int pair_step(struct pair *p, const short rev[2], int64_t now) {
  if (p->connecting) {
    if (rev[1] & (POLLOUT | POLLERR | POLLHUP)) {
      int err = sock_error(p->fd[1]);
      if (err != 0) {
        char why[256];
        snprintf(why, sizeof why,
                 "connect to %.64s:%u failed: %.100s; client reset", g.to_host,
                 addr_port(&g.to), strerror(err));
        pair_close(p, 1, why);
        return -1;
      }
      p->connecting = 0;
    }
  }
  for (int i = 0; i < 2; i++) {
    if ((rev[i] & POLLERR) && !(i == 1 && p->connecting)) {
      int err = sock_error(p->fd[i]);
      if (err != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s error: %.100s; reset both", side_name(i),
                 strerror(err));
        pair_close(p, 1, why);
        return -1;
      }
    }
  }
  for (int k = 0; k < 2; k++) {
    if (dir_step(p, k, rev[k], now) != 0) {
      return -1;
    }
  }
  if (p->d[0].dst_shut && p->d[1].dst_shut) {
    pair_close(p, 0, "closed (EOF both ways)");
    return -1;
  }
  return 0;
}

static size_t reset_all(void) {
  size_t n = g.npairs;
  for (size_t i = 0; i < g.npairs; i++) {
    pair_close(g.pairs[i], 1, "reset by command");
  }
  g.npairs = 0;
  return n;
}

/* ---- control ------------------------------------------------------------- */

static void ctl_reply(struct ctl *c, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  if ((size_t)n > sizeof line - 2) {
    n = (int)(sizeof line - 2);
  }
  line[n++] = '\n';
  if (c->outlen - c->outoff == 0) {
    c->outlen = c->outoff = 0;
  }
  if (c->outlen + (size_t)n > CTL_OUT_MAX) {
    memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
    c->outlen -= c->outoff;
    c->outoff = 0;
  }
  if (c->outlen + (size_t)n > CTL_OUT_MAX) {
    c->eof = 1; /* a client that never reads its answers */
    return;
  }
  memcpy(c->out + c->outlen, line, (size_t)n);
  c->outlen += (size_t)n;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
  char *end = NULL;
  if (s == NULL || *s < '0' || *s > '9') {
    return -1;
  }
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) {
    return -1;
  }
  *out = v;
  return 0;
}

static void mode_string(char *buf, size_t len) {
  buf[0] = '\0';
  const char *names[5] = {"cut", "stall", "delay", "throttle", "corrupt"};
  int on[5] = {g.cut, g.stall, g.delay_ms > 0 && g.delay_pct > 0,
               g.throttle != 0, g.corrupt_len > 0};
  for (int i = 0; i < 5; i++) {
    if (on[i]) {
      size_t used = strlen(buf);
      snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
    }
  }
  if (buf[0] == '\0') {
    snprintf(buf, len, "normal");
  }
}

static void ctl_command(struct ctl *c, char *line, int64_t now) {
  char *argv[4] = {NULL, NULL, NULL, NULL};
  int argc = 0;
  char *save = NULL;
  for (char *t = strtok_r(line, " \t\r", &save); t != NULL;
       t = strtok_r(NULL, " \t\r", &save)) {
    if (argc == 4) {
      ctl_reply(c, "error: too many arguments");
      return;
    }
    argv[argc++] = t;
  }
  if (argc == 0) {
    ctl_reply(c, "error: empty command");
    return;
  }
  const char *cmd = argv[0];
  uint64_t a = 0, b = 0;
  char mode[64];
  if (strcmp(cmd, "cut") == 0 && argc == 1) {
    g.cut = 1;
    size_t n = reset_all();
    ctl_reply(c, "ok reset %zu", n);
  } else if (strcmp(cmd, "reset") == 0 && argc == 1) {
    size_t n = reset_all();
    ctl_reply(c, "ok reset %zu", n);
  } else if (strcmp(cmd, "stall") == 0 && argc == 1) {
    g.stall = 1;
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "delay") == 0 && argc == 3) {
    char *end = NULL;
    double pct = strtod(argv[2], &end);
    if (parse_u64(argv[1], 600000, &a) != 0 || end == argv[2] || *end != '\0' ||
        !(pct >= 0 && pct <= 100)) {
      ctl_reply(c, "error: usage: delay MS PERCENT (MS 0-600000, PERCENT "
                   "0-100)");
      return;
    }
    g.delay_ms = (int64_t)a;
    g.delay_pct = pct;
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "throttle") == 0 && argc == 2) {
    if (parse_u64(argv[1], UINT64_C(1) << 40, &a) != 0) {
      ctl_reply(c, "error: usage: throttle BYTES_PER_SEC (0 = off)");
      return;
    }
    g.throttle = a;
    g.tokens[0] = g.tokens[1] = 0;
    g.tokens_at_ms = now;
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "restore") == 0 && argc == 1) {
    g.cut = g.stall = 0;
    g.delay_ms = 0;
    g.delay_pct = 0;
    g.throttle = 0;
    g.corrupt_len = 0;
    for (size_t i = 0; i < g.npairs; i++) {
      g.pairs[i]->d[0].seg_len = 0;
      g.pairs[i]->d[1].seg_len = 0;
    }
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "retarget") == 0 && argc == 2) {
    if (parse_u64(argv[1], 65535, &b) != 0 || b == 0) {
      ctl_reply(c, "error: usage: retarget PORT (1-65535)");
      return;
    }
    addr_set_port(&g.to, (unsigned)b);
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "corrupt") == 0 && argc == 3) {
    size_t hf = strlen(argv[1]), lf = hf / 2;
    if (lf == 0 || lf > CORRUPT_MAX || strlen(argv[2]) != hf ||
        text_hex_decode(argv[1], hf, g.corrupt_from, lf) != 0 ||
        text_hex_decode(argv[2], hf, g.corrupt_to, lf) != 0) {
      g.corrupt_len = 0;
      ctl_reply(c, "error: usage: corrupt FROM_HEX TO_HEX (the same length, "
                   "1-32 bytes)");
      return;
    }
    g.corrupt_len = lf;
    ctl_reply(c, "ok");
  } else if (strcmp(cmd, "stats") == 0 && argc == 1) {
    mode_string(mode, sizeof mode);
    ctl_reply(c,
              "ok accepted=%llu refused=%llu open=%zu up=%llu down=%llu "
              "held=%llu port=%u mode=%s corrupted=%llu",
              (unsigned long long)g.accepted, (unsigned long long)g.refused,
              g.npairs, (unsigned long long)g.bytes[0],
              (unsigned long long)g.bytes[1], (unsigned long long)g.held,
              addr_port(&g.to), mode, (unsigned long long)g.corrupted);
  } else {
    ctl_reply(c,
              "error: unknown command or wrong arguments: '%.64s' (cut, "
              "reset, stall, delay MS PERCENT, throttle BYTES_PER_SEC, "
              "restore, retarget PORT, corrupt FROM TO, stats)",
              cmd);
  }
}

static short ctl_events(const struct ctl *c) {
  short ev = 0;
  if (!c->eof && c->outlen - c->outoff < CTL_OUT_MAX / 2) {
    ev |= POLLIN;
  }
  if (c->outlen > c->outoff) {
    ev |= POLLOUT;
  }
  return ev;
}

/* Returns -1 when the control connection is to be closed. */
static int ctl_step(struct ctl *c, short rev, int64_t now) {
  if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->eof) {
    char buf[512];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n == 0) {
      c->eof = 1;
    } else if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        return -1;
      }
    }
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        if (c->too_long) {
          c->too_long = 0;
          ctl_reply(c, "error: command line too long");
        } else {
          c->in[c->inlen] = '\0';
          char shown[CTL_LINE_MAX];
          memcpy(shown, c->in, c->inlen + 1);
          ctl_command(c, c->in, now);
          size_t last = c->outlen;
          while (last > c->outoff && c->out[last - 1] == '\n') {
            last--;
          }
          size_t first = last;
          while (first > c->outoff && c->out[first - 1] != '\n') {
            first--;
          }
          logf_("command '%s': %.*s", shown, (int)(last - first),
                c->out + first);
        }
        c->inlen = 0;
      } else if (c->inlen + 1 >= CTL_LINE_MAX) {
        c->too_long = 1;
      } else if (!c->too_long) {
        c->in[c->inlen++] = buf[i];
      }
    }
  }
  if (c->outlen > c->outoff) {
    ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
    if (n > 0) {
      c->outoff += (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (c->eof && c->outoff == c->outlen) {
    return -1;
  }
  return 0;
}

/* ---- send mode ----------------------------------------------------------- */

static int send_mode(const char *path, int argc, char **argv) {
  char line[CTL_LINE_MAX];
  size_t len = 0;
  for (int i = 0; i < argc; i++) {
    size_t n = strlen(argv[i]);
    if (len + n + 2 > sizeof line) {
      fprintf(stderr, "wsmux-faultrelay: command too long\n");
      return 2;
    }
    if (i > 0) {
      line[len++] = ' ';
    }
    memcpy(line + len, argv[i], n);
    len += n;
  }
  line[len++] = '\n';
  struct sockaddr_un sa;
  if (unix_addr(path, &sa) != 0) {
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      set_nonblock(fd) != 0) {
    fprintf(stderr, "wsmux-faultrelay: cannot reach the relay at %s: %s\n",
            path, strerror(errno));
    if (fd >= 0) {
      close(fd);
    }
    return 2;
  }
  const int64_t deadline = now_ms() + SEND_TIMEOUT_MS;
  size_t off = 0;
  char ans[CTL_OUT_MAX];
  size_t alen = 0;
  int shut = 0;
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      fprintf(stderr, "wsmux-faultrelay: no answer from %s within %d s\n", path,
              SEND_TIMEOUT_MS / 1000);
      close(fd);
      return 2;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (off < len) {
      pfd.events |= POLLOUT;
    }
    if (poll(&pfd, 1, (int)left) < 0) {
      if (errno == EINTR) {
        continue;
      }
      close(fd);
      return 2;
    }
    if (off < len && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(fd, line + off, len - off);
      if (n > 0) {
        off += (size_t)n;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        fprintf(stderr, "wsmux-faultrelay: write to %s: %s\n", path,
                strerror(errno));
        close(fd);
        return 2;
      }
    }
    if (off == len && !shut) {
      shutdown(fd, SHUT_WR);
      shut = 1;
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(fd, ans + alen, sizeof ans - 1 - alen);
      if (n > 0) {
        alen += (size_t)n;
      } else if (n == 0 || alen == sizeof ans - 1) {
        break;
      } else if (errno != EAGAIN && errno != EINTR) {
        fprintf(stderr, "wsmux-faultrelay: read from %s: %s\n", path,
                strerror(errno));
        close(fd);
        return 2;
      }
    }
  }
  close(fd);
  ans[alen] = '\0';
  if (alen == 0) {
    fprintf(stderr, "wsmux-faultrelay: the relay closed without answering\n");
    return 2;
  }
  fputs(ans, stdout);
  if (ans[alen - 1] != '\n') {
    fputc('\n', stdout);
  }
  return strncmp(ans, "ok", 2) == 0 && (ans[2] == '\n' || ans[2] == ' ') ? 0
                                                                         : 1;
}

/* ---- main loop ----------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (*cap >= need) {
    return 0;
  }
  size_t ncap = *cap ? *cap : 64;
  while (ncap < need) {
    ncap *= 2;
  }
  void *np = realloc(*arr, ncap * elem);
  if (np == NULL) {
    return -1;
  }
  *arr = np;
  *cap = ncap;
  return 0;
}

int main(int argc, char **argv) {
  const char *listen_spec = NULL, *to_spec = NULL, *ctl_path = NULL;
  double max_seconds = 3600;
  if (argc >= 2 && strcmp(argv[1], "--send") == 0) {
    if (argc < 4) {
      usage();
    }
    signal(SIGPIPE, SIG_IGN);
    return send_mode(argv[2], argc - 3, argv + 3);
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen_spec = argv[++i];
    } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
      to_spec = argv[++i];
    } else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
      ctl_path = argv[++i];
    } else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) {
      max_seconds = strtod(argv[++i], NULL);
    } else {
      usage();
    }
  }
  if (listen_spec == NULL || to_spec == NULL || ctl_path == NULL ||
      max_seconds <= 0) {
    usage();
  }
  if (resolve(to_spec, 0, &g.to, &g.tolen, g.to_host, sizeof g.to_host) != 0) {
    return 1;
  }
  g.next_id = 1;
  g.rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
  if (g.rng == 0) {
    g.rng = 1;
  }

  if (pipe(sig_pipe) != 0 || set_nonblock(sig_pipe[0]) != 0 ||
      set_nonblock(sig_pipe[1]) != 0) {
    logf_("pipe: %s", strerror(errno));
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  unsigned port = 0;
  int lfd = listen_tcp(listen_spec, &port);
  if (lfd < 0) {
    return 1;
  }
  int cfd = listen_unix(ctl_path);
  if (cfd < 0) {
    close(lfd);
    return 1;
  }
  printf("listening %u\n", port);
  fflush(stdout);
  logf_("listening on port %u, forwarding to %s:%u, control %s", port,
        g.to_host, addr_port(&g.to), ctl_path);

  struct ctl **ctls = NULL;
  size_t nctls = 0;
  struct pollfd *pfds = NULL;
  size_t pcap = 0;
  const int64_t deadline = now_ms() + (int64_t)(max_seconds * 1000);
  int status = 0;

  for (;;) {
    int64_t now = now_ms();
    if (now >= deadline) {
      logf_("--max-seconds reached, exiting");
      status = 2;
      break;
    }
    throttle_refill(now);
    size_t base = 3 + nctls;
    if (grow((void **)&pfds, &pcap, base + 2 * g.npairs, sizeof *pfds) != 0) {
      logf_("out of memory");
      status = 1;
      break;
    }
    pfds[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
    pfds[1] = (struct pollfd){.fd = g.stall ? -1 : lfd, .events = POLLIN};
    pfds[2] = (struct pollfd){.fd = cfd, .events = POLLIN};
    for (size_t i = 0; i < nctls; i++) {
      pfds[3 + i] =
          (struct pollfd){.fd = ctls[i]->fd, .events = ctl_events(ctls[i])};
    }
    int64_t wake = deadline;
    for (size_t i = 0; i < g.npairs; i++) {
      struct pair *p = g.pairs[i];
      for (int k = 0; k < 2; k++) {
        short ev = g.stall ? 0 : pair_events(p, k, now);
        /* An fd we want nothing from is left out: a hang-up or error on it
         * would otherwise wake poll again and again. */
        pfds[base + 2 * i + (size_t)k] =
            (struct pollfd){.fd = ev ? p->fd[k] : -1, .events = ev};
        if (g.stall) {
          continue;
        }
        struct dir *d = &p->d[k];
        if (dir_next_release(d) < wake) {
          wake = dir_next_release(d);
        }
        if (g.throttle != 0 && !d->dst_shut && dir_releasable(d, now) > 0 &&
            throttle_allow(k) == 0 && throttle_wake(k, now) < wake) {
          wake = throttle_wake(k, now);
        }
      }
    }
    int64_t tmo = wake - now;
    if (tmo > 1000) {
      tmo = 1000;
    }
    if (tmo < 0) {
      tmo = 0;
    }
    size_t npairs_polled = g.npairs;
    int rc = poll(pfds, base + 2 * npairs_polled, (int)tmo);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      logf_("poll: %s", strerror(errno));
      status = 1;
      break;
    }
    now = now_ms();
    throttle_refill(now);
    if (pfds[0].revents & POLLIN) {
      logf_("signal: exiting");
      break;
    }
    /* Connections first: commands below may reset them all. */
    if (!g.stall) {
      size_t kept = 0;
      for (size_t i = 0; i < npairs_polled; i++) {
        struct pair *p = g.pairs[i];
        short rev[2] = {pfds[base + 2 * i].revents,
                        pfds[base + 2 * i + 1].revents};
        if (pair_step(p, rev, now) == 0) {
          g.pairs[kept++] = p;
        }
      }
      g.npairs = kept;
    }
    size_t kept = 0;
    for (size_t i = 0; i < nctls; i++) {
      struct ctl *c = ctls[i];
      if (ctl_step(c, pfds[3 + i].revents, now) != 0) {
        close(c->fd);
        free(c);
        continue;
      }
      ctls[kept++] = c;
    }
    nctls = kept;
    if (pfds[2].revents & POLLIN) {
      for (;;) {
        int fd = accept(cfd, NULL, NULL);
        if (fd < 0) {
          break;
        }
        struct ctl *c = calloc(1, sizeof *c);
        struct ctl **nc = realloc(ctls, (nctls + 1) * sizeof *nc);
        if (nc != NULL) {
          ctls = nc;
        }
        if (c == NULL || nc == NULL || set_nonblock(fd) != 0) {
          logf_("cannot take a control connection");
          free(c);
          close(fd);
          break;
        }
        c->fd = fd;
        ctls[nctls++] = c;
        /* Answer a command that is already there in this same round. */
        if (ctl_step(c, POLLIN, now) != 0) {
          close(c->fd);
          free(c);
          nctls--;
        }
      }
    }
    if (!g.stall && (pfds[1].revents & POLLIN)) {
      for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
          if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            logf_("accept: %s", strerror(errno));
          }
          break;
        }
        if (g.cut) {
          g.refused++;
          logf_("connection reset at accept (cut)");
          rst_close(fd);
          continue;
        }
        pair_new(fd);
      }
    }
  }

  for (size_t i = 0; i < g.npairs; i++) {
    pair_free(g.pairs[i], 0);
  }
  free(g.pairs);
  for (size_t i = 0; i < nctls; i++) {
    close(ctls[i]->fd);
    free(ctls[i]);
  }
  free(ctls);
  free(pfds);
  close(lfd);
  close(cfd);
  unlink(ctl_path);
  return status;
}
