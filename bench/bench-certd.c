/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd benchmarks, each side by side with its reference in the same process and run:
 *  (a) parse + validate a server certificate + key bundle (libcertd) against the raw OpenSSL
 *      minimum (PEM_read_bio_X509 + PEM_read_bio_PrivateKey + X509_check_private_key);
 *  (b) CSR generation, EC P-256 and RSA-2048: key_generate + csr_build + csr_to_pem against
 *      the same key generation, the same request (CN, SAN, keyUsage, EKU) and the same
 *      signature done directly with EVP.
 * Samples alternate between the two sides so that drift (frequency, other load) hits both
 * alike. Prints medians and the ratio certd/raw. Not a test: nothing here passes or fails.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "issue/issue.h"
#include "keys/keys.h"
#include "util/ossl.h"
#include "x509/bundle.h"
#include "x509/validate.h"

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: a small deterministic generator for resampling (rand() is banned). */
static uint64_t xorshift(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return *st * 2685821657736338717ULL;
}

/*
 * 95% bootstrap interval of median(a)/median(b) over n paired samples: how far the reported
 * ratio can be trusted when single samples vary a lot (RSA key generation).
 */
static void ratio_interval(const double *a, const double *b, size_t n, double *lo, double *hi)
{
    enum { RESAMPLES = 1000 };
    double *ra = malloc(n * sizeof(double)), *rb = malloc(n * sizeof(double));
    double *ratios = malloc(RESAMPLES * sizeof(double));
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    if (!ra || !rb || !ratios) {
        free(ra);
        free(rb);
        free(ratios);
        *lo = *hi = 0;
        return;
    }
    for (size_t k = 0; k < RESAMPLES; k++) {
        for (size_t i = 0; i < n; i++) {
            size_t j = (size_t)(xorshift(&st) % n);
            ra[i] = a[j];
            rb[i] = b[j];
        }
        ratios[k] = median(ra, n) / median(rb, n);
    }
    qsort(ratios, RESAMPLES, sizeof(double), cmp_double);
    *lo = ratios[RESAMPLES * 25 / 1000];
    *hi = ratios[RESAMPLES * 975 / 1000];
    free(ra);
    free(rb);
    free(ratios);
}

static void die(const char *what)
{
    (void)fprintf(stderr, "bench: %s failed\n", what);
    exit(1);
}

/* A server bundle (certificate PEM + key PEM) made with libcertd, once. */
static char *make_bundle(size_t *ret_len)
{
    struct certd_err err = { 0 };
    struct key_spec spec;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    static const char *const sans[] = { "bench.example.com", "192.0.2.1" };
    struct selfsign_request req = { .common_name = "bench.example.com",
                                    .alt_names = sans,
                                    .n_alt_names = 2,
                                    .days = 365,
                                    .now = (int64_t)time(NULL) };
    if (key_spec_from_names("EC", 0, "P-256", &spec, &err) < 0 ||
        key_generate(NULL, NULL, &spec, &key, &err) < 0 ||
        issue_selfsigned(NULL, NULL, key, &req, &cert, &err) < 0) {
        die(err.msg);
    }
    _cleanup_free_ char *cpem = NULL;
    size_t clen = 0;
    _cleanup_(cleanup_secret) struct secret *kpem = NULL;
    if (cert_to_pem(cert, &cpem, &clen) < 0 || key_private_to_pem(NULL, NULL, key, &kpem) < 0) {
        die("encode");
    }
    char *buf = malloc(clen + kpem->len + 1);
    if (!buf) {
        die("malloc");
    }
    memcpy(buf, cpem, clen);
    memcpy(buf + clen, kpem->p, kpem->len);
    buf[clen + kpem->len] = '\0';
    *ret_len = clen + kpem->len;
    return buf;
}

static void certd_parse_validate(const char *buf, size_t len, int64_t t)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct validate_policy pol;
    struct validate_result res;
    validate_policy_init(&pol, t);
    if (bundle_parse(NULL, NULL, span_make(buf, len), 0, &b, &err) < 0 ||
        validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, &pol, NULL, NULL, &res, &err) < 0) {
        die(err.msg);
    }
}

/*
 * The raw reference: OpenSSL's own PEM readers and X509_check_private_key. With `check_key`, it
 * also does the key consistency check that certd makes on every uploaded key
 * (EVP_PKEY_pairwise_check), so that the two sides do the same work.
 */
static void raw_parse_validate(const char *buf, size_t len, bool check_key)
{
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new_mem_buf(buf, (int)len);
    _cleanup_(cleanup_X509) X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *k =
        x ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!k || X509_check_private_key(x, k) != 1) {
        die("raw parse");
    }
    if (check_key) {
        _cleanup_(cleanup_EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
        if (!ctx || EVP_PKEY_pairwise_check(ctx) != 1) {
            die("raw pairwise check");
        }
    }
}

static void bench_parse(void)
{
    size_t len = 0;
    _cleanup_free_ char *buf = make_bundle(&len);
    int64_t t = (int64_t)time(NULL);
    enum { ROUNDS = 15, PER_ROUND = 400 };
    double certd[ROUNDS], raw[ROUNDS], raw_checked[ROUNDS];

    for (size_t r = 0; r < ROUNDS; r++) {
        double t0 = now_s();
        for (int i = 0; i < PER_ROUND; i++) {
            certd_parse_validate(buf, len, t);
        }
        double t1 = now_s();
        for (int i = 0; i < PER_ROUND; i++) {
            raw_parse_validate(buf, len, false);
        }
        double t2 = now_s();
        for (int i = 0; i < PER_ROUND; i++) {
            raw_parse_validate(buf, len, true);
        }
        double t3 = now_s();
        certd[r] = PER_ROUND / (t1 - t0);
        raw[r] = PER_ROUND / (t2 - t1);
        raw_checked[r] = PER_ROUND / (t3 - t2);
    }
    double c = median(certd, ROUNDS), w = median(raw, ROUNDS), wc = median(raw_checked, ROUNDS);
    (void)printf("(a) parse+validate EC P-256 cert+key bundle (%zu bytes), operations per second\n",
                 len);
    (void)printf("    certd (parse, all rules, key consistency): %7.0f /s\n", c);
    (void)printf("    raw OpenSSL parse + key match:              %7.0f /s   time ratio certd/raw: "
                 "%.2f\n",
                 w, w / c);
    (void)printf("    raw OpenSSL parse + key match + pairwise:   %7.0f /s   time ratio certd/raw: "
                 "%.2f\n",
                 wc, wc / c);
}

/*
 * The raw side: same key generation (unless a key is given), same request content, signed
 * directly with EVP.
 */
static void raw_csr(const struct key_spec *spec, EVP_PKEY *given)
{
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *made = NULL;
    if (!given) {
        if (spec->alg == KEY_ALG_RSA) {
            made = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)spec->bits);
        } else {
            made = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec->curve);
        }
        if (!made) {
            die("raw keygen");
        }
    }
    EVP_PKEY *key = given ? given : made;
    _cleanup_(cleanup_X509_REQ) X509_REQ *req = X509_REQ_new_ex(NULL, NULL);
    _cleanup_(cleanup_X509_NAME) X509_NAME *name = X509_NAME_new();
    _cleanup_(cleanup_x509_ext_stack) x509_ext_stack *exts = sk_X509_EXTENSION_new_null();
    if (!req || !name || !exts || X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)"bench.example.com", -1, -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1) {
        die("raw req");
    }
    X509_EXTENSION *e1 =
        X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:bench.example.com");
    X509_EXTENSION *e2 = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "digitalSignature");
    X509_EXTENSION *e3 = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth");
    if (!e1 || !e2 || !e3) {
        die("raw ext");
    }
    (void)sk_X509_EXTENSION_push(exts, e1);
    (void)sk_X509_EXTENSION_push(exts, e2);
    (void)sk_X509_EXTENSION_push(exts, e3);
    if (X509_REQ_add_extensions(req, exts) != 1) {
        die("raw add ext");
    }
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        X509_REQ_sign_ctx(req, md) <= 0) {
        die("raw sign");
    }
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509_REQ(bio, req) != 1) {
        die("raw pem");
    }
}

static void certd_csr(const struct key_spec *spec, EVP_PKEY *given)
{
    static const char *const sans[] = { "bench.example.com" };
    static const char *const usages[] = { "DigitalSignature", "ServerAuthentication" };
    struct csr_request req = { .common_name = "bench.example.com",
                               .alt_names = sans,
                               .n_alt_names = 1,
                               .key_usage = usages,
                               .n_key_usage = 2 };
    struct certd_err err = { 0 };
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *made = NULL;
    _cleanup_(cleanup_X509_REQ) X509_REQ *csr = NULL;
    _cleanup_free_ char *pem = NULL;
    size_t len = 0;
    if (!given && key_generate(NULL, NULL, spec, &made, &err) < 0) {
        die(err.msg);
    }
    if (csr_build(NULL, NULL, &req, given ? given : made, &csr, &err) < 0 ||
        csr_to_pem(csr, &pem, &len) < 0) {
        die(err.msg);
    }
}

/*
 * with_keygen: the whole GenerateCSR cost (fresh key + request + signature). Without: one key
 * made beforehand, so that only request building and signing are compared, which isolates
 * certd's own overhead from RSA key generation's large random spread.
 */
static void bench_csr(const char *label, const char *alg, unsigned bits, const char *curve,
                      int samples, bool with_keygen)
{
    struct certd_err err = { 0 };
    struct key_spec spec;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    if (key_spec_from_names(alg, bits, curve, &spec, &err) < 0) {
        die(err.msg);
    }
    if (!with_keygen && key_generate(NULL, NULL, &spec, &key, &err) < 0) {
        die(err.msg);
    }
    double *c = calloc((size_t)samples, sizeof(double));
    double *w = calloc((size_t)samples, sizeof(double));
    if (!c || !w) {
        die("calloc");
    }
    /* Warm up both paths (provider fetch caches, page faults). */
    certd_csr(&spec, key);
    raw_csr(&spec, key);
    for (int i = 0; i < samples; i++) {
        /* Alternate which side goes first, so neither always follows the other. */
        double t0 = now_s();
        if (i % 2) {
            raw_csr(&spec, key);
        } else {
            certd_csr(&spec, key);
        }
        double t1 = now_s();
        if (i % 2) {
            certd_csr(&spec, key);
        } else {
            raw_csr(&spec, key);
        }
        double t2 = now_s();
        c[i] = (i % 2) ? t2 - t1 : t1 - t0;
        w[i] = (i % 2) ? t1 - t0 : t2 - t1;
    }
    double lo, hi;
    /* The interval first: median() sorts, which would break the pairing of the samples. */
    ratio_interval(c, w, (size_t)samples, &lo, &hi);
    double mc = median(c, (size_t)samples), mw = median(w, (size_t)samples);
    (void)printf("(%c) CSR %-9s %-12s certd median %8.3f ms  raw EVP median %8.3f ms  "
                 "ratio certd/raw: %.3f [95%%: %.3f-%.3f] (n=%d)\n",
                 with_keygen ? 'b' : 'c', label, with_keygen ? "keygen+sign" : "sign only",
                 mc * 1e3, mw * 1e3, mc / mw, lo, hi, samples);
    free(c);
    free(w);
}

int main(int argc, char **argv)
{
    int rsa_samples = 101, ec_samples = 1001;
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        rsa_samples = 11;
        ec_samples = 101;
    }
    bench_parse();
    bench_csr("EC P-256", "EC", 0, "P-256", ec_samples, true);
    bench_csr("RSA-2048", "RSA", 2048, NULL, rsa_samples, true);
    bench_csr("EC P-256", "EC", 0, "P-256", ec_samples, false);
    bench_csr("RSA-2048", "RSA", 2048, NULL, ec_samples, false);
    return 0;
}
