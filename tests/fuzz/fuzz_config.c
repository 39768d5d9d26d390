/*
 * fuzz_config: the YAML configuration loader (common/ims_config.c) with the HSS schema
 * (hss/hss_config.c: sections, strings, integers with ranges, booleans, string lists, the
 * diameter.peers list of records), then the HSS's own reading of its capability lists.
 *
 * ims_cfg_load reads a path, so each input goes into one memfd that is read back through
 * /proc/self/fd/N (no file system writes per run). Invariant checked: a load either fails with
 * a message or succeeds; ims_cfg_free releases everything (LeakSanitizer checks).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hss_context.h"
#include "ims_config.h"
#include "ims_log.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ims_log_set_level(IMS_LOG_ERROR);
    /* An override from the caller's environment would mask what the file says. */
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "IMS_HSS_", 8) == 0) {
            fprintf(stderr, "fuzz_config: unset the IMS_HSS_* environment variables first\n");
            exit(1);
        }
    g_fd = memfd_create("fuzz-hss.yaml", 0);
    if (g_fd < 0) {
        perror("memfd_create");
        exit(1);
    }
    snprintf(g_path, sizeof(g_path), "/proc/self/fd/%d", g_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(g_fd, 0) || pwrite(g_fd, data, size, 0) != (ssize_t)size)
        abort();

    hss_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    char err[512] = "";
    if (ims_cfg_load(g_path, "hss", hss_config_fields, &ctx.cfg, err, sizeof(err)) == 0) {
        char err2[256];
        hss_context_parse_capabilities(&ctx, err2, sizeof(err2));
        free(ctx.mandatory_caps);
        free(ctx.optional_caps);
        ims_cfg_free(hss_config_fields, &ctx.cfg);
    } else if (!err[0]) {
        fprintf(stderr, "fuzz_config: load failed without a message\n");
        abort();
    }
    return 0;
}
