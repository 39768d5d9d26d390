/* ims_log: see ims_log.h. */
#include "ims_log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile ims_log_level g_level = IMS_LOG_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void ims_log_set_level(ims_log_level level) { g_level = level; }
ims_log_level ims_log_get_level(void) { return g_level; }

int ims_log_level_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= IMS_LOG_DEBUG; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return IMS_LOG_WARN;
    return -1;
}

void ims_vlog(ims_log_level level, const char *subsys, const char *fmt, va_list ap)
{
    if (level > g_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-10s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level],
                     subsys ? subsys : "-");
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void ims_log(ims_log_level level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ims_vlog(level, subsys, fmt, ap);
    va_end(ap);
}

bool ims_log_allow(ims_log_limit *l, unsigned long *held)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long now = (long)ts.tv_sec + 1;   /* + 1: a zeroed limit never equals the current second */
    if (atomic_exchange(&l->second, now) == now) {
        atomic_fetch_add(&l->held, 1);
        return false;
    }
    unsigned long n = atomic_exchange(&l->held, 0);
    if (held)
        *held = n;
    return true;
}
