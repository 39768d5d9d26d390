/*
 * sip_test_node: a threaded ims_sip node for unit tests (test_sip.c, test_sip_fork.c).
 *
 * Each node owns its su_root on its own thread (ims_sip_create/run/destroy on that thread, as
 * ims_sip.h requires); the test thread waits for results with wait_flag() under g_lock/g_cond,
 * which the nodes' callbacks signal.
 */
#ifndef SIP_TEST_NODE_H
#define SIP_TEST_NODE_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "ims_sip.h"

typedef struct node {
    const char *name;
    ims_sip_cfg cfg;
    char *hosts[2];
    ims_sip_request_f on_request;
    ims_sip *s;
    pthread_t thread;
    sem_t ready;
    char err[256];
} node;

/* What the nodes saw, read by the test thread. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

static void *node_main(void *arg)
{
    node *n = arg;
    n->s = ims_sip_create(&n->cfg, n->on_request, n, n->err, sizeof(n->err));
    sem_post(&n->ready);
    if (!n->s)
        return NULL;
    ims_sip_set_timers(n->s, 100, 2000);    /* unanswered requests give up after 2 s */
    ims_sip_run(n->s);
    ims_sip_destroy(n->s);
    return NULL;
}

/* Starts n on 127.0.0.1:port with one optional "name=address" hosts entry. 0 / -1. */
static int node_start(node *n, int port, const char *hosts)
{
    memset(&n->cfg, 0, sizeof(n->cfg));
    n->cfg.listen = "127.0.0.1";
    n->cfg.port = port;
    if (hosts) {
        n->hosts[0] = (char *)hosts;
        n->cfg.hosts.items = n->hosts;
        n->cfg.hosts.count = 1;
    }
    sem_init(&n->ready, 0, 0);
    if (pthread_create(&n->thread, NULL, node_main, n) != 0)
        return -1;
    sem_wait(&n->ready);
    sem_destroy(&n->ready);
    if (!n->s) {
        pthread_join(n->thread, NULL);
        return -1;
    }
    return 0;
}

static void node_stop(node *n)
{
    if (!n->s)
        return;
    ims_sip_stop(n->s);
    pthread_join(n->thread, NULL);
    n->s = NULL;
}

/* Waits until *flag becomes non-zero (under g_lock); false after ms. */
static bool wait_flag(int *flag, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&g_lock);
    while (!*flag)
        if (pthread_cond_timedwait(&g_cond, &g_lock, &ts) == ETIMEDOUT)
            break;
    bool ok = *flag != 0;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

#endif
