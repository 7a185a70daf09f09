/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the cmocka unit tests: fixture files made by tests/data/gen-fixtures
 * (directory in $CERTD_FIXTURES), scratch directories, and loading certificates and keys with
 * OpenSSL directly, independent of the code under test.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
/* A formatted string (malloc'd; the test fails when memory runs out). */
char *tu_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A whole file, NUL-terminated (malloc'd), its length in *ret_len (nullable); NULL when it
 * does not exist (any other failure fails the test).
 */
char *tu_file_get(const char *path, size_t *ret_len);
/* Entries of dir whose name starts with prefix ("" counts all but . and ..). */
size_t tu_count_prefix(const char *dir, const char *prefix);

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

/*
 * What tu_cert_make puts in a certificate. The subject is O=certd tests[, OU=ou], CN=cn; the
 * serial is random (63 bits); the extensions come in this order: BasicConstraints (critical,
 * CA:TRUE or CA:FALSE), KeyUsage, SubjectKeyIdentifier (hash), AuthorityKeyIdentifier,
 * ExtendedKeyUsage, SubjectAltName. Strings are in openssl's x509v3_config syntax.
 */
struct tu_cert_spec {
    EVP_PKEY *key;        /* subject key: a public key is enough unless self-signed (borrowed) */
    const char *cn;       /* subject CN */
    const char *ou;       /* subject OU; NULL: none */
    X509 *issuer;         /* NULL: self-signed with key (borrowed) */
    EVP_PKEY *issuer_key; /* signs when issuer is set (borrowed) */
    bool is_ca;
    /* NULL: "critical,keyCertSign,cRLSign" for a CA, "critical,digitalSignature" for a leaf;
     * "": no KeyUsage. */
    const char *ku;
    bool has_aki;     /* AuthorityKeyIdentifier keyid:always, only when issuer is set */
    const char *eku;  /* ExtendedKeyUsage; NULL: none */
    const char *san;  /* SubjectAltName; NULL: none */
    const EVP_MD *md; /* digest for non-EdDSA signers; NULL: SHA-256 (EdDSA: always none) */
    long nb_days;     /* notBefore: now + nb_days */
    long na_days;     /* notAfter: now + na_days */
};
/* A new certificate as spec says (owned by the caller: X509_free); fails the test on error. */
X509 *tu_cert_make(const struct tu_cert_spec *spec);
