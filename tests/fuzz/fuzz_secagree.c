/*
 * fuzz_secagree: the sec-agree header parser (common/ims_secagree.c, RFC 3329 / TS 33.203
 * Annex H) that the P-CSCF runs on every Security-Client and Security-Verify a UE sends.
 *
 * The input is one header value. Invariants checked beyond "no crash, no leak":
 *  - a refused value has a message; an accepted one holds 1..IMS_SA_MAX_MECHS mechanisms;
 *  - a mechanism is supported exactly when it is an ipsec-3gpp one with why == NULL, and then its
 *    values are in range (SPIs non-zero and different, ports non-zero, q -1..1000, known alg/ealg);
 *  - a supported mechanism formats, the text parses back to one mechanism that Security-Verify
 *    matching finds equal, and it yields ESP keys of the right lengths;
 *  - a list matches itself as Security-Verify; the choice picks a supported ipsec-3gpp mechanism,
 *    or none only when there is none;
 *  - the same value as a Security-Client line of a SIP message (sofia-sip first) parses or is
 *    refused with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include "ims_secagree.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_secagree: " __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const ims_sa_alg ALGS[] = { IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_ALG_HMAC_MD5_96 };
static const ims_sa_ealg EALGS[] = { IMS_SA_EALG_AES_CBC, IMS_SA_EALG_DES_EDE3_CBC, IMS_SA_EALG_NULL };

static void check_mechanism(const ims_sa_mech *m)
{
    bool ipsec = strcmp(m->name, "ipsec-3gpp") == 0;
    CHECK(m->name[0] && strlen(m->name) < IMS_SA_MECH_NAME_MAX, "bad name");
    CHECK(m->q >= -1 && m->q <= 1000, "q %d out of range", m->q);
    CHECK(m->supported == (m->why == NULL), "%s: supported %d but why %s", m->name, m->supported,
          m->why ? m->why : "NULL");
    CHECK(!m->supported || ipsec, "%s flagged supported", m->name);
    if (!ipsec)
        return;
    CHECK(m->spi_c && m->spi_s && m->spi_c != m->spi_s && m->port_c && m->port_s,
          "ipsec-3gpp accepted with spi %u/%u ports %u/%u", m->spi_c, m->spi_s, m->port_c, m->port_s);
    if (!m->supported)
        return;
    CHECK(ims_sa_alg_name(m->alg) && ims_sa_ealg_name(m->ealg), "supported with unknown alg/ealg");

    char text[512], err[256] = "";
    CHECK(ims_secagree_format(m, text, sizeof text) > 0, "supported mechanism does not format");
    ims_sa_list back = { 0 }, one = { .n = 1, .mech = { *m } };
    CHECK(ims_secagree_parse(text, &back, err, sizeof err) == 0, "own output refused: %s: %s", text, err);
    CHECK(back.n == 1 && ims_secagree_verify_matches(&back, &one), "round trip differs: %s", text);

    uint8_t ck[16] = { 1 }, ik[16] = { 2 };
    ims_sa_keys k;
    CHECK(ims_secagree_keys(m->alg, m->ealg, ck, ik, &k) == 0, "no keys for a supported mechanism");
    CHECK(k.auth_key_len == 16 || k.auth_key_len == 20, "auth key length %zu", k.auth_key_len);
    CHECK(k.enc_key_len == 0 || k.enc_key_len == 16 || k.enc_key_len == 24, "enc key length %zu", k.enc_key_len);
    ims_secagree_keys_wipe(&k);
}

static void through_sofia(const char *value)
{
    if (strpbrk(value, "\r\n"))
        return; /* would be another header line, not this value */
    static char msgtext[IMS_SA_VALUE_MAX + 512];
    int n = snprintf(msgtext, sizeof msgtext,
                     "REGISTER sip:ims.lab SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
                     "From: <sip:a@ims.lab>;tag=1\r\nTo: <sip:a@ims.lab>\r\nCall-ID: f\r\nCSeq: 1 REGISTER\r\n"
                     "Security-Client: %s\r\nContent-Length: 0\r\n\r\n",
                     value);
    if (n < 0 || (size_t)n >= sizeof msgtext)
        return;
    msg_t *msg = msg_make(sip_default_mclass(), 0, msgtext, (isize_t)n);
    if (!msg)
        return;
    if (sip_object(msg)) {
        ims_sa_list l;
        char err[256] = "";
        if (ims_secagree_parse_sip(sip_object(msg), "Security-Client", &l, err, sizeof err) < 0)
            CHECK(err[0], "parse_sip refused without a message");
        else
            for (size_t i = 0; i < l.n; i++)
                check_mechanism(&l.mech[i]);
    }
    msg_destroy(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > IMS_SA_VALUE_MAX + 16)
        return 0;
    char value[IMS_SA_VALUE_MAX + 17];
    memcpy(value, data, size);
    value[size] = '\0';

    ims_sa_list l = { 0 };
    char err[256] = "";
    if (ims_secagree_parse(value, &l, err, sizeof err) < 0) {
        CHECK(err[0], "refused without a message");
        CHECK(l.n <= IMS_SA_MAX_MECHS, "n %zu", l.n);
    } else {
        CHECK(l.n >= 1 && l.n <= IMS_SA_MAX_MECHS, "accepted with %zu mechanisms", l.n);
        bool any = false;
        for (size_t i = 0; i < l.n; i++) {
            check_mechanism(&l.mech[i]);
            any = any || l.mech[i].supported;
        }
        CHECK(ims_secagree_verify_matches(&l, &l), "list does not match itself");
        ims_sa_mech chosen;
        int c = ims_secagree_choose(&l, ALGS, 2, EALGS, 3, &chosen);
        CHECK((c >= 0) == any, "choice %d, supported mechanisms %d", c, any);
        CHECK(c < 0 || ((size_t)c < l.n && l.mech[c].supported), "chose %d", c);
    }
    through_sofia(value);
    return 0;
}
