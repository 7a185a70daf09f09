/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets (private keys in PEM, passphrases): kept in a struct secret that is wiped when freed
 * and never copied into ordinary strings (STYLE.md §4).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"

struct secret {
    uint8_t *p; /* owned; always followed by a NUL byte not counted in len */
    size_t len;
};

/* Copy len bytes into a new secret. NULL on lack of memory. */
struct secret *secret_new(const void *p, size_t len);
/* Wipe and free; accepts NULL; returns NULL. */
struct secret *secret_free(struct secret *s);
DEFINE_CLEANUP_STRUCT(secret, secret_free)
