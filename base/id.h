/*
 * The id rule: project, service and token ids, identity ids and names,
 * and every segment of an admin API path are 1..ID_MAX characters of
 * [A-Za-z0-9._-]. They appear in URL paths, file listings and messages,
 * so the rule keeps them free of anything that would need escaping there.
 */
#ifndef WSMUX_ID_H
#define WSMUX_ID_H

#define ID_MAX 128

/* 1 when s follows the id rule, else 0. NULL is not valid. */
int id_valid(const char *s);

#endif
