/*
 * metrics_test_util: reading one series of this process's /metrics text in unit tests
 * (test_sip_udp.c, test_sip_keepalive.c, test_store_group.c).
 */
#ifndef METRICS_TEST_UTIL_H
#define METRICS_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "ims_http.h"

/* The value of one series in /metrics (a line that starts with it), -1 when absent. */
static inline long long metric_value(const char *series)
{
    char *text = ims_metrics_render();
    long long v = -1;
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = atoll(p + n + 1);
            break;
        }
    }
    free(text);
    return v;
}

#endif
