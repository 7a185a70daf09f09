/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the CSR parser (the SignCSR input of issue #4) and the private-key file parser. */
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "csr/csr.h"
#include "fuzz.h"
#include "x509/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct certd_err err = { 0 };
    X509_REQ *req = NULL;
    if (csr_parse(NULL, NULL, data, size, 16384, &req, &err) == 0) {
        X509_REQ_free(req);
    }
    err_clear(&err);
    EVP_PKEY *key = NULL;
    if (key_parse_pem(NULL, NULL, span_make(data, size), &key, &err) == 0) {
        EVP_PKEY_free(key);
    }
    return 0;
}
