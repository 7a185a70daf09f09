/* SPDX-License-Identifier: Apache-2.0 */
/* The error record: first writer wins, messages are bounded and made printable. */
#include "error/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CERTD_ERR_NAME(code, name, cls) [code] = name,
static const char *const code_names[CERTD_E_MAX] = { CERTD_ERRORS(CERTD_ERR_NAME) };
#undef CERTD_ERR_NAME

#define CERTD_ERR_CLASS(code, name, cls) [code] = cls,
static const enum certd_errclass code_classes[CERTD_E_MAX] = { CERTD_ERRORS(CERTD_ERR_CLASS) };
#undef CERTD_ERR_CLASS

static const char *const class_names[CERTD_CLASS_MAX] = {
    [CERTD_CLASS_NONE] = "none",
    [CERTD_CLASS_INVALID_INPUT] = "invalid-input",
    [CERTD_CLASS_NOT_ALLOWED] = "not-allowed",
    [CERTD_CLASS_NOT_FOUND] = "not-found",
    [CERTD_CLASS_CONFLICT] = "conflict",
    [CERTD_CLASS_UNAVAILABLE] = "unavailable",
    [CERTD_CLASS_INTERNAL] = "internal",
    [CERTD_CLASS_UPSTREAM] = "upstream",
};

_printf_(5, 0) static int err_vset(struct certd_err *err, int r, enum certd_errc code,
                                   const char *field, const char *fmt, va_list ap)
{
    if (!err || err->code != CERTD_E_OK) {
        return r;
    }
    err->code = code;
    (void)snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (n < 0) {
        err->msg[0] = '\0';
    }
    /* Messages may quote outside text (a subject, a field value): keep them one printable line. */
    for (char *p = err->msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    return r;
}

int err_set(struct certd_err *err, int r, enum certd_errc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r = err_vset(err, r, code, NULL, fmt, ap);
    va_end(ap);
    return r;
}

int err_set_field(struct certd_err *err, int r, enum certd_errc code, const char *field,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r = err_vset(err, r, code, field, fmt, ap);
    va_end(ap);
    return r;
}

void err_clear(struct certd_err *err)
{
    if (err) {
        err->code = CERTD_E_OK;
        err->msg[0] = '\0';
        err->field[0] = '\0';
    }
}

bool err_is_set(const struct certd_err *err)
{
    return err && err->code != CERTD_E_OK;
}

const char *err_code_name(enum certd_errc code)
{
    if ((unsigned)code >= CERTD_E_MAX) {
        return "unknown";
    }
    return code_names[code];
}

enum certd_errclass err_code_class(enum certd_errc code)
{
    if ((unsigned)code >= CERTD_E_MAX) {
        return CERTD_CLASS_INTERNAL;
    }
    return code_classes[code];
}

const char *err_class_name(enum certd_errclass cls)
{
    if ((unsigned)cls >= CERTD_CLASS_MAX) {
        return "unknown";
    }
    return class_names[cls];
}
