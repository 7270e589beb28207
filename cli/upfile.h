/*
 * The file of `wsmux proxy up -f FILE` (README: "Several services in one
 * proxy"): the services one process serves, each on its own endpoint with
 * its own WebSocket.
 *
 *   {"edge": "wss://edge.example.com",       optional, like --edge
 *    "ca": "ca.pem",                         optional, like --ca; relative
 *                                            to the file's directory
 *    "user": "deploy",                       optional, default login user
 *    "services": [                           1..UPFILE_SERVICES_MAX
 *      {"projectId": "p1", "serviceId": "web",
 *       "user": "root",                      optional (default: the
 *                                            file's "user", else root)
 *       "address": "127.0.0.1",              optional, like --address
 *       "port": 2222}                        optional, like --port
 *    ]}
 *
 * Strict JSON (base/json.h): unknown or repeated keys are refused, and
 * every message starts with the JSON path of the bad value
 * ("services[1].port: expected an integer 0..65535, got 70000"). A service
 * (project and service id) is listed once. The API token is never in the
 * file: it comes from --token, WSMUX_TOKEN or `wsmux login`.
 *
 * Ownership: upfile_load/upfile_parse fill an upfile_t whose strings it
 * owns; free it with upfile_free().
 */
#ifndef WSMUX_UPFILE_H
#define WSMUX_UPFILE_H

#include <stddef.h>

#define UPFILE_SERVICES_MAX 256
#define UPFILE_MAX_BYTES (1024 * 1024)

typedef struct {
  char *project;
  char *service;
  char *user;    /* never NULL: resolved against the file's "user" */
  char *address; /* NULL: derived from project and service */
  int port;      /* -1: derived */
} upfile_service_t;

typedef struct {
  char *edge; /* NULL when absent */
  char *ca;   /* NULL when absent; absolute when the file's dir was given */
  upfile_service_t *services;
  size_t n;
} upfile_t;

/* Parse text (len bytes); a relative "ca" is resolved against base_dir
 * (NULL: kept as is). 0, or -1 with the message in err and *out empty. */
int upfile_parse(const char *text, size_t len, const char *base_dir,
                 upfile_t *out, char *err, size_t errlen);
/* Read and parse path; messages start with the path. */
int upfile_load(const char *path, upfile_t *out, char *err, size_t errlen);
void upfile_free(upfile_t *f);

/* The service of f with these ids, or NULL. */
const upfile_service_t *upfile_find(const upfile_t *f, const char *project,
                                    const char *service);
/* 1 when a and b are the same settings (ids, user, address, port). */
int upfile_service_equal(const upfile_service_t *a, const upfile_service_t *b);

#endif
