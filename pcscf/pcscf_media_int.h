/*
 * pcscf_media_int: what pcscf_media.c and pcscf_media_sip.c share (not for other modules).
 */
#ifndef PCSCF_MEDIA_INT_H
#define PCSCF_MEDIA_INT_H

#include <stdatomic.h>

#include "ims_map.h"
#include "ims_pending.h"
#include "ims_rtpengine.h"
#include "pcscf_context.h"
#include "pcscf_media.h"

#define PCSCF_MEDIA_SUBSYS "pcscf.media"

typedef enum { LEG_ORIG = 0, LEG_TERM = 1 } leg_role;

/* A terminating call forked to several contacts behind this P-CSCF reaches it as one INVITE per
 * contact: each such branch is a leg of its own ("<Call-ID>;term", "<Call-ID>;term~2", ...). */
#define MEDIA_MAX_BRANCHES 8

/* One role of one call at this P-CSCF (file header of pcscf_media.h): one rtpengine call. */
typedef struct {
    char *key;                  /* "<Call-ID>;orig" / ";term[~n]": our map key and rtpengine's call-id */
    char *call_id;
    leg_role role;
    int64_t touched;            /* monotonic s of the last request of the call through it (expiry) */
    int64_t checked;            /* monotonic s of the last query at rtpengine (expiry) */
    struct pcscf_media *m;
    ims_rtpe_req *query;        /* an expiry query is out (cancelled when the leg goes) */
    unsigned held_2xx;          /* 2xx of the initial INVITE held for rtpengine (stray 2xx dropped) */
    char *caller_tag;           /* From tag of the initial INVITE (the caller's) */
    pcscf_addr owner;           /* the UE's flow */
    char **to_tags;             /* early dialogs that answered (forking, RFC 3261 §16.7) */
    size_t n_to_tags;
    bool at_rtpe;               /* an offer was sent: rtpengine may hold the call */
    bool counted;               /* an offer succeeded: counted as created */
    bool confirmed;             /* a 2xx to the initial INVITE passed */
    bool late_offer;            /* the outstanding offer came in a response: ACK/PRACK answers */
} media_leg;

typedef struct pcscf_media {
    pcscf_context *ctx;
    ims_rtpe *rtpe;
    ims_map *legs;              /* key -> media_leg */
    ims_pending *txns;          /* key -> media_txn (pcscf_media_sip.c) */
    struct media_hold *holds;   /* requests waiting for rtpengine (pcscf_media_sip.c) */
    struct ims_metric *m_active, *m_created, *m_failed, *m_unanchored, *m_refused;
    int64_t last_sweep;         /* monotonic s of the last expiry sweep */
} pcscf_media;

/* Delete reasons (pcscf_media_deleted_total{reason}): a bounded set. */
#define MEDIA_DEL_BYE "bye"
#define MEDIA_DEL_FAILED "call_failed"      /* final failure of the initial INVITE (CANCEL: 487) */
#define MEDIA_DEL_DEREGISTERED "deregistered"
#define MEDIA_DEL_SHUTDOWN "shutdown"
#define MEDIA_DEL_ERROR "error"             /* rtpengine failed the offer/answer */
#define MEDIA_DEL_FORK_LOST "fork_lost"     /* a branch of a forked call that another branch won */
#define MEDIA_DEL_EXPIRED "expired"         /* no request of the call for media.max_session_s */
#define MEDIA_DEL_RTPE_TIMEOUT "rtpengine_timeout"   /* rtpengine dropped the call itself (its --timeout) */

/* The leg of call_id in role; branch 0 is the first (the only one of an orig leg), 1.. the other
 * branches of a forked terminating call. NULL: none. */
media_leg *media_leg_find(pcscf_media *m, const char *call_id, leg_role role);
media_leg *media_leg_branch(pcscf_media *m, const char *call_id, leg_role role, unsigned branch);
/* The leg whose key (rtpengine call-id) is key. */
media_leg *media_leg_get(pcscf_media *m, const char *key);
/* A new leg (not yet at rtpengine) in the first free branch. NULL on ENOMEM or with
 * MEDIA_MAX_BRANCHES taken. */
media_leg *media_leg_new(pcscf_media *m, const char *call_id, leg_role role, const char *caller_tag,
                         const pcscf_addr *owner);
bool media_leg_has_to_tag(const media_leg *leg, const char *to_tag);
/* Remembers an early dialog's to-tag (no duplicates). */
void media_leg_add_to_tag(media_leg *leg, const char *to_tag);
/* THE delete: every teardown path ends here. to_tag NULL: the whole leg (rtpengine call deleted,
 * record freed, counted under reason); else only that early dialog (a losing fork branch). */
void media_delete(pcscf_media *m, media_leg *leg, const char *to_tag, const char *reason);
/* A BYE that passed pcscf_route.c's checks for a Call-ID with no leg here (a call set up before a
 * restart of this P-CSCF: rtpengine still holds it): both possible legs deleted at rtpengine, so
 * the media ends with the call instead of at rtpengine's own timeout. A Call-ID with a leg of
 * another UE is left alone. */
void media_delete_unknown(pcscf_media *m, const char *call_id);
/* An offer/answer of leg succeeded / failed: counters and log. */
void media_count_created(pcscf_media *m, media_leg *leg);
void media_count_failed(pcscf_media *m, const char *what, const media_leg *leg, const ims_rtpe_result *res);
void media_note_live(pcscf_media *m);

/* pcscf_media_sip.c: frees every held request and transaction (shutdown). */
void media_sip_stop(pcscf_media *m);
int media_sip_start(pcscf_media *m);

#endif
