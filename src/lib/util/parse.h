/* SPDX-License-Identifier: Apache-2.0 */
/* Number parsing and overflow-checked size arithmetic (STYLE.md §5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"

/*
 * Parse a decimal unsigned number in [min, max]. Rejects empty strings, signs, blanks, leading
 * zeros beyond "0", trailing bytes and overflow. Returns 0, -EINVAL (not a number) or -ERANGE
 * (out of range). *ret is written only on success.
 */
_must_check_ int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* a + b and a * b into *ret; false (and *ret untouched) on overflow. */
static inline bool size_add(size_t a, size_t b, size_t *ret)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return false;
    }
    *ret = r;
    return true;
}

static inline bool size_mul(size_t a, size_t b, size_t *ret)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        return false;
    }
    *ret = r;
    return true;
}

/* The value of one hexadecimal digit (either case), or -1. */
int hex_digit_value(char c);

/* ASCII case-insensitive equality, for names from configuration and requests. */
bool str_case_eq(const char *a, const char *b);
