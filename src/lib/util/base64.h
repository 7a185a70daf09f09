/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (RFC 4648) in one place: the strict decoder that PEM bodies, HTTP Basic credentials and
 * SPKI pins go through, and the encoders for pins (standard alphabet, padded) and for random
 * tokens and passwords (base64url, unpadded). The decoder accepts one spelling per byte string
 * (canonical encoding), so that a text has exactly one meaning. Pure functions; thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"
#include "util/span.h"

/* Characters of n bytes in standard base64 with padding (RFC 4648 §4), without the NUL. */
#define BASE64_LEN(n) (((n) + 2u) / 3u * 4u)
/* Characters of n bytes in base64url without padding (RFC 4648 §5, §3.2), without the NUL. */
#define BASE64URL_LEN(n) ((n) / 3u * 4u + ((n) % 3u ? (n) % 3u + 1u : 0u))

/* The 64 characters of base64url (RFC 4648 §5), to check text made by base64url_encode. */
#define BASE64URL_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* base64_decode flag: skip spaces, tabs, CR and LF anywhere (PEM bodies, RFC 7468 §3). */
#define BASE64_SKIP_BLANKS 1u

/* The value (0..63) of a character of the standard alphabet (RFC 4648 §4), or -1. */
int base64_char_value(char c);

/*
 * Decode standard base64 strictly: only the alphabet (and blanks with BASE64_SKIP_BLANKS),
 * whole 4-character quanta, '=' only as one or two final padding characters, and zero bits
 * under the padding. Writes at most size bytes to out and their count to *ret_len.
 * Returns 0, -EBADMSG (anything else, or no data at all) or -E2BIG (well-formed, but more than
 * size bytes), -EINVAL for bad arguments. On failure *ret_len is untouched and out may hold
 * part of the data: callers decoding secrets wipe it.
 */
_must_check_ int base64_decode(struct span text, unsigned flags, uint8_t *out, size_t size,
                               size_t *ret_len);

/*
 * Encode n bytes of in as standard base64 with padding (BASE64_LEN(n) characters) or as
 * base64url without padding (BASE64URL_LEN(n) characters), and a NUL, into out of size bytes.
 * size must be larger than that length (a programmer's error otherwise: assert).
 */
void base64_encode(const uint8_t *in, size_t n, char *out, size_t size);
void base64url_encode(const uint8_t *in, size_t n, char *out, size_t size);
