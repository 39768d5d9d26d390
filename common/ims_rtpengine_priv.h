/*
 * ims_rtpengine_priv: internals shared by ims_rtpengine.c (requests: choice of instance, encoding,
 * retransmission, failover, answers) and ims_rtpengine_inst.c (instances: sockets, health, dead
 * marking, metrics, pings, life cycle). Not for NF code: use ims_rtpengine.h.
 */
#ifndef IMS_RTPENGINE_PRIV_H
#define IMS_RTPENGINE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "ims_http.h"
#include "ims_log.h"
#include "ims_map.h"
#include "ims_rtpengine.h"

#define IMS_RTPE_SUBSYS "rtpengine"
/* rtpengine's answers fit one UDP datagram; recv with MSG_TRUNC tells a bigger one apart. */
#define IMS_RTPE_MAX_DATAGRAM 65535
#define IMS_RTPE_MAX_COOKIE 48

typedef struct {
    ims_rtpe *r;
    size_t idx;
    char *address;
    int fd;
    int wait_index;                 /* su_root registration, 0 = none */
    int64_t dead_until_ms;          /* 0 = up */
    bool ping_out;                  /* a health ping is pending */
    uint64_t requests, answers, errors, timeouts;
    unsigned last_rtt_ms;
    ims_metric *m_up, *m_rtt, *m_dropped;
} ims_rtpe_inst;

struct ims_rtpe {
    su_root_t *root;
    ims_rtpe_config cfg;            /* addresses not kept: see inst[].address */
    char *prefix;                   /* metrics prefix, NULL = none */
    ims_rtpe_inst inst[IMS_RTPE_MAX_INSTANCES];
    size_t n;
    ims_map *pending;               /* cookie -> ims_rtpe_req */
    ims_map *calls;                 /* Call-ID -> (instance index + 1) */
    char token[17];                 /* random per client: cookies of two P-CSCFs never collide */
    uint64_t counter;
    su_timer_t *ping_timer;
    ims_metric *m_live;
    ims_log_limit rx_limit, calls_limit;
    char rxbuf[IMS_RTPE_MAX_DATAGRAM + 1];
};

struct ims_rtpe_req {
    ims_rtpe *r;
    char cookie[IMS_RTPE_MAX_COOKIE];
    char *msg;                      /* "cookie <dict>" */
    size_t msg_len;
    ims_rtpe_cmd cmd;
    char *call_id;                  /* NULL for ping */
    bool forget_call;               /* a delete of the whole call */
    uint8_t order[IMS_RTPE_MAX_INSTANCES];
    size_t n_order, next;           /* instances to try; next = index of the next one in order */
    bool pinned;                    /* health ping: its one instance, even when marked dead */
    int cur;                        /* instance being asked, -1 = none */
    int last;                       /* last instance asked, -1 = none */
    uint32_t sent_mask;             /* instances that got this request */
    unsigned tries;                 /* datagrams sent to cur */
    unsigned attempts;
    int64_t t0_us, t_cur_us;        /* ims_rtpe_send; first datagram to cur */
    su_timer_t *timer;
    ims_rtpe_cb cb;
    void *arg;
};

/* ims_rtpengine_inst.c */
/* Counts one outcome in <p>_rtpengine_requests_total (result ok | error | timeout). */
void ims_rtpe_count(ims_rtpe_inst *in, ims_rtpe_cmd cmd, const char *result);
/* True when the instance may be asked; a dead mark whose time has come is lifted here. */
bool ims_rtpe_inst_live(ims_rtpe_inst *in, int64_t now_ms);
void ims_rtpe_mark_dead(ims_rtpe_inst *in, const char *why);
void ims_rtpe_mark_up(ims_rtpe_inst *in);

/* ims_rtpengine.c */
/* ims_rtpe_send with pin >= 0: only that instance, even when marked dead (health pings). */
ims_rtpe_req *ims_rtpe_send_to(ims_rtpe *r, const ims_rtpe_request *rq, int pin, ims_rtpe_cb cb,
                               void *arg, char *err, size_t errlen);
void ims_rtpe_req_free(ims_rtpe_req *q);
/* su_root callback of an instance's socket (arg: the ims_rtpe_inst). */
int ims_rtpe_on_readable(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg);

#endif
