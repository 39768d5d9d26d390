/*
 * ims_clock: the monotonic clock every module uses for timeouts, ages and latencies (never the
 * wall clock, which NTP or an operator may step).
 */
#ifndef IMS_CLOCK_H
#define IMS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ims_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t ims_monotonic_ms(void)
{
    return ims_monotonic_us() / 1000;
}

/* Whole seconds: the unit of registration and binding lifetimes (Expires). */
static inline int64_t ims_monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

#endif
