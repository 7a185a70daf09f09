/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (base64.h). The decoder reads through a cursor and keeps at most one quantum in hand;
 * it never writes past size, and reports -E2BIG only for text that is otherwise valid, so that
 * the caller's message ("not base64" or "too long") is the right one.
 */
#include "util/base64.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alphabet_url[] = BASE64URL_ALPHABET;

int base64_char_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

static bool is_blank(uint8_t b)
{
    return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

int base64_decode(struct span text, unsigned flags, uint8_t *out, size_t size, size_t *ret_len)
{
    assert_return(out || size == 0, -EINVAL);
    assert_return(ret_len, -EINVAL);

    struct cursor c = cur_init(text);
    uint32_t acc = 0;
    unsigned n = 0, pad = 0;
    size_t o = 0; /* bytes decoded so far, written or not: o <= text.len cannot overflow */
    uint8_t b;

    while (cur_u8(&c, &b) == 0) {
        if ((flags & BASE64_SKIP_BLANKS) && is_blank(b)) {
            continue;
        }
        if (pad > 0 && (b != '=' || n == 0)) {
            return -EBADMSG; /* data after the padding */
        }
        if (b == '=') {
            /* A quantum holds at least one byte: two characters before any padding. */
            if (n < 2) {
                return -EBADMSG;
            }
            pad++;
            acc <<= 6;
        } else {
            int v = base64_char_value((char)b);
            if (v < 0) {
                return -EBADMSG;
            }
            acc = acc << 6 | (uint32_t)v;
        }
        if (++n < 4) {
            continue;
        }
        /* RFC 4648 §3.5: the bits under the padding are zero (one text per byte string). */
        if ((pad == 1 && (acc & 0xffu) != 0) || (pad == 2 && (acc & 0xffffu) != 0)) {
            return -EBADMSG;
        }
        size_t nout = 3 - pad;
        if (o + nout <= size) {
            for (size_t k = 0; k < nout; k++) {
                out[o + k] = (uint8_t)(acc >> (16 - 8 * k));
            }
        }
        o += nout;
        acc = 0;
        n = 0;
    }
    if (n != 0 || o == 0) {
        return -EBADMSG; /* a partial quantum, or nothing */
    }
    if (o > size) {
        return -E2BIG;
    }
    *ret_len = o;
    return 0;
}

static void encode(const char *abc, bool is_padded, const uint8_t *in, size_t n, char *out,
                   size_t size)
{
    assert(in || n == 0);
    assert(out && size > (is_padded ? BASE64_LEN(n) : BASE64URL_LEN(n)));
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18 & 0x3f];
        out[o++] = abc[v >> 12 & 0x3f];
        out[o++] = abc[v >> 6 & 0x3f];
        out[o++] = abc[v & 0x3f];
    }
    size_t rest = n - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18 & 0x3f];
        out[o++] = abc[v >> 12 & 0x3f];
        if (rest == 2) {
            out[o++] = abc[v >> 6 & 0x3f];
        } else if (is_padded) {
            out[o++] = '=';
        }
        if (is_padded) {
            out[o++] = '=';
        }
    }
    out[o] = '\0';
}

void base64_encode(const uint8_t *in, size_t n, char *out, size_t size)
{
    encode(alphabet, true, in, n, out, size);
}

void base64url_encode(const uint8_t *in, size_t n, char *out, size_t size)
{
    encode(alphabet_url, false, in, n, out, size);
}
