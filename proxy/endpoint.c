#include "proxy/endpoint.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

void endpoint_derive(const char *project_id, const char *service_id,
                     endpoint_t *out) {
  /* A NUL separates the ids so ("ab","c") and ("a","bc") differ. */
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(c, project_id, strlen(project_id) + 1) &&
           EVP_DigestUpdate(c, service_id, strlen(service_id)) &&
           EVP_DigestFinal_ex(c, md, &mdlen);
  EVP_MD_CTX_free(c);
  if (!ok)
    memset(md, 0, sizeof(md)); /* still a valid, if shared, endpoint */
  unsigned a = 1 + md[0] % 254, b = 1 + md[1] % 254, d = 1 + md[2] % 254;
  snprintf(out->addr, sizeof(out->addr), "127.%u.%u.%u", a, b, d);
  unsigned span = ENDPOINT_PORT_MAX - ENDPOINT_PORT_MIN;
  unsigned v = ((unsigned)md[3] << 8) | md[4];
  out->port = (uint16_t)(ENDPOINT_PORT_MIN + v % span);
}
