/*
 * metrics_test_util: reading one series of this process's /metrics text in unit tests
 * (test_sip_udp.c, test_sip_keepalive.c).
 */
#ifndef METRICS_TEST_UTIL_H
#define METRICS_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "ims_http.h"

/* The value of one series in /metrics, -1 when absent. */
static inline long long metric_value(const char *series)
{
    char *text = ims_metrics_render();
    long long v = -1;
    const char *p = text ? strstr(text, series) : NULL;
    if (p && p[strlen(series)] == ' ')
        v = atoll(p + strlen(series) + 1);
    free(text);
    return v;
}

#endif
