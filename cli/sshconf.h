/*
 * ssh_config entries for services (README section 6): the Host blocks of
 * `wsmux ssh config`, and installing them for OpenSSH.
 *
 * Installing (`wsmux ssh config --install`) keeps every block in one file
 * of wsmux's own, ~/.ssh/wsmux.conf (0600), one marked section per
 * service, sorted:
 *
 *   # >>> wsmux p1/web
 *   Host wsmux-p1-web
 *   ...
 *   # <<< wsmux p1/web
 *
 * so projects and single services installed at different times merge, and
 * a project is replaced as a whole. ~/.ssh/config gets one line at its top,
 * "Include ~/.ssh/wsmux.conf" (the absolute path when $HOME is not the
 * home OpenSSH uses for "~"): at the top because OpenSSH keeps the first
 * value of each option and scopes an Include inside a Host block to it.
 * The line is added once; every other byte of the file, and its mode, stay
 * as they were (writes are atomic: base/file.h). Uninstalling removes
 * sections; with none left, the file and the line go, which restores the
 * original bytes. No other Host block is ever read or written.
 *
 * Ownership: functions returning text return malloc'd memory (NUL-ended)
 * the caller frees.
 */
#ifndef WSMUX_SSHCONF_H
#define WSMUX_SSHCONF_H

#include <stddef.h>

/* What the Host blocks of one service say. */
typedef struct {
  const char *project;
  const char *service;
  const char *user; /* login user */
  const char *self; /* the wsmux program, for the ProxyCommand */
  const char *edge; /* --edge for the ProxyCommand, or NULL */
  const char *ca;   /* --ca (absolute), or NULL */
  const char *addr; /* the derived endpoint, for the -proxy block */
  unsigned port;
} sshconf_host_t;

/* The two Host blocks (wsmux-P-S through --stdio, wsmux-P-S-proxy to a
 * running --proxyOnly), with a first comment line when paste is set
 * ("Paste into ~/.ssh/config"). NULL when out of memory. */
char *sshconf_blocks(const sshconf_host_t *h, int paste);

/* --- the text of the files (no I/O) ------------------------------------ */

/* A section of wsmux.conf. */
typedef struct {
  char *project;
  char *service;
  char *body; /* the lines between the markers */
} sshconf_section_t;

typedef struct {
  sshconf_section_t *v;
  size_t n;
} sshconf_sections_t;

/* The sections of a wsmux.conf text (text outside sections, the header,
 * is not kept). 0, or -1 when out of memory or a section is not closed. */
int sshconf_sections_parse(const char *text, size_t len,
                           sshconf_sections_t *out);
/* Remove the sections of project (of service, unless NULL; every section
 * when project is NULL). Returns how many went. */
size_t sshconf_sections_remove(sshconf_sections_t *s, const char *project,
                               const char *service);
/* Add (or replace) the section of project/service. 0 or -1 (memory). */
int sshconf_sections_put(sshconf_sections_t *s, const char *project,
                         const char *service, const char *body);
/* The file's text: a header, the sections sorted by project and service. */
char *sshconf_sections_text(const sshconf_sections_t *s);
void sshconf_sections_free(sshconf_sections_t *s);

/* Add "line\n" at the top of text unless a line equal to line is already
 * in it: 1 with *out (malloc'd) when added, 0 when present, -1 (memory). */
int sshconf_include_add(const char *text, size_t len, const char *line,
                        char **out, size_t *outlen);
/* Remove every line equal to line (with its '\n'): 1 with *out when one
 * was found, 0 when none, -1 (memory). */
int sshconf_include_remove(const char *text, size_t len, const char *line,
                           char **out, size_t *outlen);

/* --- installing -------------------------------------------------------- */

typedef struct {
  const char *home;  /* $HOME */
  const char *tilde; /* the home OpenSSH expands "~" to, or NULL */
  char *ssh_dir;     /* HOME/.ssh */
  char *conf;        /* HOME/.ssh/wsmux.conf */
  char *config;      /* HOME/.ssh/config, its symlink resolved */
  char *include;     /* the Include line */
} sshconf_paths_t;

/* The paths for home; tilde (pw_dir) decides the form of the Include
 * line. 0, or -1 when out of memory. Free with sshconf_paths_free. */
int sshconf_paths(const char *home, const char *tilde, sshconf_paths_t *p);
void sshconf_paths_free(sshconf_paths_t *p);

/* What an install or uninstall did, for the messages. */
typedef struct {
  size_t removed;    /* sections removed (replaced ones included) */
  int conf_changed;  /* wsmux.conf written or removed */
  int conf_removed;  /* wsmux.conf removed: no section left */
  int include_added; /* the Include line added */
  int include_removed;
} sshconf_result_t;

/*
 * Install: remove the sections of project (of service only, when not
 * NULL), then put the n given ones (services[i] with bodies[i]); write
 * wsmux.conf when its text changed and make ~/.ssh/config include it.
 * Uninstall (n == 0, remove_only): remove those sections (every one when
 * project is NULL); with none left, remove the file and the line. Creates
 * ~/.ssh (0700) and ~/.ssh/config (0600) when missing. 0, or -1 with a
 * message in err; a failure leaves each file either old or new.
 */
int sshconf_apply(const sshconf_paths_t *p, const char *project,
                  const char *service, const char *const *services,
                  const char *const *bodies, size_t n, int remove_only,
                  sshconf_result_t *res, char *err, size_t errlen);

#endif
