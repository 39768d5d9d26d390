/*
 * imscx: a Cx client for operators and tests. It is a real Diameter node (freeDiameter): it
 * connects to the HSS, sends UAR / MAR / SAR / LIR, prints each answer as one JSON line, and
 * answers the PPR / RTR the HSS sends to it (printed as JSON lines too). It plays the I-CSCF and
 * S-CSCF roles of TS 29.228 for lab debugging.
 *
 *   imscx --peer hss.ims.lab@127.0.0.1:3868 uar alice@ims.lab sip:alice@ims.lab
 *   imscx --peer ... -          (commands from stdin, one per line)
 *
 * Commands (name=value options after the positional arguments):
 *   uar IMPI IMPU [visited=NET] [type=0|1|2]
 *   mar IMPI IMPU [scheme=aka|digest|S] [items=N] [server=URI] [key=K:OPC] [resync=SQN_MS] [bad-auts]
 *       key= lets the client act as the UE: it checks AUTN (MAC-A) and prints each vector's SQN;
 *       resync= answers the last RAND with AUTS for SQN_MS (bad-auts corrupts its MAC-S).
 *   sar IMPI|- IMPU|- type=N [server=URI] [uda=0|1]
 *   lir IMPU [orig]
 *   load-mar IMPI IMPU count=N [window=W] [users=U] [key=K:OPC]   many MARs, prints a summary
 *   load-sar IMPI IMPU count=N [window=W] [users=U] [type=N] [uda=0|1]   many SARs, the same
 *       With users=U, "{i}" in IMPI and IMPU is replaced by 0..U-1 in turn (user{i}@ims.lab):
 *       the load is spread over U subscribers. The summary has rate, p50/p99/max latency (ms).
 *   wait SECONDS                 answer PPR/RTR arriving meanwhile
 * Any request command takes omit=AVP-NAME to leave out an AVP it would send (error tests).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "ims_aka.h"
#include "ims_clock.h"
#include "ims_cx.h"
#include "ims_diameter.h"
#include "ims_log.h"

static char g_peer_id[512], g_dest_realm[512], g_server[512] = "sip:scscf.ims.lab:6060";
static pthread_mutex_t g_out_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t g_last_rand[16];
static bool g_have_rand;

static void emit(json_object *o)
{
    pthread_mutex_lock(&g_out_lock);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
    pthread_mutex_unlock(&g_out_lock);
    json_object_put(o);
}

static void hexstr(json_object *o, const char *key, const uint8_t *d, size_t n)
{
    char buf[2 * 64 + 1];
    if (n > 64)
        n = 64;
    ims_hex_encode(d, n, buf);
    json_object_object_add(o, key, json_object_new_string(buf));
}

static void add_str_avp(json_object *o, const char *key, msg_or_avp *parent, struct dict_object *m)
{
    size_t len = 0;
    const uint8_t *v = ims_cx_get_os(parent, m, &len);
    if (v)
        json_object_object_add(o, key, json_object_new_string_len((const char *)v, (int)len));
}

/* ---------- command options ---------- */

typedef struct {
    const char *pos[4];
    size_t n_pos;
    const char *opt_name[12], *opt_val[12];
    size_t n_opt;
} args_t;

static const char *opt(const args_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_opt; i++)
        if (strcmp(a->opt_name[i], name) == 0)
            return a->opt_val[i] ? a->opt_val[i] : "";
    return NULL;
}

static long opt_long(const args_t *a, const char *name, long def)
{
    const char *v = opt(a, name);
    return v && *v ? strtol(v, NULL, 0) : def;
}

static bool omitted(const args_t *a, struct dict_object *model)
{
    const char *o = opt(a, "omit");
    struct dict_avp_data d;
    return o && fd_dict_getval(model, &d) == 0 && strcmp(o, d.avp_name) == 0;
}

/* Adds a string AVP unless the command said omit=<its name>. */
static void put_str(const args_t *a, msg_or_avp *p, struct dict_object *m, const char *v)
{
    if (v && !omitted(a, m))
        ims_cx_add_str(p, m, v);
}

/* key=K:OPC -> k, opc */
static bool parse_key(const args_t *a, uint8_t k[16], uint8_t opc[16])
{
    const char *v = opt(a, "key");
    char khex[33];
    if (!v || strlen(v) != 65 || v[32] != ':')
        return false;
    memcpy(khex, v, 32);
    khex[32] = '\0';
    return ims_hex_decode(khex, k, 16) == 0 && ims_hex_decode(v + 33, opc, 16) == 0;
}

/* ---------- answers -> JSON ---------- */

static json_object *answer_json(struct msg *ans, const args_t *a)
{
    json_object *o = json_object_new_object();
    struct msg_hdr *h = NULL;
    fd_msg_hdr(ans, &h);
    static const char *names[] = { "UAA", "SAA", "LIA", "MAA", "RTA", "PPA" };
    json_object_object_add(o, "cmd", json_object_new_string(
        h->msg_code >= 300 && h->msg_code <= 305 ? names[h->msg_code - 300] : "?"));
    uint32_t rc = 0, exp = 0;
    ims_cx_get_result(ans, &rc, &exp);
    json_object_object_add(o, "result_code", rc ? json_object_new_int64(rc) : NULL);
    json_object_object_add(o, "experimental_result", exp ? json_object_new_int64(exp) : NULL);
    json_object_object_add(o, "result", json_object_new_string(exp ? ims_cx_result_name(exp, true)
                                                                   : ims_cx_result_name(rc, false)));
    add_str_avp(o, "server_name", ans, ims_cx_dict.server_name);
    add_str_avp(o, "user_name", ans, ims_cx_dict.user_name);
    add_str_avp(o, "public_identity", ans, ims_cx_dict.public_identity);
    add_str_avp(o, "user_data", ans, ims_cx_dict.user_data);
    struct dict_object *em = NULL, *fa = NULL;
    fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_NAME, "Error-Message", &em, ENOENT);
    fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_NAME, "Failed-AVP", &fa, ENOENT);
    if (em)
        add_str_avp(o, "error_message", ans, em);
    if (fa && ims_cx_child(ans, fa, NULL))
        json_object_object_add(o, "failed_avp", json_object_new_boolean(1));

    struct avp *sc = ims_cx_child(ans, ims_cx_dict.server_caps, NULL);
    if (sc) {
        json_object *caps = json_object_new_object(), *m = json_object_new_array(),
                    *op = json_object_new_array(), *sn = json_object_new_array();
        for (struct avp *c = ims_cx_child(sc, ims_cx_dict.mandatory_cap, NULL); c;
             c = ims_cx_child(sc, ims_cx_dict.mandatory_cap, c)) {
            struct avp_hdr *ah = NULL;
            fd_msg_avp_hdr(c, &ah);
            json_object_array_add(m, json_object_new_int64(ah->avp_value->u32));
        }
        for (struct avp *c = ims_cx_child(sc, ims_cx_dict.optional_cap, NULL); c;
             c = ims_cx_child(sc, ims_cx_dict.optional_cap, c)) {
            struct avp_hdr *ah = NULL;
            fd_msg_avp_hdr(c, &ah);
            json_object_array_add(op, json_object_new_int64(ah->avp_value->u32));
        }
        for (struct avp *c = ims_cx_child(sc, ims_cx_dict.server_name, NULL); c;
             c = ims_cx_child(sc, ims_cx_dict.server_name, c)) {
            struct avp_hdr *ah = NULL;
            fd_msg_avp_hdr(c, &ah);
            json_object_array_add(sn, json_object_new_string_len((const char *)ah->avp_value->os.data,
                                                                 (int)ah->avp_value->os.len));
        }
        json_object_object_add(caps, "mandatory", m);
        json_object_object_add(caps, "optional", op);
        json_object_object_add(caps, "server_names", sn);
        json_object_object_add(o, "server_capabilities", caps);
    }

    uint32_t n_items = 0;
    if (ims_cx_get_u32(ans, ims_cx_dict.sip_number_auth_items, &n_items) == 0)
        json_object_object_add(o, "sip_number_auth_items", json_object_new_int64(n_items));
    uint8_t k[16], opc[16];
    bool have_key = a && parse_key(a, k, opc);
    json_object *items = json_object_new_array();
    for (struct avp *it = ims_cx_child(ans, ims_cx_dict.sip_auth_data_item, NULL); it;
         it = ims_cx_child(ans, ims_cx_dict.sip_auth_data_item, it)) {
        json_object *jo = json_object_new_object();
        add_str_avp(jo, "scheme", it, ims_cx_dict.sip_auth_scheme);
        size_t len = 0;
        const uint8_t *chal = ims_cx_get_os(it, ims_cx_dict.sip_authenticate, &len);
        if (chal && len == 32) {
            hexstr(jo, "rand", chal, 16);
            hexstr(jo, "autn", chal + 16, 16);
            memcpy(g_last_rand, chal, 16);
            g_have_rand = true;
            if (have_key) {
                uint64_t sqn = 0;
                uint8_t res[8], ck[16], ik[16];
                bool ok = ims_aka_check_autn(opc, k, chal, chal + 16, &sqn, res, ck, ik);
                json_object_object_add(jo, "mac_ok", json_object_new_boolean(ok));
                json_object_object_add(jo, "sqn", json_object_new_int64((int64_t)sqn));
                hexstr(jo, "res", res, 8);
            }
        }
        const uint8_t *v;
        if ((v = ims_cx_get_os(it, ims_cx_dict.sip_authorization, &len)))
            hexstr(jo, "xres", v, len);
        if ((v = ims_cx_get_os(it, ims_cx_dict.ck, &len)))
            hexstr(jo, "ck", v, len);
        if ((v = ims_cx_get_os(it, ims_cx_dict.ik, &len)))
            hexstr(jo, "ik", v, len);
        struct avp *sda = ims_cx_child(it, ims_cx_dict.sip_digest_authenticate, NULL);
        if (sda) {
            add_str_avp(jo, "digest_realm", sda, ims_cx_dict.digest_realm);
            add_str_avp(jo, "digest_algorithm", sda, ims_cx_dict.digest_algorithm);
            add_str_avp(jo, "digest_qop", sda, ims_cx_dict.digest_qop);
            add_str_avp(jo, "digest_ha1", sda, ims_cx_dict.digest_ha1);
        }
        json_object_array_add(items, jo);
    }
    if (json_object_array_length(items))
        json_object_object_add(o, "items", items);
    else
        json_object_put(items);
    return o;
}

/* ---------- synchronous send ---------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    struct msg *ans;
} waiter;

static void on_ans(void *data, struct msg **ans)
{
    waiter *w = data;
    pthread_mutex_lock(&w->lock);
    w->ans = *ans;
    *ans = NULL;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_expire(void *data, DiamId_t to, size_t tolen, struct msg **req)
{
    (void)to; (void)tolen;
    waiter *w = data;
    pthread_mutex_lock(&w->lock);
    fd_msg_free(*req);
    *req = NULL;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}


/* Sends req and prints the answer (or a timeout line). Returns 0 when an answer came. */
static int transact(struct msg *req, const args_t *a, const char *cmd)
{
    waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL };
    struct timespec ts = ims_diameter_deadline(ims_diameter_request_timeout_ms());
    if (fd_msg_send_timeout(&req, on_ans, &w, on_expire, &ts)) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "cmd", json_object_new_string(cmd));
        json_object_object_add(o, "error", json_object_new_string("send failed (peer not connected?)"));
        emit(o);
        return -1;
    }
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    if (!w.ans) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "cmd", json_object_new_string(cmd));
        json_object_object_add(o, "error", json_object_new_string("timeout"));
        emit(o);
        return -1;
    }
    emit(answer_json(w.ans, a));
    fd_msg_free(w.ans);
    return 0;
}

static struct msg *new_req(struct dict_object *cmd)
{
    struct msg *req = NULL;
    if (ims_cx_new_request(cmd, g_dest_realm, g_peer_id, &req))
        return NULL;
    return req;
}

/* ---------- commands ---------- */

static int cmd_uar(const args_t *a)
{
    struct msg *req = new_req(ims_cx_dict.uar);
    if (!req || a->n_pos < 2)
        return -1;
    put_str(a, req, ims_cx_dict.user_name, a->pos[0]);
    put_str(a, req, ims_cx_dict.public_identity, a->pos[1]);
    put_str(a, req, ims_cx_dict.visited_network_id, opt(a, "visited") ? opt(a, "visited") : g_dest_realm);
    if (!omitted(a, ims_cx_dict.user_auth_type))
        ims_cx_add_i32(req, ims_cx_dict.user_auth_type, (int32_t)opt_long(a, "type", 0));
    return transact(req, a, "UAR");
}

static struct msg *build_mar(const args_t *a, const char *impi, const char *impu)
{
    struct msg *req = new_req(ims_cx_dict.mar);
    struct avp *item = NULL;
    if (!req)
        return NULL;
    put_str(a, req, ims_cx_dict.user_name, impi);
    put_str(a, req, ims_cx_dict.public_identity, impu);
    put_str(a, req, ims_cx_dict.server_name, opt(a, "server") ? opt(a, "server") : g_server);
    if (!omitted(a, ims_cx_dict.sip_number_auth_items))
        ims_cx_add_u32(req, ims_cx_dict.sip_number_auth_items, (uint32_t)opt_long(a, "items", 1));
    if (!omitted(a, ims_cx_dict.sip_auth_data_item)) {
        ims_cx_add_group(req, ims_cx_dict.sip_auth_data_item, &item);
        /* Shorthands: the scheme names contain spaces, which the command line splits on. */
        const char *scheme = opt(a, "scheme") ? opt(a, "scheme") : IMS_SCHEME_UNKNOWN;
        if (strcmp(scheme, "digest") == 0)
            scheme = IMS_SCHEME_DIGEST;
        else if (strcmp(scheme, "aka") == 0)
            scheme = IMS_SCHEME_AKA;
        ims_cx_add_str(item, ims_cx_dict.sip_auth_scheme, scheme);
        const char *resync = opt(a, "resync");
        uint8_t k[16], opc[16];
        if (resync && g_have_rand && parse_key(a, k, opc)) {
            uint8_t data[30];
            memcpy(data, g_last_rand, 16);
            ims_aka_make_auts(opc, k, g_last_rand, (uint64_t)strtoull(resync, NULL, 0), data + 16);
            if (opt(a, "bad-auts"))
                data[29] ^= 0x01;   /* last byte of MAC-S */
            ims_cx_add_os(item, ims_cx_dict.sip_authorization, data, sizeof(data));
        }
    }
    return req;
}

static int cmd_mar(const args_t *a)
{
    if (a->n_pos < 2)
        return -1;
    struct msg *req = build_mar(a, a->pos[0], a->pos[1]);
    return req ? transact(req, a, "MAR") : -1;
}

static struct msg *build_sar(const args_t *a, const char *impi, const char *impu)
{
    struct msg *req = new_req(ims_cx_dict.sar);
    if (!req)
        return NULL;
    if (strcmp(impi, "-"))
        put_str(a, req, ims_cx_dict.user_name, impi);
    if (strcmp(impu, "-"))
        put_str(a, req, ims_cx_dict.public_identity, impu);
    put_str(a, req, ims_cx_dict.server_name, opt(a, "server") ? opt(a, "server") : g_server);
    if (!omitted(a, ims_cx_dict.server_assignment_type))
        ims_cx_add_i32(req, ims_cx_dict.server_assignment_type, (int32_t)opt_long(a, "type", 1));
    if (!omitted(a, ims_cx_dict.user_data_already_available))
        ims_cx_add_i32(req, ims_cx_dict.user_data_already_available, (int32_t)opt_long(a, "uda", 0));
    return req;
}

static int cmd_sar(const args_t *a)
{
    if (a->n_pos < 2)
        return -1;
    struct msg *req = build_sar(a, a->pos[0], a->pos[1]);
    return req ? transact(req, a, "SAR") : -1;
}

static int cmd_lir(const args_t *a)
{
    struct msg *req = new_req(ims_cx_dict.lir);
    if (!req || a->n_pos < 1)
        return -1;
    put_str(a, req, ims_cx_dict.public_identity, a->pos[0]);
    if (opt(a, "orig"))
        ims_cx_add_i32(req, ims_cx_dict.originating_request, 0);
    return transact(req, a, "LIR");
}

/* load-mar / load-sar: `count` requests with at most `window` outstanding, spread over `users`
 * subscribers when the identities contain "{i}". */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long outstanding, answered, success, errors;
    uint32_t *lat_us;               /* latency of each answered request */
    long n_lat, cap_lat;
    json_object *sqns;
    bool have_key;
    uint8_t k[16], opc[16];
} load_state;

typedef struct {
    load_state *s;
    int64_t sent_us;        /* ims_monotonic_us() when sent */
} load_req;

static uint32_t elapsed_us(int64_t t0_us)
{
    int64_t us = ims_monotonic_us() - t0_us;
    return us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void load_ans(void *data, struct msg **ans)
{
    load_req *r = data;
    load_state *s = r->s;
    uint32_t rc = 0, exp = 0, lat = elapsed_us(r->sent_us);
    free(r);
    ims_cx_get_result(*ans, &rc, &exp);
    pthread_mutex_lock(&s->lock);
    s->answered++;
    if (s->n_lat < s->cap_lat)
        s->lat_us[s->n_lat++] = lat;
    if (rc == IMS_DIAMETER_SUCCESS && !exp) {
        s->success++;
        if (s->have_key) {
            for (struct avp *it = ims_cx_child(*ans, ims_cx_dict.sip_auth_data_item, NULL); it;
                 it = ims_cx_child(*ans, ims_cx_dict.sip_auth_data_item, it)) {
                size_t len = 0;
                const uint8_t *chal = ims_cx_get_os(it, ims_cx_dict.sip_authenticate, &len);
                uint64_t sqn = 0;
                uint8_t res[8], ck[16], ik[16];
                if (chal && len == 32 && ims_aka_check_autn(s->opc, s->k, chal, chal + 16, &sqn, res, ck, ik))
                    json_object_array_add(s->sqns, json_object_new_int64((int64_t)sqn));
            }
        }
    } else {
        s->errors++;
    }
    s->outstanding--;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    fd_msg_free(*ans);
    *ans = NULL;
}

static void load_expire(void *data, DiamId_t to, size_t tolen, struct msg **req)
{
    (void)to; (void)tolen;
    load_req *r = data;
    load_state *s = r->s;
    free(r);
    pthread_mutex_lock(&s->lock);
    s->errors++;
    s->outstanding--;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    fd_msg_free(*req);
    *req = NULL;
}

/* pattern with every "{i}" replaced by n. */
static void expand(const char *pattern, long n, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < outlen;) {
        if (strncmp(p, "{i}", 3) == 0) {
            int w = snprintf(out + o, outlen - o, "%ld", n);
            o += w > 0 ? (size_t)w : 0;
            if (o >= outlen)
                o = outlen - 1;
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

static int cmd_load(const args_t *a, bool sar)
{
    if (a->n_pos < 2)
        return -1;
    long count = opt_long(a, "count", 1000), window = opt_long(a, "window", 64), sent = 0;
    long users = opt_long(a, "users", 1);
    if (count < 0 || window < 1 || users < 1)
        return -1;
    load_state s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    s.sqns = json_object_new_array();
    s.have_key = !sar && parse_key(a, s.k, s.opc);
    s.cap_lat = count;
    s.lat_us = calloc((size_t)(count ? count : 1), sizeof(uint32_t));
    if (!s.lat_us)
        s.cap_lat = 0;
    char impi[512], impu[512];
    int64_t t0_us = ims_monotonic_us();
    for (; sent < count; sent++) {
        if (!ims_diameter_peer_is_open(g_peer_id))
            break;   /* the HSS went away (crash tests): report what was answered */
        pthread_mutex_lock(&s.lock);
        while (s.outstanding >= window)
            pthread_cond_wait(&s.cond, &s.lock);
        s.outstanding++;
        pthread_mutex_unlock(&s.lock);
        expand(a->pos[0], sent % users, impi, sizeof(impi));
        expand(a->pos[1], sent % users, impu, sizeof(impu));
        struct msg *req = sar ? build_sar(a, impi, impu) : build_mar(a, impi, impu);
        struct timespec ts = ims_diameter_deadline(ims_diameter_request_timeout_ms());
        load_req *r = malloc(sizeof(*r));
        if (r) {
            r->s = &s;
            r->sent_us = ims_monotonic_us();
        }
        if (!req || !r || fd_msg_send_timeout(&req, load_ans, r, load_expire, &ts)) {
            if (req)
                fd_msg_free(req);
            free(r);
            pthread_mutex_lock(&s.lock);
            s.outstanding--;
            s.errors++;
            pthread_mutex_unlock(&s.lock);
            usleep(10000);   /* peer down: don't spin */
        }
    }
    pthread_mutex_lock(&s.lock);
    while (s.outstanding > 0)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    double secs = (double)(ims_monotonic_us() - t0_us) / 1e6;
    qsort(s.lat_us, (size_t)s.n_lat, sizeof(uint32_t), cmp_u32);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cmd", json_object_new_string(sar ? "load-sar" : "load-mar"));
    json_object_object_add(o, "sent", json_object_new_int64(sent));
    json_object_object_add(o, "success", json_object_new_int64(s.success));
    json_object_object_add(o, "errors", json_object_new_int64(s.errors));
    json_object_object_add(o, "users", json_object_new_int64(users));
    json_object_object_add(o, "window", json_object_new_int64(window));
    json_object_object_add(o, "seconds", json_object_new_double(secs));
    json_object_object_add(o, "rate", json_object_new_double(secs > 0 ? (double)s.success / secs : 0));
    json_object_object_add(o, "p50_ms", json_object_new_double(pct_ms(s.lat_us, s.n_lat, 0.50)));
    json_object_object_add(o, "p99_ms", json_object_new_double(pct_ms(s.lat_us, s.n_lat, 0.99)));
    json_object_object_add(o, "max_ms", json_object_new_double(pct_ms(s.lat_us, s.n_lat, 1.0)));
    json_object_object_add(o, "sqns", s.sqns);
    emit(o);
    free(s.lat_us);
    return 0;
}

/* ---------- PPR / RTR from the HSS ---------- */

static int on_push(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                   enum disp_action *act)
{
    (void)avp; (void)sess; (void)opaque; (void)act;
    struct msg *qry = *msg;
    struct msg_hdr *h = NULL;
    fd_msg_hdr(qry, &h);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "received", json_object_new_string(h->msg_code == IMS_CX_PPR ? "PPR" : "RTR"));
    add_str_avp(o, "user_name", qry, ims_cx_dict.user_name);
    add_str_avp(o, "user_data", qry, ims_cx_dict.user_data);
    json_object *ids = json_object_new_array();
    for (struct avp *p = ims_cx_child(qry, ims_cx_dict.public_identity, NULL); p;
         p = ims_cx_child(qry, ims_cx_dict.public_identity, p)) {
        struct avp_hdr *ah = NULL;
        fd_msg_avp_hdr(p, &ah);
        json_object_array_add(ids, json_object_new_string_len((const char *)ah->avp_value->os.data,
                                                               (int)ah->avp_value->os.len));
    }
    json_object_object_add(o, "public_identities", ids);
    struct avp *dr = ims_cx_child(qry, ims_cx_dict.dereg_reason, NULL);
    if (dr) {
        int32_t code = -1;
        ims_cx_get_i32(dr, ims_cx_dict.reason_code, &code);
        json_object_object_add(o, "reason_code", json_object_new_int(code));
        add_str_avp(o, "reason_info", dr, ims_cx_dict.reason_info);
    }
    struct avp *ci = ims_cx_child(qry, ims_cx_dict.charging_info, NULL);
    if (ci)
        add_str_avp(o, "ccf_primary", ci, ims_cx_dict.pri_ccf);
    emit(o);
    if (ims_cx_new_answer(msg) == 0 && ims_cx_set_result(*msg, IMS_DIAMETER_SUCCESS) == 0)
        fd_msg_send(msg, NULL, NULL);
    return 0;
}

/* ---------- main ---------- */

static int run_line(char *line)
{
    args_t a;
    memset(&a, 0, sizeof(a));
    char *save = NULL, *cmd = strtok_r(line, " \t\r\n", &save);
    if (!cmd || cmd[0] == '#')
        return 0;
    for (char *t = strtok_r(NULL, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(t, '=');
        bool is_opt = eq || strcmp(t, "orig") == 0 || strcmp(t, "bad-auts") == 0;
        if (is_opt && a.n_opt < 12) {
            if (eq)
                *eq = '\0';
            a.opt_name[a.n_opt] = t;
            a.opt_val[a.n_opt++] = eq ? eq + 1 : NULL;
        } else if (!is_opt && a.n_pos < 4) {
            a.pos[a.n_pos++] = t;
        }
    }
    if (strcmp(cmd, "uar") == 0) return cmd_uar(&a);
    if (strcmp(cmd, "mar") == 0) return cmd_mar(&a);
    if (strcmp(cmd, "sar") == 0) return cmd_sar(&a);
    if (strcmp(cmd, "lir") == 0) return cmd_lir(&a);
    if (strcmp(cmd, "load-mar") == 0) return cmd_load(&a, false);
    if (strcmp(cmd, "load-sar") == 0) return cmd_load(&a, true);
    if (strcmp(cmd, "wait") == 0) {
        sleep((unsigned)(a.n_pos ? atoi(a.pos[0]) : 1));
        return 0;
    }
    fprintf(stderr, "imscx: unknown command '%s'\n", cmd);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: imscx --peer HSS_IDENTITY@ADDRESS:PORT [--identity ID] [--realm REALM]\n"
               "             [--port N] [--listen ADDR] [--timeout MS] [--server SIP_URI] COMMAND... | -\n"
               "see the header of hss/imscx.c or README for commands\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "peer", required_argument, NULL, 'p' }, { "identity", required_argument, NULL, 'i' },
        { "realm", required_argument, NULL, 'r' }, { "port", required_argument, NULL, 'P' },
        { "listen", required_argument, NULL, 'l' }, { "timeout", required_argument, NULL, 't' },
        { "server", required_argument, NULL, 's' }, { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    ims_diameter_cfg cfg;
    ims_diameter_peer_cfg peer;
    memset(&cfg, 0, sizeof(cfg));
    memset(&peer, 0, sizeof(peer));
    cfg.identity = "imscx.ims.lab";
    cfg.listen = "127.0.0.1";
    cfg.port = 3870;
    cfg.tc_timer = 1;
    cfg.request_timeout_ms = 3000;
    cfg.accept_unknown_peers = true;
    cfg.conf_dir = "/tmp";
    char peer_spec[512] = "";
    int o;
    ims_log_set_level(IMS_LOG_WARN);
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': snprintf(peer_spec, sizeof(peer_spec), "%s", optarg); break;
        case 'i': cfg.identity = optarg; break;
        case 'r': cfg.realm = optarg; break;
        case 'P': cfg.port = atol(optarg); break;
        case 'l': cfg.listen = optarg; break;
        case 't': cfg.request_timeout_ms = atol(optarg); break;
        case 's': snprintf(g_server, sizeof(g_server), "%s", optarg); break;
        case 'v': ims_log_set_level(IMS_LOG_DEBUG); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    char *at = strchr(peer_spec, '@'), *colon = at ? strrchr(at, ':') : NULL;
    if (!at || optind >= argc) {
        usage(stderr);
        return 2;
    }
    *at = '\0';
    peer.identity = peer_spec;
    peer.address = at + 1;
    peer.port = 3868;
    if (colon) {
        *colon = '\0';
        peer.port = atol(colon + 1);
    }
    snprintf(g_peer_id, sizeof(g_peer_id), "%s", peer_spec);
    const char *dot = strchr(peer_spec, '.');
    snprintf(g_dest_realm, sizeof(g_dest_realm), "%s", dot ? dot + 1 : peer_spec);
    if (!cfg.realm) {
        const char *d = strchr(cfg.identity, '.');
        cfg.realm = (char *)(d ? d + 1 : g_dest_realm);
    }
    cfg.peers.items = &peer;
    cfg.peers.count = 1;

    ims_signals_block();
    char err[512];
    if (ims_diameter_init(&cfg, "imscx", err, sizeof(err)) || ims_diameter_start(err, sizeof(err))) {
        fprintf(stderr, "imscx: %s\n", err);
        return 1;
    }
    struct disp_when when;
    struct disp_hdl *h1 = NULL, *h2 = NULL;
    memset(&when, 0, sizeof(when));
    when.app = ims_cx_dict.app;
    when.command = ims_cx_dict.ppr;
    fd_disp_register(on_push, DISP_HOW_CC, &when, NULL, &h1);
    when.command = ims_cx_dict.rtr;
    fd_disp_register(on_push, DISP_HOW_CC, &when, NULL, &h2);

    /* Wait for the connection to the HSS (CER/CEA). */
    for (int i = 0; i < 100 && !ims_diameter_peer_is_open(g_peer_id); i++)
        usleep(100000);
    int rc = 0;
    if (!ims_diameter_peer_is_open(g_peer_id)) {
        fprintf(stderr, "imscx: no connection to %s at %s:%ld\n", g_peer_id, peer.address, peer.port);
        rc = 1;
    } else if (strcmp(argv[optind], "-") == 0) {
        char line[2048];
        while (fgets(line, sizeof(line), stdin))
            if (run_line(line))
                rc = 1;
    } else {
        char line[2048] = "";
        for (int i = optind; i < argc; i++) {
            strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
            strcat(line, " ");
        }
        rc = run_line(line) ? 1 : 0;
    }
    ims_diameter_stop();
    return rc;
}
