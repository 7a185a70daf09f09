/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the upload parser, and everything that reads what it accepts: inspect and validate. */
#include <openssl/evp.h>

#include "fuzz.h"
#include "x509/bundle.h"
#include "x509/inspect.h"
#include "x509/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct certd_err err = { 0 };
    struct bundle *b = NULL;
    /* A small cap, so that the size limit is reached too. */
    if (bundle_parse(NULL, NULL, span_make(data, size), 16384, &b, &err) < 0) {
        return 0;
    }
    for (size_t i = 0; i < bundle_n_certs(b); i++) {
        struct cert_info *ci = NULL;
        if (cert_inspect(NULL, NULL, bundle_cert(b, i), &ci, &err) == 0) {
            (void)cert_info_free(ci);
        }
    }
    struct validate_policy pol;
    struct validate_result res;
    validate_policy_init(&pol, 1700000000);
    for (int t = 0; t < ENDPOINT_TYPE_MAX; t++) {
        err_clear(&err);
        /* Accept or refuse: either is fine, as long as nothing crashes or leaks. */
        if (validate_bundle(NULL, NULL, b, (enum endpoint_type)t, &pol, NULL, NULL, &res, &err) <
            0) {
            continue;
        }
    }
    (void)bundle_free(b);
    return 0;
}
