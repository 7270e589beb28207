/* The HTTP proxy of a command (cli/http_proxy_flags.h). */
#include "cli/http_proxy_flags.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "cli/exitcode.h"
#include "ws/transport_client.h"

static const char *env_get(void *ctx, const char *name) {
  (void)ctx;
  return getenv(name);
}

/* Whether url carries a password (it may not parse: then no). */
static int has_password(const char *url) {
  http_proxy_t p;
  char err[256];
  int yes = http_proxy_parse(url, &p, err, sizeof(err)) == 0 && p.has_auth &&
            p.pass[0] != '\0';
  http_proxy_clear(&p);
  return yes;
}

/* The first line of a proxy file, blanks trimmed, into url. 0, or -1 after
 * printing why. */
static int read_proxy_file(const char *path, char *url, size_t len) {
  char err[PATH_MAX + 256], *text = NULL;
  size_t n;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    log_print("wsmux", LOG_ERROR, "cannot open the proxy file %s: %s", path,
              strerror(errno));
    return -1;
  }
  /* The mode of the file then read; a pipe (<(...)) has none to check. */
  int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  file_read_result_t got = file_read_fd(fd, path, CLI_HTTP_PROXY_FILE_MAX,
                                        &text, &n, err, sizeof(err));
  close(fd);
  if (got != FILE_READ_OK) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return -1;
  }
  char *s = text + strspn(text, " \t");
  size_t l = strcspn(s, "\r\n");
  while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
    l--;
  int fits = l < len;
  if (fits) {
    memcpy(url, s, l);
    url[l] = '\0';
  }
  explicit_bzero(text, n);
  free(text);
  if (!fits) {
    log_print("wsmux", LOG_ERROR, "the proxy file %s: its URL is too long",
              path);
    return -1;
  }
  if (regular && (st.st_mode & 077) != 0 && has_password(url)) {
    explicit_bzero(url, len);
    log_print("wsmux", LOG_ERROR,
              "the proxy file %s holds a password but group or others can "
              "read it (mode %03o): run 'chmod 600 %s'",
              path, (unsigned)(st.st_mode & 0777), path);
    return -1;
  }
  return 0;
}

int cli_http_proxy_choose(const char *flag, const char *file,
                          const char *edge_url, http_proxy_choice_t *out) {
  char url[CLI_HTTP_PROXY_FILE_MAX], origin[PATH_MAX + 32], err[512];
  const char *explicit_url = flag;
  memset(out, 0, sizeof(*out));
  if (flag != NULL && file != NULL) {
    log_print("wsmux", LOG_ERROR,
              "--http-proxy and --http-proxy-file exclude each other");
    return EXIT_USAGE;
  }
  snprintf(origin, sizeof(origin), "--http-proxy");
  if (flag != NULL && has_password(flag))
    log_print("wsmux", LOG_WARN,
              "--http-proxy holds a password, which others can see in ps: "
              "prefer HTTPS_PROXY or --http-proxy-file");
  const char *env_file = getenv("WSMUX_HTTP_PROXY_FILE");
  if (flag == NULL && file == NULL && env_file != NULL && *env_file != '\0') {
    file = env_file;
    snprintf(origin, sizeof(origin), "WSMUX_HTTP_PROXY_FILE %s", file);
  } else if (file != NULL) {
    snprintf(origin, sizeof(origin), "--http-proxy-file %s", file);
  }
  if (flag == NULL && file != NULL) {
    if (read_proxy_file(file, url, sizeof(url)) != 0)
      return EXIT_USAGE;
    explicit_url = url;
  }
  transport_url_t u;
  int rc = EXIT_OK;
  if (transport_url_parse(edge_url, "", &u, err, sizeof(err)) == 0 &&
      http_proxy_choose(explicit_url, origin, env_get, NULL, u.tls, u.host,
                        u.port, out, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    rc = EXIT_USAGE;
  }
  explicit_bzero(url, sizeof(url));
  return rc;
}
