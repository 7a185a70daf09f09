/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys and certificates by URI. uri_check is the one place that says what a key or certificate
 * location may be (the configuration uses it too): it judges the text alone, before OpenSSL or
 * the file system sees it. uri_load_key and uri_load_certs then open the URI with OSSL_STORE in
 * the caller's library context, so a loaded provider's store serves its own schemes (the tpm2
 * provider's handle: and object:), and read a bounded number of objects of the one type asked
 * for. Invariants: no passphrase is ever asked for (a UI method that refuses, and notes that
 * it was asked); files are looked at (exists, regular, bounded size) before OpenSSL opens them;
 * messages name the URI, never key bytes; on failure nothing is returned.
 */
#include "keys/uri.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"

/*
 * Objects read from one URI before giving up: a key file holds one key, a chain at most
 * CERTD_BUNDLE_CERTS_MAX certificates; the store skips objects of other types itself.
 */
#define URI_OBJECTS_MAX (CERTD_BUNDLE_CERTS_MAX + 1u)

/* "handle:" then "0x" and 8 hex digits (a TPM handle is 32 bits: TPM 2.0 Part 2 §7). */
#define HANDLE_DIGITS 8u

/* The length of an RFC 3986 §3.1 scheme, [a-z][a-z0-9+.-]*, followed by ':' at s, or 0. */
static size_t scheme_len(const char *s)
{
    if (!(s[0] >= 'a' && s[0] <= 'z')) {
        return 0;
    }
    size_t i;
    for (i = 1; s[i] && s[i] != ':'; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
              c == '.')) {
            return 0;
        }
    }
    return s[i] == ':' ? i : 0;
}

/* A path of ours: no control character (control_msg says where), in normal form. */
static int path_check(const char *s, const char *control_msg, struct certd_err *err)
{
    if (str_has_control(s)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "%s", control_msg);
    }
    const char *why = NULL;
    int r = path_check_normal(s, strlen(s), false, &why);
    if (r < 0) {
        return err_set(err, r, r == -E2BIG ? CERTD_E_FIELD_TOO_LONG : CERTD_E_FIELD_INVALID, "%s",
                       why);
    }
    return 0;
}

/* A plain absolute path: any bytes but control characters, in normal form. */
static int plain_path(const char *s, char **ret_path, struct certd_err *err)
{
    int r = path_check(s, "the path holds a control character", err);
    if (r < 0) {
        return r;
    }
    if (ret_path) {
        char *p = strdup(s);
        if (!p) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        *ret_path = p;
    }
    return 0;
}

/* RFC 8089 §2: "file:///p", "file://localhost/p" or "file:/p"; percent-encoding decoded. */
static int file_uri_path(const char *s, char **ret_path, struct certd_err *err)
{
    const char *p = s + strlen("file:");
    if (strncmp(p, "//", 2) == 0) {
        /* The authority is empty or "localhost". */
        p += 2;
        if (strncasecmp(p, "localhost/", 10) == 0) {
            p += 9;
        }
    }
    if (p[0] != '/') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "a file: URI must name an absolute path on this host (file:///path)");
    }
    if (strpbrk(p, "?#")) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "a file: URI may not have a query or fragment");
    }
    size_t n = strlen(p);
    _cleanup_free_ char *out = malloc(n + 1);
    if (!out) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (percent_decode(span_make(p, n), out, NULL) < 0) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "bad percent-encoding in the file: URI (a '%%' takes two hex digits; not "
                       "%%00)");
    }
    /* Checked after decoding: "%2e%2e" is "..". */
    int r = path_check(out, "the file: URI encodes a control character", err);
    if (r < 0) {
        return r;
    }
    if (ret_path) {
        *ret_path = TAKE_PTR(out);
    }
    return 0;
}

static int handle_parse(const char *digits, uint32_t *ret_handle, struct certd_err *err)
{
    uint32_t v = 0;
    size_t n = strlen(digits);
    if (n != 2 + HANDLE_DIGITS || digits[0] != '0' || digits[1] != 'x') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "a handle: URI takes 0x and 8 hex digits (handle:0x81000001)");
    }
    for (size_t i = 2; i < n; i++) {
        int d = hex_digit_value(digits[i]);
        if (d < 0) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "a handle: URI takes 0x and 8 hex digits (handle:0x81000001)");
        }
        v = v << 4 | (uint32_t)d;
    }
    if (ret_handle) {
        *ret_handle = v;
    }
    return 0;
}

int uri_check(const char *uri, enum uri_kind *ret_kind, char **ret_path, uint32_t *ret_handle,
              struct certd_err *err)
{
    if (!uri || uri[0] == '\0') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "no path or URI given");
    }
    size_t n = strnlen(uri, URI_MAX + 1);
    if (n > URI_MAX) {
        return err_set(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "longer than %u characters", URI_MAX);
    }
    if (uri[0] == '/') {
        int r = plain_path(uri, ret_path, err);
        if (r < 0) {
            return r;
        }
        if (ret_kind) {
            *ret_kind = URI_FILE;
        }
        return 0;
    }
    /* RFC 3986 §2: a URI is printable ASCII; anything else is percent-encoded. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        if (c <= 0x20 || c >= 0x7f) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "a URI may hold only printable ASCII without spaces (percent-encode "
                           "the rest in file: URIs)");
        }
    }
    size_t slen = scheme_len(uri);
    if (slen == 0) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "must be an absolute path or a URI with a lowercase scheme (file:, "
                       "handle:, object: ...)");
    }
    const char *rest = uri + slen + 1;
    enum uri_kind kind;
    char *path = NULL;
    int r = 0;
    if (slen == 4 && strncmp(uri, "file", 4) == 0) {
        kind = URI_FILE;
        r = file_uri_path(uri, ret_path ? &path : NULL, err);
    } else if (slen == 6 && strncmp(uri, "handle", 6) == 0) {
        kind = URI_HANDLE;
        r = handle_parse(rest, ret_handle, err);
    } else if (slen == 6 && strncmp(uri, "object", 6) == 0) {
        kind = URI_OBJECT;
        /* The provider reads a file there: the same rules as any path of ours. */
        r = plain_path(rest, ret_path ? &path : NULL, err);
    } else {
        kind = URI_OTHER;
        if (rest[0] == '\0') {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "nothing after the scheme");
        }
    }
    if (r < 0) {
        return r;
    }
    if (ret_kind) {
        *ret_kind = kind;
    }
    if (ret_path && path) {
        *ret_path = path;
    }
    return 0;
}

/* What happened while a store was read, beyond what OSSL_STORE reports. */
struct ui_note {
    bool was_asked; /* someone wanted a passphrase */
};

/* Every prompt is refused: certd never asks for a passphrase, and notes that one was wanted. */
static int ui_refuse(UI *ui, UI_STRING *uis)
{
    (void)uis;
    struct ui_note *note = UI_get0_user_data(ui);
    if (note) {
        note->was_asked = true;
    }
    return 0;
}

/*
 * A file (or a serialized object) that the store will read: it exists, is a regular file and
 * is not too large (OpenSSL's readers would otherwise take anything the path gives them).
 */
static int file_precheck(const char *uri, const char *path, struct certd_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "nothing at '%s': no such file", uri);
        }
        return err_set(err, -EIO, CERTD_E_STORAGE, "cannot read '%s': %s", uri, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "'%s' is not a regular file", uri);
    }
    if ((uintmax_t)st.st_size > CERTD_INPUT_MAX_HARD) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                       "'%s' is larger than %u bytes: not a key or certificate file", uri,
                       CERTD_INPUT_MAX_HARD);
    }
    return 0;
}

/* One URI opened for objects of one type, and read through store_next. */
struct store_src {
    const char *uri;  /* as given, for messages */
    const char *what; /* what is read, for messages: "a private key" */
    char *store_uri;  /* what OSSL_STORE opens (owned) */
    enum uri_kind kind;
    int expect;    /* OSSL_STORE_INFO_PKEY or _CERT */
    UI_METHOD *ui; /* owned */
    struct ui_note note;
    OSSL_STORE_CTX *ctx;   /* owned */
    OSSL_STORE_INFO *info; /* the object store_next gave last (owned) */
    size_t loads;          /* OSSL_STORE_load calls, at most URI_OBJECTS_MAX */
};

static void store_src_done(struct store_src *src)
{
    OSSL_STORE_INFO_free(src->info);
    if (src->ctx) {
        (void)OSSL_STORE_close(src->ctx);
    }
    free(src->store_uri);
    if (src->ui) {
        UI_destroy_method(src->ui);
    }
}

/* The error for a store that cannot be opened, or failed while it was read. */
static int store_failure(const struct store_src *src, struct certd_err *err)
{
    unsigned long e = ossl_drain_errors("uri: store");
    if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (src->note.was_asked) {
        return err_set(err, -EACCES, CERTD_E_KEY_ENCRYPTED,
                       "%s at '%s' wants a passphrase; certd takes none", src->what, src->uri);
    }
    if (ERR_GET_LIB(e) == ERR_LIB_OSSL_STORE &&
        ERR_GET_REASON(e) == OSSL_STORE_R_UNREGISTERED_SCHEME) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
                       "no loaded provider opens '%s': its scheme is unknown", src->uri);
    }
    if (src->kind == URI_FILE) {
        /* The file was there and small: what it holds does not decode. */
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "cannot read %s from '%s': the file does not decode", src->what, src->uri);
    }
    /*
     * A provider's own object: OpenSSL cannot tell "not there" from "the device is gone", and
     * we name no provider to ask; the debug log has the provider's words.
     */
    return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                   "cannot read %s from '%s': its provider failed (is the object there, and the "
                   "device reachable?)",
                   src->what, src->uri);
}

/*
 * Check uri and open it with OSSL_STORE in libctx/propq for objects of type expect (a file: URI
 * for a path; the UI that refuses). src (zeroed by the caller) is store_src_done's to free.
 */
static int store_src_open(OSSL_LIB_CTX *libctx, const char *propq, const char *uri, int expect,
                          const char *what, struct store_src *src, struct certd_err *err)
{
    /* Errors are read from the queue below: nothing older may be taken for ours. */
    (void)ossl_drain_errors("uri: earlier errors");
    _cleanup_free_ char *path = NULL;
    int r = uri_check(uri, &src->kind, &path, NULL, err);
    if (r < 0) {
        return r;
    }
    src->uri = uri;
    src->what = what;
    src->expect = expect;
    if (src->kind == URI_FILE || src->kind == URI_OBJECT) {
        r = file_precheck(uri, path, err);
        if (r < 0) {
            return r;
        }
    }
    if (src->kind == URI_FILE) {
        /*
         * OpenSSL 3.0's file store takes the path after the scheme as it is (it decodes no
         * percent-encoding), and tries "file:/path" as a relative file name first (a "./file:"
         * directory would do), never one after "file://"; a plain path could otherwise be taken
         * for a URI with a scheme ("/a:b").
         */
        size_t len = strlen(path) + sizeof("file://");
        src->store_uri = malloc(len);
        if (src->store_uri) {
            (void)snprintf(src->store_uri, len, "file://%s", path);
        }
    } else {
        src->store_uri = strdup(uri);
    }
    src->ui = UI_create_method("certd: no passphrases");
    if (!src->store_uri || !src->ui || UI_method_set_reader(src->ui, ui_refuse) != 0) {
        (void)ossl_drain_errors("uri: init");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    src->ctx =
        OSSL_STORE_open_ex(src->store_uri, libctx, propq, src->ui, &src->note, NULL, NULL, NULL);
    if (!src->ctx) {
        return store_failure(src, err);
    }
    /* Asked before the first load: the store then skips objects of other types itself. */
    if (OSSL_STORE_expect(src->ctx, expect) != 1) {
        (void)ossl_drain_errors("uri: expect");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot read '%s'", uri);
    }
    (void)ossl_drain_errors("uri: open");
    return 0;
}

/*
 * The next object of the expected type into src->info: 1, 0 at the end, or -errno (E2BIG after
 * URI_OBJECTS_MAX loads without the end). OpenSSL 3.0's stores are read by their quirks, seen
 * with the file store and the tpm2 provider's: a NULL is a failure only when the store says so
 * (OSSL_STORE_error) and queued an error that is not "unsupported" (an object of a type other
 * than the expected one); the file store ends with a NULL that sets OSSL_STORE_error and
 * queues nothing, and stores leave errors from attempts that did not matter (the tpm2 store
 * tries PEM before DER) even when they return an object.
 */
static int store_next(struct store_src *src, struct certd_err *err)
{
    OSSL_STORE_INFO_free(src->info);
    src->info = NULL;
    while (!OSSL_STORE_eof(src->ctx)) {
        if (src->loads == URI_OBJECTS_MAX) {
            return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "'%s' holds more than %u objects",
                           src->uri, URI_OBJECTS_MAX);
        }
        src->loads++;
        OSSL_STORE_INFO *info = OSSL_STORE_load(src->ctx);
        unsigned long e = ERR_peek_error();
        bool is_other_type =
            ERR_GET_LIB(e) == ERR_LIB_OSSL_STORE && ERR_GET_REASON(e) == ERR_R_UNSUPPORTED;
        if (!info &&
            (src->note.was_asked || (OSSL_STORE_error(src->ctx) && e != 0 && !is_other_type))) {
            return store_failure(src, err);
        }
        (void)ossl_drain_errors("uri: load");
        if (info && OSSL_STORE_INFO_get_type(info) == src->expect) {
            src->info = info;
            return 1;
        }
        OSSL_STORE_INFO_free(info);
    }
    return 0;
}

int uri_load_key(OSSL_LIB_CTX *libctx, const char *propq, const char *uri, EVP_PKEY **ret,
                 struct certd_err *err)
{
    assert_return(ret, -EINVAL);

    _cleanup_(store_src_done) struct store_src src = { .uri = NULL };
    int r = store_src_open(libctx, propq, uri, OSSL_STORE_INFO_PKEY, "a private key", &src, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    while ((r = store_next(&src, err)) > 0) {
        if (key) {
            return err_set(err, -EBADMSG, CERTD_E_MULTIPLE_KEYS,
                           "'%s' holds more than one private key", uri);
        }
        key = OSSL_STORE_INFO_get1_PKEY(src.info);
        if (!key) {
            (void)ossl_drain_errors("uri: get1_PKEY");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    if (r < 0) {
        return r;
    }
    if (!key) {
        return err_set(err, -EBADMSG, CERTD_E_KEY_MISSING,
                       "'%s' holds no private key (none that a loaded provider reads)", uri);
    }
    *ret = TAKE_PTR(key);
    return 0;
}

int uri_load_certs(OSSL_LIB_CTX *libctx, const char *propq, const char *uri, STACK_OF(X509) **ret,
                   struct certd_err *err)
{
    assert_return(ret, -EINVAL);

    _cleanup_(store_src_done) struct store_src src = { .uri = NULL };
    int r = store_src_open(libctx, propq, uri, OSSL_STORE_INFO_CERT, "a certificate", &src, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_x509_stack) x509_stack *certs = sk_X509_new_null();
    if (!certs) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    while ((r = store_next(&src, err)) > 0) {
        if ((size_t)sk_X509_num(certs) >= CERTD_BUNDLE_CERTS_MAX) {
            return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                           "'%s' holds more than %u certificates", uri, CERTD_BUNDLE_CERTS_MAX);
        }
        X509 *x = OSSL_STORE_INFO_get1_CERT(src.info);
        if (!x || sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            (void)ossl_drain_errors("uri: get1_CERT");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    if (r < 0) {
        return r;
    }
    if (sk_X509_num(certs) <= 0) {
        return err_set(err, -EBADMSG, CERTD_E_NO_CERT,
                       "'%s' holds no certificate (none that a loaded provider reads)", uri);
    }
    *ret = TAKE_PTR(certs);
    return 0;
}
