/*
 * wsmux-wsraw: a raw WebSocket client for the e2e tests, written directly
 * on sockets and OpenSSL (no libwebsockets), so that it can send what a
 * well-behaved library refuses to: text messages, truncated or oversized
 * wsmux frames, broken WebSocket headers.
 *
 * Usage:
 *   wsmux-wsraw --connect HOST:PORT [--tls] [--ca FILE] [--insecure]
 *               --path P [--token T] [--subprotocol wsmux.v1|none|NAME]
 *               [--header "NAME: VALUE"]... [--script FILE|-] [--wait MS]
 *               [--no-pong] [--verbose] [--max-seconds S]
 *   wsmux-wsraw --connect HOST:PORT [--tls] [--ca FILE] [--insecure]
 *               --idle [--timeout S]
 *
 * Upgrade: sends the HTTP/1.1 upgrade (Sec-WebSocket-Protocol wsmux.v1
 * unless --subprotocol says otherwise, "none" leaves the header out;
 * Authorization: Bearer T with a non-empty --token; each --header line as
 * given, e.g. "X-Wsmux-Resume: HEX" to resume a session) and prints
 * "status NNN".
 * Anything but 101: prints the X-Wsmux-Error header as "X-Wsmux-Error: TEXT"
 * (when there is one) and exits 0 without running the script. 101: checks
 * Sec-WebSocket-Accept and the subprotocol, then runs the script.
 *
 * Script (one command per line; blank lines and lines starting with # are
 * skipped):
 *   send [HEX]             one binary message with these bytes (masked)
 *   sendtext TEXT          one text message: the rest of the line
 *   sendraw HEX            raw bytes on the socket (inside TLS with --tls),
 *                          e.g. a broken WebSocket header
 *   frame FRAME            one wsmux frame sent as one binary message
 *   frames FRAME ; FRAME ; ...   several frames in one binary message
 *       FRAME is TYPE STREAM [PAYLOAD] [flags=N] [reserved=N] [length=N]
 *       (docs/PROTOCOL.md section 2). TYPE: a name (OPEN, OPEN_OK,
 *       OPEN_FAIL, DATA, WINDOW, FIN, RST, PING, PONG, GOAWAY, HELLO,
 *       RESUME) or a number (0x42). STREAM: a number. PAYLOAD: hex digits,
 *       "-" for none, HEX*N for HEX repeated N times (DATA 1 00*65536), or
 *       such parts joined by "+". length= overrides the payload length
 *       written in the 12-byte header.
 *   expect-close CODE      read until a close frame arrives (within --wait);
 *                          print "close CODE REASON"; fail if the code
 *                          differs
 *   expect-frame TYPE STREAM [CODE]
 *                          read wsmux frames until one of that type and
 *                          stream arrives (within --wait), skipping (and
 *                          keeping for later expect-frames) the others;
 *                          print it decoded: "frame TYPE STREAM" plus
 *                          window=N (OPEN_OK, OPEN, WINDOW), code=NAME
 *                          reason=TEXT (RST, OPEN_FAIL; GOAWAY also
 *                          last=N), length=N (DATA), data=HEX (PING, PONG).
 *                          With CODE (name or number), fail if the frame's
 *                          code differs.
 *   ack STREAM             grant back the DATA bytes received on STREAM
 *                          since the last ack: one WINDOW frame with that
 *                          increment (fails when there are none), as a
 *                          client does once it has written them out
 *   expect-none TYPE STREAM
 *                          fail if such a frame was received and not taken
 *                          by an expect-frame. The edge answers a PING after
 *                          every frame sent before it, so "frame PING ...",
 *                          "expect-frame PONG 0", then expect-none checks
 *                          that nothing of the kind was sent in between.
 *   forbid TYPE STREAM     fail as soon as such a frame arrives from now on
 *                          (e.g. an RST for a stream whose late frames must
 *                          be ignored)
 *   sleep MS               wait, still reading (and answering PINGs)
 *   close [CODE [HEX]]     close (1000 "done"; or CODE with the reason
 *                          bytes HEX, PAYLOAD syntax as for frame, none
 *                          without HEX), wait for the server's close frame
 *                          (printed as "close CODE REASON")
 * At the end of the script an open connection is closed as by "close".
 * Every PING frame of the edge is answered with a PONG unless --no-pong;
 * WebSocket pings are always answered.
 *
 * --idle: connect (and do the TLS handshake with --tls), send nothing, and
 * print "closed after N ms" once the server closes the connection (counted
 * from the TCP connect; a close during the TLS handshake counts, since the
 * server's deadline covers the handshake too), or "still open after N ms"
 * and exit 1 after --timeout seconds (default 30).
 *
 * Exit status: 0 when the upgrade got an answer and every expectation held;
 * 1 with "wsmux-wsraw: [line N: ]MESSAGE" on stderr otherwise. --max-seconds
 * (default 120) bounds the whole run.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER_MAX (16 * 1024)
#define MSG_MAX (64u << 20)
#define FRAME_HEADER_LEN 12
#define FRAME_MAX_PAYLOAD 65536
/* Kept per received frame: enough for any reason text. */
#define KEEP_MAX 2048
#define QUEUE_MAX 100000
#define FORBID_MAX 64
#define ACK_MAX 1024
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static const char *const type_names[] = {
    [0x01] = "OPEN",   [0x02] = "OPEN_OK", [0x03] = "OPEN_FAIL",
    [0x04] = "DATA",   [0x05] = "WINDOW",  [0x06] = "FIN",
    [0x07] = "RST",    [0x08] = "PING",    [0x09] = "PONG",
    [0x0A] = "GOAWAY", [0x0B] = "HELLO",   [0x0C] = "RESUME"};
#define NTYPES (sizeof type_names / sizeof type_names[0])

static const char *const code_names[] = {
    "NO_ERROR", "PROTOCOL",    "FLOW_CONTROL",  "STREAM_CLOSED",
    "REFUSED",  "UNREACHABLE", "CONNECT_ERROR", "RESET",
    "INTERNAL", "LIMIT",       "SHUTDOWN",      "UNKNOWN_STREAM"};
#define NCODES (sizeof code_names / sizeof code_names[0])

typedef struct {
  uint8_t *p;
  size_t len, cap;
} buf_t;

/* A wsmux frame received from the server. */
typedef struct {
  uint8_t type, flags;
  uint16_t reserved;
  uint32_t stream;
  uint32_t len;     /* payload length */
  uint8_t *payload; /* the first min(len, KEEP_MAX) bytes */
} rframe_t;

static struct {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
  buf_t rx; /* raw bytes received, not yet parsed */
  size_t rxoff;
  int eof;
  /* --idle: the TCP connect's time; a close during the TLS handshake is
   * then the answer, not a failure. 0 otherwise. */
  int64_t idle_t0;
  /* WebSocket state */
  buf_t msg; /* message being reassembled */
  int msg_opcode;
  int close_sent;
  int close_got;
  int close_code;
  char close_reason[128];
  /* received wsmux frames not yet taken by expect-frame */
  rframe_t *q;
  size_t qlen, qcap;
  struct {
    int type;
    uint32_t stream;
  } forbid[FORBID_MAX];
  size_t nforbid;
  /* DATA bytes received per stream and not yet granted back by "ack" */
  struct {
    uint32_t stream;
    uint64_t bytes;
  } unacked[ACK_MAX];
  size_t nunacked;
  /* options */
  int auto_pong;
  int verbose;
  const char *headers[8]; /* --header lines */
  int nheaders;
  int wait_ms;
  int line; /* script line being run, for messages */
} g = {.fd = -1, .auto_pong = 1, .wait_ms = 10000};

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("wsmux-wsraw: ", stderr);
  if (g.line > 0) {
    fprintf(stderr, "line %d: ", g.line);
  }
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void note(const char *fmt, ...) {
  va_list ap;
  if (!g.verbose) {
    return;
  }
  va_start(ap, fmt);
  fputs("wsmux-wsraw: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void on_alarm(int sig) {
  static const char msg[] = "wsmux-wsraw: --max-seconds reached, giving up\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0) {
    /* nothing else to report it with */
  }
  _exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: wsmux-wsraw --connect HOST:PORT [--tls] [--ca FILE] "
                  "[--insecure] --path P [--token T] [--subprotocol "
                  "wsmux.v1|none|NAME] [--header \"NAME: VALUE\"]... [--script "
                  "FILE|-] [--wait MS] [--no-pong] "
                  "[--verbose] [--max-seconds S]\n"
                  "       wsmux-wsraw --connect HOST:PORT [--tls] [--ca FILE] "
                  "[--insecure] --idle [--timeout S]\n");
  exit(1);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(int64_t deadline) {
  int64_t left = deadline - now_ms();
  if (left <= 0) {
    return 0;
  }
  return left > 1000 ? 1000 : (int)left;
}

/* --- buffers and hex ---------------------------------------------------- */

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) {
    return;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) {
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (p == NULL) {
    die("out of memory");
  }
  b->p = p;
  b->cap = cap;
}

static void buf_add(buf_t *b, const void *data, size_t n) {
  buf_reserve(b, n);
  if (n > 0) {
    memcpy(b->p + b->len, data, n);
  }
  b->len += n;
}

static void buf_u8(buf_t *b, unsigned v) {
  uint8_t c = (uint8_t)v;
  buf_add(b, &c, 1);
}

static void buf_be(buf_t *b, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    buf_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
  }
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

static void hex_decode(buf_t *out, const char *s, size_t n) {
  if (n % 2 != 0) {
    die("odd number of hex digits in '%.*s'", (int)n, s);
  }
  for (size_t i = 0; i < n; i += 2) {
    int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
    if (hi < 0 || lo < 0) {
      die("not hex: '%.*s'", (int)n, s);
    }
    buf_u8(out, (unsigned)(hi << 4 | lo));
  }
}

static unsigned long parse_num(const char *s, unsigned long max,
                               const char *what) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
    die("bad %s '%s' (want a number up to %lu)", what, s, max);
  }
  return v;
}

/* PAYLOAD: "-", or parts joined by "+", each HEX or HEX*N. */
static void payload_decode(buf_t *out, const char *spec) {
  if (strcmp(spec, "-") == 0) {
    return;
  }
  const char *p = spec;
  while (*p != '\0') {
    size_t n = strcspn(p, "+");
    const char *star = memchr(p, '*', n);
    size_t hexlen = star ? (size_t)(star - p) : n;
    unsigned long times = 1;
    if (star != NULL) {
      char count[24];
      size_t clen = n - hexlen - 1;
      if (clen == 0 || clen >= sizeof count) {
        die("bad repeat count in '%s'", spec);
      }
      memcpy(count, star + 1, clen);
      count[clen] = '\0';
      times = parse_num(count, MSG_MAX, "repeat count");
    }
    buf_t part = {0};
    hex_decode(&part, p, hexlen);
    for (unsigned long i = 0; i < times; i++) {
      buf_add(out, part.p, part.len);
    }
    free(part.p);
    p += n;
    if (*p == '+') {
      p++;
    }
  }
}

static void hex_print(char *dst, size_t cap, const uint8_t *p, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 3 <= cap; i++) {
    o += (size_t)snprintf(dst + o, cap - o, "%02x", p[i]);
  }
  if (cap > 0) {
    dst[o < cap ? o : cap - 1] = '\0';
  }
}

static const char *type_name(unsigned t, char *tmp, size_t cap) {
  if (t < NTYPES && type_names[t] != NULL) {
    return type_names[t];
  }
  snprintf(tmp, cap, "0x%02x", t);
  return tmp;
}

static int type_parse(const char *s) {
  for (size_t i = 0; i < NTYPES; i++) {
    if (type_names[i] != NULL && strcasecmp(s, type_names[i]) == 0) {
      return (int)i;
    }
  }
  return (int)parse_num(s, 255, "frame type");
}

static int code_parse(const char *s) {
  for (size_t i = 0; i < NCODES; i++) {
    if (strcasecmp(s, code_names[i]) == 0) {
      return (int)i;
    }
  }
  return (int)parse_num(s, 65535, "code");
}

static const char *code_name(unsigned c, char *tmp, size_t cap) {
  if (c < NCODES) {
    return code_names[c];
  }
  snprintf(tmp, cap, "%u", c);
  return tmp;
}

/* --- socket and TLS I/O ------------------------------------------------- */

static const char *ssl_errors(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (e == 0) {
    return errno ? strerror(errno) : "connection closed";
  }
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

static void wait_fd(short events, int64_t deadline) {
  struct pollfd pfd = {.fd = g.fd, .events = events};
  int rc = poll(&pfd, 1, ms_left(deadline));
  if (rc < 0 && errno != EINTR) {
    die("poll: %s", strerror(errno));
  }
}

/*
 * Read what is available into g.rx, waiting until the deadline. Returns the
 * number of bytes read, 0 on EOF (g.eof set), -1 when the deadline passed.
 */
static long conn_read(int64_t deadline) {
  uint8_t tmp[64 * 1024];
  if (g.eof) {
    return 0;
  }
  for (;;) {
    long n;
    if (g.ssl != NULL) {
      ERR_clear_error();
      errno = 0;
      int r = SSL_read(g.ssl, tmp, (int)sizeof tmp);
      if (r > 0) {
        n = r;
      } else {
        int e = SSL_get_error(g.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          if (now_ms() >= deadline) {
            return -1;
          }
          wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
          continue;
        }
        /* close_notify, a TCP EOF or a reset: the server is gone. */
        note("TLS read ended: %s",
             e == SSL_ERROR_ZERO_RETURN ? "close_notify" : ssl_errors());
        g.eof = 1;
        return 0;
      }
    } else {
      n = read(g.fd, tmp, sizeof tmp);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (now_ms() >= deadline) {
          return -1;
        }
        wait_fd(POLLIN, deadline);
        continue;
      }
      if (n <= 0) {
        note("read ended: %s", n == 0 ? "EOF" : strerror(errno));
        g.eof = 1;
        return 0;
      }
    }
    buf_add(&g.rx, tmp, (size_t)n);
    return n;
  }
}

/* Write everything, reading meanwhile so that a server that blocks on us
 * cannot deadlock the test. Returns 0, or -1 when the connection is gone. */
static int conn_write(const uint8_t *p, size_t n, int64_t deadline) {
  size_t off = 0;
  while (off < n) {
    long w;
    short want = POLLOUT;
    if (g.ssl != NULL) {
      ERR_clear_error();
      int chunk = n - off > (1u << 30) ? (1 << 30) : (int)(n - off);
      int r = SSL_write(g.ssl, p + off, chunk);
      if (r > 0) {
        w = r;
      } else {
        int e = SSL_get_error(g.ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          note("TLS write failed: %s", ssl_errors());
          return -1;
        }
        want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        w = 0;
      }
    } else {
      w = write(g.fd, p + off, n - off);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        note("write failed: %s", strerror(errno));
        return -1;
      }
      if (w < 0) {
        w = 0;
      }
    }
    off += (size_t)w;
    if (off == n) {
      break;
    }
    if (now_ms() >= deadline) {
      die("could not send %zu bytes within %d ms", n, g.wait_ms);
    }
    struct pollfd pfd = {.fd = g.fd, .events = (short)(want | POLLIN)};
    int rc = poll(&pfd, 1, ms_left(deadline));
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc > 0 && (pfd.revents & POLLIN) && want == POLLOUT && !g.eof &&
        g.ssl == NULL) {
      (void)conn_read(now_ms());
    }
  }
  return 0;
}

static int connect_tcp(const char *spec, int64_t deadline, char *host,
                       size_t hostcap) {
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= hostcap || colon == spec ||
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
  if (fd < 0) {
    die("socket: %s", strerror(errno));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    die("fcntl: %s", strerror(errno));
  }
  rc = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) {
    die("connect to %s: %s", spec, strerror(errno));
  }
  g.fd = fd;
  while (rc != 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (now_ms() >= deadline) {
      die("connect to %s: timed out", spec);
    }
    rc = poll(&pfd, 1, ms_left(deadline));
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        die("connect to %s: %s", spec, strerror(err));
      }
      rc = 0;
    } else {
      rc = -1;
    }
  }
  return fd;
}

static void tls_start(const char *host, const char *ca, int insecure,
                      int64_t deadline) {
  static const unsigned char alpn[] = "\x08http/1.1";
  struct in6_addr a6;
  struct in_addr a4;
  int is_ip =
      inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;

  g.ctx = SSL_CTX_new(TLS_client_method());
  if (g.ctx == NULL) {
    die("TLS: %s", ssl_errors());
  }
  SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(g.ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (insecure) {
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
  } else {
    SSL_CTX_set_default_verify_paths(g.ctx);
    if (ca != NULL && SSL_CTX_load_verify_locations(g.ctx, ca, NULL) != 1) {
      die("TLS: cannot load CA %s: %s", ca, ssl_errors());
    }
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
  }
  g.ssl = SSL_new(g.ctx);
  if (g.ssl == NULL || SSL_set_fd(g.ssl, g.fd) != 1 ||
      SSL_set_alpn_protos(g.ssl, alpn, sizeof alpn - 1) != 0) {
    die("TLS: %s", ssl_errors());
  }
  if (!insecure) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(g.ssl);
    if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
               : X509_VERIFY_PARAM_set1_host(vp, host, 0)) != 1) {
      die("TLS: cannot check the name %s", host);
    }
  }
  if (!is_ip) {
    SSL_set_tlsext_host_name(g.ssl, host);
  }
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(g.ssl);
    if (r == 1) {
      break;
    }
    int e = SSL_get_error(g.ssl, r);
    if (g.idle_t0 > 0 &&
        (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
         (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
                                    SSL_R_UNEXPECTED_EOF_WHILE_READING))) {
      /* The server's deadline covers the handshake too: closing it there
       * is dropping an idle connection. */
      fprintf(stderr, "wsmux-wsraw: closed during the TLS handshake: %s\n",
              e == SSL_ERROR_SYSCALL && errno != 0 ? strerror(errno)
                                                   : "end of stream");
      say("closed after %lld ms", (long long)(now_ms() - g.idle_t0));
      exit(0);
    }
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      long v = SSL_get_verify_result(g.ssl);
      die("TLS handshake failed: %s%s%s", ssl_errors(),
          v != X509_V_OK ? ": " : "",
          v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    }
    if (now_ms() >= deadline) {
      die("TLS handshake timed out");
    }
    wait_fd(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
  }
}

/* --- WebSocket ---------------------------------------------------------- */

static int ws_send(int opcode, const uint8_t *p, size_t n) {
  buf_t f = {0};
  uint8_t mask[4];
  if (RAND_bytes(mask, sizeof mask) != 1) {
    die("RAND_bytes failed");
  }
  buf_u8(&f, 0x80u | (unsigned)opcode);
  if (n < 126) {
    buf_u8(&f, 0x80u | (unsigned)n);
  } else if (n <= 0xffff) {
    buf_u8(&f, 0x80u | 126);
    buf_be(&f, n, 2);
  } else {
    buf_u8(&f, 0x80u | 127);
    buf_be(&f, n, 8);
  }
  buf_add(&f, mask, 4);
  size_t at = f.len;
  buf_add(&f, p, n);
  for (size_t i = 0; i < n; i++) {
    f.p[at + i] ^= mask[i & 3];
  }
  int rc = conn_write(f.p, f.len, now_ms() + g.wait_ms);
  free(f.p);
  return rc;
}

static void ws_send_close_bytes(int code, const void *reason, size_t n) {
  buf_t b = {0};
  if (g.close_sent) {
    return;
  }
  g.close_sent = 1;
  if (code > 0) {
    buf_be(&b, (uint64_t)code, 2);
    buf_add(&b, reason, n);
  }
  (void)ws_send(0x8, b.p, b.len);
  free(b.p);
}

static void ws_send_close(int code, const char *reason) {
  ws_send_close_bytes(code, reason, strlen(reason));
}

static void describe(const rframe_t *f, char *out, size_t cap) {
  char tn[16], cn[16], hex[40];
  const uint8_t *p = f->payload;
  int o = snprintf(out, cap, "frame %s %u", type_name(f->type, tn, sizeof tn),
                   (unsigned)f->stream);
  size_t keep = f->len < KEEP_MAX ? f->len : KEEP_MAX;
  if (o < 0 || (size_t)o >= cap) {
    return;
  }
  out += o;
  cap -= (size_t)o;
  if (f->flags != 0 || f->reserved != 0) {
    o = snprintf(out, cap, " flags=0x%02x reserved=0x%04x", f->flags,
                 f->reserved);
    if (o < 0 || (size_t)o >= cap) {
      return;
    }
    out += o;
    cap -= (size_t)o;
  }
  switch (f->type) {
  case 0x01: /* OPEN */
  case 0x02: /* OPEN_OK */
  case 0x05: /* WINDOW */
    if (f->len == 4) {
      snprintf(out, cap, " window=%u",
               (unsigned)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                          (uint32_t)p[2] << 8 | p[3]));
      return;
    }
    break;
  case 0x03: /* OPEN_FAIL */
  case 0x07: /* RST */
    if (f->len >= 2) {
      snprintf(out, cap, " code=%s reason=%.*s",
               code_name((unsigned)(p[0] << 8 | p[1]), cn, sizeof cn),
               (int)(keep - 2), (const char *)p + 2);
      return;
    }
    break;
  case 0x0A: /* GOAWAY */
    if (f->len >= 6) {
      snprintf(out, cap, " last=%u code=%s reason=%.*s",
               (unsigned)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                          (uint32_t)p[2] << 8 | p[3]),
               code_name((unsigned)(p[4] << 8 | p[5]), cn, sizeof cn),
               (int)(keep - 6), (const char *)p + 6);
      return;
    }
    break;
  case 0x0B: /* HELLO: the session id, resumed or not, the grace */
    if (f->len == 21) {
      hex_print(hex, sizeof hex, p, 16);
      snprintf(out, cap, " session=%s resumed=%u grace=%u", hex, p[16] & 1u,
               (unsigned)((uint32_t)p[17] << 24 | (uint32_t)p[18] << 16 |
                          (uint32_t)p[19] << 8 | p[20]));
      return;
    }
    break;
  case 0x08: /* PING */
  case 0x09: /* PONG */
    hex_print(hex, sizeof hex, p, keep < 16 ? keep : 16);
    snprintf(out, cap, " data=%s", hex);
    return;
  case 0x04: /* DATA */
  case 0x06: /* FIN */
    break;
  default:
    break;
  }
  snprintf(out, cap, " length=%u", (unsigned)f->len);
}

/* Code of an RST, OPEN_FAIL or GOAWAY frame; -1 for other types. */
static int frame_code(const rframe_t *f) {
  if ((f->type == 0x03 || f->type == 0x07) && f->len >= 2) {
    return f->payload[0] << 8 | f->payload[1];
  }
  if (f->type == 0x0A && f->len >= 6) {
    return f->payload[4] << 8 | f->payload[5];
  }
  return -1;
}

/* The "ack" counter of a stream, created on first use. */
static uint64_t *unacked_of(uint32_t stream) {
  for (size_t i = 0; i < g.nunacked; i++) {
    if (g.unacked[i].stream == stream) {
      return &g.unacked[i].bytes;
    }
  }
  if (g.nunacked == ACK_MAX) {
    die("DATA on more than %d streams", ACK_MAX);
  }
  g.unacked[g.nunacked].stream = stream;
  g.unacked[g.nunacked].bytes = 0;
  return &g.unacked[g.nunacked++].bytes;
}

static void on_wsmux_frame(rframe_t *f) {
  char d[KEEP_MAX + 128];
  describe(f, d, sizeof d);
  if (f->type == 0x04) {
    *unacked_of(f->stream) += f->len;
  }
  note("received %s", d);
  for (size_t i = 0; i < g.nforbid; i++) {
    if (g.forbid[i].type == f->type && g.forbid[i].stream == f->stream) {
      die("received a forbidden frame: %s", d);
    }
  }
  if (f->type == 0x08 && f->stream == 0 && f->len == 8 && g.auto_pong &&
      !g.close_sent) {
    uint8_t pong[FRAME_HEADER_LEN + 8] = {0x09, 0, 0, 0, 0, 0,
                                          0,    0, 0, 0, 0, 8};
    memcpy(pong + FRAME_HEADER_LEN, f->payload, 8);
    (void)ws_send(0x2, pong, sizeof pong);
  }
  if (g.qlen == QUEUE_MAX) {
    die("more than %d received frames were never expected", QUEUE_MAX);
  }
  if (g.qlen == g.qcap) {
    size_t cap = g.qcap ? g.qcap * 2 : 64;
    rframe_t *q = realloc(g.q, cap * sizeof *q);
    if (q == NULL) {
      die("out of memory");
    }
    g.q = q;
    g.qcap = cap;
  }
  g.q[g.qlen++] = *f;
}

static void on_binary_message(const uint8_t *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    if (n - off < FRAME_HEADER_LEN) {
      die("the server sent a message that ends inside a frame header "
          "(%zu bytes left)",
          n - off);
    }
    const uint8_t *h = p + off;
    rframe_t f = {.type = h[0],
                  .flags = h[1],
                  .reserved = (uint16_t)(h[2] << 8 | h[3]),
                  .stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
                            (uint32_t)h[6] << 8 | h[7],
                  .len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                         (uint32_t)h[10] << 8 | h[11]};
    if (f.len > FRAME_MAX_PAYLOAD) {
      die("the server sent a frame with payload length %u", (unsigned)f.len);
    }
    if (n - off - FRAME_HEADER_LEN < f.len) {
      die("the server sent a message that ends inside a frame payload");
    }
    size_t keep = f.len < KEEP_MAX ? f.len : KEEP_MAX;
    f.payload = malloc(keep ? keep : 1);
    if (f.payload == NULL) {
      die("out of memory");
    }
    memcpy(f.payload, h + FRAME_HEADER_LEN, keep);
    on_wsmux_frame(&f);
    off += FRAME_HEADER_LEN + f.len;
  }
}

static void on_ws_frame(int fin, int opcode, const uint8_t *p, size_t n) {
  switch (opcode) {
  case 0x8: /* close */
    g.close_got = 1;
    g.close_code = n >= 2 ? (p[0] << 8 | p[1]) : 1005;
    snprintf(g.close_reason, sizeof g.close_reason, "%.*s",
             n > 2 ? (int)(n - 2) : 0, n > 2 ? (const char *)p + 2 : "");
    note("received close %d %s", g.close_code, g.close_reason);
    ws_send_close(n >= 2 ? g.close_code : 0, "");
    return;
  case 0x9: /* ping */
    if (!g.close_sent) {
      (void)ws_send(0xA, p, n);
    }
    return;
  case 0xA: /* pong */
    return;
  case 0x1:
  case 0x2:
    if (g.msg_opcode != 0) {
      die("the server started a message inside another one");
    }
    g.msg_opcode = opcode;
    g.msg.len = 0;
    break;
  case 0x0:
    if (g.msg_opcode == 0) {
      die("the server sent a continuation frame outside a message");
    }
    break;
  default:
    die("the server sent a WebSocket frame with opcode 0x%x", opcode);
  }
  if (g.msg.len + n > MSG_MAX) {
    die("the server sent a message larger than %u bytes", MSG_MAX);
  }
  buf_add(&g.msg, p, n);
  if (!fin) {
    return;
  }
  if (g.msg_opcode == 0x1) {
    say("text-message %.*s", (int)g.msg.len, (const char *)g.msg.p);
  } else {
    on_binary_message(g.msg.p, g.msg.len);
  }
  g.msg_opcode = 0;
}

/* Handle every complete WebSocket frame in g.rx. */
static void ws_parse(void) {
  for (;;) {
    const uint8_t *p = g.rx.p + g.rxoff;
    size_t avail = g.rx.len - g.rxoff;
    if (avail < 2) {
      break;
    }
    size_t hdr = 2;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) {
      hdr = 4;
    } else if (n == 127) {
      hdr = 10;
    }
    if (p[1] & 0x80) {
      hdr += 4;
    }
    if (avail < hdr) {
      break;
    }
    if (n == 126) {
      n = (uint64_t)p[2] << 8 | p[3];
    } else if (n == 127) {
      n = 0;
      for (int i = 0; i < 8; i++) {
        n = n << 8 | p[2 + i];
      }
    }
    if (p[0] & 0x70) {
      die("the server set RSV bits (0x%02x)", p[0]);
    }
    if (n > MSG_MAX) {
      die("the server sent a WebSocket frame of %llu bytes",
          (unsigned long long)n);
    }
    if (avail - hdr < n) {
      break;
    }
    uint8_t *payload = g.rx.p + g.rxoff + hdr;
    if (p[1] & 0x80) {
      const uint8_t *mask = p + hdr - 4;
      for (uint64_t i = 0; i < n; i++) {
        payload[i] ^= mask[i & 3];
      }
    }
    g.rxoff += hdr + (size_t)n;
    on_ws_frame(p[0] & 0x80, p[0] & 0x0f, payload, (size_t)n);
  }
  if (g.rxoff > 0) {
    memmove(g.rx.p, g.rx.p + g.rxoff, g.rx.len - g.rxoff);
    g.rx.len -= g.rxoff;
    g.rxoff = 0;
  }
}

/* Read and handle once; returns 0 on EOF, -1 at the deadline, else 1. */
static int pump(int64_t deadline) {
  long n = conn_read(deadline);
  if (n > 0) {
    ws_parse();
  }
  return n > 0 ? 1 : (int)n;
}

static void closed_die(const char *waiting) {
  if (g.close_got) {
    die("connection closed (close %d %s) while waiting for %s", g.close_code,
        g.close_reason, waiting);
  }
  die("connection closed without a close frame while waiting for %s", waiting);
}

/* --- script commands ---------------------------------------------------- */

#define MAX_ARGS 4096

static int split(char *line, char **argv, int max) {
  int n = 0;
  for (char *save = NULL, *t = strtok_r(line, " \t", &save); t != NULL;
       t = strtok_r(NULL, " \t", &save)) {
    if (n == max) {
      die("too many words");
    }
    argv[n++] = t;
  }
  return n;
}

/* Append one frame from words argv[0..argc) to out. */
static void build_frame(buf_t *out, char **argv, int argc) {
  long flags = 0, reserved = 0, length = -1;
  const char *payload = "-";
  int npos = 0;
  const char *pos[3] = {NULL, NULL, NULL};

  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "flags=", 6) == 0) {
      flags = (long)parse_num(argv[i] + 6, 255, "flags");
    } else if (strncmp(argv[i], "reserved=", 9) == 0) {
      reserved = (long)parse_num(argv[i] + 9, 65535, "reserved");
    } else if (strncmp(argv[i], "length=", 7) == 0) {
      length = (long)parse_num(argv[i] + 7, 0xffffffffUL, "length");
    } else if (npos < 3) {
      pos[npos++] = argv[i];
    } else {
      die("unexpected '%s' in a frame (want TYPE STREAM [PAYLOAD] [flags=N] "
          "[reserved=N] [length=N])",
          argv[i]);
    }
  }
  if (npos < 2) {
    die("a frame needs TYPE and STREAM");
  }
  if (npos == 3) {
    payload = pos[2];
  }
  buf_t pl = {0};
  payload_decode(&pl, payload);
  buf_u8(out, (unsigned)type_parse(pos[0]));
  buf_u8(out, (unsigned)flags);
  buf_be(out, (uint64_t)reserved, 2);
  buf_be(out, parse_num(pos[1], 0xffffffffUL, "stream id"), 4);
  buf_be(out, length >= 0 ? (uint64_t)length : pl.len, 4);
  buf_add(out, pl.p, pl.len);
  free(pl.p);
}

static void must_send(int opcode, const uint8_t *p, size_t n) {
  if (g.close_got || g.eof || ws_send(opcode, p, n) != 0) {
    closed_die("a send");
  }
}

static void cmd_frames(char **argv, int argc) {
  buf_t msg = {0};
  int start = 0;
  for (int i = 0; i <= argc; i++) {
    if (i == argc || strcmp(argv[i], ";") == 0) {
      build_frame(&msg, argv + start, i - start);
      start = i + 1;
    }
  }
  must_send(0x2, msg.p, msg.len);
  free(msg.p);
}

static void cmd_expect_close(int want) {
  int64_t deadline = now_ms() + g.wait_ms;
  while (!g.close_got) {
    int r = pump(deadline);
    if (r == 0 && !g.close_got) {
      die("connection closed without a close frame (want close %d)", want);
    }
    if (r < 0) {
      die("no close frame within %d ms (want close %d)", g.wait_ms, want);
    }
  }
  say("close %d %s", g.close_code, g.close_reason);
  if (g.close_code != want) {
    die("close code %d (%s), want %d", g.close_code, g.close_reason, want);
  }
}

static void cmd_expect_frame(int type, uint32_t stream, int code) {
  int64_t deadline = now_ms() + g.wait_ms;
  char tn[16], cn[16], want[64], d[KEEP_MAX + 128];
  size_t i = 0;

  snprintf(want, sizeof want, "%s on stream %u",
           type_name((unsigned)type, tn, sizeof tn), (unsigned)stream);
  for (;;) {
    for (; i < g.qlen; i++) {
      if (g.q[i].type == type && g.q[i].stream == stream) {
        break;
      }
    }
    if (i < g.qlen) {
      break;
    }
    if (g.close_got) {
      closed_die(want);
    }
    int r = pump(deadline);
    if (r == 0 && !g.close_got) {
      closed_die(want);
    }
    if (r < 0) {
      die("no %s within %d ms", want, g.wait_ms);
    }
  }
  rframe_t f = g.q[i];
  memmove(g.q + i, g.q + i + 1, (g.qlen - i - 1) * sizeof *g.q);
  g.qlen--;
  describe(&f, d, sizeof d);
  say("%s", d);
  if (code >= 0 && frame_code(&f) != code) {
    die("%s: want code %s", d, code_name((unsigned)code, cn, sizeof cn));
  }
  free(f.payload);
}

static void cmd_ack(uint32_t stream) {
  uint64_t *n = unacked_of(stream);
  uint8_t w[FRAME_HEADER_LEN + 4] = {0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4};
  if (*n == 0 || *n > 0xffffffffu) {
    die("ack %u: %llu DATA bytes to grant back", (unsigned)stream,
        (unsigned long long)*n);
  }
  for (int i = 0; i < 4; i++) {
    w[4 + i] = (uint8_t)(stream >> (24 - 8 * i));
    w[FRAME_HEADER_LEN + i] = (uint8_t)(*n >> (24 - 8 * i));
  }
  note("ack %u: WINDOW %llu", (unsigned)stream, (unsigned long long)*n);
  must_send(0x2, w, sizeof w);
  *n = 0;
}

static void cmd_expect_none(int type, uint32_t stream) {
  char d[KEEP_MAX + 128];
  for (size_t i = 0; i < g.qlen; i++) {
    if (g.q[i].type == type && g.q[i].stream == stream) {
      describe(&g.q[i], d, sizeof d);
      die("received %s", d);
    }
  }
}

static void cmd_sleep(long ms) {
  int64_t deadline = now_ms() + ms;
  while (now_ms() < deadline) {
    if (g.eof) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    (void)pump(deadline);
  }
}

/* Close with code and reason (NULL: 1000 "done"). */
static void cmd_close(int quiet, int code, const buf_t *reason) {
  int64_t deadline = now_ms() + 2000;
  if (!g.close_got && !g.eof) {
    if (reason != NULL) {
      ws_send_close_bytes(code, reason->p, reason->len);
    } else {
      ws_send_close(1000, "done");
    }
  }
  while (!g.close_got && !g.eof && pump(deadline) > 0) {
  }
  if (!quiet) {
    if (g.close_got) {
      say("close %d %s", g.close_code, g.close_reason);
    } else {
      die("no close frame within 2 s after closing");
    }
  }
}

static void run_line(char *line) {
  char *argv[MAX_ARGS];
  size_t len = strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
    line[--len] = '\0';
  }
  char *p = line + strspn(line, " \t");
  if (*p == '\0' || *p == '#') {
    return;
  }
  if (strncmp(p, "sendtext", 8) == 0 && (p[8] == ' ' || p[8] == '\0')) {
    const char *text = p[8] ? p + 9 : "";
    must_send(0x1, (const uint8_t *)text, strlen(text));
    return;
  }
  int argc = split(p, argv, MAX_ARGS);
  if (argc == 0) {
    return;
  }
  const char *cmd = argv[0];
  if (strcmp(cmd, "send") == 0 || strcmp(cmd, "sendraw") == 0) {
    buf_t b = {0};
    for (int i = 1; i < argc; i++) {
      payload_decode(&b, argv[i]);
    }
    if (cmd[4] == '\0') {
      must_send(0x2, b.p, b.len);
    } else if (g.eof || conn_write(b.p, b.len, now_ms() + g.wait_ms) != 0) {
      closed_die("a send");
    }
    free(b.p);
  } else if (strcmp(cmd, "frame") == 0 || strcmp(cmd, "frames") == 0) {
    if (cmd[5] == '\0') {
      for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], ";") == 0) {
          die("';' in 'frame': use 'frames'");
        }
      }
    }
    cmd_frames(argv + 1, argc - 1);
  } else if (strcmp(cmd, "expect-close") == 0 && argc == 2) {
    cmd_expect_close((int)parse_num(argv[1], 65535, "close code"));
  } else if (strcmp(cmd, "expect-frame") == 0 && (argc == 3 || argc == 4)) {
    cmd_expect_frame(type_parse(argv[1]),
                     (uint32_t)parse_num(argv[2], 0xffffffffUL, "stream id"),
                     argc == 4 ? code_parse(argv[3]) : -1);
  } else if (strcmp(cmd, "ack") == 0 && argc == 2) {
    cmd_ack((uint32_t)parse_num(argv[1], 0xffffffffUL, "stream id"));
  } else if (strcmp(cmd, "expect-none") == 0 && argc == 3) {
    cmd_expect_none(type_parse(argv[1]),
                    (uint32_t)parse_num(argv[2], 0xffffffffUL, "stream id"));
  } else if (strcmp(cmd, "forbid") == 0 && argc == 3) {
    if (g.nforbid == FORBID_MAX) {
      die("too many forbid lines");
    }
    g.forbid[g.nforbid].type = type_parse(argv[1]);
    g.forbid[g.nforbid++].stream =
        (uint32_t)parse_num(argv[2], 0xffffffffUL, "stream id");
  } else if (strcmp(cmd, "sleep") == 0 && argc == 2) {
    cmd_sleep((long)parse_num(argv[1], 3600000, "sleep"));
  } else if (strcmp(cmd, "close") == 0 && argc == 1) {
    cmd_close(0, 0, NULL);
  } else if (strcmp(cmd, "close") == 0 && (argc == 2 || argc == 3)) {
    buf_t b = {0};
    if (argc == 3) {
      payload_decode(&b, argv[2]);
    }
    cmd_close(0, (int)parse_num(argv[1], 4999, "close code"), &b);
    free(b.p);
  } else {
    die("unknown or malformed command '%s'", cmd);
  }
}

static void run_script(const char *path) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  if (f == NULL) {
    die("cannot open %s: %s", path, strerror(errno));
  }
  while (getline(&line, &cap, f) >= 0) {
    g.line++;
    run_line(line);
  }
  free(line);
  if (f != stdin) {
    fclose(f);
  }
  g.line = 0;
}

/* --- upgrade ------------------------------------------------------------ */

static const char *find_crlf2(const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 4 <= n; i++) {
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
      return (const char *)p + i;
    }
  }
  return NULL;
}

/* Value of header `name` (without the colon) in the header block, trimmed,
 * copied into out; 0 when absent. */
static int header_value(const char *hdrs, const char *name, char *out,
                        size_t cap) {
  size_t nlen = strlen(name);
  const char *line = strstr(hdrs, "\r\n");
  while (line != NULL && line[2] != '\0') {
    line += 2;
    const char *end = strstr(line, "\r\n");
    if (end == NULL) {
      end = line + strlen(line);
    }
    if ((size_t)(end - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;
      while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
      }
      size_t vlen = (size_t)(end - v);
      while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
        vlen--;
      }
      snprintf(out, cap, "%.*s", (int)vlen, v);
      return 1;
    }
    line = *end ? end : NULL;
  }
  return 0;
}

static void upgrade(const char *host_port, const char *path, const char *token,
                    const char *subprotocol) {
  uint8_t key_raw[16], digest[EVP_MAX_MD_SIZE];
  char key[32], accept_want[64], accept_got[128], proto[128], req[4096];
  unsigned dlen = 0;
  int64_t deadline = now_ms() + g.wait_ms;

  if (RAND_bytes(key_raw, sizeof key_raw) != 1) {
    die("RAND_bytes failed");
  }
  EVP_EncodeBlock((unsigned char *)key, key_raw, sizeof key_raw);
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n",
                   path, host_port, key);
  if (strcmp(subprotocol, "none") != 0) {
    n += snprintf(req + n, sizeof req - (size_t)n,
                  "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
  }
  if (token != NULL && token[0] != '\0') {
    n += snprintf(req + n, sizeof req - (size_t)n,
                  "Authorization: Bearer %s\r\n", token);
  }
  for (int i = 0; i < g.nheaders && (size_t)n < sizeof req; i++)
    n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", g.headers[i]);
  n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
  if ((size_t)n >= sizeof req) {
    die("request too long");
  }
  if (conn_write((const uint8_t *)req, (size_t)n, deadline) != 0) {
    die("the server closed the connection before the request was sent");
  }

  const char *end;
  while ((end = find_crlf2(g.rx.p, g.rx.len)) == NULL) {
    if (g.rx.len > HEADER_MAX) {
      die("no end of the response headers within %d bytes", HEADER_MAX);
    }
    long r = conn_read(deadline);
    if (r == 0) {
      die("the server closed the connection without an HTTP answer%s",
          g.rx.len ? " (incomplete headers)" : "");
    }
    if (r < 0) {
      die("no HTTP answer within %d ms", g.wait_ms);
    }
  }
  size_t hlen = (size_t)(end - (const char *)g.rx.p) + 4;
  char *hdrs = malloc(hlen + 1);
  if (hdrs == NULL) {
    die("out of memory");
  }
  memcpy(hdrs, g.rx.p, hlen);
  hdrs[hlen] = '\0';
  g.rxoff = hlen; /* what follows is WebSocket data */

  int status = 0;
  if (sscanf(hdrs, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100) {
    die("not an HTTP answer: %.40s", hdrs);
  }
  say("status %d", status);
  if (status != 101) {
    char msg[1024];
    if (header_value(hdrs, "X-Wsmux-Error", msg, sizeof msg)) {
      say("X-Wsmux-Error: %s", msg);
    }
    free(hdrs);
    exit(0);
  }
  snprintf(req, sizeof req, "%s%s", key, WS_GUID);
  if (EVP_Digest(req, strlen(req), digest, &dlen, EVP_sha1(), NULL) != 1) {
    die("SHA-1 failed");
  }
  EVP_EncodeBlock((unsigned char *)accept_want, digest, (int)dlen);
  if (!header_value(hdrs, "Sec-WebSocket-Accept", accept_got,
                    sizeof accept_got) ||
      strcmp(accept_got, accept_want) != 0) {
    die("101 without the right Sec-WebSocket-Accept");
  }
  int has_proto =
      header_value(hdrs, "Sec-WebSocket-Protocol", proto, sizeof proto);
  if (strcmp(subprotocol, "none") == 0
          ? has_proto
          : !has_proto || strcmp(proto, subprotocol) != 0) {
    die("101 with Sec-WebSocket-Protocol '%s', asked for '%s'",
        has_proto ? proto : "(none)", subprotocol);
  }
  free(hdrs);
  memmove(g.rx.p, g.rx.p + g.rxoff, g.rx.len - g.rxoff);
  g.rx.len -= g.rxoff;
  g.rxoff = 0;
  ws_parse();
}

/* --- idle --------------------------------------------------------------- */

static int run_idle(int64_t t0, int timeout_s) {
  int64_t deadline = t0 + (int64_t)timeout_s * 1000;
  while (conn_read(deadline) > 0) {
    if (g.rx.len > 0) {
      note("the server sent %zu bytes", g.rx.len);
      g.rx.len = 0;
    }
  }
  if (!g.eof) {
    say("still open after %lld ms", (long long)(now_ms() - t0));
    return 1;
  }
  say("closed after %lld ms", (long long)(now_ms() - t0));
  return 0;
}

int main(int argc, char **argv) {
  const char *target = NULL, *path = NULL, *token = NULL, *script = NULL;
  const char *subprotocol = "wsmux.v1", *ca = NULL;
  int tls = 0, insecure = 0, idle = 0;
  long timeout_s = 30, max_seconds = 120;
  char host[256];

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--tls") == 0) {
      tls = 1;
      continue;
    }
    if (strcmp(a, "--insecure") == 0) {
      insecure = 1;
      continue;
    }
    if (strcmp(a, "--idle") == 0) {
      idle = 1;
      continue;
    }
    if (strcmp(a, "--no-pong") == 0) {
      g.auto_pong = 0;
      continue;
    }
    if (strcmp(a, "--verbose") == 0) {
      g.verbose = 1;
      continue;
    }
    if (i + 1 >= argc) {
      usage();
    }
    const char *v = argv[++i];
    if (strcmp(a, "--connect") == 0) {
      target = v;
    } else if (strcmp(a, "--path") == 0) {
      path = v;
    } else if (strcmp(a, "--token") == 0) {
      token = v;
    } else if (strcmp(a, "--subprotocol") == 0) {
      subprotocol = v;
    } else if (strcmp(a, "--header") == 0) {
      if (g.nheaders == (int)(sizeof g.headers / sizeof g.headers[0]) ||
          strpbrk(v, "\r\n") != NULL || strchr(v, ':') == NULL)
        die("--header: at most 8, each \"NAME: VALUE\" on one line");
      g.headers[g.nheaders++] = v;
    } else if (strcmp(a, "--script") == 0) {
      script = v;
    } else if (strcmp(a, "--ca") == 0) {
      ca = v;
    } else if (strcmp(a, "--wait") == 0) {
      g.wait_ms = (int)parse_num(v, 3600000, "--wait");
    } else if (strcmp(a, "--timeout") == 0) {
      timeout_s = (long)parse_num(v, 86400, "--timeout");
    } else if (strcmp(a, "--max-seconds") == 0) {
      max_seconds = (long)parse_num(v, 86400, "--max-seconds");
    } else {
      usage();
    }
  }
  if (target == NULL || (!idle && path == NULL) || (idle && script != NULL)) {
    usage();
  }
  if (strpbrk(subprotocol, "\r\n") != NULL ||
      (token != NULL && strpbrk(token, "\r\n") != NULL) ||
      (path != NULL && strpbrk(path, "\r\n ") != NULL)) {
    die("no line breaks or spaces in --path, --token, --subprotocol");
  }
  signal(SIGPIPE, SIG_IGN);
  if (max_seconds > 0) {
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_seconds);
  }

  int64_t deadline = now_ms() + g.wait_ms;
  connect_tcp(target, deadline, host, sizeof host);
  int64_t t0 = now_ms();
  if (idle) {
    g.idle_t0 = t0;
  }
  if (tls) {
    tls_start(host, ca, insecure, deadline);
  }
  if (idle) {
    return run_idle(t0, (int)timeout_s);
  }
  upgrade(target, path, token, subprotocol);
  if (script != NULL) {
    run_script(script);
  }
  cmd_close(1, 0, NULL);
  if (g.ssl != NULL) {
    SSL_free(g.ssl);
    SSL_CTX_free(g.ctx);
  }
  close(g.fd);
  for (size_t i = 0; i < g.qlen; i++) {
    free(g.q[i].payload);
  }
  free(g.q);
  free(g.rx.p);
  free(g.msg.p);
  return 0;
}
