/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process limit of SignCSR (issue #4, bench (a)): in one thread, parse a PEM CSR and
 * verify its signature, build a client certificate (random 128-bit serial, subject and key
 * from the CSR, validity, basicConstraints, keyUsage, EKU clientAuth, SKI, AKI) and sign it
 * with the CA key, with OpenSSL's EVP/X509 calls directly: no libcertd, no checks beyond the
 * signature, no storage, no network. bench/ca-bench compares certd's SignCSR over HTTPS
 * with this.
 *
 * With a fifth argument "spki", the certificate's SubjectPublicKeyInfo is copied from the CSR
 * as bytes (X509_PUBKEY_set0_param) instead of X509_set_pubkey, which in OpenSSL 3.0 encodes
 * the key and decodes it again: the stronger limit, as certd's CA does it.
 *
 * Usage: bench-signcsr CA_CERT CA_KEY CSR SECONDS [spki]
 * Prints "signings N seconds S rate R" (R per second) on stdout. Exit 0, or 1 with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)*len);
        if (buf && fread(buf, 1, (size_t)*len, f) != (size_t)*len) {
            free(buf);
            buf = NULL;
        }
    }
    (void)fclose(f);
    return buf;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static int copy_spki(X509 *x, X509_REQ *req)
{
    ASN1_OBJECT *alg_oid = NULL;
    const unsigned char *bits = NULL;
    int bits_len = 0, ptype = V_ASN1_UNDEF;
    X509_ALGOR *alg = NULL;
    const void *pval = NULL;
    const ASN1_OBJECT *palg = NULL;
    void *param = NULL;

    if (X509_PUBKEY_get0_param(&alg_oid, &bits, &bits_len, &alg, X509_REQ_get_X509_PUBKEY(req)) !=
        1) {
        return -1;
    }
    X509_ALGOR_get0(&palg, &ptype, &pval, alg);
    if (ptype == V_ASN1_OBJECT) {
        param = OBJ_dup(pval);
    }
    ASN1_OBJECT *oid = OBJ_dup(palg);
    unsigned char *copy = OPENSSL_memdup(bits, (size_t)bits_len);
    if (!oid || !copy || (ptype == V_ASN1_OBJECT && !param) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), oid, ptype, param, copy, bits_len) != 1) {
        return -1;
    }
    return 0;
}

static int use_spki_copy;

/* One SignCSR: 0, or -1 when anything failed. */
static int sign_one(const char *pem, long pem_len, X509 *ca, EVP_PKEY *ca_key)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    unsigned char rnd[16];
    int r = -1;

    if (!pub || X509_REQ_verify(req, pub) != 1) {
        goto out;
    }
    x = X509_new();
    bn = BN_new();
    if (!x || !bn || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        goto out;
    }
    rnd[0] &= 0x7f; /* positive */
    if (!BN_bin2bn(rnd, sizeof(rnd), bn) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        X509_set_version(x, 2) != 1 ||
        X509_set_subject_name(x, X509_REQ_get_subject_name(req)) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
        (use_spki_copy ? copy_spki(x, req) < 0 : X509_set_pubkey(x, pub) != 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400L)) {
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") < 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid") < 0) {
        goto out;
    }
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        goto out;
    }
    /* What is handed out: the PEM. */
    BIO *o = BIO_new(BIO_s_mem());
    r = o && PEM_write_bio_X509(o, x) == 1 ? 0 : -1;
    BIO_free(o);
out:
    BN_free(bn);
    X509_free(x);
    X509_REQ_free(req);
    BIO_free(bio);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "spki") == 0)) {
        fprintf(stderr, "usage: bench-signcsr CA_CERT CA_KEY CSR SECONDS [spki]\n");
        return 1;
    }
    use_spki_copy = argc == 6;
    long cert_len = 0, key_len = 0, csr_len = 0;
    char *cert_pem = slurp(argv[1], &cert_len), *key_pem = slurp(argv[2], &key_len);
    char *csr = slurp(argv[3], &csr_len);
    double seconds = atof(argv[4]);
    if (!cert_pem || !key_pem || !csr || seconds <= 0) {
        fprintf(stderr, "bench-signcsr: cannot read the inputs\n");
        return 1;
    }
    BIO *b1 = BIO_new_mem_buf(cert_pem, (int)cert_len),
        *b2 = BIO_new_mem_buf(key_pem, (int)key_len);
    X509 *ca = b1 ? PEM_read_bio_X509(b1, NULL, NULL, NULL) : NULL;
    EVP_PKEY *ca_key = b2 ? PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL) : NULL;
    if (!ca || !ca_key || sign_one(csr, csr_len, ca, ca_key) < 0) {
        fprintf(stderr, "bench-signcsr: the CA or the CSR does not work\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    unsigned long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 16; i++) {
            if (sign_one(csr, csr_len, ca, ca_key) < 0) {
                fprintf(stderr, "bench-signcsr: a signing failed\n");
                return 1;
            }
            n++;
        }
        t = now_s() - t0;
    } while (t < seconds);
    printf("signings %lu seconds %.3f rate %.1f\n", n, t, (double)n / t);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    BIO_free(b1);
    BIO_free(b2);
    free(cert_pem);
    free(key_pem);
    free(csr);
    return 0;
}
