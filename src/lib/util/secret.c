/* SPDX-License-Identifier: Apache-2.0 */
/* Secret buffers, wiped with OPENSSL_cleanse before their memory is released. */
#include "util/secret.h"

#include <string.h>

#include <openssl/crypto.h>

struct secret *secret_new(const void *p, size_t len)
{
    if (len == SIZE_MAX) {
        return NULL;
    }
    struct secret *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->p = OPENSSL_secure_zalloc(len + 1);
    if (!s->p) {
        free(s);
        return NULL;
    }
    if (len > 0) {
        memcpy(s->p, p, len);
    }
    s->len = len;
    return s;
}

struct secret *secret_free(struct secret *s)
{
    if (!s) {
        return NULL;
    }
    OPENSSL_secure_clear_free(s->p, s->len + 1);
    free(s);
    return NULL;
}
