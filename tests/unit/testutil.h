/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the cmocka unit tests: fixture files made by tests/data/gen-fixtures
 * (directory in $CERTD_FIXTURES), scratch directories, and loading certificates and keys with
 * OpenSSL directly, independent of the code under test.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Read fixture NAME into a malloc'd, NUL-terminated buffer; fails the test when missing. */
uint8_t *fixture_read(const char *name, size_t *ret_len);
/* Full path of fixture NAME in a static buffer (valid until the next call). */
const char *fixture_path(const char *name);
/* Load the first certificate / private key of fixture NAME with plain OpenSSL PEM readers. */
X509 *fixture_cert(const char *name);
EVP_PKEY *fixture_key(const char *name);
/* Make a fresh empty scratch directory (malloc'd path); remove it with scratch_rm(). */
char *scratch_dir(const char *tag);
void scratch_rm(char *dir);

/* One key of each type the tests sign with, made once per test program (group setup). */
struct fixture_keys {
    EVP_PKEY *p256, *p384, *rsa, *ed25519;
};
extern struct fixture_keys fixture_keys;
/* cmocka group setup/teardown for fixture_keys: 0 on success, -1 when a key cannot be made. */
int fixture_keys_setup(void **state);
int fixture_keys_teardown(void **state);
