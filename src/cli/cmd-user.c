/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl user: manage certd's users file offline (add, passwd, del, list, role). certd picks
 * up a changed file on its own. A password is read from standard input when that is not a
 * terminal (its first line), or else asked twice at a prompt with echo off; the terminal's
 * settings are put back on every path, a signal included. Passwords are held in struct secret
 * and stack buffers that are wiped, and never printed; list shows names and roles only.
 *
 * A change holds users_lock() from loading the file to saving it, so two certctl runs (or
 * certctl and certd) never lose one another's change; the password is asked before the lock is
 * taken (a prompt must not hold up others), and the file is loaded again under the lock.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "certctl.h"
#include "users/users.h"

enum user_op { USER_OP_ADD, USER_OP_PASSWD, USER_OP_DEL, USER_OP_LIST, USER_OP_ROLE, USER_OP_MAX };

static const struct {
    const char *name;
    int nargs; /* positional arguments after the operation */
    const char *synopsis;
    const char *help;
} user_ops[USER_OP_MAX] = {
    [USER_OP_ADD] = { "add", 1, "add NAME --role ROLE [--users-file FILE]",
                      "Add user NAME with ROLE (Administrator, Operator or ReadOnly). The first\n"
                      "user of a new users file must be an Administrator.\n" },
    [USER_OP_PASSWD] = { "passwd", 1, "passwd NAME [--users-file FILE]",
                         "Set a new password for NAME.\n" },
    [USER_OP_DEL] = { "del", 1, "del NAME [--users-file FILE]",
                      "Delete user NAME. The last Administrator cannot be deleted.\n" },
    [USER_OP_LIST] = { "list", 0, "list [--users-file FILE]",
                       "Print each user's name and role (never the password hashes).\n" },
    [USER_OP_ROLE] = { "role", 2, "role NAME ROLE [--users-file FILE]",
                       "Give NAME the role ROLE. The last Administrator keeps its role.\n" },
};

static void user_usage(FILE *f)
{
    (void)fprintf(f, "Usage: certctl user OPERATION [ARGS] [--users-file FILE]\n"
                     "\n"
                     "Manage the users of certd (default file " USERS_FILE_DEFAULT ").\n"
                     "\n");
    for (size_t i = 0; i < USER_OP_MAX; i++) {
        (void)fprintf(f, "  certctl user %s\n", user_ops[i].synopsis);
    }
    (void)fprintf(f, "\n"
                     "Passwords (12 to 128 bytes of UTF-8, no control characters) are read from\n"
                     "standard input when it is not a terminal (the first line), else asked twice\n"
                     "without echo. 'certctl user OPERATION --help' describes each operation.\n"
                     "\n"
                     "Exit codes: 0 success, 1 refused (invalid, not allowed, exists), 2 usage,\n"
                     "            3 file or system error, 4 no such user or users file.\n");
}

static void user_op_usage(FILE *f, enum user_op op)
{
    (void)fprintf(f, "Usage: certctl user %s\n\n%s", user_ops[op].synopsis, user_ops[op].help);
    if (op == USER_OP_ADD || op == USER_OP_PASSWD) {
        (void)fprintf(f, "The password (12 to 128 bytes of UTF-8, no control characters) is the\n"
                         "first line of standard input when that is not a terminal; otherwise it\n"
                         "is asked twice without echo.\n");
    }
    (void)fprintf(f, "\n  --users-file FILE  the users file (default " USERS_FILE_DEFAULT ")\n");
    if (op == USER_OP_ADD) {
        (void)fprintf(f, "  --role ROLE        Administrator, Operator or ReadOnly (required)\n");
    }
}

/* ---- reading a password ---- */

/* The first signal that arrived while the prompt had echo off (0: none). */
static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    caught_signal = sig;
}

/*
 * Read one line from fd (without "\n" or "\r\n") into a new secret, byte by byte so that no
 * stdio buffer keeps a copy and nothing after the line is consumed. A line longer than the
 * policy allows is refused as such. -EINTR when a signal we watch arrived.
 * wait_mask (nullable): the watched signals are blocked by the caller, and each wait for input
 * unblocks them atomically with ppoll(). A signal that lands between a check of caught_signal
 * and a blocking read() would otherwise leave the read waiting for ever.
 */
static int read_line_secret(int fd, const sigset_t *wait_mask, struct secret **ret,
                            struct certd_err *err)
{
    uint8_t buf[USERS_PASSWORD_MAX + 2]; /* the longest password, a CR, and one more to tell */
    size_t n = 0;
    bool got_newline = false;
    int r = 0;

    while (n < sizeof(buf)) {
        uint8_t b;
        ssize_t k = 0;
        if (wait_mask) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            if (ppoll(&pfd, 1, NULL, wait_mask) < 0 || caught_signal != 0) {
                errno = caught_signal != 0 ? EINTR : errno;
                k = -1;
            }
        }
        if (k == 0) {
            k = read(fd, &b, 1);
        }
        if (k < 0) {
            if (errno == EINTR && caught_signal == 0) {
                continue;
            }
            r = errno == EINTR ? -EINTR : -errno;
            (void)err_set(err, r, CERTD_E_STORAGE, "cannot read the password: %s", strerror(-r));
            break;
        }
        if (k == 0) {
            break;
        }
        if (b == '\n') {
            got_newline = true;
            break;
        }
        buf[n++] = b;
    }
    if (r == 0 && n == sizeof(buf)) {
        r = err_set(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "a password has at most %u bytes",
                    USERS_PASSWORD_MAX);
    }
    if (r == 0 && n == 0 && !got_newline) {
        r = err_set(err, -ENODATA, CERTD_E_FIELD_MISSING, "no password given");
    }
    if (r == 0 && n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    if (r == 0) {
        *ret = secret_new(buf, n);
        if (!*ret) {
            r = err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return r;
}

static const int watched_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };

/*
 * Ask for a password with echo off. The terminal's settings are restored before returning,
 * whatever happened; a watched signal makes the read return, the settings are put back, and
 * the signal is raised again with its old disposition.
 */
static int prompt_secret(const char *prompt, struct secret **ret, struct certd_err *err)
{
    struct termios old, quiet;
    struct sigaction sa = { 0 }, saved[ELEMENTSOF(watched_signals)];
    int r;

    if (tcgetattr(STDIN_FILENO, &old) < 0) {
        r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot use the terminal: %s", strerror(-r));
    }
    caught_signal = 0;
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    sigset_t watched, wait_mask;
    (void)sigemptyset(&watched);
    for (size_t i = 0; i < ELEMENTSOF(watched_signals); i++) {
        (void)sigaddset(&watched, watched_signals[i]);
    }
    /* Blocked except inside ppoll(): see read_line_secret. */
    (void)sigprocmask(SIG_BLOCK, &watched, &wait_mask);
    for (size_t i = 0; i < ELEMENTSOF(watched_signals); i++) {
        (void)sigaction(watched_signals[i], &sa, &saved[i]);
        (void)sigdelset(&wait_mask, watched_signals[i]);
    }

    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL | ICANON;
    /* Echo off before the prompt shows: nothing typed after it may appear on the screen. */
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0) {
        r = -errno;
        (void)err_set(err, r, CERTD_E_STORAGE, "cannot turn echo off: %s", strerror(-r));
    } else {
        (void)fputs(prompt, stderr);
        (void)fflush(stderr);
        r = read_line_secret(STDIN_FILENO, &wait_mask, ret, err);
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    }

    for (size_t i = 0; i < ELEMENTSOF(watched_signals); i++) {
        (void)sigaction(watched_signals[i], &saved[i], NULL);
    }
    (void)sigprocmask(SIG_UNBLOCK, &watched, NULL);
    if (caught_signal != 0) {
        *ret = secret_free(*ret);
        (void)fputc('\n', stderr);
        (void)raise(caught_signal);
        /* Also after a stop and resume (SIGTSTP): the prompt is not picked up again. */
        return err_set(err, -EINTR, CERTD_E_UNAVAILABLE, "interrupted; run the command again");
    }
    return r;
}

static int read_password(const char *name, struct secret **ret, struct certd_err *err)
{
    if (!isatty(STDIN_FILENO)) {
        return read_line_secret(STDIN_FILENO, NULL, ret, err);
    }

    char prompt[96];
    (void)snprintf(prompt, sizeof(prompt), "New password for %s: ", name);
    _cleanup_(cleanup_secret) struct secret *first = NULL;
    _cleanup_(cleanup_secret) struct secret *second = NULL;
    int r = prompt_secret(prompt, &first, err);
    if (r < 0) {
        return r;
    }
    /* Checked before the second prompt: nobody should type a refused password twice. */
    r = users_check_password(first, err);
    if (r < 0) {
        return r;
    }
    r = prompt_secret("Retype the new password: ", &second, err);
    if (r < 0) {
        return r;
    }
    if (first->len != second->len || CRYPTO_memcmp(first->p, second->p, first->len) != 0) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "the passwords do not match");
    }
    *ret = TAKE_PTR(first);
    return 0;
}

/* ---- operations ---- */

static int parse_role(const char *s, enum user_role *ret)
{
    if (user_role_from_name(s, ret) < 0) {
        return cli_usage_error("user", "a role is Administrator, Operator or ReadOnly, not '%s'",
                               s);
    }
    return 0;
}

/*
 * Load path into *ret; for add, a missing file is a new empty set whose first user must be an
 * Administrator. Returns 0, or a negative errno with err set.
 */
static int load_for(const char *path, enum user_op op, enum user_role role, struct users **ret,
                    struct certd_err *err)
{
    int r = users_load(path, ret, err);
    if (r != -ENOENT || op != USER_OP_ADD) {
        return r;
    }
    /* A new file: it must start with someone who can manage the service. */
    err_clear(err);
    if (role != USER_ROLE_ADMINISTRATOR) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s does not exist; its first user must be an Administrator", path);
    }
    *ret = users_new();
    if (!*ret) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int user_list(const struct users *u)
{
    for (size_t i = 0; i < u->n; i++) {
        (void)printf("%-*s %s\n", (int)USERS_NAME_MAX, u->v[i].name, user_role_name(u->v[i].role));
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}

int cmd_user(const struct cli_ctx *ctx, int argc, char **argv)
{
    enum {
        OPT_USERS_FILE = 0x100,
        OPT_ROLE,
    };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "users-file", required_argument, NULL, OPT_USERS_FILE },
        { "role", required_argument, NULL, OPT_ROLE },
        { 0 },
    };
    const char *path = USERS_FILE_DEFAULT, *role_s = NULL;
    enum user_op op = USER_OP_MAX;
    int c, r;

    (void)ctx;
    if (argc < 2) {
        return cli_usage_error("user", "expected an operation: add, passwd, del, list or role");
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        user_usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < USER_OP_MAX; i++) {
        if (strcmp(argv[1], user_ops[i].name) == 0) {
            op = (enum user_op)i;
        }
    }
    if (op == USER_OP_MAX) {
        return cli_usage_error("user", "unknown operation '%s'", argv[1]);
    }

    /* Options may come before or after the arguments (getopt permutes). */
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    optind = 0;
    while ((c = getopt_long(sub_argc, sub_argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            user_op_usage(stdout, op);
            return EXIT_OK;
        case OPT_USERS_FILE:
            path = optarg;
            break;
        case OPT_ROLE:
            if (op != USER_OP_ADD) {
                return cli_usage_error("user", "--role belongs to 'add'; use 'role NAME ROLE'");
            }
            role_s = optarg;
            break;
        default:
            return cli_usage_error("user", "unknown option");
        }
    }
    if (sub_argc - optind != user_ops[op].nargs) {
        return cli_usage_error("user", "usage: certctl user %s", user_ops[op].synopsis);
    }
    const char *name = user_ops[op].nargs > 0 ? sub_argv[optind] : NULL;
    enum user_role role = USER_ROLE_MAX;
    if (op == USER_OP_ADD) {
        if (!role_s) {
            return cli_usage_error("user", "add needs --role Administrator, Operator or ReadOnly");
        }
        r = parse_role(role_s, &role);
        if (r != 0) {
            return r;
        }
    } else if (op == USER_OP_ROLE) {
        r = parse_role(sub_argv[optind + 1], &role);
        if (r != 0) {
            return r;
        }
    }

    struct certd_err err = { 0 };
    /* Before anything else: a bad name is never echoed back nor looked up. */
    if (name && users_check_name(name, &err) < 0) {
        return cli_fail("user name", &err);
    }

    const char *what = op == USER_OP_ADD      ? "user add"
                       : op == USER_OP_PASSWD ? "user passwd"
                       : op == USER_OP_DEL    ? "user del"
                       : op == USER_OP_ROLE   ? "user role"
                                              : "user list";
    _cleanup_(cleanup_users) struct users *u = NULL;
    r = load_for(path, op, role, &u, &err);
    if (r < 0) {
        return cli_fail(r == -EPERM && op == USER_OP_ADD ? what : path, &err);
    }
    if (op == USER_OP_LIST) {
        return user_list(u);
    }

    _cleanup_(cleanup_secret) struct secret *pw = NULL;
    if (op == USER_OP_ADD || op == USER_OP_PASSWD) {
        /* Refuse what cannot succeed before anybody types a password. */
        if (op == USER_OP_ADD && users_find(u, name)) {
            (void)err_set(&err, -EEXIST, CERTD_E_DUPLICATE, "user %s exists already", name);
            return cli_fail(what, &err);
        }
        if (op == USER_OP_PASSWD && !users_find(u, name)) {
            (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND, "no user %s", name);
            return cli_fail(what, &err);
        }
        r = read_password(name, &pw, &err);
        if (r < 0) {
            return cli_fail(what, &err);
        }
    }

    /* From here to the end of the save nobody else changes the file: load it again. */
    _cleanup_close_ int lock = -EBADF;
    r = users_lock(path, &lock, &err);
    if (r < 0) {
        return cli_fail(path, &err);
    }
    u = users_free(u);
    r = load_for(path, op, role, &u, &err);
    if (r < 0) {
        return cli_fail(r == -EPERM && op == USER_OP_ADD ? what : path, &err);
    }
    switch (op) {
    case USER_OP_ADD:
        r = users_add(u, name, role, pw, &err);
        break;
    case USER_OP_PASSWD:
        r = users_set_password(u, name, pw, &err);
        break;
    case USER_OP_DEL:
        r = users_del(u, name, &err);
        break;
    case USER_OP_ROLE:
        r = users_set_role(u, name, role, &err);
        break;
    case USER_OP_LIST:
    case USER_OP_MAX:
    default:
        return EXIT_IO;
    }
    if (r < 0) {
        return cli_fail(what, &err);
    }
    r = users_save(u, path, &err);
    if (r < 0) {
        return cli_fail(path, &err);
    }
    lock = users_unlock(TAKE_FD(lock));
    return EXIT_OK;
}
