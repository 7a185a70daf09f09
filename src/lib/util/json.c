/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

int json_text_bounds(struct span s, size_t depth_max, size_t values_max)
{
    size_t depth = 0, values = 1;
    bool in_string = false, escaped = false;

    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.p[i];
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '{':
        case '[':
            if (++depth > depth_max) {
                return -EBADMSG;
            }
            if (++values > values_max) {
                return -E2BIG;
            }
            break;
        case '}':
        case ']':
            if (depth > 0) {
                depth--;
            }
            break;
        case ',':
            if (++values > values_max) {
                return -E2BIG;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}
