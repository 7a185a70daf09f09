/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload parser: bytes in, a bundle of certificates and at most one private key out. It is a
 * pure, bounded function (no I/O, no clock): the size cap is checked before anything else, the
 * PEM framing is our own (OpenSSL's PEM readers skip text they do not understand, which would let
 * junk and unexpected blocks through silently), every base64 block is decoded strictly, and
 * every DER object must be consumed completely by its decoder. Invariants:
 *   - the first problem found is reported, with one specific detail code;
 *   - messages name labels, line numbers and counts, never key bytes;
 *   - decoded key DER is wiped (OPENSSL_clear_free) before it is freed, on every path;
 *   - a returned private key is consistent: its public part belongs to its private part, and
 *     an RSA key's CRT numbers agree with n and d and are no longer than n, all proved before
 *     the key is used (so that checking costs about a millisecond, whatever the key claims);
 *     except a held key (a TSS2 blob a provider loaded into its TPM), whose private part is not
 *     ours to see and which the TPM checked when it loaded it;
 *   - on failure nothing is returned and everything allocated is freed.
 * key_parse_pem() reuses the same framing for key files: exactly one unencrypted private key.
 * Choice documented here: non-space text BETWEEN two PEM blocks is reported as
 * CERTD_E_INPUT_GARBAGE ("text between PEM blocks"); only text after the LAST block is
 * CERTD_E_TRAILING_DATA, and text before the first block is CERTD_E_INPUT_GARBAGE.
 */
#include "x509/bundle.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys/keys.h"
#include "util/base64.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"

/* RFC 7468 labels are short ("ENCRYPTED PRIVATE KEY" is the longest we know): bound them. */
#define PEM_LABEL_MAX 64u

#define PEM_BEGIN  "-----BEGIN "
#define PEM_END    "-----END "
#define PEM_DASHES "-----"

/* A decoded DER buffer; wiped before it is freed because it may hold a private key. */
struct der_buf {
    uint8_t *p;
    size_t cap;
    size_t len;
};

static void der_buf_wipe(struct der_buf *d)
{
    if (d->p) {
        OPENSSL_clear_free(d->p, d->cap);
        d->p = NULL;
    }
}

/* One PEM block as framed by pem_frame(): positions refer to the whole input. */
struct pem_block {
    struct span label; /* validated: printable ASCII, at most PEM_LABEL_MAX bytes */
    size_t line;       /* line number of the BEGIN line (1-based) */
    struct span body;  /* the base64 text, headers excluded */
    bool is_encrypted; /* an RFC 1421 "Proc-Type: 4,ENCRYPTED" header was present */
};

static void pkey_free_p(EVP_PKEY **p)
{
    EVP_PKEY_free(*p);
}

static void decoder_ctx_free_p(OSSL_DECODER_CTX **p)
{
    OSSL_DECODER_CTX_free(*p);
}

struct bundle *bundle_free(struct bundle *b)
{
    if (!b) {
        return NULL;
    }
    sk_X509_pop_free(b->certs, X509_free);
    EVP_PKEY_free(b->key);
    free(b);
    return NULL;
}

size_t bundle_n_certs(const struct bundle *b)
{
    if (!b || !b->certs) {
        return 0;
    }
    int n = sk_X509_num(b->certs);
    return n > 0 ? (size_t)n : 0;
}

X509 *bundle_cert(const struct bundle *b, size_t i)
{
    if (i >= bundle_n_certs(b) || i > INT32_MAX) {
        return NULL;
    }
    return sk_X509_value(b->certs, (int)i);
}

static bool is_blank(uint8_t b)
{
    return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

/* The span without leading and trailing spaces and tabs. */
static struct span span_trim(struct span s)
{
    struct cursor c = cur_init(s);
    cur_skip_space(&c);
    struct span r = cur_rest(&c);
    while (r.len > 0 && is_blank(r.p[r.len - 1])) {
        r.len--;
    }
    return r;
}

static bool span_starts_with(struct span s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

static bool span_ends_with(struct span s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s.len >= n && memcmp(s.p + (s.len - n), suffix, n) == 0;
}

static bool span_eq_str(struct span s, const char *str)
{
    return span_eq(s, span_from_str(str));
}

/* Bytes [from, to) of the input as a span, taken through a cursor so that it is bounds-checked. */
static int span_slice(struct span in, size_t from, size_t to, struct span *ret)
{
    if (to < from) {
        return -EBADMSG;
    }
    struct cursor c = cur_init(in);
    int r = cur_skip(&c, from);
    if (r < 0) {
        return r;
    }
    return cur_bytes(&c, to - from, ret);
}

/* "-----BEGIN LABEL-----" / "-----END LABEL-----" with an RFC 7468 label. */
static bool pem_label_valid(struct span label)
{
    if (label.len == 0 || label.len > PEM_LABEL_MAX) {
        return false;
    }
    for (size_t i = 0; i < label.len; i++) {
        uint8_t b = label.p[i];
        /* RFC 7468 §3 labelchar: printable ASCII except '-', plus single inner spaces. */
        if (b < 0x20 || b > 0x7e || b == '-') {
            return false;
        }
    }
    return label.p[0] != ' ' && label.p[label.len - 1] != ' ';
}

static int pem_label_of(struct span line, const char *prefix, struct span *ret)
{
    size_t plen = strlen(prefix), slen = strlen(PEM_DASHES);
    if (!span_starts_with(line, prefix) || !span_ends_with(line, PEM_DASHES) ||
        line.len < plen + slen) {
        return -EBADMSG;
    }
    struct span label;
    int r = span_slice(line, plen, line.len - slen, &label);
    if (r < 0 || !pem_label_valid(label)) {
        return -EBADMSG;
    }
    *ret = label;
    return 0;
}

/* The label for a message: already validated as printable and bounded by pem_label_of(). */
#define LABEL_FMT        "\"%.*s\""
#define LABEL_ARG(label) (int)(label).len, (const char *)(label).p

/*
 * Frame one PEM block whose BEGIN line (already trimmed) is `begin`; c stands after that line.
 * Reads optional RFC 1421 headers (ending in a blank line), the body, and the matching END
 * line. On success c stands after the END line.
 */
static int pem_frame(struct span in, struct cursor *c, size_t *lineno, struct span begin,
                     struct pem_block *ret, struct certd_err *err)
{
    struct pem_block blk = { .line = *lineno };
    enum { FIRST, HEADERS, BODY } state = FIRST;
    size_t body_from = 0, body_to = 0;
    bool has_body = false;
    struct span line;
    int r;

    if (pem_label_of(begin, PEM_BEGIN, &blk.label) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "malformed PEM BEGIN line (line %zu)",
                       *lineno);
    }

    for (;;) {
        size_t start = c->pos;
        if (cur_line(c, &line) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_TRUNCATED,
                           "truncated PEM: the " LABEL_FMT " block at line %zu has no END line",
                           LABEL_ARG(blk.label), blk.line);
        }
        (*lineno)++;
        struct span t = span_trim(line);

        if (span_starts_with(t, PEM_BEGIN)) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_TRUNCATED,
                           "truncated PEM: the " LABEL_FMT
                           " block at line %zu has no END line before line %zu",
                           LABEL_ARG(blk.label), blk.line, *lineno);
        }
        if (span_starts_with(t, PEM_END)) {
            struct span end_label;
            if (pem_label_of(t, PEM_END, &end_label) < 0 || !span_eq(end_label, blk.label)) {
                return err_set(
                    err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
                    "bad PEM block: the END line at line %zu does not match BEGIN " LABEL_FMT
                    " at line %zu",
                    *lineno, LABEL_ARG(blk.label), blk.line);
            }
            if (state == HEADERS) {
                return err_set(err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
                               "bad PEM block: the headers of the block at line %zu do not end "
                               "with a blank line",
                               blk.line);
            }
            break;
        }

        /* RFC 1421 §4.4: encapsulated headers "Name: value", then one blank line. */
        if (state == FIRST && t.len > 0 && memchr(t.p, ':', t.len) != NULL) {
            state = HEADERS;
        }
        if (state == HEADERS) {
            if (t.len == 0) {
                state = BODY;
                continue;
            }
            bool is_continuation = line.len > 0 && (line.p[0] == ' ' || line.p[0] == '\t');
            if (!is_continuation && memchr(t.p, ':', t.len) == NULL) {
                return err_set(err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
                               "bad PEM block: malformed header at line %zu", *lineno);
            }
            if (span_starts_with(t, "Proc-Type:") &&
                memmem(t.p, t.len, "ENCRYPTED", strlen("ENCRYPTED")) != NULL) {
                blk.is_encrypted = true;
            }
            continue;
        }

        state = BODY;
        if (t.len == 0) {
            continue;
        }
        if (!has_body) {
            body_from = start;
            has_body = true;
        }
        body_to = c->pos;
    }

    if (has_body) {
        r = span_slice(in, body_from, body_to, &blk.body);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "PEM framing error at line %zu", blk.line);
        }
    } else {
        blk.body = SPAN_EMPTY;
    }
    *ret = blk;
    return 0;
}

static int decode_cert(OSSL_LIB_CTX *libctx, const char *propq, const struct der_buf *der,
                       X509 **ret)
{
    _cleanup_(cleanup_X509) X509 *x = X509_new_ex(libctx, propq);
    if (!x) {
        return -ENOMEM;
    }
    if (der->len > LONG_MAX) {
        return -EBADMSG;
    }
    const unsigned char *p = der->p;
    ERR_set_mark();
    /* On failure d2i frees the object it was given and sets the pointer to NULL. */
    X509 *got = d2i_X509(&x, &p, (long)der->len);
    if (!got) {
        (void)ossl_drain_errors("bundle: d2i_X509");
        ERR_pop_to_mark();
        return -EBADMSG;
    }
    ERR_pop_to_mark();
    /* STYLE.md §5: d2i must consume all of its input. */
    if ((size_t)(p - der->p) != der->len) {
        return -EBADMSG;
    }
    *ret = TAKE_PTR(x);
    return 0;
}

/*
 * The key type a PKCS#8 PrivateKeyInfo names, as a decoder key type, or NULL when unknown (the
 * decoder then tries every type). Knowing it makes OpenSSL 3.0 build a decoder chain for one
 * type instead of all of them: about 3x less work per key (bench/, part a).
 */
static const char *pkcs8_keytype(const struct der_buf *der)
{
    if (der->len > LONG_MAX) {
        return NULL;
    }
    const unsigned char *p = der->p;
    ERR_set_mark();
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der->len);
    const ASN1_OBJECT *obj = NULL;
    int nid = NID_undef;
    if (p8 && PKCS8_pkey_get0(&obj, NULL, NULL, NULL, p8) == 1) {
        nid = OBJ_obj2nid(obj);
    }
    /* Frees with the private key octets wiped (OpenSSL's PKCS8 free callback). */
    PKCS8_PRIV_KEY_INFO_free(p8);
    /* A failure here only means "unknown": decode_key() judges the block. */
    (void)ERR_pop_to_mark();
    switch (nid) {
    case NID_rsaEncryption:
        return "RSA";
    case NID_rsassaPss:
        return "RSA-PSS";
    case NID_X9_62_id_ecPublicKey:
        return "EC";
    case NID_ED25519:
        return "ED25519";
    case NID_ED448:
        return "ED448";
    default:
        return NULL;
    }
}

/*
 * Decode a private key: structure "PrivateKeyInfo" (PKCS#8, any type) or "type-specific" with a
 * key type (PKCS#1 RSA, SEC1 EC). The decoder must consume all of the DER.
 */
static int decode_key(OSSL_LIB_CTX *libctx, const char *propq, const struct der_buf *der,
                      const char *structure, const char *keytype, EVP_PKEY **ret)
{
    _cleanup_(pkey_free_p) EVP_PKEY *pkey = NULL;
    _cleanup_(decoder_ctx_free_p) OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
        &pkey, "DER", structure, keytype, EVP_PKEY_KEYPAIR, libctx, propq);
    if (!dctx) {
        (void)ossl_drain_errors("bundle: decoder");
        return -ENOMEM;
    }
    if (OSSL_DECODER_CTX_get_num_decoders(dctx) <= 0) {
        (void)ossl_drain_errors("bundle: decoder");
        return -EOPNOTSUPP;
    }
    const unsigned char *p = der->p;
    size_t left = der->len;
    ERR_set_mark();
    int ok = OSSL_DECODER_from_data(dctx, &p, &left);
    if (ok != 1 || !pkey) {
        (void)ossl_drain_errors("bundle: key decode");
        ERR_pop_to_mark();
        return -EBADMSG;
    }
    ERR_pop_to_mark();
    if (left != 0) {
        return -EBADMSG;
    }
    *ret = TAKE_PTR(pkey);
    return 0;
}

/* Whether a decoder's property definition says "structure=<want>" (case as OpenSSL: none). */
struct structure_probe {
    const char *want;
    bool is_found;
};

static void structure_probe_one(OSSL_DECODER *decoder, void *arg)
{
    struct structure_probe *probe = arg;
    const char *props = OSSL_DECODER_get0_properties(decoder);
    size_t n = strlen("structure=");
    for (const char *p = props; p && *p && !probe->is_found;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n + strlen(probe->want) && strncasecmp(p, "structure=", n) == 0 &&
            strncasecmp(p + n, probe->want, len - n) == 0) {
            probe->is_found = true;
        }
        p = comma ? comma + 1 : NULL;
    }
}

/* Whether any provider loaded in libctx decodes the DER structure `structure`. */
static bool decoder_offers_structure(OSSL_LIB_CTX *libctx, const char *structure)
{
    struct structure_probe probe = { .want = structure };
    OSSL_DECODER_do_all_provided(libctx, structure_probe_one, &probe);
    (void)ossl_drain_errors("bundle: decoders");
    return probe.is_found;
}

/* Drain OpenSSL's errors for a failed call; -ENOMEM when it ran out of memory, else `otherwise`. */
static int ossl_failure(const char *what, int otherwise)
{
    unsigned long e = ossl_drain_errors(what);
    return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : otherwise;
}

/*
 * Prove that an RSA key's private part signs for its public part (n, e): sign a fixed message
 * with the key and verify the signature with the same key's public half. A private part from
 * another key, or a tampered n or e, gives a signature that does not verify (OpenSSL's CRT
 * fault check falls back to d, which is wrong too). -EBADMSG when it does not, -ENOMEM.
 */
static int rsa_sign_round_trip(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key)
{
    static const unsigned char msg[] = "certd: private key consistency check";
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *sctx = EVP_MD_CTX_new();
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *vctx = EVP_MD_CTX_new();
    _cleanup_(ossl_bytes_free) unsigned char *sig = NULL;
    int size = EVP_PKEY_get_size(key);

    if (!sctx || !vctx) {
        return -ENOMEM;
    }
    if (size <= 0) {
        return -EBADMSG;
    }
    sig = OPENSSL_malloc((size_t)size);
    if (!sig) {
        return -ENOMEM;
    }
    size_t siglen = (size_t)size;
    /* No digest named: the key type's default (SHA-256; an RSA-PSS key's own restriction). */
    if (EVP_DigestSignInit_ex(sctx, NULL, NULL, libctx, propq, key, NULL) != 1 ||
        EVP_DigestSign(sctx, sig, &siglen, msg, sizeof(msg)) != 1) {
        return ossl_failure("bundle: key check: sign", -EBADMSG);
    }
    if (EVP_DigestVerifyInit_ex(vctx, NULL, NULL, libctx, propq, key, NULL) != 1 ||
        EVP_DigestVerify(vctx, sig, siglen, msg, sizeof(msg)) != 1) {
        return ossl_failure("bundle: key check: verify", -EBADMSG);
    }
    return 0;
}

/* An RSA key's numbers as exported by its provider; BIGNUMs holding private values are wiped. */
struct rsa_nums {
    BIGNUM *n, *e;                      /* public */
    BIGNUM *d, *p, *q, *dp, *dq, *qinv; /* private; p..qinv all NULL for an (n, e, d) key */
};

static void rsa_nums_done(struct rsa_nums *k)
{
    BN_free(k->n);
    BN_free(k->e);
    BN_clear_free(k->d);
    BN_clear_free(k->p);
    BN_clear_free(k->q);
    BN_clear_free(k->dp);
    BN_clear_free(k->dq);
    BN_clear_free(k->qinv);
}

static void bn_ctx_free_p(BN_CTX **p)
{
    BN_CTX_free(*p);
}

/* Number `name` of an exported key: 1 and an owned copy in *ret, 0 when absent, or -errno. */
static int rsa_num_get(const OSSL_PARAM *all, const char *name, BIGNUM **ret)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(all, name);
    if (!p) {
        return 0;
    }
    if (OSSL_PARAM_get_BN(p, ret) != 1) {
        return ossl_failure("bundle: key check: export", -EOPNOTSUPP);
    }
    return 1;
}

/* Fetch n, e, d and the CRT numbers; *ret_why names what is missing on -EOPNOTSUPP. */
static int rsa_nums_fetch(const EVP_PKEY *key, struct rsa_nums *k, const char **ret_why)
{
    _cleanup_(ossl_params_clear_free) OSSL_PARAM *all = NULL;
    struct {
        const char *name;
        BIGNUM **v;
    } const nums[] = {
        { OSSL_PKEY_PARAM_RSA_N, &k->n },          { OSSL_PKEY_PARAM_RSA_E, &k->e },
        { OSSL_PKEY_PARAM_RSA_D, &k->d },          { OSSL_PKEY_PARAM_RSA_FACTOR1, &k->p },
        { OSSL_PKEY_PARAM_RSA_FACTOR2, &k->q },    { OSSL_PKEY_PARAM_RSA_EXPONENT1, &k->dp },
        { OSSL_PKEY_PARAM_RSA_EXPONENT2, &k->dq }, { OSSL_PKEY_PARAM_RSA_COEFFICIENT1, &k->qinv },
    };

    /*
     * One export rather than EVP_PKEY_get_bn_param() per number: that returns 0 both for a
     * number the key lacks and for a failure inside the provider, and mistaking a failure for
     * "no CRT numbers" would hand unchecked p and q to the signature below.
     */
    if (EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &all) != 1) {
        *ret_why = "its RSA numbers cannot be read";
        return ossl_failure("bundle: key check: export", -EOPNOTSUPP);
    }
    /* RFC 8017 §3.2 otherPrimeInfos: rare, and each extra prime would need the same checks. */
    if (OSSL_PARAM_locate_const(all, OSSL_PKEY_PARAM_RSA_FACTOR3)) {
        *ret_why = "multi-prime RSA keys are not supported";
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < ELEMENTSOF(nums); i++) {
        int r = rsa_num_get(all, nums[i].name, nums[i].v);
        if (r < 0) {
            *ret_why = "its RSA numbers cannot be read";
            return r;
        }
    }
    if (!k->n || !k->e || !k->d) {
        *ret_why = "its RSA numbers cannot be read";
        return -EOPNOTSUPP;
    }
    return 0;
}

/*
 * The RFC 8017 §3.2 relations between an RSA key's CRT numbers (p, q, dP, dQ, qInv) and n, d,
 * checked before any private-key operation. OpenSSL signs with the CRT numbers and, when the
 * result does not verify, silently falls back to d: a key with n, e and d intact but p = 3 and a
 * q and dQ of 60000 bits still signs correctly, after a minute and a half of exponentiation
 * modulo q. So the sizes come first (p and q no longer than n, each exponent and qInv no longer
 * than its modulus), then the relations, which are cheap once the sizes are bounded by n:
 * p*q = n, dP = d mod (p-1), dQ = d mod (q-1), qInv*q = 1 mod p. Not checked: that p and q are
 * prime (40 ms for RSA-2048, seconds above 4096 bits, on the daemon's loop for every upload);
 * composite factors cannot make a wrong signature verify, only fall back to d. Plain BN
 * operations: the numbers come from the uploaded key and are compared with each other, not
 * with anyone's guess, so timing tells an attacker nothing they did not send.
 */
static int rsa_check_crt(const struct rsa_nums *k, BN_CTX *bnctx, const char **ret_why)
{
    int nbits = BN_num_bits(k->n);

    if (BN_num_bits(k->p) > nbits || BN_num_bits(k->q) > nbits) {
        *ret_why = "p or q is longer than n";
        return -EBADMSG;
    }
    if (BN_num_bits(k->dp) > BN_num_bits(k->p)) {
        *ret_why = "dP is longer than p";
        return -EBADMSG;
    }
    if (BN_num_bits(k->dq) > BN_num_bits(k->q)) {
        *ret_why = "dQ is longer than q";
        return -EBADMSG;
    }
    if (BN_num_bits(k->qinv) > BN_num_bits(k->p)) {
        *ret_why = "qInv is longer than p";
        return -EBADMSG;
    }
    /* Also keeps p-1 and q-1 from being 0 or negative below. */
    if (BN_cmp(k->p, BN_value_one()) <= 0 || BN_cmp(k->q, BN_value_one()) <= 0) {
        *ret_why = "p or q is not greater than 1";
        return -EBADMSG;
    }

    BN_CTX_start(bnctx);
    BIGNUM *t = BN_CTX_get(bnctx), *m = BN_CTX_get(bnctx);
    int r = 0;
    if (!t || !m) {
        r = ossl_failure("bundle: key check: CRT", -ENOMEM);
    } else if (BN_mul(t, k->p, k->q, bnctx) != 1) {
        r = ossl_failure("bundle: key check: CRT", -ENOMEM);
    } else if (BN_cmp(t, k->n) != 0) {
        *ret_why = "p*q != n";
        r = -EBADMSG;
    } else if (!BN_sub(m, k->p, BN_value_one()) || !BN_nnmod(t, k->d, m, bnctx)) {
        r = ossl_failure("bundle: key check: CRT", -ENOMEM);
    } else if (BN_cmp(t, k->dp) != 0) {
        *ret_why = "dP != d mod (p-1)";
        r = -EBADMSG;
    } else if (!BN_sub(m, k->q, BN_value_one()) || !BN_nnmod(t, k->d, m, bnctx)) {
        r = ossl_failure("bundle: key check: CRT", -ENOMEM);
    } else if (BN_cmp(t, k->dq) != 0) {
        *ret_why = "dQ != d mod (q-1)";
        r = -EBADMSG;
    } else if (BN_mod_mul(t, k->qinv, k->q, k->p, bnctx) != 1) {
        r = ossl_failure("bundle: key check: CRT", -ENOMEM);
    } else if (!BN_is_one(t)) {
        *ret_why = "qInv*q mod p != 1";
        r = -EBADMSG;
    }
    /* BN_CTX temporaries are cleared when the context is freed (BN_clear_free). */
    BN_CTX_end(bnctx);
    return r;
}

/*
 * An RSA key's private part, checked without trusting its sizes: the modulus is capped first
 * (OpenSSL refuses to use anything larger anyway), e and d must lie in range, the CRT numbers
 * must be consistent with n and d (rsa_check_crt), and only then does one signature, verified
 * with the key's own n and e, prove that d belongs to e. A key holding only n, e and d (no CRT
 * numbers: OpenSSL 3.0's PKCS#1 and PKCS#8 decoders never produce one, a provider might) is
 * accepted on the range checks and the signature, which then uses d alone, below n in size.
 * Not EVP_PKEY_pairwise_check: for RSA, OpenSSL 3.0 runs RSA_check_key, which tests p and q for
 * primality (about 40 ms for RSA-2048, 270 ms for RSA-4096, seconds for larger keys) and trusts
 * their sizes. All of this costs about 1 ms for RSA-2048.
 */
static int rsa_check_consistent(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                                const char **ret_why)
{
    _cleanup_(rsa_nums_done) struct rsa_nums k = { .n = NULL };
    int r;

    if (EVP_PKEY_get_bits(key) > OPENSSL_RSA_MAX_MODULUS_BITS) {
        *ret_why = "an RSA modulus above 16384 bits";
        return -EOPNOTSUPP;
    }
    r = rsa_nums_fetch(key, &k, ret_why);
    if (r < 0) {
        return r;
    }
    if (BN_num_bits(k.n) > OPENSSL_RSA_MAX_MODULUS_BITS) {
        *ret_why = "an RSA modulus above 16384 bits";
        return -EOPNOTSUPP;
    }
    /* RFC 8017 §3.1: 1 < e < n, and e is odd, being prime to lambda(n), which is even. */
    if (BN_cmp(k.e, BN_value_one()) <= 0 || BN_cmp(k.e, k.n) >= 0 || !BN_is_odd(k.e)) {
        *ret_why = "e is not an odd number between 1 and n";
        return -EBADMSG;
    }
    if (BN_cmp(k.d, BN_value_one()) <= 0 || BN_cmp(k.d, k.n) >= 0) {
        *ret_why = "d is not between 1 and n";
        return -EBADMSG;
    }

    bool has_any = k.p || k.q || k.dp || k.dq || k.qinv;
    bool has_all = k.p && k.q && k.dp && k.dq && k.qinv;
    if (has_any && !has_all) {
        *ret_why = "incomplete CRT numbers";
        return -EBADMSG;
    }
    if (has_all) {
        _cleanup_(bn_ctx_free_p) BN_CTX *bnctx = BN_CTX_new_ex(libctx);
        if (!bnctx) {
            return ossl_failure("bundle: key check: CRT", -ENOMEM);
        }
        r = rsa_check_crt(&k, bnctx, ret_why);
        if (r < 0) {
            return r;
        }
    }
    return rsa_sign_round_trip(libctx, propq, key);
}

/*
 * A private key file carries its own public part (SEC1 publicKey, PKCS#1 n and e, PKCS#8
 * with either), and the later key match (EVP_PKEY_eq) compares public parts only: a key whose
 * public part is the certificate's but whose private part belongs to another key would match
 * and yet never sign for the certificate. Prove that the two parts belong together, and that
 * proving it costs little whatever the key says about itself.
 * Returns 0; -EBADMSG when they do not; -EOPNOTSUPP for a key no provider can check, a
 * multi-prime RSA key or an RSA modulus above OpenSSL's maximum (which it would refuse to use
 * anyway); -ENOMEM. On -EBADMSG and -EOPNOTSUPP, *ret_why may be set to a static phrase
 * naming the failed relation or the reason (never a value); it is left alone otherwise.
 */
static int key_check_consistent(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                                const char **ret_why)
{
    if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        return rsa_check_consistent(libctx, propq, key, ret_why);
    }

    _cleanup_(cleanup_EVP_PKEY_CTX) EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(libctx, key, propq);
    if (!ctx) {
        return ossl_failure("bundle: key check", -ENOMEM);
    }
    /*
     * EC: the provider checks the public point (on the curve, right order), the private
     * scalar's range, and that the point is the scalar times the generator (SP 800-56A
     * §5.6.2.1.4); 0.3 ms for P-521. Ed25519, Ed448, X25519, X448: OpenSSL 3.0 derives the
     * public key from the private key when it decodes PKCS#8 (RFC 8410 §7: the v1 body holds
     * only the private key), and refuses RFC 5958 v2 bodies, whose publicKey field could
     * disagree, as malformed; the pairwise check derives the public key again and compares
     * it, so a later decoder that reads v2 cannot bring a mismatch in unnoticed.
     */
    int r = EVP_PKEY_pairwise_check(ctx);
    if (r == -2) {
        (void)ossl_drain_errors("bundle: key check");
        *ret_why = "no provider can check its type";
        return -EOPNOTSUPP;
    }
    if (r != 1) {
        return ossl_failure("bundle: key check: pairwise", -EBADMSG);
    }
    return 0;
}

/* The key labels we accept and how to decode them. */
static const struct {
    const char *label;
    const char *structure;
    const char *keytype;
    const char *what;
} key_labels[] = {
    { "PRIVATE KEY", "PrivateKeyInfo", NULL, "PKCS#8" },
    { "RSA PRIVATE KEY", "type-specific", "RSA", "PKCS#1 RSA" },
    { "EC PRIVATE KEY", "type-specific", "EC", "SEC1 EC" },
    /*
     * A TPM key blob (the TSS2 PEM format of tpm2-tss-engine and tpm2-openssl): the wrapped
     * private part that only its TPM can load. Decoded by whichever loaded provider offers the
     * DER structure "TSS2", which loads it into its TPM: the key comes back held there.
     */
    { "TSS2 PRIVATE KEY", "TSS2", NULL, "TSS2" },
};

struct parse_state {
    OSSL_LIB_CTX *libctx;
    const char *propq;
    bool is_key_only;      /* key_parse_pem(): certificates are noted, not decoded */
    STACK_OF(X509) *certs; /* owned */
    EVP_PKEY *key;         /* owned; NULL until a key block is decoded */
    size_t n_blocks;
    size_t first_cert_line; /* key_parse_pem(): 0 when no certificate block was seen */
};

static void parse_state_done(struct parse_state *st)
{
    sk_X509_pop_free(st->certs, X509_free);
    EVP_PKEY_free(st->key);
}

static int handle_block(struct parse_state *st, const struct pem_block *blk, struct certd_err *err)
{
    size_t key_idx = SIZE_MAX;
    bool is_cert = span_eq_str(blk->label, "CERTIFICATE");
    int r;

    for (size_t i = 0; i < ELEMENTSOF(key_labels); i++) {
        if (span_eq_str(blk->label, key_labels[i].label)) {
            key_idx = i;
        }
    }

    /* RFC 1421 encryption or PKCS#8 EncryptedPrivateKeyInfo: we take no passphrases. */
    if (blk->is_encrypted || span_eq_str(blk->label, "ENCRYPTED PRIVATE KEY")) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED,
                       "the PEM block at line %zu is an encrypted private key; upload it "
                       "unencrypted",
                       blk->line);
    }
    if (!is_cert && key_idx == SIZE_MAX) {
        return err_set(err, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
                       "unexpected PEM block " LABEL_FMT
                       " at line %zu: only certificates and one private key are accepted",
                       LABEL_ARG(blk->label), blk->line);
    }
    if (is_cert && st->is_key_only) {
        /* Judged after the walk: KEY_MISSING when there is no key, else an unexpected label. */
        if (st->first_cert_line == 0) {
            st->first_cert_line = blk->line;
        }
        return 0;
    }
    if (is_cert && sk_X509_num(st->certs) >= (int)CERTD_BUNDLE_CERTS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_CERTS,
                       "too many certificates: more than %u in one upload", CERTD_BUNDLE_CERTS_MAX);
    }
    if (key_idx != SIZE_MAX && st->key) {
        return err_set(err, -EINVAL, CERTD_E_MULTIPLE_KEYS,
                       "multiple private keys: a second one at line %zu", blk->line);
    }

    /* Decoded bytes are at most 3/4 of the text. */
    _cleanup_(der_buf_wipe) struct der_buf der = { .cap = blk->body.len / 4 * 3 + 3 };
    der.p = OPENSSL_malloc(der.cap);
    if (!der.p) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    /* RFC 7468 §3: line breaks and blanks may sit anywhere in the base64 text. */
    r = base64_decode(blk->body, BASE64_SKIP_BLANKS, der.p, der.cap, &der.len);
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
                       "bad PEM block: the " LABEL_FMT " block at line %zu is not valid base64",
                       LABEL_ARG(blk->label), blk->line);
    }

    if (is_cert) {
        _cleanup_(cleanup_X509) X509 *x = NULL;
        r = decode_cert(st->libctx, st->propq, &der, &x);
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: the block at line %zu is not a valid DER "
                           "certificate",
                           blk->line);
        }
        if (sk_X509_push(st->certs, x) <= 0) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        x = NULL; /* now owned by the stack */
        return 0;
    }

    _cleanup_(pkey_free_p) EVP_PKEY *pkey = NULL;
    const char *keytype = key_labels[key_idx].keytype;
    if (!keytype && strcmp(key_labels[key_idx].structure, "PrivateKeyInfo") == 0) {
        keytype = pkcs8_keytype(&der);
    }
    if (strcmp(key_labels[key_idx].structure, "TSS2") == 0 &&
        !decoder_offers_structure(st->libctx, "TSS2")) {
        /* The blob may be fine: what is missing is the provider of the TPM that made it. */
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "no loaded provider can read a TSS2 PRIVATE KEY (load the tpm2 provider): "
                       "the block at line %zu",
                       blk->line);
    }
    r = decode_key(st->libctx, st->propq, &der, key_labels[key_idx].structure, keytype, &pkey);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0 && strcmp(key_labels[key_idx].structure, "TSS2") == 0) {
        /*
         * The provider could not load the blob into its device. Nothing tells a blob that is
         * not this TPM's from a TPM that is away or has no free object slot: callers must not
         * take the key for garbage (and delete it) on this answer.
         */
        return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                       "the TPM did not load the TSS2 key at line %zu (it is away or busy, or the "
                       "key was made by another TPM)",
                       blk->line);
    }
    if (r < 0) {
        /* Never quote the key: only its position and the format we expected. */
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "malformed private key: the block at line %zu is not a valid %s key",
                       blk->line, key_labels[key_idx].what);
    }
    /*
     * A held key (a TPM's) has no private numbers out here to check, and needs none checked:
     * its device verified the blob's integrity when it loaded it, and refuses a blob that was
     * tampered with or made by another TPM.
     */
    const char *why = NULL;
    r = key_is_held(pkey) ? 0 : key_check_consistent(st->libctx, st->propq, pkey, &why);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r == -EOPNOTSUPP) {
        return err_set(err, r, CERTD_E_KEY_UNSUPPORTED,
                       "unsupported private key: the key at line %zu cannot be checked (%s)",
                       blk->line, why ? why : "its type or size");
    }
    if (r < 0) {
        /* `why` names a relation (e.g. "p*q != n"), never a value. */
        return err_set(err, -EBADMSG, CERTD_E_KEY_BAD,
                       "the private key at line %zu is inconsistent (%s)", blk->line,
                       why ? why : "its public part does not belong to its private part");
    }
    st->key = TAKE_PTR(pkey);
    return 0;
}

static int parse_der(OSSL_LIB_CTX *libctx, const char *propq, struct span in, struct bundle **ret,
                     struct certd_err *err)
{
    _cleanup_(cleanup_X509) X509 *x = X509_new_ex(libctx, propq);
    _cleanup_(cleanup_x509_stack) x509_stack *certs = sk_X509_new_null();
    if (!x || !certs) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    const unsigned char *p = in.p;
    /* Speculative: a failure only means "not DER", so OpenSSL's errors are dropped. */
    ERR_set_mark();
    X509 *got = d2i_X509(&x, &p, (long)in.len);
    ERR_pop_to_mark();
    if (!got) {
        /* Tell the user why, as precisely as the framing allows. */
        if (memmem(in.p, in.len, PEM_BEGIN, strlen(PEM_BEGIN)) != NULL) {
            return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                           "garbage: text before the first PEM block");
        }
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "garbage: the input is neither PEM nor a DER certificate");
    }
    size_t used = (size_t)(p - in.p);
    if (used != in.len) {
        return err_set(err, -EBADMSG, CERTD_E_TRAILING_DATA,
                       "trailing data: %zu bytes after the DER certificate", in.len - used);
    }
    if (sk_X509_push(certs, x) <= 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    x = NULL;

    struct bundle *b = calloc(1, sizeof(*b));
    if (!b) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    b->certs = TAKE_PTR(certs);
    b->is_der = true;
    *ret = b;
    return 0;
}

/* The size cap, resolved: 0 means the default, nothing may exceed the hard ceiling. */
static size_t input_cap(size_t max_input)
{
    size_t cap = max_input == 0 ? CERTD_INPUT_MAX_DEFAULT : max_input;
    return cap > CERTD_INPUT_MAX_HARD ? CERTD_INPUT_MAX_HARD : cap;
}

/*
 * Walk PEM text that starts (after white space) with a BEGIN line: frame each block, hand it to
 * handle_block(), and refuse text between or after the blocks.
 */
static int pem_walk(struct parse_state *st, struct span in, struct certd_err *err)
{
    /* Text from here on becomes C strings in messages and is framed line by line. */
    if (span_has_nul(in)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "garbage: the PEM text contains a NUL byte");
    }

    struct cursor c = cur_init(in);
    size_t lineno = 0;
    struct span line;
    int r;

    /* The input starts with a BEGIN line (after white space), so nothing precedes block 1. */
    while (cur_line(&c, &line) == 0) {
        lineno++;
        struct span t = span_trim(line);
        if (t.len == 0) {
            continue;
        }
        if (!span_starts_with(t, PEM_BEGIN)) {
            struct span rest = cur_rest(&c);
            if (rest.len > 0 && memmem(rest.p, rest.len, PEM_BEGIN, strlen(PEM_BEGIN))) {
                return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                               "garbage: text between PEM blocks (line %zu)", lineno);
            }
            return err_set(err, -EBADMSG, CERTD_E_TRAILING_DATA,
                           "trailing data after the last PEM block (line %zu)", lineno);
        }
        struct pem_block blk = { .line = 0 };
        r = pem_frame(in, &c, &lineno, t, &blk, err);
        if (r < 0) {
            return r;
        }
        r = handle_block(st, &blk, err);
        if (r < 0) {
            return r;
        }
        st->n_blocks++;
    }
    return 0;
}

int bundle_parse(OSSL_LIB_CTX *libctx, const char *propq, struct span in, size_t max_input,
                 struct bundle **ret, struct certd_err *err)
{
    assert_return(ret, -EINVAL);
    assert_return(in.p || in.len == 0, -EINVAL);

    /* The cap comes first: nothing larger is even looked at. */
    size_t cap = input_cap(max_input);
    if (in.len > cap) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "input too large: %zu bytes, the limit is %zu", in.len, cap);
    }

    struct cursor c = cur_init(in);
    cur_skip_space(&c);
    if (cur_left(&c) == 0) {
        return err_set(err, -EINVAL, CERTD_E_INPUT_EMPTY, "empty input: no certificate given");
    }
    if (!span_starts_with(cur_rest(&c), PEM_BEGIN)) {
        return parse_der(libctx, propq, in, ret, err);
    }

    _cleanup_(parse_state_done) struct parse_state st = {
        .libctx = libctx,
        .propq = propq,
        .certs = sk_X509_new_null(),
    };
    if (!st.certs) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = pem_walk(&st, in, err);
    if (r < 0) {
        return r;
    }
    if (sk_X509_num(st.certs) <= 0) {
        return err_set(err, -EINVAL, CERTD_E_NO_CERT,
                       "no certificate in the input: %zu PEM block(s), none a certificate",
                       st.n_blocks);
    }

    struct bundle *b = calloc(1, sizeof(*b));
    if (!b) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    b->certs = TAKE_PTR(st.certs);
    b->key = TAKE_PTR(st.key);
    b->is_der = false;
    *ret = b;
    return 0;
}

int key_parse_pem(OSSL_LIB_CTX *libctx, const char *propq, struct span in, EVP_PKEY **ret,
                  struct certd_err *err)
{
    assert_return(ret, -EINVAL);
    assert_return(in.p || in.len == 0, -EINVAL);

    size_t cap = input_cap(0);
    if (in.len > cap) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "input too large: %zu bytes, the limit is %zu", in.len, cap);
    }
    struct cursor c = cur_init(in);
    cur_skip_space(&c);
    if (cur_left(&c) == 0) {
        return err_set(err, -EINVAL, CERTD_E_INPUT_EMPTY, "empty input: no private key given");
    }
    if (!span_starts_with(cur_rest(&c), PEM_BEGIN)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "garbage: the input is not a PEM private key");
    }

    _cleanup_(parse_state_done) struct parse_state st = {
        .libctx = libctx,
        .propq = propq,
        .is_key_only = true,
    };
    int r = pem_walk(&st, in, err);
    if (r < 0) {
        return r;
    }
    if (!st.key) {
        return err_set(err, -EINVAL, CERTD_E_KEY_MISSING,
                       "no private key in the input: %zu PEM block(s), none a private key",
                       st.n_blocks);
    }
    if (st.first_cert_line > 0) {
        return err_set(err, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
                       "unexpected PEM block \"CERTIFICATE\" at line %zu: a key file holds "
                       "only the private key",
                       st.first_cert_line);
    }
    *ret = TAKE_PTR(st.key);
    return 0;
}

/* Copy a memory BIO's contents into a malloc'd NUL-terminated string. */
static int bio_to_string(BIO *bio, char **ret, size_t *ret_len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0) {
        return -EIO;
    }
    size_t len = (size_t)n, sz;
    if (!size_add(len, 1, &sz)) {
        return -ENOMEM;
    }
    char *s = malloc(sz);
    if (!s) {
        return -ENOMEM;
    }
    if (len > 0) {
        memcpy(s, data, len);
    }
    s[len] = '\0';
    *ret = s;
    if (ret_len) {
        *ret_len = len;
    }
    return 0;
}

int certs_to_pem(const STACK_OF(X509) *certs, char **ret, size_t *ret_len)
{
    assert_return(certs && ret, -EINVAL);

    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        return -ENOMEM;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1) {
            (void)ossl_drain_errors("certs_to_pem");
            return -EIO;
        }
    }
    return bio_to_string(bio, ret, ret_len);
}

int cert_to_pem(const X509 *cert, char **ret, size_t *ret_len)
{
    assert_return(cert && ret, -EINVAL);

    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        return -ENOMEM;
    }
    if (PEM_write_bio_X509(bio, cert) != 1) {
        (void)ossl_drain_errors("cert_to_pem");
        return -EIO;
    }
    return bio_to_string(bio, ret, ret_len);
}
