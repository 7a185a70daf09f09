/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pin stores (see pinstore.h): a strict JSON reader and a deterministic writer for the file, and
 * the in-memory set with its checks. The reader sees only bytes already bounded in size, nesting
 * and value count before jansson parses them (STYLE.md §5), and takes nothing it does not fully
 * understand: unknown members, other types, other pin or time spellings are refused, so that a
 * hand-edited file never grants trust other than what it says. Every struct pinstore it or
 * pinstore_add hands out keeps the invariants of pinstore.h; the writer relies on them.
 */
#include "pin/pinstore.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "store/store.h"
#include "util/json.h"
#include "util/parse.h"
#include "x509/inspect.h"

/* The only file format version; a newer one is refused rather than half understood. */
#define PINSTORE_VERSION 1
/* A store file nests three levels deep: the top object, the Pins array, its entry objects. */
#define PINSTORE_JSON_DEPTH_MAX 3u
/* Members of one entry at most (Id, Pin, Label, UserName, RoleId, Created, Note). */
#define PINSTORE_ENTRY_MEMBERS 7u
/*
 * JSON values in a file: every entry and its members, for one entry more than PINSTORE_MAX
 * (so that a file one entry over is refused by its entry count, with that message), plus
 * the top level. Keeps what jansson allocates proportional to what a store can hold.
 */
#define PINSTORE_JSON_VALUES_MAX ((PINSTORE_MAX + 1u) * (PINSTORE_ENTRY_MEMBERS + 1u) + 16u)
/* "YYYY-MM-DDThh:mm:ssZ" */
#define CREATED_LEN 20u
/*
 * The longest text pinstore_format can give, to show that PINSTORE_FILE_MAX holds it: with
 * JSON_INDENT(2) an entry is "    {\n", one line per member, "    },\n"; a member line is 6
 * blanks, the quoted name, ": ", the value, "," and "\n". String values are quoted; jansson
 * escapes only '"', '\\' and control characters (refused in the store) of a label or note,
 * each to 2 bytes, and writes other UTF-8 as it is: at most 2 bytes a byte. The longest role is
 * "Administrator", the longest id 9 digits. Per entry:
 *   6 + (6+4+2+9+2) + (6+5+2+(2+52)+2) + (6+7+2+(2+2*64)+2) + (6+10+2+(2+32)+2)
 *     + (6+8+2+(2+13)+2) + (6+9+2+(2+20)+2) + (6+6+2+(2+2*256)+2) + 7 = 910 bytes
 * (one more than the writer's 909: the last member has no comma; test-pinstore measures it),
 * so 1000 entries take at most 910000 bytes, plus the top level (Version, NextId with 10 digits,
 * "Pins", the closing lines: under 100 bytes). PINSTORE_FILE_MAX (1 MiB) leaves over 130 KiB spare.
 */
#define MEMBER_LINE_MAX(name, value) (6u + (sizeof(name) - 1u) + 2u + 2u + (value) + 2u)
#define QUOTED(n)                    (2u + (n))
#define ENTRY_TEXT_MAX                                                              \
    (6u + MEMBER_LINE_MAX("Id", 9u) + MEMBER_LINE_MAX("Pin", QUOTED(PIN_STR_LEN)) + \
     MEMBER_LINE_MAX("Label", QUOTED(2u * PINSTORE_LABEL_MAX)) +                    \
     MEMBER_LINE_MAX("UserName", QUOTED(USERS_NAME_MAX)) +                          \
     MEMBER_LINE_MAX("RoleId", QUOTED(sizeof("Administrator") - 1u)) +              \
     MEMBER_LINE_MAX("Created", QUOTED(CREATED_LEN)) +                              \
     MEMBER_LINE_MAX("Note", QUOTED(2u * PINSTORE_NOTE_MAX)) + 7u)
#define TOP_TEXT_MAX 100u
/* 9999-12-31T23:59:59Z: the last second four year digits can write. */
#define CREATED_MAX INT64_C(253402300799)

_Static_assert(ENTRY_TEXT_MAX == 910u, "the arithmetic of ENTRY_TEXT_MAX's comment");
_Static_assert(TOP_TEXT_MAX + ENTRY_TEXT_MAX * PINSTORE_MAX <= PINSTORE_FILE_MAX,
               "pinstore_save must never write a file pinstore_load refuses");

/* ---- the set ---- */

struct pinstore *pinstore_new(void)
{
    struct pinstore *ps = calloc(1, sizeof(*ps));
    if (ps) {
        ps->next_id = 1;
    }
    return ps;
}

struct pinstore *pinstore_free(struct pinstore *ps)
{
    if (ps) {
        free(ps->v);
        free(ps);
    }
    return NULL;
}

const struct pin_entry *pinstore_find(const struct pinstore *ps, const struct pin *pin)
{
    assert_return(ps, NULL);
    assert_return(pin, NULL);
    for (size_t i = 0; i < ps->n; i++) {
        if (pin_eq(&ps->v[i].pin, pin)) {
            return &ps->v[i];
        }
    }
    return NULL;
}

/* The index of id in ps, or -1: ids increase along v, but n is small enough to just look. */
static ssize_t pinstore_index(const struct pinstore *ps, uint32_t id)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i].id == id) {
            return (ssize_t)i;
        }
    }
    return -1;
}

const struct pin_entry *pinstore_find_id(const struct pinstore *ps, uint32_t id)
{
    assert_return(ps, NULL);
    ssize_t i = pinstore_index(ps, id);
    return i < 0 ? NULL : &ps->v[i];
}

int pinstore_remove(struct pinstore *ps, uint32_t id)
{
    assert_return(ps, -EINVAL);
    ssize_t i = pinstore_index(ps, id);
    if (i < 0) {
        return -ENOENT;
    }
    size_t k = (size_t)i;
    memmove(&ps->v[k], &ps->v[k + 1], (ps->n - k - 1) * sizeof(*ps->v));
    ps->n--;
    return 0;
}

int pinstore_parse_id(const char *s, uint32_t *ret)
{
    uint64_t v;

    assert_return(s, -EINVAL);
    assert_return(ret, -EINVAL);
    /* parse_u64 refuses signs, blanks, leading zeros and trailing bytes: one spelling per id. */
    if (parse_u64(s, 1, PINSTORE_ID_MAX, &v) < 0) {
        return -EINVAL;
    }
    *ret = (uint32_t)v;
    return 0;
}

/* ---- labels and notes ---- */

/*
 * Characters that show as nothing, break the line or reorder what follows: zero width space,
 * joiners and direction marks U+200B..U+200F, the line and paragraph separators U+2028/2029
 * with the bidi embeddings and overrides U+202A..U+202E, the word joiner U+2060, the bidi
 * isolates U+2066..U+2069 and the zero width no-break space U+FEFF. With them, "console-a" and a
 * look-alike that is another entry read the same in every listing, and an override can make a
 * label show as a different one (the trick of CVE-2021-42574).
 */
static bool is_invisible_format(uint32_t cp)
{
    return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) || cp == 0x2060 ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* A line of text people gave: what, field (Redfish name) and bounds name the rule in messages. */
static int text_check(const char *s, const char *what, const char *field, size_t min, size_t max,
                      struct certd_err *err)
{
    /* The text itself is never quoted: it may be anything, and messages reach logs. */
    size_t len = strnlen(s, max + 1);
    if (len > max) {
        return err_set_field(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, field,
                             "a %s has at most %zu bytes", what, max);
    }
    if (len < min) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field, "a %s may not be empty",
                             what);
    }
    /* utf8_check_text's rules, and the format characters, in one pass; invisible characters
     * are named only once the whole text is known to be UTF-8 without controls. */
    bool has_invisible = false;
    struct cursor c = cur_init(span_make(s, len));
    while (cur_left(&c) > 0) {
        uint32_t cp = 0;
        if (utf8_next(&c, &cp, NULL) < 0) {
            return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field,
                                 "a %s must be valid UTF-8", what);
        }
        if (utf8_is_control(cp)) {
            return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field,
                                 "a %s may not contain control characters", what);
        }
        has_invisible = has_invisible || is_invisible_format(cp);
    }
    if (has_invisible) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field,
                             "a %s may not contain invisible or direction-changing characters "
                             "(U+200B..U+200F, U+2028..U+202E, U+2060, U+2066..U+2069, U+FEFF)",
                             what);
    }
    /* "console-a" and "console-a " would look like one label in every listing. */
    if (len > 0 && (s[0] == ' ' || s[len - 1] == ' ')) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field,
                             "a %s may not begin or end with a space", what);
    }
    return 0;
}

int pinstore_check_label(const char *label, struct certd_err *err)
{
    assert_return(label, -EINVAL);
    return text_check(label, "label", "Label", 1, PINSTORE_LABEL_MAX, err);
}

int pinstore_check_note(const char *note, struct certd_err *err)
{
    assert_return(note, -EINVAL);
    return text_check(note, "note", "Note", 0, PINSTORE_NOTE_MAX, err);
}

/* ---- reading ---- */

/* Where a fault is, for messages: "FILE: Pins[2].Label" or "FILE: NextId". */
struct where {
    const char *file;
    const char *member;
    size_t index;
    bool in_entry;
};

/* Record a fault at w (-EBADMSG or -E2BIG) with code and a message after the place. */
_printf_(5, 6) static int fault(struct certd_err *err, int r, enum certd_errc code,
                                const struct where *w, const char *fmt, ...)
{
    char what[CERTD_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    bool has_member = w->member && w->member[0] != '\0';
    if (w->in_entry) {
        return err_set(err, r, code, "%s: Pins[%zu]%s%s: %s", w->file, w->index,
                       has_member ? "." : "", has_member ? w->member : "", what);
    }
    if (has_member) {
        return err_set(err, r, code, "%s: %s: %s", w->file, w->member, what);
    }
    return err_set(err, r, code, "%s: %s", w->file, what);
}

/* Member w->member of obj: NULL when absent and optional, else the value; faults otherwise. */
static int member_get(const json_t *obj, const struct where *w, bool is_optional, json_t **ret,
                      struct certd_err *err)
{
    json_t *v = json_object_get(obj, w->member);
    if (!v && !is_optional) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_MISSING, w, "missing");
    }
    *ret = v;
    return 0;
}

static int member_string(const json_t *obj, const struct where *w, bool is_optional,
                         const char **ret, struct certd_err *err)
{
    json_t *v = NULL;
    int r = member_get(obj, w, is_optional, &v, err);
    if (r < 0) {
        return r;
    }
    if (!v) {
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v)) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, w, "must be a string");
    }
    /* jansson refuses "\u0000" unless asked (JSON_ALLOW_NUL): checked anyway, it would cut. */
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, w, "holds a NUL character");
    }
    *ret = s;
    return 0;
}

static int member_integer(const json_t *obj, const struct where *w, uint64_t min, uint64_t max,
                          uint64_t *ret, struct certd_err *err)
{
    json_t *v = NULL;
    int r = member_get(obj, w, false, &v, err);
    if (r < 0) {
        return r;
    }
    /* An integer only: 3.0 or "3" are another writer's idea of the format. */
    if (!json_is_integer(v)) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, w, "must be an integer");
    }
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, w, "%lld is not in %llu..%llu",
                     (long long)n, (unsigned long long)min, (unsigned long long)max);
    }
    *ret = (uint64_t)n;
    return 0;
}

/* Refuse members of obj not in names (n of them). */
static int members_known(json_t *obj, const char *const *names, size_t n, const struct where *w,
                         struct certd_err *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        bool is_known = false;
        for (size_t i = 0; i < n && !is_known; i++) {
            is_known = strcmp(key, names[i]) == 0;
        }
        if (!is_known) {
            /* The key is the file's text: cut, and made printable by err_set. */
            return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, w, "unknown member \"%.40s\"", key);
        }
    }
    return 0;
}

/* A check's refusal (check_err) as a fault of the file: -EINVAL becomes -EBADMSG. */
static int check_fault(struct certd_err *err, int r, const struct certd_err *check_err,
                       const struct where *w)
{
    return fault(err, r == -E2BIG ? -E2BIG : -EBADMSG, check_err->code, w, "%s", check_err->msg);
}

static int entry_parse(json_t *obj, const char *file, size_t index, uint32_t next_id,
                       struct pin_entry *ret, struct certd_err *err)
{
    static const char *const names[] = { "Id",     "Pin",     "Label", "UserName",
                                         "RoleId", "Created", "Note" };
    _Static_assert(ELEMENTSOF(names) == PINSTORE_ENTRY_MEMBERS, "entry members");
    struct where w = { .file = file, .member = "", .index = index, .in_entry = true };
    struct pin_entry e = { .id = 0 };
    struct certd_err check = { .code = CERTD_E_OK };
    const char *s = NULL;
    uint64_t id = 0;
    int r;

    if (!json_is_object(obj)) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w, "must be an object");
    }
    r = members_known(obj, names, ELEMENTSOF(names), &w, err);
    if (r < 0) {
        return r;
    }

    w.member = "Id";
    r = member_integer(obj, &w, 1, PINSTORE_ID_MAX, &id, err);
    if (r < 0) {
        return r;
    }
    if (id >= next_id) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w, "id %llu is not below NextId %u",
                     (unsigned long long)id, next_id);
    }
    e.id = (uint32_t)id;

    w.member = "Pin";
    r = member_string(obj, &w, false, &s, err);
    if (r < 0) {
        return r;
    }
    r = pin_parse(s, &e.pin, &check);
    if (r < 0) {
        return check_fault(err, r, &check, &w);
    }
    /* pin_parse also reads hex: the file holds the one form we write, so it has one meaning. */
    char canonical[PIN_STR_MAX];
    pin_format(&e.pin, canonical, sizeof(canonical));
    if (strcmp(s, canonical) != 0) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w,
                     "a pin in the file is \"sha256//\" and 44 characters of base64");
    }

    w.member = "Label";
    r = member_string(obj, &w, false, &s, err);
    if (r < 0) {
        return r;
    }
    r = pinstore_check_label(s, &check);
    if (r < 0) {
        return check_fault(err, r, &check, &w);
    }
    memcpy(e.label, s, strlen(s) + 1);

    w.member = "UserName";
    r = member_string(obj, &w, false, &s, err);
    if (r < 0) {
        return r;
    }
    r = users_check_name(s, &check);
    if (r < 0) {
        return check_fault(err, r, &check, &w);
    }
    memcpy(e.user, s, strlen(s) + 1);

    w.member = "RoleId";
    r = member_string(obj, &w, false, &s, err);
    if (r < 0) {
        return r;
    }
    if (user_role_from_name(s, &e.role) < 0) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w,
                     "the role is Administrator, Operator or ReadOnly");
    }

    w.member = "Created";
    r = member_string(obj, &w, false, &s, err);
    if (r < 0) {
        return r;
    }
    /* RFC 3339 in the one form we write: UTC, whole seconds, no leap second (a clock never
     * hands us one, so a 60 is a file somebody made up). */
    if (iso8601_to_unix(s, &e.created) < 0 || e.created < 0) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w,
                     "not a UTC time of the form YYYY-MM-DDThh:mm:ssZ from 1970 on");
    }

    w.member = "Note";
    r = member_string(obj, &w, true, &s, err);
    if (r < 0) {
        return r;
    }
    if (s) {
        r = pinstore_check_note(s, &check);
        if (r < 0) {
            return check_fault(err, r, &check, &w);
        }
        memcpy(e.note, s, strlen(s) + 1);
    }
    *ret = e;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct pin_entry *)a)->id, y = ((const struct pin_entry *)b)->id;
    return (x > y) - (x < y);
}

int pinstore_parse(struct span data, const char *filename, struct pinstore **ret,
                   struct certd_err *err)
{
    static const char *const names[] = { "Version", "NextId", "Pins" };
    const char *file = filename ? filename : "pin store";
    struct where w = { .file = file, .member = "" };
    uint64_t v = 0;
    int r;

    assert_return(data.p || data.len == 0, -EINVAL);
    assert_return(ret, -EINVAL);

    if (data.len > PINSTORE_FILE_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "%s is larger than %u bytes", file,
                       PINSTORE_FILE_MAX);
    }
    if (span_has_nul(data)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "%s holds a NUL byte", file);
    }
    /*
     * Bound the text before jansson builds it: nesting (jansson recurses per level) and the
     * number of values (each costs an allocation).
     */
    r = json_text_bounds(data, PINSTORE_JSON_DEPTH_MAX, PINSTORE_JSON_VALUES_MAX);
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_TOO_MANY_VALUES, "%s holds more JSON values than %u pins",
                       file, PINSTORE_MAX);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INPUT_GARBAGE,
                       "%s is not a pin store: JSON nested more than %u levels", file,
                       PINSTORE_JSON_DEPTH_MAX);
    }

    /* One member, one meaning: a name given twice would be read differently elsewhere. */
    json_error_t jerr;
    _cleanup_(cleanup_json_t) json_t *root =
        json_loadb((const char *)data.p, data.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_error_code(&jerr) == json_error_out_of_memory) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (!root) {
        /* jansson's own text is not passed on: it quotes the file. Its place is. */
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "%s is not valid JSON (line %d, column %d)", file, jerr.line, jerr.column);
    }
    if (!json_is_object(root)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "%s is not a JSON object", file);
    }
    r = members_known(root, names, ELEMENTSOF(names), &w, err);
    if (r < 0) {
        return r;
    }
    w.member = "Version";
    r = member_integer(root, &w, PINSTORE_VERSION, PINSTORE_VERSION, &v, err);
    if (r < 0) {
        return r;
    }
    w.member = "NextId";
    r = member_integer(root, &w, 1, (uint64_t)PINSTORE_ID_MAX + 1, &v, err);
    if (r < 0) {
        return r;
    }
    uint32_t next_id = (uint32_t)v;

    w.member = "Pins";
    json_t *pins = NULL;
    r = member_get(root, &w, false, &pins, err);
    if (r < 0) {
        return r;
    }
    if (!json_is_array(pins)) {
        return fault(err, -EBADMSG, CERTD_E_FIELD_INVALID, &w, "must be an array");
    }
    size_t n = json_array_size(pins);
    if (n > PINSTORE_MAX) {
        return fault(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, &w, "more than %u pins", PINSTORE_MAX);
    }

    _cleanup_(cleanup_pinstore) struct pinstore *ps = pinstore_new();
    if (!ps) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    ps->next_id = next_id;
    if (n > 0) {
        /* n is the count of entries jansson holds already, at most PINSTORE_MAX. */
        ps->v = calloc(n, sizeof(*ps->v));
        if (!ps->v) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct pin_entry *e = &ps->v[i];
        r = entry_parse(json_array_get(pins, i), file, i, next_id, e, err);
        if (r < 0) {
            return r;
        }
        struct where at = { .file = file, .index = i, .in_entry = true };
        /* At most 1000 entries: the quadratic scan is half a million pin comparisons. */
        for (size_t j = 0; j < i; j++) {
            if (ps->v[j].id == e->id) {
                at.member = "Id";
                return fault(err, -EBADMSG, CERTD_E_DUPLICATE, &at, "id %u is also Pins[%zu]",
                             e->id, j);
            }
            if (pin_eq(&ps->v[j].pin, &e->pin)) {
                char s[PIN_STR_MAX];
                pin_format(&e->pin, s, sizeof(s));
                at.member = "Pin";
                return fault(err, -EBADMSG, CERTD_E_DUPLICATE, &at, "pin %s is also Pins[%zu]", s,
                             j);
            }
        }
        ps->n = i + 1;
    }
    /* The invariant is "ids increasing"; a file edited by hand may list them otherwise. */
    if (ps->n > 1) {
        qsort(ps->v, ps->n, sizeof(*ps->v), entry_cmp);
    }
    *ret = TAKE_PTR(ps);
    return 0;
}

int pinstore_load(const char *path, struct pinstore **ret, struct certd_err *err)
{
    assert_return(path, -EINVAL);
    assert_return(ret, -EINVAL);

    /*
     * Whoever can change this file decides who gets in, with which role: it must be ours (or
     * root's) and writable by its owner only (022). Reading it is another matter: pins are
     * public keys, and the mapping to accounts is guarded by the 0600 the writer gives the
     * file, not refused here. Judged on the descriptor that is read (store_read_trusted).
     */
    _cleanup_(store_buf_done) struct store_buf b = { .p = NULL };
    int r = store_read_trusted(path, "pin store", PINSTORE_FILE_MAX, S_IWGRP | S_IWOTH, &b, err);
    if (r < 0) {
        return r;
    }
    return pinstore_parse(span_make(b.p, b.len), path, ret, err);
}

int pinstore_load_or_empty(const char *path, struct pinstore **ret, struct certd_err *err)
{
    int r = pinstore_load(path, ret, err);
    if (r != -ENOENT) {
        return r;
    }
    err_clear(err);
    *ret = pinstore_new();
    return *ret ? 0 : err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
}

/* ---- writing ---- */

/* Set key of o to v (owned; NULL when its constructor failed). 0 or -ENOMEM. */
static int set_new(json_t *o, const char *key, json_t *v)
{
    /* json_object_set_new takes v in every case: it frees it when it fails. */
    return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int entry_json(const struct pin_entry *e, json_t **ret)
{
    char pin[PIN_STR_MAX];
    char created[32]; /* unix_to_iso8601's size; CREATED_LEN for the times a store holds */

    pin_format(&e->pin, pin, sizeof(pin));
    unix_to_iso8601(e->created, created, sizeof(created));
    /* Entries keep the invariants of pinstore.h: the role is named. */
    const char *role = user_role_name(e->role);
    assert(role);
    int r;

    _cleanup_(cleanup_json_t) json_t *o = json_object();
    if (!o) {
        return -ENOMEM;
    }
    /* Members in the order of pinstore.h, as people read them. */
    if ((r = set_new(o, "Id", json_integer((json_int_t)e->id))) < 0 ||
        (r = set_new(o, "Pin", json_string(pin))) < 0 ||
        (r = set_new(o, "Label", json_string(e->label))) < 0 ||
        (r = set_new(o, "UserName", json_string(e->user))) < 0 ||
        (r = set_new(o, "RoleId", json_string(role))) < 0 ||
        (r = set_new(o, "Created", json_string(created))) < 0) {
        return r;
    }
    if (e->note[0] != '\0' && (r = set_new(o, "Note", json_string(e->note))) < 0) {
        return r;
    }
    *ret = TAKE_PTR(o);
    return 0;
}

/* The file's text for ps: a new buffer of *ret_len bytes (no NUL), ending in a newline. */
static int pinstore_format(const struct pinstore *ps, char **ret, size_t *ret_len)
{
    const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
    int r;

    _cleanup_(cleanup_json_t) json_t *root = json_object();
    _cleanup_(cleanup_json_t) json_t *pins = json_array();
    if (!root || !pins) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < ps->n; i++) {
        json_t *e = NULL;
        r = entry_json(&ps->v[i], &e);
        if (r < 0) {
            return r;
        }
        if (json_array_append_new(pins, e) < 0) {
            return -ENOMEM;
        }
    }
    if ((r = set_new(root, "Version", json_integer(PINSTORE_VERSION))) < 0 ||
        (r = set_new(root, "NextId", json_integer((json_int_t)ps->next_id))) < 0 ||
        (r = set_new(root, "Pins", TAKE_PTR(pins))) < 0) {
        return r;
    }
    /* Measured first, then written into a buffer with room for the newline. */
    size_t len = json_dumpb(root, NULL, 0, flags), size;
    if (len == 0 || !size_add(len, 1, &size)) {
        return -ENOMEM;
    }
    _cleanup_free_ char *buf = malloc(size);
    if (!buf) {
        return -ENOMEM;
    }
    if (json_dumpb(root, buf, len, flags) != len) {
        return -ENOMEM;
    }
    buf[len] = '\n';
    *ret = TAKE_PTR(buf);
    *ret_len = size;
    return 0;
}

int pinstore_mkdir(const char *path, struct certd_err *err)
{
    char buf[128];

    assert_return(path, -EINVAL);

    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) {
        return 0; /* the working directory or "/": there, and not ours to judge */
    }
    _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = store_mkdir_p(dir, STORE_MODE_DIR);
    if (r == -EPERM) {
        /* Whoever else can write there can replace the store with their own file. */
        return err_set(err, r, CERTD_E_POLICY_FORBIDS,
                       "the directory %s must belong to uid %u and be writable by it alone "
                       "(chmod 700)",
                       dir, (unsigned)geteuid());
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot make the directory %s: %s", dir,
                       store_errno_str(r, buf, sizeof(buf)));
    }
    return 0;
}

int pinstore_save(const struct pinstore *ps, const char *path, struct certd_err *err)
{
    assert_return(ps, -EINVAL);
    assert_return(path, -EINVAL);

    /* As users_save: replacing another user's file (certctl as root on certd's store) would
     * hand it to us, and certd could no longer read it. */
    int r = store_check_writer(path, err);
    if (r < 0) {
        return r;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    r = pinstore_format(ps, &text, &len);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    /*
     * Never write what pinstore_load refuses: the store would lock everybody out at the next
     * start. PINSTORE_FILE_MAX is sized so that a store keeping the invariants always fits
     * (the _Static_assert above); this holds whatever the entries are.
     */
    if (len > PINSTORE_FILE_MAX) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                       "the pin store would take %zu bytes, more than the %u a store may have; "
                       "remove pins or shorten their notes",
                       len, PINSTORE_FILE_MAX);
    }
    r = pinstore_mkdir(path, err);
    if (r < 0) {
        return r;
    }
    return store_write_atomic(path, span_make(text, len), STORE_MODE_SECRET, err);
}

int pinstore_lock(const char *path, int *ret_fd, struct certd_err *err)
{
    assert_return(path, -EINVAL);
    assert_return(ret_fd, -EINVAL);

    /* Before the directory or the lock file is made: run as root on certd's store, they
     * would be root's, and certd could not open them. */
    int r = store_check_writer(path, err);
    if (r < 0) {
        return r;
    }
    r = pinstore_mkdir(path, err);
    if (r < 0) {
        return r;
    }
    return store_lock_file(path, PINSTORE_LOCK_SUFFIX, ret_fd, err);
}

int pinstore_unlock(int fd)
{
    return store_unlock_file(fd);
}

/* ---- changes ---- */

int pinstore_add(struct pinstore *ps, const struct pin *pin, const char *label, const char *user,
                 enum user_role role, const char *note, int64_t now, uint32_t *ret_id,
                 struct certd_err *err)
{
    struct certd_err check = { .code = CERTD_E_OK };

    assert_return(ps, -EINVAL);
    assert_return(pin, -EINVAL);
    assert_return(label, -EINVAL);
    assert_return(user, -EINVAL);
    /* now comes from the clock, not from a client. */
    assert_return(now >= 0 && now <= CREATED_MAX, -EINVAL);

    int r = users_check_name(user, &check);
    if (r < 0) {
        return err_set_field(err, r, check.code, "UserName", "%s", check.msg);
    }
    if ((unsigned)role >= USER_ROLE_MAX) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, "RoleId",
                             "the role is Administrator, Operator or ReadOnly");
    }
    r = pinstore_check_label(label, err);
    if (r < 0) {
        return r;
    }
    if (note) {
        r = pinstore_check_note(note, err);
        if (r < 0) {
            return r;
        }
    }
    const struct pin_entry *have = pinstore_find(ps, pin);
    if (have) {
        char s[PIN_STR_MAX];
        pin_format(pin, s, sizeof(s));
        return err_set_field(err, -EEXIST, CERTD_E_DUPLICATE, "Pin",
                             "pin %s is already in the store as id %u (%s)", s, have->id,
                             have->label);
    }
    if (ps->n >= PINSTORE_MAX) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED, "the store holds %u pins already",
                       PINSTORE_MAX);
    }
    if (ps->next_id > PINSTORE_ID_MAX) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                       "the store has given out every id up to %u; ids are never reused",
                       PINSTORE_ID_MAX);
    }
    /* One more slot; on failure ps->v is still the old array, so ps is unchanged. */
    struct pin_entry *v = reallocarray(ps->v, ps->n + 1, sizeof(*v));
    if (!v) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    ps->v = v;
    struct pin_entry *e = &v[ps->n];
    *e = (struct pin_entry){ .id = ps->next_id, .pin = *pin, .role = role, .created = now };
    memcpy(e->label, label, strlen(label) + 1);
    memcpy(e->user, user, strlen(user) + 1);
    if (note) {
        memcpy(e->note, note, strlen(note) + 1);
    }
    ps->n++;
    ps->next_id++;
    if (ret_id) {
        *ret_id = e->id;
    }
    return 0;
}
