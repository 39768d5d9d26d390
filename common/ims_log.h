/*
 * ims_log: levelled logging with a subsystem name per line.
 *
 *   2026-11-25T06:51:43.123Z INFO  hss.cx   MAR for alice@ims.lab: 1 AKA vector, SQN 0x20
 *
 * One process-wide level; lines go to stderr (containers collect stderr).
 * Thread-safe: each line is formatted into one buffer and written with one call.
 */
#ifndef IMS_LOG_H
#define IMS_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef enum {
    IMS_LOG_ERROR = 0,
    IMS_LOG_WARN  = 1,
    IMS_LOG_INFO  = 2,
    IMS_LOG_DEBUG = 3,
} ims_log_level;

void ims_log_set_level(ims_log_level level);
ims_log_level ims_log_get_level(void);
/* "error" | "warn" | "info" | "debug" -> level; returns -1 for anything else. */
int ims_log_level_from_name(const char *name);

void ims_log(ims_log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ims_vlog(ims_log_level level, const char *subsys, const char *fmt, va_list ap);

/* Rate limit for one kind of warning that a peer can trigger at will (floods, malformed input):
 * at most one line per second. Zero-initialised (static or in a context); thread-safe. */
typedef struct {
    _Atomic long second;            /* CLOCK_MONOTONIC second of the last line */
    _Atomic unsigned long held;     /* lines held back since then */
} ims_log_limit;

/* True when a line may be written now; then *held (if not NULL) is the number of lines held back
 * since the previous one, for the operator ("N more since the last warning"). False counts one. */
bool ims_log_allow(ims_log_limit *l, unsigned long *held);

#define IMS_ERROR(sub, ...) ims_log(IMS_LOG_ERROR, sub, __VA_ARGS__)
#define IMS_WARN(sub, ...)  ims_log(IMS_LOG_WARN, sub, __VA_ARGS__)
#define IMS_INFO(sub, ...)  ims_log(IMS_LOG_INFO, sub, __VA_ARGS__)
#define IMS_DEBUG(sub, ...) \
    do { if (ims_log_get_level() >= IMS_LOG_DEBUG) ims_log(IMS_LOG_DEBUG, sub, __VA_ARGS__); } while (0)

#endif
