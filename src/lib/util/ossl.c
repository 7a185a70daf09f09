/* SPDX-License-Identifier: Apache-2.0 */
/* The OpenSSL error-queue adapter: OpenSSL's text goes to the debug log only. */
#include "util/ossl.h"

#include <openssl/err.h>

#include "log/log.h"

unsigned long ossl_drain_errors(const char *what)
{
    unsigned long first = 0, e;
    const char *file = NULL, *func = NULL, *data = NULL;
    int line = 0, flags = 0;
    char buf[256];

    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        if (first == 0) {
            first = e;
        }
        ERR_error_string_n(e, buf, sizeof(buf));
        log_debug("%s: openssl: %s%s%s", what ? what : "openssl", buf,
                  (flags & ERR_TXT_STRING) && data ? ": " : "",
                  (flags & ERR_TXT_STRING) && data ? data : "");
    }
    return first;
}

void ossl_params_clear_free(OSSL_PARAM **params)
{
    if (!*params) {
        return;
    }
    for (OSSL_PARAM *p = *params; p->key; p++) {
        if (p->data && p->data_size > 0) {
            OPENSSL_cleanse(p->data, p->data_size);
        }
    }
    OSSL_PARAM_free(*params);
    *params = NULL;
}
