/*
 * pcscf_bindings: the P-CSCF's registration bindings (TS 24.229 §5.2.2.1: what the P-CSCF stores
 * from the 200 (OK) to REGISTER), with expiry.
 *
 * One binding = one UE (source address) registering one public identity: its contacts (each with
 * its own expiry), the implicit registration set from P-Associated-URI (RFC 7315 §4.1; the first
 * entry is the default public identity), the Service-Route (RFC 3608), and where the UE sends from
 * (received address, port and transport), to reach it behind NAT and over its TCP connection.
 *
 * Identities are stored as given by the caller, which normalises them (pcscf_identity); they are
 * indexed and compared by their canonical key (common/ims_identity: scheme and host
 * case-insensitive, user part case-sensitive, RFC 3261 §19.1.4). Contacts are compared by scheme, user, host and port.
 *
 * The store is not thread-safe: it belongs to the SIP loop. Pointers returned by the lookups are
 * valid until the next call that changes the store. The interface (by identity, by source, by
 * contact) is what an external store would have to offer; each lookup is a hash-table probe, so
 * that a P-CSCF serving 100k UEs (or one SIPp process sending for all of them from one address)
 * spends the same per request as one serving ten.
 */
#ifndef PCSCF_BINDINGS_H
#define PCSCF_BINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_statesync.h"

/* The flow a UE registered over, which is its identity at the P-CSCF without IPsec or TLS
 * (TS 24.229 §5.2.2.1, §5.2.3): a UDP source address AND port, or one TCP connection (named by
 * its remote address and port: while it is open no other connection has them). Requests are
 * matched to it exactly by pcscf_flow_same(), never by address alone (every UE behind one NAT
 * shares the address).
 * IPsec (sec-agree, TS 33.203 §7) will be another kind of the same record: a `kind` field
 * (plain / ipsec) plus the SA pair (SPIs, the UE's protected client and server ports), stored
 * here by the REGISTER that set up the SAs; pcscf_flow_same() then compares the protected port
 * pair (any transport: an SA covers UDP and TCP) instead of the plain source port, and the
 * routing code, which only asks "which binding holds this flow?", stays as it is. */
typedef struct {
    char host[64];          /* numeric IP address the UE sent from */
    unsigned port;
    char transport[4];      /* "udp" or "tcp" */
} pcscf_addr;

/* True when `src` (where a request came from) is the flow `registered`: same address, port and
 * transport (UDP source port, or the same TCP connection). */
bool pcscf_flow_same(const pcscf_addr *registered, const pcscf_addr *src);

typedef struct {
    char *uri;              /* contact URI as the UE registered it */
    int64_t expires;        /* absolute, ims_monotonic_s() seconds */
} pcscf_contact;

typedef struct pcscf_binding {
    struct pcscf_binding *next;      /* iteration order (pcscf_bindings_first) */
    struct pcscf_binding *prev;      /* store internal: list and source-index links */
    struct pcscf_binding *hp_next, *hp_prev;
    char *impu;                      /* the registered public identity (To of the REGISTER) */
    char **impus;                    /* implicit registration set (P-Associated-URI), in order */
    size_t n_impus;
    char **service_route;            /* Service-Route URIs, in order */
    size_t n_service_route;
    pcscf_contact *contacts;
    size_t n_contacts;
    pcscf_addr source;
    int64_t created;
    ims_statesync_ent sync;          /* write-through to the state store (pcscf_bindsync.c) */
} pcscf_binding;

typedef struct pcscf_bindings pcscf_bindings;

/* Called after a binding left the store (expired, de-registered, terminated by reg event, ...);
 * impu is valid during the call only. The callback must not change the store. */
typedef void (*pcscf_binding_removed_f)(void *arg, const char *impu, const pcscf_addr *source);

pcscf_bindings *pcscf_bindings_new(pcscf_binding_removed_f on_removed, void *arg);
void pcscf_bindings_free(pcscf_bindings *store);   /* no callbacks */
size_t pcscf_bindings_count(const pcscf_bindings *store);

/* What a successful REGISTER transaction tells about the binding (impu, source). */
typedef struct {
    const char *impu;
    const pcscf_addr *source;
    const char *const *impus;        /* NULL/0: keep the stored set (or use impu alone) */
    size_t n_impus;
    const char *const *service_route;/* NULL/0 with replace_route: clear */
    size_t n_service_route;
    bool replace_route;
    const pcscf_contact *contacts;   /* expires <= now: that contact is removed */
    size_t n_contacts;
    bool remove_all;                 /* Contact: * / all contacts gone */
} pcscf_binding_update;

enum { PCSCF_BINDING_ERROR = -1, PCSCF_BINDING_UPDATED = 0, PCSCF_BINDING_CREATED = 1,
       PCSCF_BINDING_REMOVED = 2, PCSCF_BINDING_NONE = 3 };

/* Creates, refreshes or removes the binding (contacts merged by URI: the update's contacts are
 * set, the others kept). Returns one of the codes above; a binding left without contacts is
 * removed (PCSCF_BINDING_REMOVED, or NONE when there was nothing). */
int pcscf_bindings_update(pcscf_bindings *store, const pcscf_binding_update *u, int64_t now);

/* A binding of the UE whose flow `source` is (pcscf_flow_same: exact address, port and
 * transport), for a request from a UE: the one holding `identity` (may be NULL) when several
 * identities are registered over that flow, else any binding of the flow (SIPp sends for many
 * users from one address:port). NULL: the flow holds no registration. This is the identity
 * check of the P-CSCF; nothing else may be used to authorise a UE request. */
const pcscf_binding *pcscf_bindings_by_flow(pcscf_bindings *store, const pcscf_addr *source,
                                            const char *identity);

/* The binding of (impu, source), or NULL. */
const pcscf_binding *pcscf_bindings_get(pcscf_bindings *store, const char *impu, const pcscf_addr *source);

/* The binding holding an unexpired contact equal to `uri`, or NULL. */
const pcscf_binding *pcscf_bindings_by_contact(pcscf_bindings *store, const char *uri, int64_t now);
/* True when a binding has this registered IMPU (primary identity). */
bool pcscf_bindings_has_impu(pcscf_bindings *store, const char *impu);
/* Calls fn for every binding whose identity set (IMPU or P-Associated-URI) holds `identity`;
 * fn must not change the store. */
void pcscf_bindings_foreach_identity(pcscf_bindings *store, const char *identity,
                                     void (*fn)(void *arg, const pcscf_binding *b), void *arg);
/* True when `identity` is the binding's IMPU or in its implicit registration set. */
bool pcscf_binding_has_identity(const pcscf_binding *b, const char *identity);
/* The default public identity: the first P-Associated-URI, else the registered IMPU. */
const char *pcscf_binding_default_identity(const pcscf_binding *b);
/* Latest contact expiry of the binding (absolute). */
int64_t pcscf_binding_expires(const pcscf_binding *b);

/* reg event (RFC 3680) driven changes. `aor` is compared with the primary IMPU and the set. */
/* Registration of aor terminated: bindings whose IMPU is aor are removed; aor is dropped from the
 * sets of the others. Returns how many bindings changed. */
int pcscf_bindings_terminate_aor(pcscf_bindings *store, const char *aor);
/* Contact `uri` of the bindings of aor: expires (absolute) <= now removes it (binding removed when
 * no contact is left), else sets its expiry. Returns how many contacts changed. */
int pcscf_bindings_set_contact(pcscf_bindings *store, const char *aor, const char *uri, int64_t expires,
                               int64_t now);

/* Drops expired contacts and empty bindings. Returns how many bindings were removed. */
size_t pcscf_bindings_expire(pcscf_bindings *store, int64_t now);

/* The UE's flow changed under its registrations (sec-agree re-authentication, TS 33.203 §7.4: the
 * new SA set replaces the old one): the bindings of `from` become bindings of `to`, contacts and
 * expiries kept; one whose identity `to` holds already is removed (on_removed called). Returns how
 * many moved. */
int pcscf_bindings_move_flow(pcscf_bindings *store, const pcscf_addr *from, const pcscf_addr *to);

/* Write-through hooks (pcscf_bindsync.c): changed runs after a binding was created or changed
 * (contacts, sets, flow), removed before a binding is freed (after on_removed). They must not
 * change the store. NULL: none. */
typedef void (*pcscf_binding_sync_f)(void *arg, pcscf_binding *b);
void pcscf_bindings_on_sync(pcscf_bindings *store, pcscf_binding_sync_f changed, pcscf_binding_sync_f removed,
                            void *arg);

/* Iteration (read-only): first binding / next one. */
const pcscf_binding *pcscf_bindings_first(const pcscf_bindings *store);

#endif
