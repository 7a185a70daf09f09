/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the configuration parser: any bytes, as a file would give them. What it accepts must keep
 * config.h's invariants, survive the command-line overrides and free cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "util/limits.h"

static void check_path(const char *p)
{
    if (!p || p[0] != '/' || strlen(p) >= CONFIG_PATH_MAX) {
        abort();
    }
}

static void check(const struct config *cfg)
{
    check_path(cfg->state_dir);
    check_path(cfg->users_file);
    if (cfg->n_endpoints == 0 || cfg->n_endpoints > CONFIG_ENDPOINTS_MAX) {
        abort();
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        const struct config_endpoint *ep = &cfg->endpoints[i];
        if (ep->name[0] == '\0' || config_endpoint_find(cfg, ep->name) != ep) {
            abort(); /* empty or repeated name */
        }
        switch (ep->type) {
        case ENDPOINT_SERVER:
        case ENDPOINT_CLIENT:
            check_path(ep->cert);
            check_path(ep->key);
            if (ep->n_names > CERTD_SANS_MAX || ep->dir) {
                abort();
            }
            break;
        case ENDPOINT_AUTHORITY:
            check_path(ep->dir);
            if (ep->cert || ep->key || ep->reload.kind == CONFIG_RELOAD_SELF) {
                abort();
            }
            break;
        default:
            abort();
        }
        if (ep->reload.kind == CONFIG_RELOAD_EXEC &&
            (ep->reload.argc == 0 || ep->reload.argc > CONFIG_EXEC_ARGS_MAX ||
             ep->reload.argv[ep->reload.argc] != NULL || ep->reload.argv[0][0] != '/')) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct certd_err err = { 0 };
    struct config *cfg = NULL;
    if (config_parse(span_make(data, size), "fuzz.conf", &cfg, &err) < 0) {
        /* Every failure explains itself, naming the file. */
        if (err.code == CERTD_E_OK || strncmp(err.msg, "fuzz.conf", 9) != 0) {
            abort();
        }
        return 0;
    }
    check(cfg);
    if (config_apply_overrides(cfg, "/fuzz/state", "[::1]:1", NULL) < 0) {
        abort();
    }
    check(cfg);
    config_free(cfg);
    return 0;
}
