/*
 * fuzz_cx: the Cx message reader. Bytes -> freeDiameter's parser (fd_msg_parse_buffer,
 * fd_msg_parse_dict and fd_msg_parse_rules against our Cx dictionary, as on the receive path)
 * -> our readers:
 *  - common/ims_cx.c: ims_cx_get_str/_os/_u32/_i32, ims_cx_child, ims_cx_get_result,
 *    ims_cx_origin_host, and for requests what the HSS does first (hss_cx_read_str: the
 *    answer via ims_cx_new_answer, DIAMETER_MISSING_AVP / INVALID_AVP_VALUE with Failed-AVP via
 *    ims_cx_set_missing_avp / ims_cx_set_invalid_avp), then the answer is encoded
 *    (fd_msg_bufferize). libhss itself is not linked: its Cx handlers need the store;
 *  - S-CSCF: scscf_cx_parse_maa (AKA vectors, SIP Digest items), scscf_cx_parse_saa, scscf_cx_sip_answer, the
 *    User-Data of an SAA or PPR through ims_userdata_parse;
 *  - I-CSCF: icscf_cx_read_answer (Server-Name, Server-Capabilities) for UAA/LIA.
 * freeDiameter matches an answer to its request by hop-by-hop id, not by command code, so every
 * answer reader runs on every answer.
 *
 * The first 20 bytes are a Diameter header; the version and length fields are forced (1, input
 * size) so the fuzzer spends its time on AVPs. The seed corpus is real traffic between
 * build/hss/imscx and the hss (tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "icscf_context.h"
#include "ims_config.h"
#include "ims_cx.h"
#include "ims_diameter.h"
#include "ims_log.h"
#include "ims_userdata.h"
#include "scscf_cx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ims_log_set_level(IMS_LOG_ERROR);
    /* The core is initialised (configuration, dictionaries, Cx) but never started: no sockets. */
    static char dir[] = "/tmp/ims-fuzz-cx.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("fuzz_cx: mkdtemp");
        exit(1);
    }
    static ims_diameter_cfg cfg = {
        .identity = "fuzz.ims.lab", .realm = "ims.lab", .listen = "127.0.0.1", .port = 3868,
        .tc_timer = 3, .request_timeout_ms = 3000, .accept_unknown_peers = false,
    };
    cfg.conf_dir = dir;
    char err[512];
    int rc = ims_diameter_init(&cfg, "fuzzcx", err, sizeof(err));
    /* The generated freeDiameter configuration (ims_diameter.c names it) is read by now. */
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/ims-fuzzcx-%d.fd.conf", dir, (int)getpid());
    unlink(conf);
    rmdir(dir);
    if (rc) {
        fprintf(stderr, "fuzz_cx: %s\n", err);
        exit(1);
    }
    return 0;
}

static void read_common(struct msg *m)
{
    char small[8], big[600];
    uint32_t rc = 0, exp = 0, u = 0;
    int32_t i = 0;
    size_t len = 0;
    ims_cx_get_result(m, &rc, &exp);
    ims_cx_origin_host(m, big, sizeof(big));
    ims_cx_get_str(m, ims_cx_dict.session_id, small, sizeof(small));
    ims_cx_get_str(m, ims_cx_dict.user_name, big, sizeof(big));
    ims_cx_get_str(m, ims_cx_dict.public_identity, big, sizeof(big));
    ims_cx_get_os(m, ims_cx_dict.server_name, &len);
    ims_cx_get_u32(m, ims_cx_dict.auth_session_state, &u);
    ims_cx_get_i32(m, ims_cx_dict.server_assignment_type, &i);
    struct avp *vsai = ims_cx_child(m, ims_cx_dict.vsai, NULL);
    if (vsai)
        ims_cx_get_u32(vsai, ims_cx_dict.auth_app_id, &u);
    /* Every identity of an SAR / RTR (several Public-Identity AVPs). */
    for (struct avp *p = ims_cx_child(m, ims_cx_dict.public_identity, NULL); p;
         p = ims_cx_child(m, ims_cx_dict.public_identity, p))
        ;
}

static void read_user_data(struct msg *m)
{
    size_t len = 0;
    const uint8_t *xml = ims_cx_get_os(m, ims_cx_dict.user_data, &len);
    ims_subscription sub;
    char err[256];
    if (xml && ims_userdata_parse((const char *)xml, len, &sub, err, sizeof(err)) == 0)
        ims_subscription_free(&sub);
}

static void read_answer(struct msg *ans)
{
    scscf_maa *maa = malloc(sizeof(*maa));
    if (maa) {
        scscf_cx_parse_maa(ans, maa);
        free(maa);
    }
    ims_cx_sip sip_answer;
    scscf_cx_sip_answer(ans, IMS_CX_FOR_REGISTER, &sip_answer);
    if (sip_answer.status < 400 || sip_answer.status > 699 || !sip_answer.phrase)
        abort();
    scscf_saa *saa = malloc(sizeof(*saa));
    char err[256];
    if (saa) {
        if (scscf_cx_parse_saa(ans, saa, err, sizeof(err)) == 0)
            scscf_saa_free(saa);
        free(saa);
    }
    read_user_data(ans);
    icscf_cx_answer *ia = malloc(sizeof(*ia));
    if (ia) {
        icscf_cx_read_answer(ans, ia);
        icscf_cx_unreachable(ia);
        if (!icscf_cx_answer_name(ia))
            abort();
        free(ia);
    }
}

/* hss_cx_read_str's steps (hss/hss_cx.c) with the same common calls: a missing mandatory string
 * AVP gives MISSING_AVP, an unusable one (empty, too long) INVALID_AVP_VALUE, each with Failed-AVP. */
static bool read_mandatory(struct msg *qry, struct msg *ans, struct dict_object *model, char *buf,
                           size_t buflen)
{
    int rc = ims_cx_get_str(qry, model, buf, buflen);
    if (rc == 0 && buf[0])
        return true;
    if (rc == -1)
        ims_cx_set_missing_avp(ans, model, "missing");
    else
        ims_cx_set_invalid_avp(ans, ims_cx_child(qry, model, NULL), "invalid");
    return false;
}

/* What the HSS does first with a request: an answer, then its mandatory identities; a missing or
 * unusable one puts a Failed-AVP in the answer, which must still encode. */
static void answer_request(struct msg **msg)
{
    if (ims_cx_new_answer(msg))
        return;
    struct msg *ans = *msg, *qry = NULL;
    if (fd_msg_answ_getq(ans, &qry) || !qry)
        return;
    char id[512];   /* HSS_ID_MAX */
    bool ok = read_mandatory(qry, ans, ims_cx_dict.user_name, id, sizeof(id)) &&
              read_mandatory(qry, ans, ims_cx_dict.public_identity, id, sizeof(id));
    read_user_data(qry);  /* a PPR carries User-Data */
    struct avp *dr = ims_cx_child(qry, ims_cx_dict.dereg_reason, NULL);
    int32_t code = 0;
    char info[256];
    if (dr) {
        ims_cx_get_i32(dr, ims_cx_dict.reason_code, &code);
        ims_cx_get_str(dr, ims_cx_dict.reason_info, info, sizeof(info));
    }
    if (ok)
        ims_cx_set_experimental(ans, IMS_CX_ERROR_USER_UNKNOWN);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fd_msg_bufferize(ans, &buf, &len) == 0)
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 20 || size > 0xffffff)
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[0] = 1;
    buf[1] = (uint8_t)(size >> 16);
    buf[2] = (uint8_t)(size >> 8);
    buf[3] = (uint8_t)size;

    /* What the daemons' receive hook does before freeDiameter parses the bytes. */
    ims_diameter_sanitize(buf, size);
    struct msg *msg = NULL;
    if (fd_msg_parse_buffer(&buf, size, &msg)) {
        free(buf);
        return 0;
    }
    struct fd_pei pei;
    memset(&pei, 0, sizeof(pei));
    struct dictionary *dict = fd_g_config->cnf_dict;
    int rc = fd_msg_parse_dict(msg, dict, &pei);
    if (rc == 0) {
        memset(&pei, 0, sizeof(pei));
        rc = fd_msg_parse_rules(msg, dict, &pei);
    }
    if (pei.pei_avp_free && pei.pei_avp)
        fd_msg_free(pei.pei_avp);
    if (rc) {
        fd_msg_free(msg);
        return 0;
    }

    struct msg_hdr *hdr = NULL;
    if (fd_msg_hdr(msg, &hdr) == 0) {
        read_common(msg);
        if (hdr->msg_flags & CMD_FLAG_REQUEST)
            answer_request(&msg);
        else
            read_answer(msg);
    }
    fd_msg_free(msg);
    return 0;
}
