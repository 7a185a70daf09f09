/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the pin parser and the key-spec parser: both read strings from configuration and APIs. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keys/keys.h"
#include "pin/pin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) {
        return 0;
    }
    char *s = malloc(size + 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0'; /* an embedded NUL just shortens the string, as it would from a C API */
    struct certd_err err = { 0 };
    struct pin p;
    if (pin_parse(s, &p, &err) == 0) {
        char buf[PIN_STR_MAX];
        pin_format(&p, buf, sizeof(buf));
        struct pin q;
        /* What we print we must read back to the same pin. */
        if (pin_parse(buf, &q, NULL) != 0 || !pin_eq(&p, &q)) {
            abort();
        }
    }
    struct key_spec spec;
    err_clear(&err);
    if (key_spec_parse(s, &spec, &err) == 0) {
        char buf[KEY_SPEC_STR_MAX];
        key_spec_format(&spec, buf, sizeof(buf));
        struct key_spec again;
        /* What we print we must read back to the same spec, provider included. */
        if (key_spec_parse(buf, &again, NULL) != 0 || again.alg != spec.alg ||
            again.bits != spec.bits || strcmp(again.curve, spec.curve) != 0 ||
            strcmp(again.provider, spec.provider) != 0) {
            abort();
        }
    }
    free(s);
    return 0;
}
