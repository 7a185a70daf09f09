/* SPDX-License-Identifier: Apache-2.0 */
/* Strict number parsing: the only way a decimal string becomes a number in certd. */
#include "util/parse.h"

#include <errno.h>
#include <string.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    assert_return(s && ret, -EINVAL);
    if (s[0] == '\0') {
        return -EINVAL;
    }
    /* "0" alone is fine; "007" is not a number we wrote, so it is not one we read. */
    if (s[0] == '0' && s[1] != '\0') {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) {
            return -ERANGE;
        }
    }
    if (v < min || v > max) {
        return -ERANGE;
    }
    *ret = v;
    return 0;
}

bool str_case_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb) {
            return false;
        }
        if (ca == '\0') {
            return true;
        }
    }
}

int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
