/* A running proxy's status and its control socket (cli/proxy_status.h). */
#include "cli/proxy_status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define STATUS_MAX 4096
#define BACKLOG 8

/* --- JSON -------------------------------------------------------------- */

static int add_number(cJSON *o, const char *name, double v) {
  return cJSON_AddNumberToObject(o, name, v) != NULL ? 0 : -1;
}

static int add_common(cJSON *o, const proxy_status_t *s) {
  if (add_number(o, "pid", (double)s->pid) != 0 ||
      cJSON_AddStringToObject(o, "projectId", s->project) == NULL ||
      cJSON_AddStringToObject(o, "serviceId", s->service) == NULL)
    return -1;
  if (s->endpoint[0] != '\0'
          ? cJSON_AddStringToObject(o, "endpoint", s->endpoint) == NULL
          : cJSON_AddNullToObject(o, "endpoint") == NULL)
    return -1;
  if (s->up_file[0] != '\0' &&
      cJSON_AddStringToObject(o, "upFile", s->up_file) == NULL)
    return -1;
  return add_number(o, "startedAt", (double)s->started_at);
}

/* A live field: the value, or null when only the pidfile is known. */
static int add_live(cJSON *o, const char *name, const proxy_status_t *s,
                    double v) {
  if (s->live)
    return add_number(o, name, v);
  return cJSON_AddNullToObject(o, name) != NULL ? 0 : -1;
}

cJSON *proxy_status_json(const proxy_status_t *s, int64_t now) {
  cJSON *o = cJSON_CreateObject();
  int64_t up = now > s->started_at ? now - s->started_at : 0;
  int bad =
      o == NULL || add_common(o, s) != 0 ||
      add_number(o, "uptimeSeconds", (double)up) != 0 ||
      (s->live ? cJSON_AddStringToObject(
                     o, "link", s->connected ? "connected" : "reconnecting")
               : cJSON_AddNullToObject(o, "link")) == NULL ||
      add_live(o, "reconnectInSeconds", s, s->reconnect_in_s) != 0 ||
      add_live(o, "streams", s, (double)s->streams) != 0 ||
      add_live(o, "streamsTotal", s, (double)s->streams_total) != 0 ||
      add_live(o, "bytesUp", s, (double)s->bytes_up) != 0 ||
      add_live(o, "bytesDown", s, (double)s->bytes_down) != 0;
  if (bad) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

char *proxy_status_pidfile_text(const proxy_status_t *s) {
  cJSON *o = cJSON_CreateObject();
  char *text =
      o != NULL && add_common(o, s) == 0 ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return text;
}

static int get_string(const cJSON *o, const char *name, char *out, size_t len) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  if (!cJSON_IsString(v) || strlen(v->valuestring) >= len)
    return -1;
  memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
  return 0;
}

static uint64_t get_count(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

int proxy_status_parse(const char *text, proxy_status_t *s) {
  memset(s, 0, sizeof(*s));
  cJSON *o = cJSON_Parse(text);
  const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "pid");
  int rc = -1;
  if (cJSON_IsObject(o) && cJSON_IsNumber(pid) && pid->valuedouble >= 1 &&
      get_string(o, "projectId", s->project, sizeof(s->project)) == 0 &&
      get_string(o, "serviceId", s->service, sizeof(s->service)) == 0) {
    s->pid = (long)pid->valuedouble;
    if (get_string(o, "endpoint", s->endpoint, sizeof(s->endpoint)) != 0)
      s->endpoint[0] = '\0';
    if (get_string(o, "upFile", s->up_file, sizeof(s->up_file)) != 0)
      s->up_file[0] = '\0';
    s->started_at = (int64_t)get_count(o, "startedAt");
    const cJSON *link = cJSON_GetObjectItemCaseSensitive(o, "link");
    if (cJSON_IsString(link)) {
      s->live = 1;
      s->connected = strcmp(link->valuestring, "connected") == 0;
      s->reconnect_in_s = (int)get_count(o, "reconnectInSeconds");
      s->streams = get_count(o, "streams");
      s->streams_total = get_count(o, "streamsTotal");
      s->bytes_up = get_count(o, "bytesUp");
      s->bytes_down = get_count(o, "bytesDown");
    }
    rc = 0;
  }
  cJSON_Delete(o);
  return rc;
}

/* --- server ------------------------------------------------------------ */

struct proxy_status_server {
  uv_pipe_t pipe;
  proxy_status_get_t get;
  void *ctx;
};

typedef struct {
  uv_pipe_t pipe;
  uv_write_t req;
  char *text;
} status_client_t;

static void on_client_closed(uv_handle_t *h) {
  status_client_t *c = h->data;
  free(c->text);
  free(c);
}

static void on_written(uv_write_t *req, int status) {
  status_client_t *c = req->data;
  uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  proxy_status_server_t *s = server->data;
  if (status != 0)
    return;
  status_client_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  uv_pipe_init(server->loop, &c->pipe, 0);
  c->pipe.data = c;
  c->req.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
    return;
  }
  proxy_status_t st;
  memset(&st, 0, sizeof(st));
  s->get(s->ctx, &st);
  cJSON *o = proxy_status_json(&st, (int64_t)time(NULL));
  char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  size_t n = text != NULL ? strlen(text) : 0;
  /* One line: the JSON and a newline. */
  c->text = text != NULL ? realloc(text, n + 2) : NULL;
  if (c->text == NULL) {
    free(text);
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
    return;
  }
  c->text[n] = '\n';
  c->text[n + 1] = '\0';
  uv_buf_t b = uv_buf_init(c->text, (unsigned)(n + 1));
  if (uv_write(&c->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0)
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_server_closed(uv_handle_t *h) {
  free(h->data);
}

proxy_status_server_t *proxy_status_serve(uv_loop_t *loop, const char *path,
                                          proxy_status_get_t get, void *ctx,
                                          char *err, size_t errlen) {
  struct sockaddr_un sun;
  if (strlen(path) >= sizeof(sun.sun_path)) {
    snprintf(err, errlen,
             "control socket path too long (%zu bytes, at most %zu): %s",
             strlen(path), sizeof(sun.sun_path) - 1, path);
    return NULL;
  }
  proxy_status_server_t *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->get = get;
  s->ctx = ctx;
  uv_pipe_init(loop, &s->pipe, 0);
  s->pipe.data = s;
  int rc = uv_pipe_bind(&s->pipe, path);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->pipe, BACKLOG, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot serve %s: %s", path, uv_strerror(rc));
    uv_close((uv_handle_t *)&s->pipe, on_server_closed);
    return NULL;
  }
  return s;
}

void proxy_status_server_close(proxy_status_server_t *s) {
  if (s != NULL && !uv_is_closing((uv_handle_t *)&s->pipe))
    uv_close((uv_handle_t *)&s->pipe, on_server_closed);
}

/* --- client ------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 1 when ready, 0 on timeout. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, (int)left);
    if (rc > 0)
      return 1;
    if (rc < 0 && errno != EINTR)
      return 0;
  }
}

int proxy_status_query(const char *path, int timeout_ms, proxy_status_t *s) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sun.sun_path))
    return -1;
  memcpy(sun.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  int64_t deadline = now_ms() + timeout_ms;
  int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
  if (rc != 0 && (errno == EINPROGRESS || errno == EAGAIN) &&
      wait_fd(fd, POLLOUT, deadline)) {
    int e = 0;
    socklen_t el = sizeof(e);
    rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0 ? 0 : -1;
  }
  char buf[STATUS_MAX];
  size_t n = 0;
  while (rc == 0 && n + 1 < sizeof(buf)) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r > 0)
      n += (size_t)r;
    else if (r == 0)
      break;
    else if ((errno != EAGAIN && errno != EINTR) ||
             (errno == EAGAIN && !wait_fd(fd, POLLIN, deadline)))
      rc = -1;
  }
  close(fd);
  if (rc != 0 || n == 0)
    return -1;
  buf[n] = '\0';
  return proxy_status_parse(buf, s) == 0 && s->live ? 0 : -1;
}
