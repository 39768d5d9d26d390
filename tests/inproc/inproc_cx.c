/*
 * inproc_cx: the scripted HSS of the in-process tests, behind the Cx seam of ims_cx_client.h.
 * See inproc.h.
 *
 * The seam's send runs on the NF's loop thread (ims_cx_send is called there). It writes the
 * request into a queue, builds the next scripted answer from it and hands it to the real
 * ims_cx_client callbacks at once (they defer it to the loop, as a freeDiameter thread would).
 * The test thread moves the queue into the transcript with inproc_cx_expect.
 */
#include "inproc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <freeDiameter/libfdcore.h>

#include "ims_cx_client.h"
#include "ims_diameter.h"

#define MAX_SCRIPT 32

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static char g_nf_name[32];
static struct {
    inproc_cx_answer_f fn;
    void *arg;
    int send_error;     /* non-zero: the request cannot be sent (no HSS connection) */
} g_script[MAX_SCRIPT];
static size_t g_head, g_tail;    /* script queue */
static char *g_queued;           /* transcript text of exchanges not yet expected */
static size_t g_queued_len;
static int g_exchanges;          /* since the last inproc_cx_expect */

static void queue_text(const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(g_queued, g_queued_len + n + 1);
    if (!p)
        abort();
    memcpy(p + g_queued_len, s, n + 1);
    g_queued = p;
    g_queued_len += n;
}

/* AVPs that carry nothing the test checks (routing boilerplate, random Session-Id, and the
 * Origin-* our own node writes into the scripted answers). */
static bool hidden(const char *name)
{
    static const char *const names[] = {
        "Session-Id", "Vendor-Specific-Application-Id", "Auth-Session-State", "Origin-Host", "Origin-Realm", NULL,
    };
    for (size_t i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Names of the enumerated values the transcripts show (TS 29.229 §6.3.15, §6.3.24). */
static const char *enum_name(const char *avp, int32_t v)
{
    static const char *const sat[] = {
        "NO_ASSIGNMENT", "REGISTRATION", "RE_REGISTRATION", "UNREGISTERED_USER", "TIMEOUT_DEREGISTRATION",
        "USER_DEREGISTRATION", "TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME",
        "USER_DEREGISTRATION_STORE_SERVER_NAME", "ADMINISTRATIVE_DEREGISTRATION", "AUTHENTICATION_FAILURE",
        "AUTHENTICATION_TIMEOUT", "DEREGISTRATION_TOO_MUCH_DATA",
    };
    static const char *const uat[] = { "REGISTRATION", "DE_REGISTRATION", "REGISTRATION_AND_CAPABILITIES" };
    if (strcmp(avp, "Server-Assignment-Type") == 0 && v >= 0 && (size_t)v < sizeof(sat) / sizeof(sat[0]))
        return sat[v];
    if (strcmp(avp, "User-Authorization-Type") == 0 && v >= 0 && (size_t)v < sizeof(uat) / sizeof(uat[0]))
        return uat[v];
    return NULL;
}

static void dump_value(char *out, size_t len, const char *name, enum dict_avp_basetype type, const union avp_value *v)
{
    switch (type) {
    case AVP_TYPE_OCTETSTRING: {
        bool printable = true;
        for (size_t i = 0; i < v->os.len && printable; i++)
            printable = isprint(v->os.data[i]);
        if (printable && v->os.len <= 100) {
            snprintf(out, len, "\"%.*s\"", (int)v->os.len, (const char *)v->os.data);
        } else if (printable) {
            snprintf(out, len, "(%zu bytes: %.40s...)", v->os.len, (const char *)v->os.data);
        } else {
            size_t used = 0;
            for (size_t i = 0; i < v->os.len && used + 3 < len; i++)
                used += (size_t)snprintf(out + used, len - used, "%02x", v->os.data[i]);
        }
        break;
    }
    case AVP_TYPE_INTEGER32: {
        const char *e = enum_name(name, v->i32);
        snprintf(out, len, "%d%s%s%s", v->i32, e ? " (" : "", e ? e : "", e ? ")" : "");
        break;
    }
    case AVP_TYPE_UNSIGNED32:
        if (strcmp(name, "Result-Code") == 0 || strcmp(name, "Experimental-Result-Code") == 0)
            snprintf(out, len, "%u (%s)", v->u32, ims_cx_result_name(v->u32, name[0] == 'E'));
        else
            snprintf(out, len, "%u", v->u32);
        break;
    case AVP_TYPE_INTEGER64:
        snprintf(out, len, "%lld", (long long)v->i64);
        break;
    case AVP_TYPE_UNSIGNED64:
        snprintf(out, len, "%llu", (unsigned long long)v->u64);
        break;
    default:
        snprintf(out, len, "(type %d)", (int)type);
        break;
    }
}

static void dump_avps(msg_or_avp *parent, int depth)
{
    struct avp *a = NULL;
    if (fd_msg_browse(parent, MSG_BRW_FIRST_CHILD, &a, NULL))
        return;
    for (; a; fd_msg_browse(a, MSG_BRW_NEXT, &a, NULL)) {
        struct avp_hdr *h = NULL;
        struct dict_object *model = NULL;
        struct dict_avp_data d;
        char line[1024];
        if (fd_msg_avp_hdr(a, &h))
            continue;
        if (fd_msg_model(a, &model) || !model || fd_dict_getval(model, &d)) {
            snprintf(line, sizeof(line), "%*s(AVP %u, vendor %u)\n", 2 + 2 * depth, "", h->avp_code, h->avp_vendor);
            queue_text(line);
            continue;
        }
        if (hidden(d.avp_name))
            continue;
        if (d.avp_basetype == AVP_TYPE_GROUPED) {
            snprintf(line, sizeof(line), "%*s%s:\n", 2 + 2 * depth, "", d.avp_name);
            queue_text(line);
            dump_avps(a, depth + 1);
            continue;
        }
        char value[512] = "(no value)";
        if (h->avp_value)
            dump_value(value, sizeof(value), d.avp_name, d.avp_basetype, h->avp_value);
        snprintf(line, sizeof(line), "%*s%s: %s\n", 2 + 2 * depth, "", d.avp_name, value);
        queue_text(line);
    }
}

static void dump_message(const char *from, const char *to, struct msg *m)
{
    struct msg_hdr *h = NULL;
    char line[256];
    fd_msg_hdr(m, &h);
    bool request = h && (h->msg_flags & CMD_FLAG_REQUEST);
    const char *name = h ? ims_cx_cmd_name(h->msg_code) : "?";
    /* ims_cx_cmd_name names the request (MAR); the answer is the same command (MAA). */
    snprintf(line, sizeof(line), "--- Cx %s -> %s: %.2s%s\n", from, to, name, request ? "R" : "A");
    queue_text(line);
    dump_avps(m, 0);
}

/* The seam: on the NF's loop thread. */
static int scripted_send(void *arg, struct msg **req, ims_cx_answered_f answered, void *data,
                         ims_cx_expired_f expired, const struct timespec *deadline)
{
    (void)arg; (void)deadline;
    struct msg *m = *req;
    *req = NULL;   /* taken, as fd_msg_send_timeout does */
    pthread_mutex_lock(&g_lock);
    dump_message(g_nf_name, "HSS", m);
    inproc_cx_answer_f fn = NULL;
    void *fn_arg = NULL;
    int send_error = 0;
    if (g_head != g_tail) {
        fn = g_script[g_head % MAX_SCRIPT].fn;
        fn_arg = g_script[g_head % MAX_SCRIPT].arg;
        send_error = g_script[g_head % MAX_SCRIPT].send_error;
        g_head++;
    }
    if (send_error) {
        /* as fd_msg_send_timeout without a route: the request stays the caller's, no callback */
        *req = m;
        queue_text("(not sent: no HSS connection)\n");
        g_exchanges++;
        pthread_cond_broadcast(&g_cond);
        pthread_mutex_unlock(&g_lock);
        return send_error;
    }
    pthread_mutex_unlock(&g_lock);

    struct msg *ans = fn ? fn(m, fn_arg) : NULL;
    pthread_mutex_lock(&g_lock);
    if (ans)
        dump_message("HSS", g_nf_name, ans);
    else
        queue_text(fn ? "(the script gives no answer: timeout)\n" : "(no scripted answer: timeout)\n");
    g_exchanges++;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);

    if (ans) {
        answered(data, &ans);
    } else {
        if (!fn) {
            expired(data, NULL, 0, &m);   /* m still the request: expired frees it */
        } else {
            struct msg *none = NULL;      /* fn took the request */
            expired(data, NULL, 0, &none);
        }
    }
    return 0;
}

static void script_push(inproc_cx_answer_f fn, void *arg, int send_error)
{
    pthread_mutex_lock(&g_lock);
    if (g_tail - g_head < MAX_SCRIPT) {
        g_script[g_tail % MAX_SCRIPT].fn = fn;
        g_script[g_tail % MAX_SCRIPT].arg = arg;
        g_script[g_tail % MAX_SCRIPT].send_error = send_error;
        g_tail++;
    }
    pthread_mutex_unlock(&g_lock);
}

void inproc_cx_script(inproc_cx_answer_f fn, void *arg)
{
    script_push(fn, arg, 0);
}

void inproc_cx_script_unsent(void)
{
    script_push(NULL, NULL, ENOTCONN);
}

void inproc_cx_expect(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    pthread_mutex_lock(&g_lock);
    while (g_exchanges < n)
        if (pthread_cond_timedwait(&g_cond, &g_lock, &ts) == ETIMEDOUT)
            break;
    int seen = g_exchanges;
    char *text = g_queued;
    g_queued = NULL;
    g_queued_len = 0;
    g_exchanges = 0;
    pthread_mutex_unlock(&g_lock);
    if (text) {
        size_t len = strlen(text);
        if (len && text[len - 1] == '\n')
            text[len - 1] = '\0';
        inproc_note("%s", text);
    }
    if (seen != n)
        inproc_note("(expected %d Cx exchange(s), saw %d)", n, seen);
    free(text);
}

struct msg *inproc_cx_answer(struct msg *req, uint32_t code, bool experimental)
{
    struct msg *m = req;
    if (ims_cx_new_answer(&m) || (experimental ? ims_cx_set_experimental(m, code) : ims_cx_set_result(m, code))) {
        fd_msg_free(m);
        return NULL;
    }
    return m;
}

int inproc_cx_init(const ims_diameter_cfg *cfg, const char *nf, const char *nf_name)
{
    char err[512] = "";
    snprintf(g_nf_name, sizeof(g_nf_name), "%s", nf_name);
    if (ims_diameter_init(cfg, nf, err, sizeof(err))) {
        fprintf(stderr, "inproc: %s\n", err);
        return -1;
    }
    ims_cx_ops ops = { .send = scripted_send };
    ims_cx_client_set_ops(&ops);
    return 0;
}

void inproc_cx_fini(void)
{
    ims_cx_client_set_ops(NULL);
    ims_diameter_stop();
    pthread_mutex_lock(&g_lock);
    char *left = g_queued;
    g_queued = NULL;
    g_queued_len = 0;
    pthread_mutex_unlock(&g_lock);
    if (left)
        inproc_note("UNEXPECTED Cx exchange(s):\n%s", left);
    free(left);
}
