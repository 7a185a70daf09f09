/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay driver: feeds every file of the directories (or files) named on the command line to
 * a harness's LLVMFuzzerTestOneInput, so that each corpus runs under meson test in every
 * build, sanitizers included, without libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "store/store.h"

static int replay_file(const char *path, size_t *count)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int r = store_read_file(path, 1024 * 1024, false, &data, &len);
    if (r < 0) {
        (void)fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
        return r;
    }
    (void)LLVMFuzzerTestOneInput(data, len);
    free(data);
    (*count)++;
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            (void)fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i], &count) < 0) {
                return 1;
            }
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            (void)fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            int k = snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && k > 0 && (size_t)k < sizeof(path) &&
                stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path, &count) < 0) {
                    return 1;
                }
            }
            free(names[j]);
        }
        free(names);
    }
    (void)printf("replayed %zu inputs\n", count);
    return count > 0 ? 0 : 1;
}
