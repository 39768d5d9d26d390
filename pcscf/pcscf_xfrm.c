/*
 * pcscf_xfrm: ESP transport SAs and their policies through the kernel's XFRM netlink interface
 * (linux/xfrm.h), with libmnl. What and why: pcscf_xfrm.h.
 *
 * References: TS 33.203 §7.1 (SA parameters, ports), Annex H (algorithm names), RFC 4303 (ESP),
 * RFC 2404 / RFC 2403 (HMAC-SHA-1-96 / HMAC-MD5-96), RFC 3602 (AES-CBC), RFC 2451 (3DES-CBC).
 * Verified on Debian 12's kernel 6.1 (tests/vm/test_xfrm.c):
 *  - a policy selector with proto 0 and ports matches UDP and TCP alike (the flow carries the
 *    ports of both), so one policy per SA covers both transports;
 *  - the kernel counts an SA's add-expiry from its creation: an update (UPDSA) that should end the
 *    SA `n` seconds from now must give the age of the SA + n (set_lifetime below);
 *  - byte and packet limits of 0 mean "expire now": unlimited is XFRM_INF.
 */
#include "pcscf_xfrm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>

#define REPLAY_WINDOW 32 /* RFC 4303 §3.4.3 anti-replay, on the SAs we receive on */
#define SOFT_BEFORE_HARD 5
#define DUMP_BUF_SIZE 32768 /* one netlink dump datagram; larger than a page */

struct pcscf_xfrm {
    struct mnl_socket *nl;
    uint32_t portid;
    uint32_t seq;
    uint32_t tag;
    char buf[DUMP_BUF_SIZE];
};

/* sec-agree names (TS 33.203 Annex H) -> Linux crypto API names and key lengths. */
typedef struct {
    const char *name;
    const char *kernel;
    size_t key_len;
} alg_row;

static const alg_row auth_algs[] = {
    {"hmac-sha-1-96", "hmac(sha1)", 20},
    {"hmac-md5-96", "hmac(md5)", 16},
};
static const alg_row enc_algs[] = {
    {"null", "ecb(cipher_null)", 0},
    {"aes-cbc", "cbc(aes)", 16},
    {"des-ede3-cbc", "cbc(des3_ede)", 24},
};
#define AUTH_TRUNC_BITS 96

/* An SA in the kernel's terms: addresses, and (once checked) the algorithms. */
typedef struct {
    uint16_t family;
    xfrm_address_t src, dst;
    const alg_row *auth, *enc;
} sa_kernel;

static const alg_row *find_alg(const alg_row *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

/* "SA spi 0x1234 10.0.0.2:5100 -> 10.0.0.1:5200 in": how every error names the SA. */
static void sa_name(const pcscf_xfrm_sa *sa, char *out, size_t outlen)
{
    snprintf(out, outlen, "SA spi 0x%x %s:%u -> %s:%u %s", sa->spi, sa->src, sa->sport, sa->dst,
             sa->dport, sa->dir == PCSCF_XFRM_OUT ? "out" : "in");
}

static int fail(char *err, size_t errlen, const char *what, const pcscf_xfrm_sa *sa, int e)
{
    char name[160] = "";
    if (sa)
        sa_name(sa, name, sizeof name);
    const char *hint = "";
    if (e == EPERM)
        hint = " (needs CAP_NET_ADMIN)";
    else if (e == EPROTONOSUPPORT)
        hint = " (this kernel has no ESP: modules esp4/esp6)";
    else if (e == ENOSYS)
        hint = " (the kernel lacks the algorithm's crypto module)";
    snprintf(err, errlen, "%s%s%s: %s%s", what, sa ? " " : "", name, strerror(e), hint);
    return -1;
}

static int parse_addrs(const pcscf_xfrm_sa *sa, sa_kernel *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, sa->src, &a->src.a4) == 1 && inet_pton(AF_INET, sa->dst, &a->dst.a4) == 1) {
        a->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, sa->src, a->src.a6) == 1 && inet_pton(AF_INET6, sa->dst, a->dst.a6) == 1) {
        a->family = AF_INET6;
        return 0;
    }
    char name[160];
    sa_name(sa, name, sizeof name);
    snprintf(err, errlen, "%s: addresses must be two IPv4 or two IPv6 literals", name);
    return -1;
}

/* Checks everything the kernel would refuse less clearly. */
static int check_sa(const pcscf_xfrm_sa *sa, sa_kernel *a, char *err, size_t errlen)
{
    char name[160];
    sa_name(sa, name, sizeof name);
    if (parse_addrs(sa, a, err, errlen) < 0)
        return -1;
    if (sa->spi < 256) { /* RFC 4303 §2.1: 1-255 reserved, 0 never on the wire */
        snprintf(err, errlen, "%s: SPI below 256", name);
        return -1;
    }
    if (sa->sport == 0 || sa->dport == 0) {
        snprintf(err, errlen, "%s: port 0", name);
        return -1;
    }
    a->auth = find_alg(auth_algs, sizeof auth_algs / sizeof auth_algs[0], sa->alg);
    a->enc = find_alg(enc_algs, sizeof enc_algs / sizeof enc_algs[0], sa->ealg);
    if (!a->auth || !a->enc) {
        snprintf(err, errlen, "%s: unsupported %s \"%.16s\"", name, a->auth ? "ealg" : "alg",
                 a->auth ? sa->ealg : sa->alg);
        return -1;
    }
    if (sa->auth_key_len != a->auth->key_len || sa->enc_key_len != a->enc->key_len) {
        snprintf(err, errlen, "%s: key lengths %zu/%zu bytes, %s/%s need %zu/%zu", name,
                 sa->auth_key_len, sa->enc_key_len, sa->alg, sa->ealg, a->auth->key_len,
                 a->enc->key_len);
        return -1;
    }
    return 0;
}

/* Sends one request and reads until its ACK / error / end of dump; cb (may be NULL) sees the
 * data messages. 0, or -errno (the kernel's NLMSG_ERROR code). */
static int talk(pcscf_xfrm *x, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    uint32_t seq = nlh->nlmsg_seq = ++x->seq;
    if (mnl_socket_sendto(x->nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    int ret;
    do {
        ssize_t n = mnl_socket_recvfrom(x->nl, x->buf, sizeof x->buf);
        if (n < 0)
            return -errno;
        ret = mnl_cb_run(x->buf, (size_t)n, seq, x->portid, cb, data);
    } while (ret == MNL_CB_OK);
    return ret < 0 ? -errno : 0;
}

static struct nlmsghdr *new_request(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    return nlh;
}

static void no_limits(struct xfrm_lifetime_cfg *lft)
{
    lft->soft_byte_limit = lft->hard_byte_limit = XFRM_INF;
    lft->soft_packet_limit = lft->hard_packet_limit = XFRM_INF;
}

/* The SA's flow: src:sport -> dst:dport, any transport protocol (proto 0: UDP and TCP). */
static void fill_selector(struct xfrm_selector *sel, const pcscf_xfrm_sa *sa, const sa_kernel *a)
{
    sel->family = a->family;
    sel->saddr = a->src;
    sel->daddr = a->dst;
    sel->prefixlen_s = sel->prefixlen_d = a->family == AF_INET ? 32 : 128;
    sel->sport = htons(sa->sport);
    sel->dport = htons(sa->dport);
    sel->sport_mask = sel->dport_mask = 0xffff;
    sel->proto = 0;
}

/* XFRM_MSG_NEWSA / UPDSA with the whole SA (k: from check_sa); hard: seconds after creation
 * (0: none). */
static int put_state(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, const sa_kernel *k, uint16_t type,
                     uint64_t hard)
{
    char buf[1024];
    struct nlmsghdr *nlh = new_request(buf, type, NLM_F_ACK);
    struct xfrm_usersa_info *info = mnl_nlmsg_put_extra_header(nlh, sizeof *info);
    fill_selector(&info->sel, sa, k);
    info->id.daddr = k->dst;
    info->id.spi = htonl(sa->spi);
    info->id.proto = IPPROTO_ESP;
    info->saddr = k->src;
    info->family = k->family;
    info->mode = XFRM_MODE_TRANSPORT;
    info->reqid = x->tag;
    info->replay_window = REPLAY_WINDOW;
    no_limits(&info->lft);
    info->lft.hard_add_expires_seconds = hard;
    info->lft.soft_add_expires_seconds = hard > 2 * SOFT_BEFORE_HARD ? hard - SOFT_BEFORE_HARD : hard;

    char algbuf[sizeof(struct xfrm_algo_auth) + PCSCF_XFRM_KEY_MAX];
    memset(algbuf, 0, sizeof algbuf);
    struct xfrm_algo_auth *aa = (struct xfrm_algo_auth *)algbuf;
    snprintf(aa->alg_name, sizeof aa->alg_name, "%s", k->auth->kernel);
    aa->alg_key_len = (unsigned)(sa->auth_key_len * 8);
    aa->alg_trunc_len = AUTH_TRUNC_BITS;
    memcpy(aa->alg_key, sa->auth_key, sa->auth_key_len);
    mnl_attr_put(nlh, XFRMA_ALG_AUTH_TRUNC, sizeof *aa + sa->auth_key_len, aa);

    memset(algbuf, 0, sizeof algbuf);
    struct xfrm_algo *ea = (struct xfrm_algo *)algbuf;
    snprintf(ea->alg_name, sizeof ea->alg_name, "%s", k->enc->kernel);
    ea->alg_key_len = (unsigned)(sa->enc_key_len * 8);
    memcpy(ea->alg_key, sa->enc_key, sa->enc_key_len);
    mnl_attr_put(nlh, XFRMA_ALG_CRYPT, sizeof *ea + sa->enc_key_len, ea);

    int ret = talk(x, nlh, NULL, NULL);
    /* Keys do not stay on the stack. */
    explicit_bzero(algbuf, sizeof algbuf);
    explicit_bzero(buf, sizeof buf);
    return ret;
}

static uint8_t policy_dir(const pcscf_xfrm_sa *sa)
{
    return sa->dir == PCSCF_XFRM_OUT ? XFRM_POLICY_OUT : XFRM_POLICY_IN;
}

/* The policy binding the SA's flow to this SA (template: ESP transport, its SPI, our reqid,
 * required). */
static int put_policy(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, const sa_kernel *a)
{
    char buf[512];
    struct nlmsghdr *nlh = new_request(buf, XFRM_MSG_NEWPOLICY, NLM_F_ACK);
    struct xfrm_userpolicy_info *p = mnl_nlmsg_put_extra_header(nlh, sizeof *p);
    fill_selector(&p->sel, sa, a);
    no_limits(&p->lft);
    p->dir = policy_dir(sa);
    p->action = XFRM_POLICY_ALLOW;
    p->share = XFRM_SHARE_ANY;
    struct xfrm_user_tmpl t;
    memset(&t, 0, sizeof t);
    t.id.daddr = a->dst;
    t.id.spi = htonl(sa->spi);
    t.id.proto = IPPROTO_ESP;
    t.family = a->family;
    t.saddr = a->src;
    t.reqid = x->tag;
    t.mode = XFRM_MODE_TRANSPORT;
    t.optional = 0; /* level required */
    t.aalgos = t.ealgos = t.calgos = ~0u;
    mnl_attr_put(nlh, XFRMA_TMPL, sizeof t, &t);
    return talk(x, nlh, NULL, NULL);
}

static int del_state_id(pcscf_xfrm *x, uint16_t family, const xfrm_address_t *dst, uint32_t spi_be)
{
    char buf[256];
    struct nlmsghdr *nlh = new_request(buf, XFRM_MSG_DELSA, NLM_F_ACK);
    struct xfrm_usersa_id *id = mnl_nlmsg_put_extra_header(nlh, sizeof *id);
    id->daddr = *dst;
    id->spi = spi_be;
    id->family = family;
    id->proto = IPPROTO_ESP;
    return talk(x, nlh, NULL, NULL);
}

/* By selector (sel != NULL) or by the kernel's index. */
static int del_policy(pcscf_xfrm *x, const struct xfrm_selector *sel, uint32_t index, uint8_t dir)
{
    char buf[256];
    struct nlmsghdr *nlh = new_request(buf, XFRM_MSG_DELPOLICY, NLM_F_ACK);
    struct xfrm_userpolicy_id *id = mnl_nlmsg_put_extra_header(nlh, sizeof *id);
    if (sel)
        id->sel = *sel;
    id->index = index;
    id->dir = dir;
    return talk(x, nlh, NULL, NULL);
}

pcscf_xfrm *pcscf_xfrm_open(uint32_t tag, char *err, size_t errlen)
{
    if (tag == 0) {
        snprintf(err, errlen, "xfrm: tag 0 is not allowed (reqid 0 means any)");
        return NULL;
    }
    pcscf_xfrm *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "xfrm: out of memory");
        return NULL;
    }
    x->tag = tag;
    x->seq = (uint32_t)time(NULL);
    x->nl = mnl_socket_open(NETLINK_XFRM);
    if (!x->nl || mnl_socket_bind(x->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        fail(err, errlen, "xfrm: netlink socket", NULL, errno);
        pcscf_xfrm_close(x);
        return NULL;
    }
    x->portid = mnl_socket_get_portid(x->nl);
    return x;
}

void pcscf_xfrm_close(pcscf_xfrm *x)
{
    if (!x)
        return;
    if (x->nl)
        mnl_socket_close(x->nl);
    free(x);
}

int pcscf_xfrm_add(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, char *err, size_t errlen)
{
    sa_kernel a;
    if (check_sa(sa, &a, err, errlen) < 0)
        return -1;
    int ret = put_state(x, sa, &a, XFRM_MSG_NEWSA, sa->lifetime);
    if (ret < 0)
        return fail(err, errlen, "add", sa, -ret);
    ret = put_policy(x, sa, &a);
    if (ret < 0) {
        del_state_id(x, a.family, &a.dst, htonl(sa->spi)); /* nothing of it stays */
        return fail(err, errlen, "add policy of", sa, -ret);
    }
    return 0;
}

/* XFRM_MSG_GETSA of one SA: the kernel's view (counters, creation time, reqid). */
typedef struct {
    int found;
    struct xfrm_usersa_info info;
} got_sa;

static int got_sa_cb(const struct nlmsghdr *nlh, void *data)
{
    got_sa *g = data;
    if (nlh->nlmsg_type == XFRM_MSG_NEWSA &&
        mnl_nlmsg_get_payload_len(nlh) >= sizeof(struct xfrm_usersa_info)) {
        memcpy(&g->info, mnl_nlmsg_get_payload(nlh), sizeof g->info);
        g->found = 1;
    }
    return MNL_CB_OK;
}

static int get_sa(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, got_sa *g, char *err, size_t errlen)
{
    sa_kernel a;
    if (parse_addrs(sa, &a, err, errlen) < 0)
        return -1;
    char buf[256];
    struct nlmsghdr *nlh = new_request(buf, XFRM_MSG_GETSA, NLM_F_ACK);
    struct xfrm_usersa_id *id = mnl_nlmsg_put_extra_header(nlh, sizeof *id);
    id->daddr = a.dst;
    id->spi = htonl(sa->spi);
    id->family = a.family;
    id->proto = IPPROTO_ESP;
    memset(g, 0, sizeof *g);
    int ret = talk(x, nlh, got_sa_cb, g);
    if (ret < 0)
        return fail(err, errlen, "get", sa, -ret);
    if (!g->found)
        return fail(err, errlen, "get", sa, ESRCH);
    return 0;
}

int pcscf_xfrm_set_lifetime(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, unsigned seconds, char *err,
                            size_t errlen)
{
    sa_kernel a;
    if (check_sa(sa, &a, err, errlen) < 0)
        return -1;
    got_sa g;
    if (get_sa(x, sa, &g, err, errlen) < 0)
        return -1;
    if (g.info.reqid != x->tag) {
        char name[160];
        sa_name(sa, name, sizeof name);
        snprintf(err, errlen, "set lifetime of %s: not ours (reqid %u, ours %u)", name, g.info.reqid,
                 x->tag);
        return -1;
    }
    /* The kernel's add-expiry counts from the SA's creation (curlft.add_time, wall clock). */
    time_t now = time(NULL);
    uint64_t age = (uint64_t)now > g.info.curlft.add_time ? (uint64_t)now - g.info.curlft.add_time : 0;
    int ret = put_state(x, sa, &a, XFRM_MSG_UPDSA, seconds ? age + seconds : 0);
    if (ret < 0)
        return fail(err, errlen, "update lifetime of", sa, -ret);
    return 0;
}

int pcscf_xfrm_del(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, char *err, size_t errlen)
{
    sa_kernel a;
    if (parse_addrs(sa, &a, err, errlen) < 0)
        return -1;
    /* Policy first: between the two deletions the flow is refused (no SA), never sent in clear. */
    struct xfrm_selector sel;
    memset(&sel, 0, sizeof sel);
    fill_selector(&sel, sa, &a);
    int ret = del_policy(x, &sel, 0, policy_dir(sa));
    if (ret < 0 && ret != -ENOENT)
        return fail(err, errlen, "delete policy of", sa, -ret);
    ret = del_state_id(x, a.family, &a.dst, htonl(sa->spi));
    if (ret < 0 && ret != -ESRCH && ret != -ENOENT)
        return fail(err, errlen, "delete", sa, -ret);
    return 0;
}

/* The out policy "nothing from local:sport to ue, any port, any protocol": action block, with a
 * template carrying our reqid only so that flush_ours() finds it (a blocking policy never uses
 * its template). */
int pcscf_xfrm_block(pcscf_xfrm *x, const char *local, uint16_t sport, const char *ue, bool on, char *err,
                     size_t errlen)
{
    pcscf_xfrm_sa sa;
    memset(&sa, 0, sizeof sa);
    snprintf(sa.src, sizeof sa.src, "%s", local);
    snprintf(sa.dst, sizeof sa.dst, "%s", ue);
    sa.sport = sport;
    sa.dir = PCSCF_XFRM_OUT;
    sa_kernel a;
    if (parse_addrs(&sa, &a, err, errlen) < 0)
        return -1;
    struct xfrm_selector sel;
    memset(&sel, 0, sizeof sel);
    fill_selector(&sel, &sa, &a);
    sel.dport = sel.dport_mask = 0;
    int ret;
    if (!on) {
        ret = del_policy(x, &sel, 0, XFRM_POLICY_OUT);
        if (ret < 0 && ret != -ENOENT)
            return fail(err, errlen, "delete the block policy to", &sa, -ret);
        return 0;
    }
    char buf[512];
    struct nlmsghdr *nlh = new_request(buf, XFRM_MSG_NEWPOLICY, NLM_F_ACK);
    struct xfrm_userpolicy_info *p = mnl_nlmsg_put_extra_header(nlh, sizeof *p);
    p->sel = sel;
    no_limits(&p->lft);
    p->dir = XFRM_POLICY_OUT;
    p->action = XFRM_POLICY_BLOCK;
    p->share = XFRM_SHARE_ANY;
    struct xfrm_user_tmpl t;
    memset(&t, 0, sizeof t);
    t.id.daddr = a.dst;
    t.id.proto = IPPROTO_ESP;
    t.family = a.family;
    t.saddr = a.src;
    t.reqid = x->tag;
    t.mode = XFRM_MODE_TRANSPORT;
    t.aalgos = t.ealgos = t.calgos = ~0u;
    mnl_attr_put(nlh, XFRMA_TMPL, sizeof t, &t);
    ret = talk(x, nlh, NULL, NULL);
    if (ret < 0 && ret != -EEXIST)
        return fail(err, errlen, "add the block policy to", &sa, -ret);
    return 0;
}

/* flush_ours: a dump collects what carries our tag, the deletions follow the dump. */
typedef struct {
    uint32_t tag;
    size_t n, cap, size;
    void *items; /* struct xfrm_usersa_id or struct xfrm_userpolicy_id */
} id_list;

static void *list_add(id_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void *bigger = realloc(l->items, cap * l->size);
        if (!bigger)
            return NULL;
        l->items = bigger;
        l->cap = cap;
    }
    void *item = (char *)l->items + l->n++ * l->size;
    memset(item, 0, l->size);
    return item;
}

static int our_sa_cb(const struct nlmsghdr *nlh, void *data)
{
    id_list *l = data;
    if (nlh->nlmsg_type != XFRM_MSG_NEWSA || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct xfrm_usersa_info))
        return MNL_CB_OK;
    struct xfrm_usersa_info info; /* copied: netlink aligns to 4 bytes, the struct needs 8 */
    memcpy(&info, mnl_nlmsg_get_payload(nlh), sizeof info);
    if (info.reqid != l->tag)
        return MNL_CB_OK;
    struct xfrm_usersa_id *id = list_add(l);
    if (!id)
        return MNL_CB_ERROR;
    id->daddr = info.id.daddr;
    id->spi = info.id.spi;
    id->family = info.family;
    id->proto = info.id.proto;
    return MNL_CB_OK;
}

static int tmpl_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tmpl = data;
    if (mnl_attr_get_type(attr) == XFRMA_TMPL)
        *tmpl = attr;
    return MNL_CB_OK;
}

static int our_policy_cb(const struct nlmsghdr *nlh, void *data)
{
    id_list *l = data;
    if (nlh->nlmsg_type != XFRM_MSG_NEWPOLICY ||
        mnl_nlmsg_get_payload_len(nlh) < sizeof(struct xfrm_userpolicy_info))
        return MNL_CB_OK;
    struct xfrm_userpolicy_info p; /* copied: netlink aligns to 4 bytes, the struct needs 8 */
    memcpy(&p, mnl_nlmsg_get_payload(nlh), sizeof p);
    const struct nlattr *tmpl = NULL;
    mnl_attr_parse(nlh, sizeof p, tmpl_attr_cb, &tmpl);
    if (!tmpl)
        return MNL_CB_OK;
    /* XFRMA_TMPL is an array of templates: ours when one carries our reqid. */
    const char *t = mnl_attr_get_payload(tmpl);
    size_t count = mnl_attr_get_payload_len(tmpl) / sizeof(struct xfrm_user_tmpl), i;
    for (i = 0; i < count; i++) {
        struct xfrm_user_tmpl one;
        memcpy(&one, t + i * sizeof one, sizeof one);
        if (one.reqid == l->tag)
            break;
    }
    if (i == count)
        return MNL_CB_OK;
    struct xfrm_userpolicy_id *id = list_add(l);
    if (!id)
        return MNL_CB_ERROR;
    id->index = p.index;
    id->dir = p.dir;
    return MNL_CB_OK;
}

/* Dumps (GETSA or GETPOLICY) and deletes the entries with our tag; adds them to *count. */
static int flush_kind(pcscf_xfrm *x, uint16_t dump_type, unsigned *count)
{
    int policies = dump_type == XFRM_MSG_GETPOLICY;
    id_list l = {.tag = x->tag,
                 .size = policies ? sizeof(struct xfrm_userpolicy_id) : sizeof(struct xfrm_usersa_id)};
    char buf[256];
    int ret = talk(x, new_request(buf, dump_type, NLM_F_DUMP), policies ? our_policy_cb : our_sa_cb, &l);
    for (size_t i = 0; ret == 0 && i < l.n; i++) {
        int r;
        if (policies) {
            const struct xfrm_userpolicy_id *p = (const struct xfrm_userpolicy_id *)l.items + i;
            r = del_policy(x, NULL, p->index, p->dir);
        } else {
            const struct xfrm_usersa_id *s = (const struct xfrm_usersa_id *)l.items + i;
            r = del_state_id(x, s->family, &s->daddr, s->spi);
        }
        if (r == 0)
            (*count)++;
        else if (r != -ENOENT && r != -ESRCH) /* gone meanwhile (expired) */
            ret = r;
    }
    free(l.items);
    return ret;
}

int pcscf_xfrm_flush_ours(pcscf_xfrm *x, unsigned *deleted, char *err, size_t errlen)
{
    unsigned count = 0;
    /* Policies first (as in del): no moment where our flows would leave in clear. */
    int ret = flush_kind(x, XFRM_MSG_GETPOLICY, &count);
    if (ret == 0)
        ret = flush_kind(x, XFRM_MSG_GETSA, &count);
    if (deleted)
        *deleted = count;
    if (ret < 0) {
        char what[64];
        snprintf(what, sizeof what, "flush of our entries (reqid %u)", x->tag);
        return fail(err, errlen, what, NULL, -ret);
    }
    return 0;
}

int pcscf_xfrm_counters(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, uint64_t *packets, uint64_t *bytes,
                        char *err, size_t errlen)
{
    got_sa g;
    if (get_sa(x, sa, &g, err, errlen) < 0)
        return -1;
    if (packets)
        *packets = g.info.curlft.packets;
    if (bytes)
        *bytes = g.info.curlft.bytes;
    return 0;
}
