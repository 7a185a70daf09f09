/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cleanup helpers for the OpenSSL types libcertd owns, and the adapter that turns OpenSSL's
 * error queue into one debug line (its text never reaches a client: STYLE.md §6).
 */
#pragma once

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/cleanup.h"

DEFINE_CLEANUP(X509, X509_free)
DEFINE_CLEANUP(X509_REQ, X509_REQ_free)
DEFINE_CLEANUP(X509_NAME, X509_NAME_free)
DEFINE_CLEANUP(X509_EXTENSION, X509_EXTENSION_free)
DEFINE_CLEANUP(X509_STORE, X509_STORE_free)
DEFINE_CLEANUP(X509_STORE_CTX, X509_STORE_CTX_free)
DEFINE_CLEANUP(EVP_PKEY, EVP_PKEY_free)
DEFINE_CLEANUP(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
DEFINE_CLEANUP(EVP_MD, EVP_MD_free)
DEFINE_CLEANUP(EVP_MD_CTX, EVP_MD_CTX_free)
DEFINE_CLEANUP(BIO, BIO_free)
DEFINE_CLEANUP(BIGNUM, BN_free)
DEFINE_CLEANUP(ASN1_INTEGER, ASN1_INTEGER_free)
DEFINE_CLEANUP(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
DEFINE_CLEANUP(ASN1_OBJECT, ASN1_OBJECT_free)
DEFINE_CLEANUP(ASN1_TIME, ASN1_TIME_free)
DEFINE_CLEANUP(GENERAL_NAMES, GENERAL_NAMES_free)
DEFINE_CLEANUP(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free)
DEFINE_CLEANUP(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free)
DEFINE_CLEANUP(ASN1_BIT_STRING, ASN1_BIT_STRING_free)
DEFINE_CLEANUP(X509_CRL, X509_CRL_free)
DEFINE_CLEANUP(X509_REVOKED, X509_REVOKED_free)
DEFINE_CLEANUP(ASN1_ENUMERATED, ASN1_ENUMERATED_free)
DEFINE_CLEANUP(OSSL_LIB_CTX, OSSL_LIB_CTX_free)

/*
 * An OSSL_PARAM array from EVP_PKEY_todata(): every value wiped, then freed (it may hold a private
 * key). For `_cleanup_(ossl_params_clear_free) OSSL_PARAM *`; accepts NULL.
 */
void ossl_params_clear_free(OSSL_PARAM **params);

/* Bytes OpenSSL allocated for us (i2d_* output): `_cleanup_(ossl_bytes_free) unsigned char *`. */
static inline void ossl_bytes_free(unsigned char **p)
{
    OPENSSL_free(*p);
}

typedef STACK_OF(X509) x509_stack;
static inline void x509_stack_free(x509_stack *sk)
{
    sk_X509_pop_free(sk, X509_free);
}
DEFINE_CLEANUP(x509_stack, x509_stack_free)

typedef STACK_OF(X509_EXTENSION) x509_ext_stack;
static inline void x509_ext_stack_free(x509_ext_stack *sk)
{
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
}
DEFINE_CLEANUP(x509_ext_stack, x509_ext_stack_free)

/*
 * Drain the calling thread's OpenSSL error queue into one debug line prefixed with `what`.
 * Returns the first (oldest) packed error code, 0 when the queue was empty.
 */
unsigned long ossl_drain_errors(const char *what);
