/*
 * fake_timer: ims_timer_ops driven by hand for unit tests (ims_fsm, ims_pending). Time starts at
 * 0 and moves only with fake_timer_advance, which fires the due timers in deadline order.
 */
#ifndef FAKE_TIMER_H
#define FAKE_TIMER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ims_fsm.h"

#define FAKE_TIMER_SLOTS 64

typedef struct {
    bool active;
    uint64_t due;
    void (*fn)(void *);
    void *arg;
} fake_timer_slot;

static fake_timer_slot fake_timers[FAKE_TIMER_SLOTS];
static uint64_t fake_now_ms;
static bool fake_timer_fail;   /* make start fail */

static inline void *fake_timer_start(void *arg, unsigned ms, void (*fn)(void *), void *fnarg)
{
    (void)arg;
    if (fake_timer_fail)
        return NULL;
    for (size_t i = 0; i < FAKE_TIMER_SLOTS; i++) {
        if (!fake_timers[i].active) {
            fake_timers[i] = (fake_timer_slot){ .active = true, .due = fake_now_ms + ms, .fn = fn, .arg = fnarg };
            return &fake_timers[i];
        }
    }
    return NULL;
}

static inline void fake_timer_cancel(void *arg, void *t)
{
    (void)arg;
    fake_timer_slot *s = t;
    /* cancelling a timer that fired (or never ran) is the bug the ops contract forbids */
    if (!s->active)
        abort();
    s->active = false;
}

static inline size_t fake_timer_active(void)
{
    size_t n = 0;
    for (size_t i = 0; i < FAKE_TIMER_SLOTS; i++)
        n += fake_timers[i].active;
    return n;
}

static inline void fake_timer_advance(uint64_t ms)
{
    uint64_t until = fake_now_ms + ms;
    for (;;) {
        fake_timer_slot *next = NULL;
        for (size_t i = 0; i < FAKE_TIMER_SLOTS; i++)
            if (fake_timers[i].active && fake_timers[i].due <= until && (!next || fake_timers[i].due < next->due))
                next = &fake_timers[i];
        if (!next)
            break;
        fake_now_ms = next->due;
        next->active = false;   /* freed before fn runs, like ims_sip timers */
        next->fn(next->arg);
    }
    fake_now_ms = until;
}

static inline void fake_timer_reset(void)
{
    memset(fake_timers, 0, sizeof(fake_timers));
    fake_now_ms = 0;
    fake_timer_fail = false;
}

static const ims_timer_ops fake_timer_ops = { .start = fake_timer_start, .cancel = fake_timer_cancel, .arg = NULL };

#endif
