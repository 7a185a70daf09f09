/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An OpenSSL provider for test-tpm, loaded from its own path ("module" parameter): it offers no
 * algorithms and agrees to load only when the core hands it the parameter "probe" with exactly
 * PROBE_EXPECTED as its value. So a provider context that has it loaded proves that
 * providers_libctx_new got a parameter, unchanged, to a provider through OpenSSL's
 * configuration, which no provider installed on the system can show (tpm2-openssl drops its
 * "tcti": see keys/providers.h).
 */
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/params.h>

/* Characters a TCTI string has (':', '=', ',') and an inner space, which the parser keeps. */
#define PROBE_EXPECTED "swtpm:host=127.0.0.1,port=2321 x/y"

OSSL_provider_init_fn OSSL_provider_init;

static const OSSL_ALGORITHM *probe_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    (void)operation_id;
    *no_cache = 0;
    return NULL;
}

static const OSSL_DISPATCH probe_dispatch[] = {
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))probe_query },
    { 0, NULL },
};

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    for (; in->function_id != 0; in++) {
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS) {
            get_params = OSSL_FUNC_core_get_params(in);
        }
    }
    char *value = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr("probe", &value, 0),
        OSSL_PARAM_END,
    };
    if (!get_params || !get_params(handle, params) || !value ||
        strcmp(value, PROBE_EXPECTED) != 0) {
        return 0;
    }
    *out = probe_dispatch;
    *provctx = (void *)(uintptr_t)handle;
    return 1;
}
