/*
 * Which HTTP proxy a command goes through to its edge (README: "Behind an
 * HTTP proxy"): --http-proxy URL, else --http-proxy-file FILE, else the
 * file named by WSMUX_HTTP_PROXY_FILE, else the environment (https_proxy,
 * HTTPS_PROXY, all_proxy, ALL_PROXY; no_proxy / NO_PROXY), by the rules
 * of ws/http_proxy.h. This file reads the flags, the files and the
 * environment; the choice itself is ws/http_proxy's.
 *
 * Arguments show in ps(1): a password in --http-proxy gets a warning. A
 * proxy file is read here, before a background proxy detaches, and a file
 * holding a password that group or others can read is refused.
 */
#ifndef WSMUX_HTTP_PROXY_FLAGS_H
#define WSMUX_HTTP_PROXY_FLAGS_H

#include "ws/http_proxy.h"

/* The longest proxy file read. */
#define CLI_HTTP_PROXY_FILE_MAX 4096

/*
 * The proxy for the edge at edge_url. flag: --http-proxy (NULL when not
 * given, "" for none); file: --http-proxy-file (NULL when not given).
 * EXIT_OK with *out, or EXIT_USAGE after printing why (both flags, an
 * unreadable or unsafe file, a URL that cannot be used). An edge URL that
 * cannot be parsed gives "direct": its own error comes later.
 */
int cli_http_proxy_choose(const char *flag, const char *file,
                          const char *edge_url, http_proxy_choice_t *out);

#endif
