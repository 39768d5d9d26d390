/*
 * inproc: the harness of the in-process CSCF tests (tests/inproc/inproc_<nf>.c).
 *
 * One CSCF runs inside the test process with its real SIP stack (sofia-sip on 127.0.0.1, an
 * ephemeral port, its own loop thread) and its real logic, entered only through its public entry
 * points (<nf>_start, <nf>_on_request). The test plays everything around it:
 *   - the UE and the neighbouring CSCFs with plain sockets (inproc_peer): UDP, or TCP for the
 *     neighbours when the NF's sip.core_transport is tcp (inproc_peer_open_core);
 *   - the HSS through the Cx seam of common/ims_cx_client.h: each Cx request is answered at once
 *     by the next scripted answer (inproc_cx_script), built as a real freeDiameter answer with
 *     the Cx dictionary (freeDiameter's core is initialised but never started: no peer, no port).
 *
 * Expected output, osmo-hlr db_test style: every message in and out is written to a readable
 * transcript (SIP start line and the headers that matter; Cx command and its AVPs), with the
 * volatile values (branch, tag, Call-ID, nonce, icid, tokens, ports) replaced by stable
 * placeholders. inproc_finish() diffs it against tests/inproc/<name>.ok: a difference prints a
 * unified diff and fails the test; IMS_INPROC_UPDATE=1 rewrites the .ok file instead.
 *
 * Order: the transcript is written by the test thread only, in the order the test reads things
 * (Cx exchanges are queued by the loop thread and written by inproc_cx_expect), so it does not
 * depend on thread timing. 100 Trying and retransmissions are not written (timing-dependent).
 */
#ifndef INPROC_H
#define INPROC_H

#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>

#include "ims_cx.h"
#include "ims_sip.h"

#define INPROC_MSG_MAX 8192

/* ---------- transcript ---------- */

/* Starts the transcript of test `name` (the .ok file is tests/inproc/<name>.ok). */
void inproc_begin(const char *name);
/* Free-form line(s) in the transcript ("== case: wrong RES ==", a checked fact). printf-like. */
void inproc_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A check the test makes besides the transcript: false writes "CHECK FAILED: what" into it (so
 * the diff fails) and prints it. Returns ok. */
bool inproc_check(bool ok, const char *what);
/* Ends the test: writes <name>.out in the working directory, compares with the .ok file.
 * Returns the process exit code (0: same; 1: different, unified diff printed). */
int inproc_finish(void);

/* Names a port in the transcript: ":<port>" and "=<port>" are written as ":<NAME>". */
void inproc_name_port(int port, const char *name);
/* A free port on 127.0.0.1 for both UDP and TCP (nta listens on both). 0 on failure. */
int inproc_free_port(void);

/* ---------- SIP peers: plain UDP sockets, or TCP ---------- */

/* A TCP peer (inproc_peer_open_core with tcp) listens on its port and keeps every connection:
 * those the NF opens to it (accepted) and those it opens to send requests (one per destination
 * port, reused). Messages are framed by Content-Length; a response goes back on the connection
 * the request came on (RFC 3261 §18.2.2). The test writes "SIP/2.0/TCP" in its Vias itself. */
#define INPROC_TCP_CONNS 6

typedef struct {
    int fd;
    int to_port;                   /* connections we opened: the destination port; 0: accepted */
    char buf[INPROC_MSG_MAX];      /* bytes received, not yet a whole message */
    size_t len;
} inproc_conn;

typedef struct {
    const char *name;              /* "UE", "I-CSCF": in the transcript */
    int fd;                        /* UDP socket; -1 for a TCP peer */
    int port;
    bool tcp;
    int lfd;                       /* TCP: the listening socket */
    inproc_conn conn[INPROC_TCP_CONNS];
    size_t n_conn;
    int last_conn;                 /* TCP: index of the connection p->last came on */
    struct sockaddr_in last_from;  /* source of the last message received */
    char last[INPROC_MSG_MAX];     /* the last message received (raw) */
    char seen[16][INPROC_MSG_MAX / 4]; /* start + Via lines of recent messages: retransmissions */
    size_t n_seen;
} inproc_peer;

/* Binds 127.0.0.1:0 and names its port. 0 / -1. */
int inproc_peer_open(inproc_peer *p, const char *name);
void inproc_peer_close(inproc_peer *p);
/* A neighbouring CSCF: UDP (inproc_peer_open), or with tcp a TCP peer (see above) listening on
 * 127.0.0.1:0. 0 / -1. */
int inproc_peer_open_core(inproc_peer *p, const char *name, bool tcp);

/* Sends `text` (lines separated by "\n", no Content-Length, no blank line) with `body` (may be
 * NULL) to 127.0.0.1:port, and writes it to the transcript as "from -> to_name". 0 / -1. */
int inproc_send(inproc_peer *from, int port, const char *to_name, const char *text, const char *body);
/* Waits up to timeout_ms for the next message on p that is neither a 100 Trying nor a
 * retransmission; writes it to the transcript as "from_name -> p". Returns it (p->last) or NULL
 * (and "(nothing received)" in the transcript). */
const char *inproc_recv(inproc_peer *p, const char *from_name, int timeout_ms);
/* Answers p->last (a request) to where it came from: its Via, From, To (with a tag of ours when
 * it has none), Call-ID and CSeq, then `extra` lines ("\n"-separated, may be NULL). 0 / -1. */
int inproc_respond(inproc_peer *p, const char *to_name, int status, const char *reason, const char *extra);

/* printf into a static buffer (the test thread's message text; valid until the next call). */
const char *inproc_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The value of the idx-th header `name` of msg (case-insensitive, compact forms too), or NULL. */
const char *inproc_hdr(const char *msg, const char *name, int idx, char *buf, size_t len);
/* The value of parameter `name` in a header value (quotes removed), or NULL. */
const char *inproc_param(const char *value, const char *name, char *buf, size_t len);

/* ---------- the NF under test ---------- */

typedef struct inproc_nf {
    const char *name;                  /* "P-CSCF" */
    const ims_sip_cfg *sip_cfg;
    ims_sip_request_f on_request;
    void *arg;
    /* On the loop thread, after ims_sip_create: the NF's own start (as its main does). 0 / -1. */
    int (*start)(struct inproc_nf *nf, char *err, size_t errlen);
    /* On the loop thread, after the loop ended, before ims_sip_destroy. */
    void (*stop)(struct inproc_nf *nf);
    ims_sip *sip;
    pthread_t thread;
    sem_t ready;
    int rc;
    char err[512];
} inproc_nf;

/* Runs the NF on its own loop thread; returns once it is started. 0 / -1 (err set). */
int inproc_nf_start(inproc_nf *nf);
void inproc_nf_stop(inproc_nf *nf);

/* Loads a configuration from YAML text (written to a temporary file) into `out`. 0 / -1. */
int inproc_load_config(const char *yaml, const char *nf, const ims_cfg_field *schema, void *out);

/* ---------- Cx: the scripted HSS ---------- */

/* Builds the answer to `req` and returns it; takes req (ims_cx_new_answer turns it into its
 * answer). NULL: no answer (the request times out). */
typedef struct msg *(*inproc_cx_answer_f)(struct msg *req, void *arg);

/* Initialises freeDiameter's core and the Cx dictionary without starting it (no peer, no port)
 * and installs the scripted HSS as the Cx seam. `nf` names the CSCF in the transcript. 0 / -1. */
int inproc_cx_init(const ims_diameter_cfg *cfg, const char *nf, const char *nf_name);
void inproc_cx_fini(void);
/* Queues the answer to the next Cx request. */
void inproc_cx_script(inproc_cx_answer_f fn, void *arg);
/* The next Cx request cannot be sent (as without an HSS connection): the send fails, no callback. */
void inproc_cx_script_unsent(void);
/* Waits up to 3 s until n Cx exchanges happened since the last call and writes them to the
 * transcript. Fewer: "(expected n Cx exchanges, saw k)" is written (the diff fails). */
void inproc_cx_expect(int n);

/* Answer builders for scripts. */
struct msg *inproc_cx_answer(struct msg *req, uint32_t code, bool experimental);

#endif
