/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pin/pinstore: the file parser as a table of every refusal its contract names (with errno,
 * detail code and a word of the message), each limit at N and N+1 (entries, file size, label
 * and note bytes, ids), the exact text the writer produces and a save/load round trip, the
 * in-memory changes (add, duplicate, limits, remove, find), the writers' lock between two
 * processes, file and directory modes, the load refusals (missing, symlink, not regular, owner,
 * mode, size) and a missing file as an empty store (pinstore_load_or_empty), the worst-case store
 * at PINSTORE_MAX entries (saved, then loaded back), the refusals of a writer running as another
 * uid than the store's (nothing created), look-alike labels (format characters), and the id syntax
 * of URIs and the CLI. Pins are computed with Python's hashlib (sha256 of "a", "b", "c"),
 * independently of pin.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pin/pinstore.h"
#include "testutil.h"

/* base64 and hex of sha256("a"), sha256("b"), sha256("c") (Python hashlib). */
#define PA     "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="
#define PB     "sha256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0="
#define PC     "sha256//Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y="
#define PA_HEX "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
/* PA with a bit set under the padding: the same bytes spelled a second way. */
#define PA_NONCANON "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLt="
/* 2026-11-22T18:00:00Z (Python calendar.timegm). */
#define T_2026 INT64_C(1795370400)

#define Q(s) "\"" s "\""
/* One entry; every argument is JSON text (strings with their quotes), extra starts with ','. */
#define ENTRY(id, pin, label, user, role, created, extra)                          \
    "{\"Id\": " id ", \"Pin\": " pin ", \"Label\": " label ", \"UserName\": " user \
    ", \"RoleId\": " role ", \"Created\": " created extra "}"
#define E_OK(id, pin) \
    ENTRY(id, Q(pin), Q("console-a"), Q("console"), Q("Operator"), Q("2026-11-22T18:00:00Z"), "")
#define DOC(pins) "{\"Version\": 1, \"NextId\": 10, \"Pins\": [" pins "]}"
/* One entry with one member given as JSON text v. */
#define E_PIN(v)     ENTRY("1", v, Q("l"), Q("u"), Q("ReadOnly"), Q("2026-11-22T18:00:00Z"), "")
#define E_LABEL(v)   ENTRY("1", Q(PA), v, Q("u"), Q("ReadOnly"), Q("2026-11-22T18:00:00Z"), "")
#define E_USER(v)    ENTRY("1", Q(PA), Q("l"), v, Q("ReadOnly"), Q("2026-11-22T18:00:00Z"), "")
#define E_ROLE(v)    ENTRY("1", Q(PA), Q("l"), Q("u"), v, Q("2026-11-22T18:00:00Z"), "")
#define E_CREATED(v) ENTRY("1", Q(PA), Q("l"), Q("u"), Q("ReadOnly"), v, "")
#define E_NOTE(v) \
    ENTRY("1", Q(PA), Q("l"), Q("u"), Q("ReadOnly"), Q("2026-11-22T18:00:00Z"), ", \"Note\": " v)
#define E_ID(v) ENTRY(v, Q(PA), Q("l"), Q("u"), Q("ReadOnly"), Q("2026-11-22T18:00:00Z"), "")

#define S10  "abcdefghij"
#define S64  S10 S10 S10 S10 S10 S10 "abcd"
#define S256 S64 S64 S64 S64
/* 32 two-byte characters: 64 bytes of UTF-8. */
#define E8  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E32 E8 E8 E8 E8

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static struct pin pin_of(const char *s)
{
    struct pin p;
    assert_int_equal(pin_parse(s, &p, NULL), 0);
    return p;
}

/* A pin made from a number: distinct pins for the limit tests. */
static struct pin pin_n(uint32_t n)
{
    struct pin p = { { 0 } };
    memcpy(p.sha256, &n, sizeof(n));
    p.sha256[31] = 0x5a;
    return p;
}

static void expect_err(int r, const struct certd_err *err, int want_r, enum certd_errc want_code,
                       const char *word, const char *what)
{
    if (r != want_r || err->code != want_code || !strstr(err->msg, word)) {
        fail_msg("%s: r=%d (want %d) code=%s (want %s) msg=\"%s\" (want \"%s\")", what, r, want_r,
                 err_code_name(err->code), err_code_name(want_code), err->msg, word);
    }
}

/* ---- parsing ---- */

struct parse_case {
    const char *input;
    size_t len; /* 0: strlen(input) */
    int r;
    enum certd_errc code;
    const char *word; /* in err.msg on failure */
    size_t n;         /* entries on success */
};

static void test_parse_table(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        /* accepted */
        { DOC(""), 0, 0, CERTD_E_OK, NULL, 0 },
        { "{\"Pins\": [], \"NextId\": 1, \"Version\": 1}", 0, 0, CERTD_E_OK, NULL, 0 },
        { DOC(E_OK("1", PA)), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_OK("9", PA) "," E_OK("2", PB) "," E_OK("5", PC)), 0, 0, CERTD_E_OK, NULL, 3 },
        { DOC(E_NOTE(Q("rack 4"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_NOTE(Q(""))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_NOTE(Q(S256))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_LABEL(Q(S64))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_LABEL(Q(E32))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_LABEL(Q("a b \\u00e9 \\ud83d\\ude00"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_USER(Q("_a.b-c_9"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_ROLE(Q("Administrator"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_CREATED(Q("1970-01-01T00:00:00Z"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_CREATED(Q("2024-02-29T23:59:59Z"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_CREATED(Q("9999-12-31T23:59:59Z"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { "{\"Version\": 1, \"NextId\": 1000000000, \"Pins\": [" E_ID("999999999") "]}", 0, 0,
          CERTD_E_OK, NULL, 1 },
        { " \n\t" DOC("") "\n\n", 0, 0, CERTD_E_OK, NULL, 0 },

        /* not JSON, not an object, NUL bytes, too deep */
        { "", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { "Version = 1", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "line 1", 0 },
        { "{\"Version\": 1, \"NextId\": 1, \"Pins\": []", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE,
          "not valid JSON", 0 },
        { DOC("") DOC(""), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { DOC(","), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { "[]", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not a JSON object", 0 },
        { "[" DOC("") "]", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not a JSON object", 0 },
        { "{\"Version\": 1, \"Version\": 1, \"NextId\": 1, \"Pins\": []}", 0, -EBADMSG,
          CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { DOC("") "\0", sizeof(DOC("")), -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL", 0 },
        { DOC(E_LABEL(Q("a\\u0000b"))), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { DOC(E_LABEL(Q("caf\xc3"))), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { DOC(E_LABEL(Q("\xed\xa0\x80"))), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON",
          0 },
        { DOC(E_LABEL(Q("\\ud800"))), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { DOC(E_LABEL("[[1]]")), 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "nested", 0 },
        { "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "nested",
          0 },
        /* look-alike labels: invisible and direction-changing characters, raw or escaped */
        { DOC(E_LABEL(Q("a\xe2\x80\xae"
                        "b"))),
          0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins[0].Label: a label may not contain invisible or direction-changing", 0 },
        { DOC(E_LABEL(Q("a\\u200bb"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "direction", 0 },
        { DOC(E_NOTE(Q("x\\u2066y"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins[0].Note: a note may not contain invisible", 0 },
        /* brackets inside strings do not count as nesting */
        { DOC(E_LABEL(Q("[[[{{{"))), 0, 0, CERTD_E_OK, NULL, 1 },

        /* top level: members, types, versions */
        { "{\"Version\": 1, \"NextId\": 1, \"Pins\": [], \"Extra\": 0}", 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "unknown member \"Extra\"", 0 },
        { "{\"version\": 1, \"NextId\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "unknown member", 0 },
        { "{\"NextId\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "Version", 0 },
        { "{\"Version\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": 1}", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins", 0 },
        { "{}", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "missing", 0 },
        { "{\"Version\": 2, \"NextId\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Version", 0 },
        { "{\"Version\": \"1\", \"NextId\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "integer", 0 },
        { "{\"Version\": 1.0, \"NextId\": 1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "integer", 0 },
        { "{\"Version\": 1, \"NextId\": 0, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": -1, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": 1000000001, \"Pins\": []}", 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": 99999999999999999999999, \"Pins\": []}", 0, -EBADMSG,
          CERTD_E_INPUT_GARBAGE, "not valid JSON", 0 },
        { "{\"Version\": 1, \"NextId\": null, \"Pins\": []}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": 1, \"Pins\": {}}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins: must be an array", 0 },
        { "{\"Version\": 1, \"NextId\": 1, \"Pins\": null}", 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "array", 0 },
        { DOC("1"), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0]: must be an object", 0 },
        { DOC(E_OK("1", PA) ", []"), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[1]", 0 },

        /* entry members */
        { DOC(E_NOTE(Q("x") ", \"Extra\": 1")), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins[0]: unknown member \"Extra\"", 0 },
        { DOC("{\"Pin\": " Q(PA) ", \"Label\": \"l\", \"UserName\": \"u\", \"RoleId\": "
                                 "\"ReadOnly\", \"Created\": \"2026-11-22T18:00:00Z\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].Id: missing", 0 },
        { DOC("{\"Id\": 1, \"Label\": \"l\", \"UserName\": \"u\", \"RoleId\": "
              "\"ReadOnly\", \"Created\": \"2026-11-22T18:00:00Z\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].Pin", 0 },
        { DOC("{\"Id\": 1, \"Pin\": " Q(PA) ", \"UserName\": \"u\", \"RoleId\": "
                                            "\"ReadOnly\", \"Created\": \"2026-11-22T18:00:00Z\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].Label", 0 },
        { DOC("{\"Id\": 1, \"Pin\": " Q(PA) ", \"Label\": \"l\", \"RoleId\": "
                                            "\"ReadOnly\", \"Created\": \"2026-11-22T18:00:00Z\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].UserName", 0 },
        { DOC("{\"Id\": 1, \"Pin\": " Q(PA) ", \"Label\": \"l\", \"UserName\": \"u\", "
                                            "\"Created\": \"2026-11-22T18:00:00Z\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].RoleId", 0 },
        { DOC("{\"Id\": 1, \"Pin\": " Q(PA) ", \"Label\": \"l\", \"UserName\": \"u\", "
                                            "\"RoleId\": \"ReadOnly\"}"),
          0, -EBADMSG, CERTD_E_FIELD_MISSING, "Pins[0].Created", 0 },
        { DOC(E_ID("\"1\"")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].Id: must be an integer",
          0 },
        { DOC(E_ID("1.5")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "integer", 0 },
        { DOC(E_ID("0")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].Id", 0 },
        { DOC(E_ID("-3")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].Id", 0 },
        { DOC(E_ID("10")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "not below NextId 10", 0 },
        { DOC(E_ID("11")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "NextId", 0 },
        { "{\"Version\": 1, \"NextId\": 1000000001, \"Pins\": [" E_ID("1000000000") "]}", 0,
          -EBADMSG, CERTD_E_FIELD_INVALID, "NextId", 0 },
        { DOC(E_LABEL("5")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Label: must be a string", 0 },
        { DOC(E_NOTE("null")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Note: must be a string", 0 },
        { DOC(E_USER("true")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "UserName: must be a string",
          0 },

        /* pins: the canonical form only */
        { DOC(E_PIN(Q(PA_HEX))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "sha256//", 0 },
        { DOC(E_PIN(Q("sha256//" PA_HEX))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].Pin", 0 },
        { DOC(E_PIN(Q("SHA256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="))), 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "Pins[0].Pin", 0 },
        { DOC(E_PIN(Q("sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSL="))), 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "44 characters", 0 },
        { DOC(E_PIN(Q("sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLss="))), 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "44 characters", 0 },
        { DOC(E_PIN(Q("sha256//AAAA"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "base64", 0 },
        { DOC(E_PIN(Q(""))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].Pin", 0 },
        { DOC(E_PIN(Q("sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uS!s="))), 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "invalid base64 character", 0 },
        { DOC(E_PIN(Q("sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLsA"))), 0, -EBADMSG,
          CERTD_E_FIELD_INVALID, "'='", 0 },
        { DOC(E_PIN(Q(PA_NONCANON))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "canonical", 0 },
        { DOC(E_PIN("42")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "must be a string", 0 },

        /* duplicates */
        { DOC(E_OK("1", PA) "," E_OK("2", PA)), 0, -EBADMSG, CERTD_E_DUPLICATE,
          "Pins[1].Pin: pin " PA " is also Pins[0]", 0 },
        { DOC(E_OK("1", PA) "," E_OK("2", PB) "," E_OK("3", PA)), 0, -EBADMSG, CERTD_E_DUPLICATE,
          "Pins[2].Pin", 0 },
        { DOC(E_OK("4", PA) "," E_OK("4", PB)), 0, -EBADMSG, CERTD_E_DUPLICATE,
          "Pins[1].Id: id 4 is also Pins[0]", 0 },

        /* roles */
        { DOC(E_ROLE(Q("administrator"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].RoleId",
          0 },
        { DOC(E_ROLE(Q("Admin"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { DOC(E_ROLE(Q(""))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { DOC(E_ROLE(Q("NoAccess"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { DOC(E_ROLE("1")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "string", 0 },

        /* user names */
        { DOC(E_USER(Q("Console"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Pins[0].UserName", 0 },
        { DOC(E_USER(Q(""))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { DOC(E_USER(Q("1abc"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { DOC(E_USER(Q("a b"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { DOC(E_USER(Q("abcdefghijklmnopqrstuvwxyz012345"))), 0, 0, CERTD_E_OK, NULL, 1 },
        { DOC(E_USER(Q("abcdefghijklmnopqrstuvwxyz0123456"))), 0, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "Pins[0].UserName", 0 },

        /* times: RFC 3339 UTC with whole seconds, exactly */
        { DOC(E_CREATED(Q("2026-11-22 18:00:00"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins[0].Created", 0 },
        { DOC(E_CREATED(Q("2026-11-22 18:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "YYYY-MM-DDThh:mm:ssZ", 0 },
        { DOC(E_CREATED(Q("2026-13-01T00:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-00-01T00:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-00T00:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-02-29T00:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-04-31T00:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-22T24:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-22T18:60:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-22T18:00:60Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-22T18:00:00+00:00"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Created", 0 },
        { DOC(E_CREATED(Q("2026-11-22T18:00:00.5Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Created", 0 },
        { DOC(E_CREATED(Q("2026-11-22t18:00:00z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-11-22T18:00:00"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("+026-11-22T18:00:00Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("2026-1-22T18:00:00Z "))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created",
          0 },
        { DOC(E_CREATED(Q("1969-12-31T23:59:59Z"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "1970",
          0 },
        { DOC(E_CREATED(Q(""))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "Created", 0 },
        { DOC(E_CREATED("1795370400")), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "must be a string", 0 },

        /* labels */
        { DOC(E_LABEL(Q(""))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Pins[0].Label: a label may "
          "not be empty",
          0 },
        { DOC(E_LABEL(Q(S64 "x"))), 0, -E2BIG, CERTD_E_FIELD_TOO_LONG, "at most 64 bytes", 0 },
        { DOC(E_LABEL(Q(E32 "x"))), 0, -E2BIG, CERTD_E_FIELD_TOO_LONG, "Pins[0].Label", 0 },
        { DOC(E_LABEL(Q("a\\tb"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "control characters", 0 },
        { DOC(E_LABEL(Q("a\\nb"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "control characters", 0 },
        { DOC(E_LABEL(Q("a\\u007fb"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "control", 0 },
        { DOC(E_LABEL(Q("a\\u0085b"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "control", 0 },
        { DOC(E_LABEL(Q("a\\u001bb"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "control", 0 },
        { DOC(E_LABEL(Q(" a"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "space", 0 },
        { DOC(E_LABEL(Q("a "))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "space", 0 },

        /* notes */
        { DOC(E_NOTE(Q(S256 "x"))), 0, -E2BIG, CERTD_E_FIELD_TOO_LONG, "Pins[0].Note", 0 },
        { DOC(E_NOTE(Q("rack\\r4"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID,
          "Note: a note may not "
          "contain control",
          0 },
        { DOC(E_NOTE(Q(" rack"))), 0, -EBADMSG, CERTD_E_FIELD_INVALID, "space", 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const struct parse_case *t = &cases[i];
        struct certd_err err = { 0 };
        struct pinstore *ps = NULL;
        size_t len = t->len ? t->len : strlen(t->input);
        int r = pinstore_parse(span_make(t->input, len), "pins.json", &ps, &err);
        if (r != t->r || err.code != t->code) {
            fail_msg("case %zu: r=%d code=%s msg=%s", i, r, err_code_name(err.code), err.msg);
        }
        if (t->r == 0) {
            assert_non_null(ps);
            assert_int_equal(ps->n, t->n);
            ps = pinstore_free(ps);
        } else {
            assert_null(ps);
            if (!strstr(err.msg, t->word) || strncmp(err.msg, "pins.json", 9) != 0) {
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, t->word);
            }
        }
    }
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct pinstore *ps = NULL;
    const char *in = DOC(E_OK("9", PA) "," ENTRY(
        "1", Q(PB), Q("l"), Q("u"), Q("ReadOnly"), Q("2026-11-22T18:00:00Z"),
        ", \"Note\": \"rack 4\"") "," ENTRY("5", Q(PC), Q("caf\\u00e9"), Q("admin"),
                                            Q("Administrator"), Q("2024-02-29T23:59:59Z"), ""));
    assert_int_equal(pinstore_parse(span_from_str(in), NULL, &ps, NULL), 0);
    assert_int_equal(ps->n, 3);
    assert_int_equal(ps->next_id, 10);
    /* by id, whatever the order in the file */
    assert_int_equal(ps->v[0].id, 1);
    assert_int_equal(ps->v[1].id, 5);
    assert_int_equal(ps->v[2].id, 9);

    struct pin pa = pin_of(PA), pc = pin_of(PC);
    const struct pin_entry *e = pinstore_find_id(ps, 9);
    assert_non_null(e);
    assert_true(pin_eq(&e->pin, &pa));
    assert_string_equal(e->label, "console-a");
    assert_string_equal(e->user, "console");
    assert_int_equal(e->role, USER_ROLE_OPERATOR);
    assert_int_equal(e->created, T_2026);
    assert_string_equal(e->note, "");

    e = pinstore_find_id(ps, 1);
    assert_string_equal(e->note, "rack 4");
    assert_int_equal(e->role, USER_ROLE_READONLY);

    e = pinstore_find(ps, &pc);
    assert_non_null(e);
    assert_int_equal(e->id, 5);
    assert_string_equal(e->label, "caf\xc3\xa9");
    assert_string_equal(e->user, "admin");
    assert_int_equal(e->role, USER_ROLE_ADMINISTRATOR);
    assert_int_equal(e->created, INT64_C(1709251199));
    ps = pinstore_free(ps);

    /* filename only names the file: NULL gives a generic name */
    struct certd_err err = { 0 };
    assert_int_equal(pinstore_parse(span_from_str("[]"), NULL, &ps, &err), -EBADMSG);
    assert_non_null(strstr(err.msg, "pin store"));
}

/* A document of n entries (ids 1..n, distinct pins), padded with spaces to at least pad bytes. */
static char *doc_entries(size_t n, size_t pad, size_t *ret_len)
{
    size_t cap = 512 + n * 300 + pad;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t pos = 0;
    int k = snprintf(buf, cap, "{\"Version\": 1, \"NextId\": %zu, \"Pins\": [", n + 1);
    pos += (size_t)k;
    for (size_t i = 0; i < n; i++) {
        struct pin p = pin_n((uint32_t)i);
        char s[PIN_STR_MAX];
        pin_format(&p, s, sizeof(s));
        k = snprintf(buf + pos, cap - pos,
                     "%s{\"Id\": %zu, \"Pin\": \"%s\", \"Label\": \"peer %zu\", \"UserName\": "
                     "\"console\", \"RoleId\": \"ReadOnly\", \"Created\": "
                     "\"2026-11-22T18:00:00Z\", \"Note\": \"n\"}",
                     i ? "," : "", i + 1, s, i);
        assert_true(k > 0 && (size_t)k < cap - pos);
        pos += (size_t)k;
    }
    k = snprintf(buf + pos, cap - pos, "]}");
    pos += (size_t)k;
    while (pos < pad) {
        buf[pos++] = ' ';
    }
    buf[pos] = '\0';
    *ret_len = pos;
    return buf;
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct pinstore *ps = NULL;
    size_t len = 0;

    /* PINSTORE_MAX entries, every member present: accepted */
    char *doc = doc_entries(PINSTORE_MAX, 0, &len);
    assert_int_equal(pinstore_parse(span_make(doc, len), "f", &ps, &err), 0);
    assert_int_equal(ps->n, PINSTORE_MAX);
    ps = pinstore_free(ps);
    free(doc);

    /* one more: refused by count */
    doc = doc_entries(PINSTORE_MAX + 1, 0, &len);
    assert_true(len <= PINSTORE_FILE_MAX);
    expect_err(pinstore_parse(span_make(doc, len), "f", &ps, &err), &err, -E2BIG,
               CERTD_E_TOO_MANY_VALUES, "more than 1000 pins", "1001 entries");
    assert_null(ps);
    free(doc);

    /* exactly PINSTORE_FILE_MAX bytes (padded with blanks): accepted; one more byte: refused */
    doc = doc_entries(3, PINSTORE_FILE_MAX, &len);
    assert_int_equal(len, PINSTORE_FILE_MAX);
    assert_int_equal(pinstore_parse(span_make(doc, len), "f", &ps, NULL), 0);
    ps = pinstore_free(ps);
    free(doc);
    doc = doc_entries(3, PINSTORE_FILE_MAX + 1, &len);
    err_clear(&err);
    expect_err(pinstore_parse(span_make(doc, len), "f", &ps, &err), &err, -E2BIG,
               CERTD_E_INPUT_TOO_LARGE, "larger than", "file too big");
    free(doc);

    /* many small values: refused before jansson builds them */
    size_t n = 20000;
    doc = malloc(64 + 2 * n);
    assert_non_null(doc);
    len = (size_t)snprintf(doc, 64, "{\"Version\": 1, \"NextId\": 1, \"Pins\": [");
    for (size_t i = 0; i < n; i++) {
        doc[len++] = i ? ',' : ' ';
        doc[len++] = '0';
    }
    doc[len++] = ']';
    doc[len++] = '}';
    err_clear(&err);
    expect_err(pinstore_parse(span_make(doc, len), "f", &ps, &err), &err, -E2BIG,
               CERTD_E_TOO_MANY_VALUES, "JSON values", "20000 values");
    free(doc);
}

/* ---- labels and notes ---- */

struct text_case {
    const char *s;
    int r;
    enum certd_errc code;
    const char *word;
};

static void test_check_label_note(void **state)
{
    (void)state;
    static const struct text_case labels[] = {
        { "a", 0, CERTD_E_OK, NULL },
        { "console-a", 0, CERTD_E_OK, NULL },
        { "a b", 0, CERTD_E_OK, NULL },
        { S64, 0, CERTD_E_OK, NULL },
        { E32, 0, CERTD_E_OK, NULL },
        { "\xf0\x9f\x98\x80 \xe2\x82\xac \xf4\x8f\xbf\xbf", 0, CERTD_E_OK, NULL },
        { "", -EINVAL, CERTD_E_FIELD_INVALID, "empty" },
        { S64 "x", -E2BIG, CERTD_E_FIELD_TOO_LONG, "at most 64" },
        { E32 "\xc3\xa9", -E2BIG, CERTD_E_FIELD_TOO_LONG, "label" },
        { "a\tb", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\nb", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\x7f", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\xc2\x80", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\xc2\x9f", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\xc0\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },         /* overlong NUL */
        { "a\xe0\x80\xaf", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },     /* overlong '/' */
        { "a\xed\xa0\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },     /* surrogate */
        { "a\xf4\x90\x80\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" }, /* > U+10FFFF */
        { "a\xe2\x82", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },         /* cut short */
        { "a\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },
        { "a\xff", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },
        { " a", -EINVAL, CERTD_E_FIELD_INVALID, "space" },
        { "a ", -EINVAL, CERTD_E_FIELD_INVALID, "space" },
        { " ", -EINVAL, CERTD_E_FIELD_INVALID, "space" },
        /* format characters, each range at both ends; their neighbours are fine */
        { "a\xe2\x80\x8b", -EINVAL, CERTD_E_FIELD_INVALID, "invisible" },  /* U+200B */
        { "a\xe2\x80\x8fz", -EINVAL, CERTD_E_FIELD_INVALID, "direction" }, /* U+200F RLM */
        { "a\xe2\x80\xa8z", -EINVAL, CERTD_E_FIELD_INVALID, "direction" }, /* U+2028 */
        { "a\xe2\x80\xaaz", -EINVAL, CERTD_E_FIELD_INVALID, "direction" }, /* U+202A LRE */
        { "\xe2\x80\xaez", -EINVAL, CERTD_E_FIELD_INVALID, "direction" },  /* U+202E RLO */
        { "a\xe2\x81\xa0z", -EINVAL, CERTD_E_FIELD_INVALID, "invisible" }, /* U+2060 WJ */
        { "a\xe2\x81\xa6z", -EINVAL, CERTD_E_FIELD_INVALID, "direction" }, /* U+2066 LRI */
        { "a\xe2\x81\xa9z", -EINVAL, CERTD_E_FIELD_INVALID, "direction" }, /* U+2069 PDI */
        { "\xef\xbb\xbf"
          "a",
          -EINVAL, CERTD_E_FIELD_INVALID, "invisible" }, /* U+FEFF */
        { "a\xe2\x80\x8az", 0, CERTD_E_OK, NULL },       /* U+200A hair space */
        { "a\xe2\x80\x90z", 0, CERTD_E_OK, NULL },       /* U+2010 hyphen */
        { "a\xe2\x80\xafz", 0, CERTD_E_OK, NULL },       /* U+202F narrow no-break space */
        { "a\xe2\x81\xa5z", 0, CERTD_E_OK, NULL },       /* U+2065 */
        { "a\xe2\x81\xaaz", 0, CERTD_E_OK, NULL },       /* U+206A */
        { "a\xef\xbb\xbez", 0, CERTD_E_OK, NULL },       /* U+FEFE */
    };
    for (size_t i = 0; i < ELEMENTSOF(labels); i++) {
        struct certd_err err = { 0 };
        int r = pinstore_check_label(labels[i].s, &err);
        if (r != labels[i].r || err.code != labels[i].code) {
            fail_msg("label %zu: r=%d code=%s msg=%s", i, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_non_null(strstr(err.msg, labels[i].word));
            assert_non_null(strstr(err.msg, "label"));
            assert_string_equal(err.field, "Label");
        }
    }
    static const struct text_case notes[] = {
        { "", 0, CERTD_E_OK, NULL },
        { "rack 4, slot 2", 0, CERTD_E_OK, NULL },
        { S256, 0, CERTD_E_OK, NULL },
        { S256 "x", -E2BIG, CERTD_E_FIELD_TOO_LONG, "at most 256" },
        { "a\rb", -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { "a\xc3", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },
        { "a ", -EINVAL, CERTD_E_FIELD_INVALID, "space" },
        { "rack \xe2\x80\xae"
          "4",
          -EINVAL, CERTD_E_FIELD_INVALID, "direction-changing" },
    };
    for (size_t i = 0; i < ELEMENTSOF(notes); i++) {
        struct certd_err err = { 0 };
        int r = pinstore_check_note(notes[i].s, &err);
        if (r != notes[i].r || err.code != notes[i].code) {
            fail_msg("note %zu: r=%d code=%s msg=%s", i, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_non_null(strstr(err.msg, notes[i].word));
            assert_non_null(strstr(err.msg, "note"));
            assert_string_equal(err.field, "Note");
        }
    }
    /* err is nullable */
    assert_int_equal(pinstore_check_label("", NULL), -EINVAL);
}

/* ---- changes ---- */

static void expect_unchanged(const struct pinstore *ps, size_t n, uint32_t next_id)
{
    assert_int_equal(ps->n, n);
    assert_int_equal(ps->next_id, next_id);
}

static void test_add(void **state)
{
    (void)state;
    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);
    assert_int_equal(ps->n, 0);
    assert_int_equal(ps->next_id, 1);

    struct pin pa = pin_of(PA), pb = pin_of(PB), pc = pin_of(PC);
    uint32_t id = 0;
    struct certd_err err = { 0 };
    assert_int_equal(
        pinstore_add(ps, &pa, "first", "console", USER_ROLE_OPERATOR, NULL, T_2026, &id, &err), 0);
    assert_int_equal(id, 1);
    assert_int_equal(pinstore_add(ps, &pb, "second", "admin", USER_ROLE_ADMINISTRATOR, "rack 4",
                                  T_2026 + 1, &id, &err),
                     0);
    assert_int_equal(id, 2);
    assert_false(err_is_set(&err));
    expect_unchanged(ps, 2, 3);
    assert_string_equal(ps->v[1].note, "rack 4");
    assert_string_equal(ps->v[0].note, "");
    assert_int_equal(ps->v[1].created, T_2026 + 1);
    assert_int_equal(ps->v[1].role, USER_ROLE_ADMINISTRATOR);

    /* the same pin again, whatever else differs: refused, naming the entry that has it */
    expect_err(pinstore_add(ps, &pa, "other", "x", USER_ROLE_READONLY, NULL, 0, &id, &err), &err,
               -EEXIST, CERTD_E_DUPLICATE, "pin " PA " is already in the store as id 1 (first)",
               "duplicate");
    assert_string_equal(err.field, "Pin");
    expect_unchanged(ps, 2, 3);

    struct add_case {
        const char *label, *user, *note;
        enum user_role role;
        int r;
        enum certd_errc code;
        const char *word, *field;
    } cases[] = {
        { "l", "Console", NULL, USER_ROLE_OPERATOR, -EINVAL, CERTD_E_FIELD_INVALID, "user name",
          "UserName" },
        { "l", "", NULL, USER_ROLE_OPERATOR, -EINVAL, CERTD_E_FIELD_INVALID, "user name",
          "UserName" },
        { "l", "abcdefghijklmnopqrstuvwxyz0123456", NULL, USER_ROLE_OPERATOR, -E2BIG,
          CERTD_E_FIELD_TOO_LONG, "at most 32", "UserName" },
        { "l", "u", NULL, USER_ROLE_MAX, -EINVAL, CERTD_E_FIELD_INVALID, "role", "RoleId" },
        { "l", "u", NULL, (enum user_role) - 1, -EINVAL, CERTD_E_FIELD_INVALID, "role", "RoleId" },
        { "", "u", NULL, USER_ROLE_OPERATOR, -EINVAL, CERTD_E_FIELD_INVALID, "label", "Label" },
        { S64 "x", "u", NULL, USER_ROLE_OPERATOR, -E2BIG, CERTD_E_FIELD_TOO_LONG, "label",
          "Label" },
        { "a\x1b[31m", "u", NULL, USER_ROLE_OPERATOR, -EINVAL, CERTD_E_FIELD_INVALID, "control",
          "Label" },
        { "l", "u", S256 "x", USER_ROLE_OPERATOR, -E2BIG, CERTD_E_FIELD_TOO_LONG, "note", "Note" },
        { "l", "u", "\xc3\x28", USER_ROLE_OPERATOR, -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8",
          "Note" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        err_clear(&err);
        id = 77;
        int r = pinstore_add(ps, &pc, cases[i].label, cases[i].user, cases[i].role, cases[i].note,
                             T_2026, &id, &err);
        char what[32];
        (void)snprintf(what, sizeof(what), "add case %zu", i);
        expect_err(r, &err, cases[i].r, cases[i].code, cases[i].word, what);
        assert_string_equal(err.field, cases[i].field);
        assert_int_equal(id, 77);
        expect_unchanged(ps, 2, 3);
        assert_null(pinstore_find(ps, &pc));
    }

    /* ret_id and err are nullable; "" is no note */
    assert_int_equal(pinstore_add(ps, &pc, "third", "u", USER_ROLE_READONLY, "", 0, NULL, NULL), 0);
    expect_unchanged(ps, 3, 4);
    assert_int_equal(pinstore_find(ps, &pc)->id, 3);
    assert_int_equal(pinstore_find(ps, &pc)->created, 0);
    ps = pinstore_free(ps);
    assert_null(pinstore_free(NULL));
}

static void test_add_limits(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct pinstore *ps = NULL;
    uint32_t id = 0;

    /* the last id is given out once, then never again */
    const char *in = "{\"Version\": 1, \"NextId\": 999999999, \"Pins\": []}";
    assert_int_equal(pinstore_parse(span_from_str(in), "f", &ps, NULL), 0);
    struct pin p0 = pin_n(0), p1 = pin_n(1);
    assert_int_equal(pinstore_add(ps, &p0, "l", "u", USER_ROLE_READONLY, NULL, T_2026, &id, &err),
                     0);
    assert_int_equal(id, PINSTORE_ID_MAX);
    assert_int_equal(ps->next_id, PINSTORE_ID_MAX + 1);
    expect_err(pinstore_add(ps, &p1, "l", "u", USER_ROLE_READONLY, NULL, T_2026, &id, &err), &err,
               -E2BIG, CERTD_E_LIMIT_REACHED, "never reused", "ids exhausted");
    /* even after a removal: ids are not reused */
    assert_int_equal(pinstore_remove(ps, PINSTORE_ID_MAX), 0);
    err_clear(&err);
    expect_err(pinstore_add(ps, &p1, "l", "u", USER_ROLE_READONLY, NULL, T_2026, &id, &err), &err,
               -E2BIG, CERTD_E_LIMIT_REACHED, "999999999", "ids exhausted after removal");
    expect_unchanged(ps, 0, PINSTORE_ID_MAX + 1);
    ps = pinstore_free(ps);

    /* PINSTORE_MAX entries, then one more */
    ps = pinstore_new();
    assert_non_null(ps);
    for (uint32_t i = 0; i < PINSTORE_MAX; i++) {
        struct pin p = pin_n(i);
        assert_int_equal(
            pinstore_add(ps, &p, "peer", "u", USER_ROLE_READONLY, NULL, T_2026, &id, NULL), 0);
        assert_int_equal(id, i + 1);
    }
    struct pin extra = pin_n(PINSTORE_MAX);
    err_clear(&err);
    expect_err(pinstore_add(ps, &extra, "peer", "u", USER_ROLE_READONLY, NULL, T_2026, &id, &err),
               &err, -E2BIG, CERTD_E_LIMIT_REACHED, "1000 pins", "entries full");
    expect_unchanged(ps, PINSTORE_MAX, PINSTORE_MAX + 1);
    /* the duplicate is named first: that is what the caller can act on */
    struct pin first = pin_n(0);
    err_clear(&err);
    expect_err(pinstore_add(ps, &first, "peer", "u", USER_ROLE_READONLY, NULL, T_2026, &id, &err),
               &err, -EEXIST, CERTD_E_DUPLICATE, "id 1 (peer)", "duplicate when full");
    /* a full store is saved and read back whole */
    char *dir = scratch_dir("pinstore-full");
    char *path = path_join(dir, "pins.json");
    assert_int_equal(pinstore_save(ps, path, NULL), 0);
    struct pinstore *back = NULL;
    assert_int_equal(pinstore_load(path, &back, NULL), 0);
    assert_int_equal(back->n, PINSTORE_MAX);
    back = pinstore_free(back);
    ps = pinstore_free(ps);
    free(path);
    scratch_rm(dir);
}

static void test_remove_find(void **state)
{
    (void)state;
    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);
    struct pin pa = pin_of(PA), pb = pin_of(PB), pc = pin_of(PC);
    assert_int_equal(pinstore_add(ps, &pa, "a", "u", USER_ROLE_READONLY, NULL, 1, NULL, NULL), 0);
    assert_int_equal(pinstore_add(ps, &pb, "b", "u", USER_ROLE_READONLY, NULL, 2, NULL, NULL), 0);
    assert_int_equal(pinstore_add(ps, &pc, "c", "u", USER_ROLE_READONLY, NULL, 3, NULL, NULL), 0);

    /* hex and base64 spellings are one pin */
    struct pin pa_hex = pin_of(PA_HEX);
    assert_int_equal(pinstore_find(ps, &pa_hex)->id, 1);
    assert_int_equal(pinstore_find_id(ps, 2)->id, 2);
    assert_null(pinstore_find_id(ps, 0));
    assert_null(pinstore_find_id(ps, 4));

    assert_int_equal(pinstore_remove(ps, 2), 0);
    assert_int_equal(pinstore_remove(ps, 2), -ENOENT);
    assert_int_equal(pinstore_remove(ps, 99), -ENOENT);
    expect_unchanged(ps, 2, 4);
    assert_null(pinstore_find_id(ps, 2));
    assert_null(pinstore_find(ps, &pb));
    assert_int_equal(ps->v[0].id, 1);
    assert_int_equal(ps->v[1].id, 3);
    assert_string_equal(ps->v[1].label, "c");

    /* a removed id is not given again; the pin may come back under a new one */
    uint32_t id = 0;
    assert_int_equal(pinstore_add(ps, &pb, "b2", "u", USER_ROLE_READONLY, NULL, 4, &id, NULL), 0);
    assert_int_equal(id, 4);
    assert_int_equal(ps->v[2].id, 4);

    /* removing the first and the last keeps the rest in order */
    assert_int_equal(pinstore_remove(ps, 1), 0);
    assert_int_equal(pinstore_remove(ps, 4), 0);
    expect_unchanged(ps, 1, 5);
    assert_int_equal(ps->v[0].id, 3);
    assert_int_equal(pinstore_remove(ps, 3), 0);
    expect_unchanged(ps, 0, 5);
    assert_null(pinstore_find(ps, &pc));

    ps = pinstore_free(ps);
}

/* ---- files ---- */

static const char expected_text[] = "{\n"
                                    "  \"Version\": 1,\n"
                                    "  \"NextId\": 3,\n"
                                    "  \"Pins\": [\n"
                                    "    {\n"
                                    "      \"Id\": 1,\n"
                                    "      \"Pin\": \"" PA "\",\n"
                                    "      \"Label\": \"console-a\",\n"
                                    "      \"UserName\": \"console\",\n"
                                    "      \"RoleId\": \"Operator\",\n"
                                    "      \"Created\": \"2026-11-22T18:00:00Z\",\n"
                                    "      \"Note\": \"rack 4 \xc3\xa9\"\n"
                                    "    },\n"
                                    "    {\n"
                                    "      \"Id\": 2,\n"
                                    "      \"Pin\": \"" PB "\",\n"
                                    "      \"Label\": \"b\",\n"
                                    "      \"UserName\": \"admin\",\n"
                                    "      \"RoleId\": \"Administrator\",\n"
                                    "      \"Created\": \"1970-01-01T00:00:00Z\"\n"
                                    "    }\n"
                                    "  ]\n"
                                    "}\n";

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-rt");
    char *sub = path_join(dir, "state/pins");
    char *path = path_join(sub, "pins.json");
    char *state_dir = path_join(dir, "state");
    struct certd_err err = { 0 };

    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);
    struct pin pa = pin_of(PA), pb = pin_of(PB);
    assert_int_equal(pinstore_add(ps, &pa, "console-a", "console", USER_ROLE_OPERATOR,
                                  "rack 4 \xc3\xa9", T_2026, NULL, NULL),
                     0);
    assert_int_equal(
        pinstore_add(ps, &pb, "b", "admin", USER_ROLE_ADMINISTRATOR, NULL, 0, NULL, NULL), 0);

    /* missing directories are made 0700, the file 0600, the text exactly as documented */
    assert_int_equal(pinstore_save(ps, path, &err), 0);
    assert_false(err_is_set(&err));
    assert_int_equal(file_mode(state_dir), 0700);
    assert_int_equal(file_mode(sub), 0700);
    assert_int_equal(file_mode(path), 0600);
    size_t len = 0;
    char *text = tu_file_get(path, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(expected_text));
    assert_string_equal(text, expected_text);

    /* and what is read back is what was saved */
    struct pinstore *back = NULL;
    assert_int_equal(pinstore_load(path, &back, &err), 0);
    expect_unchanged(back, ps->n, ps->next_id);
    for (size_t i = 0; i < ps->n; i++) {
        const struct pin_entry *a = &ps->v[i], *b = &back->v[i];
        assert_int_equal(a->id, b->id);
        assert_true(pin_eq(&a->pin, &b->pin));
        assert_string_equal(a->label, b->label);
        assert_string_equal(a->user, b->user);
        assert_int_equal(a->role, b->role);
        assert_int_equal(a->created, b->created);
        assert_string_equal(a->note, b->note);
    }

    /* saving what was loaded gives the same bytes (deterministic); a change replaces them */
    assert_int_equal(pinstore_save(back, path, &err), 0);
    char *again = tu_file_get(path, NULL);
    assert_non_null(again);
    assert_string_equal(again, expected_text);
    free(again);
    assert_int_equal(pinstore_remove(back, 1), 0);
    assert_int_equal(pinstore_save(back, path, &err), 0);
    struct pinstore *third = NULL;
    assert_int_equal(pinstore_load(path, &third, &err), 0);
    expect_unchanged(third, 1, 3);
    assert_int_equal(third->v[0].id, 2);
    third = pinstore_free(third);

    /* an empty store is a valid file too */
    struct pinstore *empty = pinstore_new();
    assert_non_null(empty);
    char *epath = path_join(dir, "empty.json");
    assert_int_equal(pinstore_save(empty, epath, &err), 0);
    char *etext = tu_file_get(epath, NULL);
    assert_non_null(etext);
    assert_string_equal(etext, "{\n  \"Version\": 1,\n  \"NextId\": 1,\n  \"Pins\": []\n}\n");
    free(etext);
    empty = pinstore_free(empty);
    assert_int_equal(pinstore_load(epath, &empty, &err), 0);
    expect_unchanged(empty, 0, 1);
    empty = pinstore_free(empty);
    free(epath);

    free(text);
    back = pinstore_free(back);
    ps = pinstore_free(ps);
    free(path);
    free(sub);
    free(state_dir);
    scratch_rm(dir);
}

/*
 * The worst case the writer can meet: PINSTORE_MAX entries with 9-digit ids, the longest role,
 * user name, time, and a label and note made only of the characters JSON escapes ('"', '\\'),
 * so every byte of them takes two in the file. It saves, and what was saved loads back (a
 * store pinstore_load refused would lock everybody out). The size is exactly what pinstore.c's
 * arithmetic gives (909 bytes an entry: its bound of 910 counts a comma after every member),
 * so the test also shows that this is the worst case the bound is about.
 */
static void test_save_worst_case(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-worst");
    char *path = path_join(dir, "pins.json");
    struct certd_err err = { 0 };
    char label[PINSTORE_LABEL_MAX + 1], note[PINSTORE_NOTE_MAX + 1];
    char user[USERS_NAME_MAX + 1];

    for (size_t i = 0; i < PINSTORE_LABEL_MAX; i++) {
        label[i] = i % 2 ? '\\' : '"';
    }
    label[PINSTORE_LABEL_MAX] = '\0';
    for (size_t i = 0; i < PINSTORE_NOTE_MAX; i++) {
        note[i] = i % 2 ? '"' : '\\';
    }
    note[PINSTORE_NOTE_MAX] = '\0';
    memset(user, 'u', USERS_NAME_MAX);
    user[USERS_NAME_MAX] = '\0';

    /* ids from 999999000: every one of them 9 digits, the last PINSTORE_ID_MAX */
    const char *start = "{\"Version\": 1, \"NextId\": 999999000, \"Pins\": []}";
    struct pinstore *ps = NULL;
    assert_int_equal(pinstore_parse(span_from_str(start), "start", &ps, &err), 0);
    for (uint32_t i = 0; i < PINSTORE_MAX; i++) {
        struct pin p = pin_n(i);
        assert_int_equal(pinstore_add(ps, &p, label, user, USER_ROLE_ADMINISTRATOR, note,
                                      INT64_C(253402300799), NULL, &err),
                         0);
    }
    assert_int_equal(ps->v[PINSTORE_MAX - 1].id, PINSTORE_ID_MAX);
    assert_int_equal(pinstore_save(ps, path, &err), 0);
    assert_false(err_is_set(&err));

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* 60 bytes of top level ("NextId": 1000000000), the last entry without its comma */
    assert_int_equal(st.st_size, PINSTORE_MAX * 909 - 1 + 60);
    assert_true((size_t)st.st_size <= PINSTORE_FILE_MAX);

    struct pinstore *back = NULL;
    assert_int_equal(pinstore_load(path, &back, &err), 0);
    expect_unchanged(back, PINSTORE_MAX, PINSTORE_ID_MAX + 1);
    for (size_t i = 0; i < PINSTORE_MAX; i++) {
        assert_true(pin_eq(&back->v[i].pin, &ps->v[i].pin));
        assert_int_equal(back->v[i].id, ps->v[i].id);
        assert_string_equal(back->v[i].label, label);
        assert_string_equal(back->v[i].note, note);
        assert_string_equal(back->v[i].user, user);
        assert_int_equal(back->v[i].role, USER_ROLE_ADMINISTRATOR);
        assert_int_equal(back->v[i].created, INT64_C(253402300799));
    }
    back = pinstore_free(back);
    ps = pinstore_free(ps);
    free(path);
    scratch_rm(dir);
}

static void expect_load_err(const char *path, int want_r, enum certd_errc code, const char *word)
{
    struct certd_err err = { 0 };
    struct pinstore *ps = NULL;
    int r = pinstore_load(path, &ps, &err);
    assert_null(ps);
    expect_err(r, &err, want_r, code, word, path);
}

static void test_load_errors(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-load");
    char *good = path_join(dir, "good.json");
    const char *doc = DOC(E_OK("1", PA));
    write_file(good, doc, strlen(doc), 0600);
    struct pinstore *ps = NULL;
    assert_int_equal(pinstore_load(good, &ps, NULL), 0);
    ps = pinstore_free(ps);

    char *missing = path_join(dir, "missing.json");
    expect_load_err(missing, -ENOENT, CERTD_E_NOT_FOUND, "does not exist");
    char *missing_dir = path_join(dir, "nodir/pins.json");
    expect_load_err(missing_dir, -ENOENT, CERTD_E_NOT_FOUND, "does not exist");

    /* pinstore_load_or_empty: no file is a new empty store, with err cleared ... */
    struct certd_err err = { 0 };
    (void)err_set(&err, -EIO, CERTD_E_STORAGE, "stale");
    assert_int_equal(pinstore_load_or_empty(missing_dir, &ps, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    expect_unchanged(ps, 0, 1);
    ps = pinstore_free(ps);
    /* ... a file is what pinstore_load gives ... */
    assert_int_equal(pinstore_load_or_empty(good, &ps, &err), 0);
    expect_unchanged(ps, 1, 10);
    assert_int_equal(ps->v[0].id, 1);
    ps = pinstore_free(ps);
    /* ... and any other refusal stays one, nothing returned */
    const char *hex_doc = DOC(E_PIN(Q(PA_HEX)));
    char *bad_file = path_join(dir, "bad-or-empty.json");
    write_file(bad_file, hex_doc, strlen(hex_doc), 0600);
    expect_err(pinstore_load_or_empty(bad_file, &ps, &err), &err, -EBADMSG, CERTD_E_FIELD_INVALID,
               "Pins[0].Pin", "load_or_empty, bad file");
    assert_null(ps);
    char *lnk = path_join(dir, "link-or-empty.json");
    assert_int_equal(symlink(missing, lnk), 0);
    err_clear(&err);
    expect_err(pinstore_load_or_empty(lnk, &ps, &err), &err, -ELOOP, CERTD_E_STORAGE,
               "symbolic link", "load_or_empty, dangling symlink");
    assert_null(ps);
    free(lnk);
    free(bad_file);

    char *link = path_join(dir, "link.json");
    assert_int_equal(symlink(good, link), 0);
    expect_load_err(link, -ELOOP, CERTD_E_STORAGE, "symbolic link");
    char *dangling = path_join(dir, "dangling.json");
    assert_int_equal(symlink(missing, dangling), 0);
    expect_load_err(dangling, -ELOOP, CERTD_E_STORAGE, "symbolic link");

    char *subdir = path_join(dir, "adir");
    assert_int_equal(mkdir(subdir, 0700), 0);
    expect_load_err(subdir, -EPERM, CERTD_E_POLICY_FORBIDS, "not a regular file");
    char *fifo = path_join(dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_load_err(fifo, -EPERM, CERTD_E_POLICY_FORBIDS, "not a regular file");

    /* others who can change the file could let themselves in: refused; reading is fine */
    char *wide = path_join(dir, "wide.json");
    write_file(wide, doc, strlen(doc), 0620);
    expect_load_err(wide, -EPERM, CERTD_E_POLICY_FORBIDS, "chmod 600");
    assert_int_equal(chmod(wide, 0602), 0);
    expect_load_err(wide, -EPERM, CERTD_E_POLICY_FORBIDS, "others may change it");
    assert_int_equal(chmod(wide, 0644), 0);
    assert_int_equal(pinstore_load(wide, &ps, NULL), 0);
    ps = pinstore_free(ps);
    if (geteuid() == 0) {
        /* owned by another user (root can make one): refused */
        assert_int_equal(chown(wide, 4242, 4242), 0);
        expect_load_err(wide, -EPERM, CERTD_E_POLICY_FORBIDS, "uid 4242");
    }

    /* size: PINSTORE_FILE_MAX + 1 bytes are not read */
    char *big = path_join(dir, "big.json");
    size_t len = PINSTORE_FILE_MAX + 1;
    char *blob = malloc(len);
    assert_non_null(blob);
    memset(blob, ' ', len);
    write_file(big, blob, len, 0600);
    free(blob);
    expect_load_err(big, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than 1048576 bytes");

    /* the file's path names it in parse errors */
    char *bad = path_join(dir, "bad.json");
    const char *bad_doc = DOC(E_PIN(Q(PA_HEX)));
    write_file(bad, bad_doc, strlen(bad_doc), 0600);
    expect_load_err(bad, -EBADMSG, CERTD_E_FIELD_INVALID, "bad.json: Pins[0].Pin");

    free(bad);
    free(big);
    free(wide);
    free(fifo);
    free(subdir);
    free(dangling);
    free(link);
    free(missing_dir);
    free(missing);
    free(good);
    scratch_rm(dir);
}

static void test_save_errors(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-save");
    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);
    struct certd_err err = { 0 };

    /* a file where the directory should be */
    char *file = path_join(dir, "file");
    write_file(file, "x", 1, 0600);
    char *under = path_join(file, "pins.json");
    expect_err(pinstore_save(ps, under, &err), &err, -ENOTDIR, CERTD_E_STORAGE, "file",
               "save under a file");
    err_clear(&err);
    char *deep = path_join(dir, "file/sub/pins.json");
    expect_err(pinstore_save(ps, deep, &err), &err, -ENOTDIR, CERTD_E_STORAGE, "directory",
               "save below a file");

    /* a directory where the file should be: nothing replaced */
    char *adir = path_join(dir, "adir");
    assert_int_equal(mkdir(adir, 0700), 0);
    err_clear(&err);
    assert_true(pinstore_save(ps, adir, &err) < 0);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    struct stat st;
    assert_int_equal(stat(adir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a relative path in the working directory */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(pinstore_save(ps, "rel.json", NULL), 0);
    assert_int_equal(pinstore_save(ps, "rel/sub/rel.json", NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    char *rel = path_join(dir, "rel/sub/rel.json");
    struct pinstore *back = NULL;
    assert_int_equal(pinstore_load(rel, &back, NULL), 0);
    back = pinstore_free(back);

    free(rel);
    free(adir);
    free(deep);
    free(under);
    free(file);
    ps = pinstore_free(ps);
    scratch_rm(dir);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* pinstore_mkdir: made 0700 when missing, an unsafe existing directory refused. */
static void test_mkdir(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-mkdir");
    struct certd_err err = { 0 };

    char *deep = path_join(dir, "a/b/pins.json");
    char *a = path_join(dir, "a"), *ab = path_join(dir, "a/b");
    assert_int_equal(pinstore_mkdir(deep, &err), 0);
    assert_int_equal(file_mode(a), 0700);
    assert_int_equal(file_mode(ab), 0700);
    assert_false(exists(deep));                      /* the directory only */
    assert_int_equal(pinstore_mkdir(deep, &err), 0); /* there already, and ours */

    /* others may write to it: refused, and a store is not made there */
    assert_int_equal(chmod(ab, 0770), 0);
    expect_err(pinstore_mkdir(deep, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS,
               "writable by it alone", "group-writable directory");
    err_clear(&err);
    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);
    expect_err(pinstore_save(ps, deep, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS, "chmod 700",
               "save into a group-writable directory");
    assert_false(exists(deep));
    assert_int_equal(chmod(ab, 0700), 0);

    /* a file in the way */
    char *file = path_join(dir, "file");
    write_file(file, "x", 1, 0600);
    char *under = path_join(dir, "file/x/pins.json");
    err_clear(&err);
    expect_err(pinstore_mkdir(under, &err), &err, -ENOTDIR, CERTD_E_STORAGE,
               "cannot make the directory", "file in the way");

    /* no directory to make: the working directory, or "/" */
    assert_int_equal(pinstore_mkdir("pins.json", NULL), 0);
    assert_int_equal(pinstore_mkdir("/pins.json", NULL), 0);

    ps = pinstore_free(ps);
    free(under);
    free(file);
    free(ab);
    free(a);
    free(deep);
    scratch_rm(dir);
}

/*
 * Run as another user than the store's owner (root on certd's store): the lock and the save
 * refuse before they create anything, so nothing root-owned is left where certd cannot open
 * it. Only root can make files of another uid, so the other cases run as root only.
 */
static void test_other_owner(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    const uid_t other = 65534;
    char *dir = scratch_dir("pinstore-owner");
    struct certd_err err = { 0 };
    int fd = -1;
    struct pinstore *ps = pinstore_new();
    assert_non_null(ps);

    /* the store exists and is another uid's */
    char *theirs = path_join(dir, "theirs");
    assert_int_equal(mkdir(theirs, 0700), 0);
    char *path = path_join(theirs, "pins.json");
    char *lock = path_join(theirs, "pins.json" PINSTORE_LOCK_SUFFIX);
    assert_int_equal(pinstore_save(ps, path, NULL), 0);
    assert_int_equal(chown(path, other, other), 0);
    expect_err(pinstore_lock(path, &fd, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS,
               "owned by uid 65534: run this as that user (e.g. with sudo -u)", "their file");
    assert_int_equal(fd, -1);
    assert_false(exists(lock));
    err_clear(&err);
    expect_err(pinstore_save(ps, path, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS, "sudo -u",
               "save over their file");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, other);

    /* no store yet, in their directory: refused, naming the directory */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(chown(theirs, other, other), 0);
    err_clear(&err);
    expect_err(pinstore_lock(path, &fd, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS,
               "theirs is owned by uid 65534: run this as that user", "their directory");
    assert_false(exists(lock));
    err_clear(&err);
    expect_err(pinstore_save(ps, path, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS, "sudo -u",
               "save into their directory");
    assert_false(exists(path));

    /* directories still to be made under theirs: judged by theirs, nothing made */
    char *deep = path_join(theirs, "sub/pins.json");
    char *sub = path_join(theirs, "sub");
    err_clear(&err);
    expect_err(pinstore_lock(deep, &fd, &err), &err, -EPERM, CERTD_E_POLICY_FORBIDS, "uid 65534",
               "below their directory");
    assert_false(exists(sub));

    /* a sticky directory (as /tmp) of another uid: what we make there is ours */
    char *sticky = path_join(dir, "sticky");
    assert_int_equal(mkdir(sticky, 0700), 0);
    assert_int_equal(chmod(sticky, 01777), 0);
    assert_int_equal(chown(sticky, other, other), 0);
    char *in_sticky = path_join(sticky, "mine/pins.json");
    assert_int_equal(pinstore_lock(in_sticky, &fd, &err), 0);
    assert_int_equal(pinstore_save(ps, in_sticky, &err), 0);
    fd = pinstore_unlock(fd);
    assert_int_equal(stat(in_sticky, &st), 0);
    assert_int_equal(st.st_uid, 0);

    ps = pinstore_free(ps);
    free(in_sticky);
    free(sticky);
    free(sub);
    free(deep);
    free(lock);
    free(path);
    free(theirs);
    scratch_rm(dir);
}

/* A non-blocking exclusive attempt on the lock file: true when someone else holds it. */
static bool lock_is_held(const char *lockpath)
{
    int probe = open(lockpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    assert_true(probe >= 0);
    bool is_held = flock(probe, LOCK_EX | LOCK_NB) < 0;
    if (is_held) {
        assert_int_equal(errno, EWOULDBLOCK);
    }
    close(probe);
    return is_held;
}

/*
 * Two writers: the parent holds the lock from its load to its save while a child waits in
 * pinstore_lock for its own change; neither change is lost. While the parent holds it, the
 * lock is seen held from another open file (what the child's open is).
 */
static void test_lock(void **state)
{
    (void)state;
    char *dir = scratch_dir("pinstore-lock");
    char *sub = path_join(dir, "pins");
    char *path = path_join(sub, "pins.json");
    char *lockpath = path_join(sub, "pins.json" PINSTORE_LOCK_SUFFIX);
    struct certd_err err = { 0 };
    int fd = -1;

    /* the lock makes the missing directory 0700 and its file 0600 */
    assert_int_equal(pinstore_lock(path, &fd, &err), 0);
    assert_true(fd >= 0);
    assert_int_equal(file_mode(sub), 0700);
    assert_int_equal(file_mode(lockpath), 0600);
    assert_true(lock_is_held(lockpath));

    int started[2];
    assert_int_equal(pipe(started), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)pinstore_unlock(fd); /* the parent's descriptor: the lock stays the parent's */
        struct pinstore *ps = NULL;
        struct pin pb = pin_of(PB);
        int cfd = -1;
        int ok =
            write(started[1], "s", 1) == 1 && pinstore_lock(path, &cfd, NULL) == 0 &&
            pinstore_load(path, &ps, NULL) == 0 &&
            pinstore_add(ps, &pb, "child", "u", USER_ROLE_READONLY, NULL, 2, NULL, NULL) == 0 &&
            pinstore_save(ps, path, NULL) == 0;
        (void)pinstore_unlock(cfd);
        pinstore_free(ps);
        free(lockpath); /* valgrind checks the child's heap too */
        free(path);
        free(sub);
        free(dir);
        _exit(ok ? 0 : 1);
    }
    char c = 0;
    assert_int_equal(read(started[0], &c, 1), 1);
    /* the child is in (or about to be in) pinstore_lock: the parent's change goes first */
    assert_true(lock_is_held(lockpath));
    struct pinstore *ps = NULL;
    assert_int_equal(pinstore_load(path, &ps, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    ps = pinstore_new();
    assert_non_null(ps);
    struct pin pa = pin_of(PA);
    assert_int_equal(pinstore_add(ps, &pa, "parent", "u", USER_ROLE_READONLY, NULL, 1, NULL, NULL),
                     0);
    assert_int_equal(pinstore_save(ps, path, NULL), 0);
    ps = pinstore_free(ps);
    /* the child cannot have saved while the parent held the lock */
    assert_int_equal(pinstore_load(path, &ps, NULL), 0);
    expect_unchanged(ps, 1, 2);
    ps = pinstore_free(ps);
    fd = pinstore_unlock(fd);
    assert_int_equal(fd, -EBADF);

    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* both changes are there, the child's after the parent's */
    assert_int_equal(pinstore_load(path, &ps, NULL), 0);
    expect_unchanged(ps, 2, 3);
    assert_string_equal(pinstore_find_id(ps, 1)->label, "parent");
    assert_string_equal(pinstore_find_id(ps, 2)->label, "child");
    ps = pinstore_free(ps);

    /* released, and the lock file stays */
    assert_false(lock_is_held(lockpath));
    assert_int_equal(pinstore_unlock(-1), -EBADF);

    /* a lock file that is a symlink is not followed */
    char *other = path_join(sub, "other.json");
    char *other_lock = path_join(sub, "other.json" PINSTORE_LOCK_SUFFIX);
    assert_int_equal(symlink(path, other_lock), 0);
    err_clear(&err);
    fd = -1;
    expect_err(pinstore_lock(other, &fd, &err), &err, -ELOOP, CERTD_E_STORAGE, "lock",
               "symlinked lock");
    assert_int_equal(fd, -1);

    close(started[0]);
    close(started[1]);
    free(other_lock);
    free(other);
    free(lockpath);
    free(path);
    free(sub);
    scratch_rm(dir);
}

/* ---- ids ---- */

static void test_parse_id(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int r;
        uint32_t v;
    } cases[] = {
        { "1", 0, 1 },
        { "42", 0, 42 },
        { "999999999", 0, 999999999 },
        { "0", -EINVAL, 0 },
        { "01", -EINVAL, 0 },
        { "00", -EINVAL, 0 },
        { "+1", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { " 1", -EINVAL, 0 },
        { "1 ", -EINVAL, 0 },
        { "1\n", -EINVAL, 0 },
        { "1000000000", -EINVAL, 0 },
        { "4294967297", -EINVAL, 0 },
        { "99999999999999999999999", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "1a", -EINVAL, 0 },
        { "0x1", -EINVAL, 0 },
        { "1.0", -EINVAL, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        uint32_t v = 12345;
        int r = pinstore_parse_id(cases[i].s, &v);
        if (r != cases[i].r) {
            fail_msg("id \"%s\": r=%d", cases[i].s, r);
        }
        assert_int_equal(v, cases[i].r == 0 ? cases[i].v : 12345);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_check_label_note),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_add_limits),
        cmocka_unit_test(test_remove_find),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_save_worst_case),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_mkdir),
        cmocka_unit_test(test_other_owner),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_parse_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
