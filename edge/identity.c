/* SSH identities: key validation, matching, JSON, authorized_keys. See
 * identity.h and docs/ADMIN_API.md. */
#include "edge/identity.h"

#include "base/id.h"
#include "base/json.h"
#include "base/text.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest JSON path we build: "identities[N].keys[M]". */
#define PATH_BUF 96
/* Values echoed in messages are cut here (text_quote) so one error stays
 * one line. */
#define ECHO_MAX TEXT_QUOTE_MAX
#define QUOTE_BUF TEXT_QUOTE_SIZE
/* Bits of RSA modulus OpenSSH accepts (SSH_RSA_MINIMUM_MODULUS_SIZE and
 * OPENSSL_RSA_MAX_MODULUS_BITS). A key outside would be listed in
 * authorized_keys but never accepted by sshd, silently. */
#define RSA_BITS_MIN 1024
#define RSA_BITS_MAX 16384
#define ED25519_PK_LEN 32
#define ID_RANDOM_BYTES 8

/* ---- messages ---------------------------------------------------------- */

/* Up to ECHO_MAX + 1 bytes of s[0..n) as a C string in tmp, so that
 * text_quote() still sees that there was more and adds "...". */
static const char *echo_bytes(char tmp[ECHO_MAX + 2], const void *s, size_t n) {
  size_t m = n < ECHO_MAX + 1 ? n : ECHO_MAX + 1;

  memcpy(tmp, s, m);
  tmp[m] = '\0';
  return tmp;
}

/* ---- small validators -------------------------------------------------- */

static int has_control(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  return 0;
}

int identity_id_is_generated(const char *s) {
  size_t plen = sizeof(IDENTITY_ID_PREFIX) - 1;

  if (s == NULL || strlen(s) != IDENTITY_ID_SIZE - 1 ||
      strncmp(s, IDENTITY_ID_PREFIX, plen) != 0)
    return 0;
  for (s += plen; *s != '\0'; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return 0;
  return 1;
}

int identity_id_generate(char out[IDENTITY_ID_SIZE]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[ID_RANDOM_BYTES];
  size_t o = sizeof(IDENTITY_ID_PREFIX) - 1;

  if (RAND_bytes(r, sizeof r) != 1)
    return -1;
  memcpy(out, IDENTITY_ID_PREFIX, o);
  for (size_t i = 0; i < sizeof r; i++) {
    out[o++] = hex[r[i] >> 4];
    out[o++] = hex[r[i] & 15];
  }
  out[o] = '\0';
  return 0;
}

/* ---- times ------------------------------------------------------------- */

int identity_time_format(int64_t t, char out[IDENTITY_TIME_SIZE]) {
  time_t tt = (time_t)t;
  struct tm tm;

  out[0] = '\0';
  if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year < -1900 ||
      tm.tm_year > 9999 - 1900)
    return -1;
  return strftime(out, IDENTITY_TIME_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) ==
                 IDENTITY_TIME_SIZE - 1
             ? 0
             : -1;
}

static int digits(const char *s, size_t n, int *out) {
  int v = 0;

  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int identity_time_parse(const char *s, int64_t *out) {
  struct tm tm = {0};
  char back[IDENTITY_TIME_SIZE];
  time_t t;

  if (strlen(s) != IDENTITY_TIME_SIZE - 1 || s[4] != '-' || s[7] != '-' ||
      s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
      digits(s, 4, &tm.tm_year) != 0 || digits(s + 5, 2, &tm.tm_mon) != 0 ||
      digits(s + 8, 2, &tm.tm_mday) != 0 ||
      digits(s + 11, 2, &tm.tm_hour) != 0 ||
      digits(s + 14, 2, &tm.tm_min) != 0 || digits(s + 17, 2, &tm.tm_sec) != 0)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  t = timegm(&tm);
  /* timegm normalizes "02-30" to March; formatting back catches it. */
  if (identity_time_format((int64_t)t, back) != 0 || strcmp(back, s) != 0)
    return -1;
  *out = (int64_t)t;
  return 0;
}

/* ---- base64 ------------------------------------------------------------ */

static int b64_value(char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+')
    return 62;
  if (ch == '/')
    return 63;
  return -1;
}

/* Strict RFC 4648 base64 as OpenSSH's b64_pton reads it: padded, no
 * whitespace, and the unused bits of the last character zero (otherwise
 * two spellings of one key would not compare equal). Writes at most
 * 3*n/4 bytes to out. Returns the decoded length or -1. */
static long base64_decode(const char *s, size_t n, uint8_t *out) {
  size_t o = 0;

  if (n == 0 || n % 4 != 0)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      int last_group = i + 4 == n;
      if (s[i + k] == '=' && last_group && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      v[k] = pad ? -1 : b64_value(s[i + k]);
      if (v[k] < 0)
        return -1;
    }
    if (pad == 1 && s[i + 3] != '=')
      return -1;
    if ((pad == 2 && (v[1] & 0x0f) != 0) || (pad == 1 && (v[2] & 0x03) != 0))
      return -1;
    out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
    if (pad < 2)
      out[o++] = (uint8_t)((v[1] & 0x0f) << 4 | v[2] >> 2);
    if (pad < 1)
      out[o++] = (uint8_t)((v[2] & 0x03) << 6 | v[3]);
  }
  return (long)o;
}

/* ---- key blobs --------------------------------------------------------- */

typedef enum {
  KEY_SHAPE_ED25519, /* string pk(32) */
  KEY_SHAPE_RSA,     /* mpint e, mpint n */
  KEY_SHAPE_ECDSA,   /* string curve, string Q (uncompressed point) */
} key_shape_t;

typedef struct {
  const char *name;
  key_shape_t shape;
  const char *curve; /* ECDSA */
  size_t point_len;  /* ECDSA: 1 + 2 * field bytes */
  int security_key;  /* FIDO: an application string follows */
} key_type_t;

static const key_type_t key_types[] = {
    {"ssh-ed25519", KEY_SHAPE_ED25519, NULL, 0, 0},
    {"ssh-rsa", KEY_SHAPE_RSA, NULL, 0, 0},
    {"ecdsa-sha2-nistp256", KEY_SHAPE_ECDSA, "nistp256", 65, 0},
    {"ecdsa-sha2-nistp384", KEY_SHAPE_ECDSA, "nistp384", 97, 0},
    {"ecdsa-sha2-nistp521", KEY_SHAPE_ECDSA, "nistp521", 133, 0},
    {"sk-ssh-ed25519@openssh.com", KEY_SHAPE_ED25519, NULL, 0, 1},
    {"sk-ecdsa-sha2-nistp256@openssh.com", KEY_SHAPE_ECDSA, "nistp256", 65, 1},
};

static const key_type_t *key_type_find(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof key_types / sizeof key_types[0]; i++)
    if (strlen(key_types[i].name) == n && memcmp(key_types[i].name, s, n) == 0)
      return &key_types[i];
  return NULL;
}

/* A cursor over an SSH wire-format blob (RFC 4251 section 5). */
typedef struct {
  const uint8_t *p;
  size_t left;
} blob_t;

static int blob_string(blob_t *b, const uint8_t **s, size_t *n) {
  uint32_t len;

  if (b->left < 4)
    return -1;
  len = (uint32_t)b->p[0] << 24 | (uint32_t)b->p[1] << 16 |
        (uint32_t)b->p[2] << 8 | b->p[3];
  if (len > b->left - 4)
    return -1;
  *s = b->p + 4;
  *n = len;
  b->p += 4 + (size_t)len;
  b->left -= 4 + (size_t)len;
  return 0;
}

static int blob_equals(const uint8_t *s, size_t n, const char *want) {
  return strlen(want) == n && memcmp(s, want, n) == 0;
}

/* A positive mpint; its size in bits in *bits. */
static int blob_mpint(blob_t *b, size_t *bits) {
  const uint8_t *s;
  size_t n;

  if (blob_string(b, &s, &n) != 0 || n == 0 || (s[0] & 0x80) != 0)
    return -1;
  while (n > 0 && s[0] == 0) {
    s++;
    n--;
  }
  if (n == 0)
    return -1;
  *bits = 8 * n;
  for (uint8_t top = s[0]; (top & 0x80) == 0; top <<= 1)
    (*bits)--;
  return 0;
}

static int check_rsa(blob_t *b, const key_type_t *kt, char *err,
                     size_t errlen) {
  size_t ebits, nbits;

  if (blob_mpint(b, &ebits) != 0 || blob_mpint(b, &nbits) != 0)
    return json_fail(err, errlen, NULL, "malformed %s key data", kt->name);
  if (nbits < RSA_BITS_MIN || nbits > RSA_BITS_MAX)
    return json_fail(err, errlen, NULL,
                     "RSA key of %zu bits, OpenSSH accepts %d..%d", nbits,
                     RSA_BITS_MIN, RSA_BITS_MAX);
  return 0;
}

static int check_ecdsa(blob_t *b, const key_type_t *kt, char *err,
                       size_t errlen) {
  const uint8_t *curve, *q;
  size_t ncurve, nq;
  char got[QUOTE_BUF], tmp[ECHO_MAX + 2];

  if (blob_string(b, &curve, &ncurve) != 0 || blob_string(b, &q, &nq) != 0)
    return json_fail(err, errlen, NULL, "malformed %s key data", kt->name);
  if (!blob_equals(curve, ncurve, kt->curve)) {
    text_quote(got, sizeof got, echo_bytes(tmp, curve, ncurve));
    return json_fail(err, errlen, NULL,
                     "key data is for curve %s, not the type's \"%s\"", got,
                     kt->curve);
  }
  if (nq != kt->point_len || q[0] != 0x04)
    return json_fail(err, errlen, NULL,
                     "malformed %s key data: not an uncompressed %s point",
                     kt->name, kt->curve);
  return 0;
}

/* The blob's structure for its type, with nothing left over. */
static int check_blob(const uint8_t *data, size_t len, const key_type_t *kt,
                      char *err, size_t errlen) {
  blob_t b = {data, len};
  const uint8_t *s;
  size_t n;
  char got[QUOTE_BUF], tmp[ECHO_MAX + 2];

  if (blob_string(&b, &s, &n) != 0)
    return json_fail(err, errlen, NULL, "malformed %s key data", kt->name);
  if (!blob_equals(s, n, kt->name)) {
    text_quote(got, sizeof got, echo_bytes(tmp, s, n));
    return json_fail(err, errlen, NULL,
                     "the key data is of type %s, not \"%s\"", got, kt->name);
  }
  if (kt->shape == KEY_SHAPE_RSA) {
    if (check_rsa(&b, kt, err, errlen) != 0)
      return -1;
  } else if (kt->shape == KEY_SHAPE_ECDSA) {
    if (check_ecdsa(&b, kt, err, errlen) != 0)
      return -1;
  } else if (blob_string(&b, &s, &n) != 0 || n != ED25519_PK_LEN) {
    return json_fail(err, errlen, NULL, "malformed %s key data", kt->name);
  }
  /* FIDO keys carry the application ("ssh:" by default) last. */
  if (kt->security_key && blob_string(&b, &s, &n) != 0)
    return json_fail(err, errlen, NULL,
                     "malformed %s key data: no application string", kt->name);
  if (b.left != 0)
    return json_fail(err, errlen, NULL,
                     "malformed %s key data: %zu unexpected bytes at the end",
                     kt->name, b.left);
  return 0;
}

/* ---- key lines --------------------------------------------------------- */

static int blank(char ch) {
  return ch == ' ' || ch == '\t';
}

/* Next blank-separated word of [*p, end); NULL at the end. */
static const char *next_word(const char **p, const char *end, size_t *n) {
  const char *s = *p;

  while (s < end && blank(*s))
    s++;
  if (s == end)
    return NULL;
  *p = s;
  while (*p < end && !blank(**p))
    (*p)++;
  *n = (size_t)(*p - s);
  return s;
}

/* The first word is not a key type: tell key options (authorized_keys
 * syntax, which would let a caller attach command="..." or weaken
 * restrictions) from a type we do not know. */
static int fail_first_word(const char *w, size_t n, const char *rest,
                           const char *end, char *err, size_t errlen) {
  char tmp[ECHO_MAX + 2], q[QUOTE_BUF];
  size_t m;
  const char *later;

  if (memchr(w, '=', n) != NULL || memchr(w, '"', n) != NULL ||
      memchr(w, ',', n) != NULL)
    goto options;
  while ((later = next_word(&rest, end, &m)) != NULL)
    if (key_type_find(later, m) != NULL)
      goto options;
  text_quote(q, sizeof q, echo_bytes(tmp, w, n));
  return json_fail(err, errlen, NULL, "unknown key type %s", q);
options:
  return json_fail(err, errlen, NULL,
                   "key options before the type (such as command=\"...\") are "
                   "not allowed");
}

static int key_decode_check(const char *b64, size_t n, const key_type_t *kt,
                            char *err, size_t errlen) {
  uint8_t *blob = malloc(n / 4 * 3 + 3);
  long len;
  int rc;

  if (blob == NULL)
    return json_fail(err, errlen, NULL, "out of memory");
  len = base64_decode(b64, n, blob);
  rc = len < 0 ? json_fail(err, errlen, NULL, "invalid base64")
               : check_blob(blob, (size_t)len, kt, err, errlen);
  free(blob);
  return rc;
}

static char *key_join(const char *type, const char *b64, size_t nb64,
                      const char *comment, size_t ncomment) {
  size_t ntype = strlen(type);
  size_t n = ntype + 1 + nb64 + (ncomment ? 1 + ncomment : 0) + 1;
  char *s = malloc(n), *o = s;

  if (s == NULL)
    return NULL;
  memcpy(o, type, ntype);
  o += ntype;
  *o++ = ' ';
  memcpy(o, b64, nb64);
  o += nb64;
  if (ncomment > 0) {
    *o++ = ' ';
    memcpy(o, comment, ncomment);
    o += ncomment;
  }
  *o = '\0';
  return s;
}

int identity_key_normalize(const char *line, char **out, char *err,
                           size_t errlen) {
  const char *end = line + strlen(line), *p = line, *w, *b64;
  size_t nw, nb64;
  const key_type_t *kt;

  *out = NULL;
  /* A newline would start a second authorized_keys line, with options. */
  for (const char *c = line; c < end; c++)
    if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
      return json_fail(err, errlen, NULL, "contains a control character");
  if ((size_t)(end - line) > IDENTITY_KEY_MAX)
    return json_fail(err, errlen, NULL, "longer than %d bytes",
                     IDENTITY_KEY_MAX);
  w = next_word(&p, end, &nw);
  if (w == NULL)
    return json_fail(err, errlen, NULL, "empty key");
  kt = key_type_find(w, nw);
  if (kt == NULL)
    return fail_first_word(w, nw, p, end, err, errlen);
  b64 = next_word(&p, end, &nb64);
  if (b64 == NULL)
    return json_fail(err, errlen, NULL, "no base64 key data after the type");
  if (key_decode_check(b64, nb64, kt, err, errlen) != 0)
    return -1;
  while (p < end && blank(*p))
    p++;
  while (end > p && blank(end[-1]))
    end--;
  *out = key_join(kt->name, b64, nb64, p, (size_t)(end - p));
  return *out != NULL ? 0 : json_fail(err, errlen, NULL, "out of memory");
}

/* Length of "type base64" of a normalized key: what identifies it. */
static size_t key_material_len(const char *key) {
  const char *sp = strchr(key, ' ');
  const char *sp2 = sp != NULL ? strchr(sp + 1, ' ') : NULL;

  return sp2 != NULL ? (size_t)(sp2 - key) : strlen(key);
}

static int key_same(const char *a, const char *b) {
  size_t na = key_material_len(a);

  return na == key_material_len(b) && memcmp(a, b, na) == 0;
}

/* ---- matching and authorized_keys -------------------------------------- */

static int list_has(char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0)
      return 1;
  return 0;
}

static int tags_match(const identity_t *id, char *const *tags, size_t ntags) {
  size_t found = 0;

  if (id->ntags == 0)
    return 1;
  for (size_t i = 0; i < id->ntags; i++)
    found += (size_t)list_has(tags, ntags, id->tags[i]);
  return id->match_all_tags ? found == id->ntags : found > 0;
}

int identity_matches(const identity_t *id, const char *project_id,
                     char *const *tags, size_t ntags) {
  if (id->nprojects > 0 && (project_id == NULL ||
                            !list_has(id->projects, id->nprojects, project_id)))
    return 0;
  return tags_match(id, tags, ntags);
}

/* One line; with buf NULL only its length. */
static size_t key_line(const identity_t *id, const char *key, char *buf) {
  static const char label[] = " wsmux:";
  int has_comment = key_material_len(key) != strlen(key);
  size_t nkey = strlen(key), n;

  n = nkey + (has_comment ? 0 : sizeof(label) - 1 + strlen(id->name)) + 1;
  if (buf == NULL)
    return n;
  memcpy(buf, key, nkey);
  if (!has_comment) {
    memcpy(buf + nkey, label, sizeof(label) - 1);
    memcpy(buf + nkey + sizeof(label) - 1, id->name, strlen(id->name));
  }
  buf[n - 1] = '\n';
  return n;
}

char *identity_authorized_keys(const identity_t *ids, size_t n,
                               const char *project_id, char *const *tags,
                               size_t ntags, size_t *len) {
  size_t total = 0, o = 0;
  char *text;

  for (size_t i = 0; i < n; i++)
    if (identity_matches(&ids[i], project_id, tags, ntags))
      for (size_t k = 0; k < ids[i].nkeys; k++)
        total += key_line(&ids[i], ids[i].keys[k], NULL);
  text = malloc(total + 1);
  if (text == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (identity_matches(&ids[i], project_id, tags, ntags))
      for (size_t k = 0; k < ids[i].nkeys; k++)
        o += key_line(&ids[i], ids[i].keys[k], text + o);
  text[o] = '\0';
  *len = o;
  return text;
}

/* ---- memory ------------------------------------------------------------ */

static void strings_free(char **v, size_t n) {
  for (size_t i = 0; i < n && v != NULL; i++)
    free(v[i]);
  free(v);
}

void identity_clear(identity_t *id) {
  if (id == NULL)
    return;
  free(id->id);
  free(id->name);
  free(id->description);
  strings_free(id->keys, id->nkeys);
  strings_free(id->projects, id->nprojects);
  strings_free(id->tags, id->ntags);
  memset(id, 0, sizeof *id);
}

static int strings_copy(char ***dst, char *const *src, size_t n) {
  *dst = NULL;
  if (n == 0)
    return 0;
  *dst = calloc(n, sizeof **dst);
  if (*dst == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (((*dst)[i] = strdup(src[i])) == NULL)
      return -1; /* the caller frees the partial copy */
  return 0;
}

static int str_copy(char **dst, const char *src) {
  *dst = src != NULL ? strdup(src) : NULL;
  return src == NULL || *dst != NULL ? 0 : -1;
}

int identity_copy(identity_t *dst, const identity_t *src) {
  memset(dst, 0, sizeof *dst);
  dst->nkeys = src->nkeys;
  dst->nprojects = src->nprojects;
  dst->ntags = src->ntags;
  dst->match_all_tags = src->match_all_tags;
  dst->created_at = src->created_at;
  dst->updated_at = src->updated_at;
  dst->rev = src->rev;
  if (str_copy(&dst->id, src->id) != 0 ||
      str_copy(&dst->name, src->name) != 0 ||
      str_copy(&dst->description, src->description) != 0 ||
      strings_copy(&dst->keys, src->keys, src->nkeys) != 0 ||
      strings_copy(&dst->projects, src->projects, src->nprojects) != 0 ||
      strings_copy(&dst->tags, src->tags, src->ntags) != 0) {
    identity_clear(dst);
    return -1;
  }
  return 0;
}

/* ---- JSON out ---------------------------------------------------------- */

static int add_time(cJSON *obj, const char *key, int64_t t) {
  char buf[IDENTITY_TIME_SIZE];

  /* A time that cannot be formatted is stored as the epoch rather than
   * breaking every listing; it only comes from a broken clock. */
  if (identity_time_format(t, buf) != 0)
    identity_time_format(0, buf);
  return json_add(obj, key, cJSON_CreateString(buf));
}

cJSON *identity_to_json(const identity_t *id) {
  cJSON *o = cJSON_CreateObject();

  if (o == NULL ||
      json_add(o, "id", cJSON_CreateString(id->id ? id->id : "")) != 0 ||
      json_add(o, "name", cJSON_CreateString(id->name)) != 0 ||
      json_add(o, "description",
               cJSON_CreateString(id->description ? id->description : "")) !=
          0 ||
      json_add(o, "keys", json_strings(id->keys, id->nkeys)) != 0 ||
      json_add(o, "projects", json_strings(id->projects, id->nprojects)) != 0 ||
      json_add(o, "tags", json_strings(id->tags, id->ntags)) != 0 ||
      json_add(o, "matchAllTags", cJSON_CreateBool(id->match_all_tags)) != 0 ||
      add_time(o, "createdAt", id->created_at) != 0 ||
      add_time(o, "updatedAt", id->updated_at) != 0) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* ---- JSON in ----------------------------------------------------------- */

typedef struct {
  char *err;
  size_t errlen;
  const char *path; /* of the object being read, "" at the top */
} field_ctx_t;

typedef int (*item_check_fn)(field_ctx_t *c, const char *p, const char *s,
                             char **out);

static const cJSON *member(const field_ctx_t *c, const cJSON *obj,
                           const char *key, char *p, size_t n) {
  json_path_key(p, n, c->path, key);
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int check_name(field_ctx_t *c, const char *p, const char *s,
                      char **out) {
  char q[QUOTE_BUF];

  text_quote(q, sizeof q, s);
  if (!id_valid(s))
    return json_fail(c->err, c->errlen, p,
                     "expected 1..128 characters of [A-Za-z0-9._-], got %s", q);
  /* Lookups take an id or a name; a name shaped like an id would make
   * that ambiguous. */
  if (identity_id_is_generated(s))
    return json_fail(c->err, c->errlen, p,
                     "%s has the form of an identity id (" IDENTITY_ID_PREFIX
                     "...); choose another name",
                     q);
  *out = strdup(s);
  return *out != NULL ? 0 : json_fail(c->err, c->errlen, p, "out of memory");
}

static int check_description(field_ctx_t *c, const char *p, const char *s,
                             char **out) {
  if (strlen(s) > IDENTITY_DESCRIPTION_MAX)
    return json_fail(c->err, c->errlen, p, "longer than %d bytes",
                     IDENTITY_DESCRIPTION_MAX);
  if (has_control(s))
    return json_fail(c->err, c->errlen, p, "contains a control character");
  *out = strdup(s);
  return *out != NULL ? 0 : json_fail(c->err, c->errlen, p, "out of memory");
}

static int check_key(field_ctx_t *c, const char *p, const char *s, char **out) {
  char why[IDENTITY_ERR_SIZE];

  if (identity_key_normalize(s, out, why, sizeof why) != 0)
    return json_fail(c->err, c->errlen, p, "%s", why);
  return 0;
}

static int check_project(field_ctx_t *c, const char *p, const char *s,
                         char **out) {
  char q[QUOTE_BUF];

  if (!id_valid(s)) {
    text_quote(q, sizeof q, s);
    return json_fail(c->err, c->errlen, p,
                     "expected a project id (1..128 characters of "
                     "[A-Za-z0-9._-]), got %s",
                     q);
  }
  *out = strdup(s);
  return *out != NULL ? 0 : json_fail(c->err, c->errlen, p, "out of memory");
}

static int check_tag(field_ctx_t *c, const char *p, const char *s, char **out) {
  char q[QUOTE_BUF];

  if (s[0] == '\0' || strlen(s) > IDENTITY_TAG_MAX || has_control(s)) {
    text_quote(q, sizeof q, s);
    return json_fail(c->err, c->errlen, p,
                     "expected a non-empty string of at most %d bytes without "
                     "control characters, got %s",
                     IDENTITY_TAG_MAX, q);
  }
  *out = strdup(s);
  return *out != NULL ? 0 : json_fail(c->err, c->errlen, p, "out of memory");
}

/* Optional string member through check; *out untouched when absent. */
static int get_string(field_ctx_t *c, const cJSON *obj, const char *key,
                      int required, item_check_fn check, char **out) {
  char p[PATH_BUF];
  const cJSON *v = member(c, obj, key, p, sizeof p);
  char *s = NULL;

  if (v == NULL)
    return required ? json_fail(c->err, c->errlen, p, "required") : 0;
  if (!cJSON_IsString(v) || v->valuestring == NULL)
    return json_fail_got(c->err, c->errlen, p, "a string", v);
  if (check(c, p, v->valuestring, &s) != 0)
    return -1;
  free(*out);
  *out = s;
  return 0;
}

/* Position of the first earlier entry equal to v[i] (by `same`), or i. */
static size_t find_earlier(char *const *v, size_t i,
                           int (*same)(const char *, const char *)) {
  for (size_t j = 0; j < i; j++)
    if (same(v[j], v[i]))
      return j;
  return i;
}

static int str_same(const char *a, const char *b) {
  return strcmp(a, b) == 0;
}

/* Array member of strings, each through check, no duplicates (by same);
 * replaces *out / *n when present. */
static int get_list(field_ctx_t *c, const cJSON *obj, const char *key,
                    int required, item_check_fn check,
                    int (*same)(const char *, const char *), char ***out,
                    size_t *n) {
  char p[PATH_BUF], ip[PATH_BUF];
  const cJSON *arr = member(c, obj, key, p, sizeof p), *v;
  char **items = NULL;
  size_t count, i = 0;

  if (arr == NULL)
    return required ? json_fail(c->err, c->errlen, p, "required") : 0;
  if (!cJSON_IsArray(arr))
    return json_fail_got(c->err, c->errlen, p, "an array", arr);
  count = (size_t)cJSON_GetArraySize(arr);
  if (count == 0 && required)
    return json_fail(c->err, c->errlen, p, "at least one is required");
  if (count > 0 && (items = calloc(count, sizeof *items)) == NULL)
    return json_fail(c->err, c->errlen, p, "out of memory");
  cJSON_ArrayForEach(v, arr) {
    size_t j;
    json_path_index(ip, sizeof ip, p, i);
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
      json_fail_got(c->err, c->errlen, ip, "a string", v);
      goto fail;
    }
    if (check(c, ip, v->valuestring, &items[i]) != 0)
      goto fail;
    if ((j = find_earlier(items, i, same)) != i) {
      json_fail(c->err, c->errlen, ip, "same as %s[%zu]", key, j);
      goto fail;
    }
    i++;
  }
  strings_free(*out, *n);
  *out = items;
  *n = count;
  return 0;
fail:
  strings_free(items, count);
  return -1;
}

static int get_bool(field_ctx_t *c, const cJSON *obj, const char *key,
                    int *out) {
  char p[PATH_BUF];
  const cJSON *v = member(c, obj, key, p, sizeof p);

  if (v == NULL)
    return 0;
  if (!cJSON_IsBool(v))
    return json_fail_got(c->err, c->errlen, p, "true or false", v);
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return 0;
}

static int get_time(field_ctx_t *c, const cJSON *obj, const char *key,
                    int64_t *out) {
  char p[PATH_BUF];
  const cJSON *v = member(c, obj, key, p, sizeof p);

  if (v == NULL)
    return json_fail(c->err, c->errlen, p, "required");
  if (!cJSON_IsString(v) || v->valuestring == NULL ||
      identity_time_parse(v->valuestring, out) != 0)
    return json_fail_got(c->err, c->errlen, p,
                         "a UTC time such as \"2026-11-25T12:00:00Z\"", v);
  return 0;
}

/* The fields a client may set; `creating` makes name and keys required. */
static int get_fields(field_ctx_t *c, const cJSON *obj, int creating,
                      identity_t *id) {
  return get_string(c, obj, "name", creating, check_name, &id->name) != 0 ||
                 get_string(c, obj, "description", 0, check_description,
                            &id->description) != 0 ||
                 get_list(c, obj, "keys", creating, check_key, key_same,
                          &id->keys, &id->nkeys) != 0 ||
                 get_list(c, obj, "projects", 0, check_project, str_same,
                          &id->projects, &id->nprojects) != 0 ||
                 get_list(c, obj, "tags", 0, check_tag, str_same, &id->tags,
                          &id->ntags) != 0 ||
                 get_bool(c, obj, "matchAllTags", &id->match_all_tags) != 0
             ? -1
             : 0;
}

/* keys may be given as [] in a PATCH; an identity without keys is not. */
static int check_has_keys(field_ctx_t *c, const identity_t *id) {
  char p[PATH_BUF];

  json_path_key(p, sizeof p, c->path, "keys");
  return id->nkeys > 0
             ? 0
             : json_fail(c->err, c->errlen, p, "at least one is required");
}

static int ensure_description(field_ctx_t *c, identity_t *id) {
  if (id->description != NULL)
    return 0;
  id->description = strdup("");
  return id->description != NULL
             ? 0
             : json_fail(c->err, c->errlen, c->path, "out of memory");
}

static const char *const api_fields[] = {
    "name", "description", "keys", "projects", "tags", "matchAllTags", NULL};
static const char *const stored_fields[] = {
    "id",   "name",         "description", "keys",      "projects",
    "tags", "matchAllTags", "createdAt",   "updatedAt", NULL};

int identity_apply_json(const identity_t *base, const cJSON *body,
                        identity_t *out, char *err, size_t errlen) {
  field_ctx_t c = {err, errlen, ""};

  memset(out, 0, sizeof *out);
  if (json_check_object(body, "", api_fields, "field", err, errlen) != 0)
    return -1;
  if (base != NULL && identity_copy(out, base) != 0)
    return json_fail(err, errlen, NULL, "out of memory");
  if (get_fields(&c, body, base == NULL, out) != 0 ||
      check_has_keys(&c, out) != 0 || ensure_description(&c, out) != 0) {
    identity_clear(out);
    return -1;
  }
  return 0;
}

int identity_from_json(const cJSON *obj, const char *path, identity_t *out,
                       char *err, size_t errlen) {
  field_ctx_t c = {err, errlen, path};
  char p[PATH_BUF], q[QUOTE_BUF];
  const cJSON *v;

  memset(out, 0, sizeof *out);
  if (json_check_object(obj, path, stored_fields, "field", err, errlen) != 0)
    return -1;
  v = member(&c, obj, "id", p, sizeof p);
  if (v == NULL)
    return json_fail(err, errlen, p, "required");
  if (!cJSON_IsString(v) || !id_valid(v->valuestring)) {
    json_describe(q, sizeof q, v);
    return json_fail(err, errlen, p,
                     "expected 1..128 characters of [A-Za-z0-9._-], got %s", q);
  }
  if ((out->id = strdup(v->valuestring)) == NULL)
    return json_fail(err, errlen, p, "out of memory");
  if (get_fields(&c, obj, 1, out) != 0 || ensure_description(&c, out) != 0 ||
      get_time(&c, obj, "createdAt", &out->created_at) != 0 ||
      get_time(&c, obj, "updatedAt", &out->updated_at) != 0) {
    identity_clear(out);
    return -1;
  }
  return 0;
}
