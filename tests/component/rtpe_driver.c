/*
 * rtpe_driver: drives the real common/ims_rtpengine.c client from a test script
 * (tests/component/test_rtpengine.py), on its own su_root loop, as the P-CSCF would.
 *
 * Commands come one per line on stdin, as space-separated key=value tokens; every event goes to
 * stdout as one JSON line:
 *   create timeout=MS retries=N dead=S ping=S prefix=P addr=HOST:PORT [addr=...]  -> created | error
 *   send id=ID cmd=offer|answer|delete|query|ping [call_id= from_tag= to_tag= via_branch=
 *        sdp=@FILE flag=F... replace=R... sdes=S... ice= dtls= media_address= received_from=
 *        direction=IF1,IF2 delete_delay=N]                                -> sent | send_failed
 *        and later                                                        -> result
 *   cancel id=ID                                                          -> cancelled
 *   health                                                                -> health
 *   metrics                                                               -> metrics
 *   destroy / quit
 * The loop keeps running while commands are read, so answers and timers are served in between.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include "ims_clock.h"
#include "ims_http.h"
#include "ims_log.h"
#include "ims_rtpengine.h"

#define MAX_TOK 64
#define MAX_REQ 256

typedef struct {
    char id[64];
    ims_rtpe_req *h;
    int64_t t0_ms;
} slot;

static su_root_t *root;
static ims_rtpe *rtpe;
static slot slots[MAX_REQ];
static char inbuf[1 << 20];
static size_t inlen;

static void emit(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
    json_object_put(o);
}

static json_object *event(const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event", json_object_new_string(name));
    return o;
}

static json_object *benc_json(const ims_benc *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case IMS_BENC_INT:
        return json_object_new_int64(v->num);
    case IMS_BENC_STR:
        return json_object_new_string_len(v->str, (int)v->len);
    case IMS_BENC_LIST: {
        json_object *a = json_object_new_array();
        for (const ims_benc *it = v->first; it; it = it->next)
            json_object_array_add(a, benc_json(it));
        return a;
    }
    case IMS_BENC_DICT: {
        json_object *o = json_object_new_object();
        for (const ims_benc *it = v->first; it; it = it->next)
            json_object_object_add(o, it->key, benc_json(it));
        return o;
    }
    }
    return NULL;
}

static void on_result(void *arg, const ims_rtpe_result *res)
{
    slot *s = arg;
    static const char *const st[] = { "ok", "error", "no_answer" };
    json_object *o = event("result");
    json_object_object_add(o, "id", json_object_new_string(s->id));
    json_object_object_add(o, "status", json_object_new_string(st[res->status]));
    if (res->error_reason)
        json_object_object_add(o, "error", json_object_new_string(res->error_reason));
    if (res->sdp)
        json_object_object_add(o, "sdp", json_object_new_string_len(res->sdp, (int)res->sdp_len));
    if (res->instance)
        json_object_object_add(o, "instance", json_object_new_string(res->instance));
    json_object_object_add(o, "rtt_ms", json_object_new_int((int)res->rtt_ms));
    json_object_object_add(o, "attempts", json_object_new_int((int)res->attempts));
    json_object_object_add(o, "elapsed_ms", json_object_new_int64(ims_monotonic_ms() - s->t0_ms));
    if (res->reply)
        json_object_object_add(o, "reply", benc_json(res->reply));
    emit(o);
    s->h = NULL;
    s->id[0] = '\0';
}

static slot *find_slot(const char *id)
{
    for (size_t i = 0; i < MAX_REQ; i++)
        if (slots[i].id[0] && strcmp(slots[i].id, id) == 0)
            return &slots[i];
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    *len = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

static void do_create(char **tok, int n)
{
    ims_rtpe_config cfg;
    ims_rtpe_config_init(&cfg);
    const char *addrs[IMS_RTPE_MAX_INSTANCES + 1];
    size_t na = 0;
    for (int i = 1; i < n; i++) {
        char *v = strchr(tok[i], '=');
        if (!v)
            continue;
        *v++ = '\0';
        if (!strcmp(tok[i], "addr") && na <= IMS_RTPE_MAX_INSTANCES)
            addrs[na++] = v;
        else if (!strcmp(tok[i], "timeout"))
            cfg.timeout_ms = (unsigned)atoi(v);
        else if (!strcmp(tok[i], "retries"))
            cfg.retries = (unsigned)atoi(v);
        else if (!strcmp(tok[i], "dead"))
            cfg.dead_s = (unsigned)atoi(v);
        else if (!strcmp(tok[i], "ping"))
            cfg.ping_s = (unsigned)atoi(v);
        else if (!strcmp(tok[i], "prefix"))
            cfg.metrics_prefix = v;
    }
    cfg.addresses = addrs;
    cfg.n_addresses = na;
    char err[256];
    ims_rtpe_destroy(rtpe);
    rtpe = ims_rtpe_create(root, &cfg, err, sizeof(err));
    json_object *o = event(rtpe ? "created" : "error");
    if (!rtpe)
        json_object_object_add(o, "error", json_object_new_string(err));
    emit(o);
}

static void do_send(char **tok, int n)
{
    ims_rtpe_request rq;
    ims_rtpe_request_init(&rq, IMS_RTPE_PING);
    const char *flags[16], *replace[8], *sdes[8];
    char *sdp = NULL, *dir = NULL;
    const char *id = "?";
    for (int i = 1; i < n; i++) {
        char *v = strchr(tok[i], '=');
        if (!v)
            continue;
        *v++ = '\0';
        const char *k = tok[i];
        if (!strcmp(k, "id"))
            id = v;
        else if (!strcmp(k, "cmd"))
            rq.command = !strcmp(v, "offer") ? IMS_RTPE_OFFER : !strcmp(v, "answer") ? IMS_RTPE_ANSWER
                       : !strcmp(v, "delete") ? IMS_RTPE_DELETE : !strcmp(v, "query") ? IMS_RTPE_QUERY
                       : IMS_RTPE_PING;
        else if (!strcmp(k, "call_id"))
            rq.call_id = v;
        else if (!strcmp(k, "from_tag"))
            rq.from_tag = v;
        else if (!strcmp(k, "to_tag"))
            rq.to_tag = v;
        else if (!strcmp(k, "via_branch"))
            rq.via_branch = v;
        else if (!strcmp(k, "sdp") && v[0] == '@' && !sdp)
            sdp = read_file(v + 1, &rq.sdp_len), rq.sdp = sdp;
        else if (!strcmp(k, "flag") && rq.n_flags < 16)
            flags[rq.n_flags++] = v;
        else if (!strcmp(k, "replace") && rq.n_replace < 8)
            replace[rq.n_replace++] = v;
        else if (!strcmp(k, "sdes") && rq.n_sdes < 8)
            sdes[rq.n_sdes++] = v;
        else if (!strcmp(k, "ice"))
            rq.ice = v;
        else if (!strcmp(k, "dtls"))
            rq.dtls = v;
        else if (!strcmp(k, "media_address"))
            rq.media_address = v;
        else if (!strcmp(k, "received_from"))
            rq.received_from = v;
        else if (!strcmp(k, "delete_delay"))
            rq.delete_delay = atoi(v);
        else if (!strcmp(k, "direction") && (dir = strchr(v, ','))) {
            *dir = '\0';
            rq.direction[0] = v;
            rq.direction[1] = dir + 1;
        }
    }
    rq.flags = flags;
    rq.replace = replace;
    rq.sdes = sdes;
    slot *s = NULL;
    for (size_t i = 0; i < MAX_REQ && !s; i++)
        if (!slots[i].id[0])
            s = &slots[i];
    char err[256] = "no free slot or no client";
    if (s && rtpe) {
        snprintf(s->id, sizeof(s->id), "%s", id);
        s->t0_ms = ims_monotonic_ms();
        s->h = ims_rtpe_send(rtpe, &rq, on_result, s, err, sizeof(err));
        if (!s->h)
            s->id[0] = '\0';
    }
    json_object *o = event(s && s->h ? "sent" : "send_failed");
    json_object_object_add(o, "id", json_object_new_string(id));
    if (!s || !s->h)
        json_object_object_add(o, "error", json_object_new_string(err));
    emit(o);
    free(sdp);
}

static void do_health(void)
{
    json_object *o = event("health");
    json_object_object_add(o, "live", json_object_new_int((int)ims_rtpe_live(rtpe)));
    json_object_object_add(o, "pending", json_object_new_int((int)ims_rtpe_pending(rtpe)));
    json_object_object_add(o, "calls", json_object_new_int((int)ims_rtpe_calls(rtpe)));
    json_object *a = json_object_new_array();
    ims_rtpe_instance_info info;
    for (size_t i = 0; ims_rtpe_instance(rtpe, i, &info) == 0; i++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "address", json_object_new_string(info.address));
        json_object_object_add(x, "up", json_object_new_boolean(info.up));
        json_object_object_add(x, "requests", json_object_new_int64((int64_t)info.requests));
        json_object_object_add(x, "answers", json_object_new_int64((int64_t)info.answers));
        json_object_object_add(x, "errors", json_object_new_int64((int64_t)info.errors));
        json_object_object_add(x, "timeouts", json_object_new_int64((int64_t)info.timeouts));
        json_object_array_add(a, x);
    }
    json_object_object_add(o, "instances", a);
    emit(o);
}

static void run_line(char *line)
{
    char *tok[MAX_TOK];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t && n < MAX_TOK;
         t = strtok_r(NULL, " \t\r", &save))
        tok[n++] = t;
    if (n == 0)
        return;
    if (!strcmp(tok[0], "create")) {
        do_create(tok, n);
    } else if (!strcmp(tok[0], "send")) {
        do_send(tok, n);
    } else if (!strcmp(tok[0], "cancel") && n > 1 && !strncmp(tok[1], "id=", 3)) {
        slot *s = find_slot(tok[1] + 3);
        json_object *o = event("cancelled");
        json_object_object_add(o, "found", json_object_new_boolean(s != NULL));
        if (s) {
            ims_rtpe_cancel(s->h);
            s->h = NULL;
            s->id[0] = '\0';
        }
        emit(o);
    } else if (!strcmp(tok[0], "health")) {
        do_health();
    } else if (!strcmp(tok[0], "metrics")) {
        char *m = ims_metrics_render();
        json_object *o = event("metrics");
        json_object_object_add(o, "text", json_object_new_string(m ? m : ""));
        emit(o);
        free(m);
    } else if (!strcmp(tok[0], "destroy")) {
        ims_rtpe_destroy(rtpe);
        rtpe = NULL;
        memset(slots, 0, sizeof(slots));
        emit(event("destroyed"));
    } else if (!strcmp(tok[0], "quit")) {
        su_root_break(root);
    } else {
        json_object *o = event("error");
        json_object_object_add(o, "error", json_object_new_string("unknown command"));
        emit(o);
    }
}

static int on_stdin(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    (void)magic;
    (void)w;
    (void)arg;
    ssize_t n = read(0, inbuf + inlen, sizeof(inbuf) - 1 - inlen);
    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return 0;
        su_root_break(root);
        return 0;
    }
    inlen += (size_t)n;
    char *nl;
    while ((nl = memchr(inbuf, '\n', inlen))) {
        *nl = '\0';
        run_line(inbuf);
        size_t used = (size_t)(nl + 1 - inbuf);
        memmove(inbuf, nl + 1, inlen - used);
        inlen -= used;
    }
    if (inlen == sizeof(inbuf) - 1)
        inlen = 0;      /* a line longer than the buffer: dropped */
    return 0;
}

int main(void)
{
    if (getenv("RTPE_DRIVER_DEBUG"))
        ims_log_set_level(IMS_LOG_DEBUG);
    if (su_init() != 0 || !(root = su_root_create(NULL)))
        return 1;
    su_wait_t w[1];
    int idx;
    if (su_wait_create(w, 0, SU_WAIT_IN) < 0 || (idx = su_root_register(root, w, on_stdin, NULL, 0)) <= 0)
        return 1;
    emit(event("ready"));
    su_root_run(root);
    ims_rtpe_destroy(rtpe);
    su_root_deregister(root, idx);
    su_root_destroy(root);
    su_deinit();
    return 0;
}
