/*
 * pcscf_dialog: our Record-Route for a UE's dialog carries a token that binds the dialog's
 * Call-ID to the UE's address, so that an in-dialog request from a UE is accepted only along a
 * route set we inserted for that UE (issue 10; TS 24.229 §5.2.6.3 / §5.2.7: the P-CSCF
 * record-routes initial requests of and to the UE; RFC 3261 §16.6 step 4, §16.12).
 *
 * Why a token and not a dialog table: any UE (and anyone outside the trust domain) can put our
 * Record-Route URI on top of a request with a To-tag. Without more, that request was relayed to
 * whatever its Request-URI named, with the P-CSCF's source address: an open relay. A request
 * that follows a dialog we record-routed shows our URI with the token we gave that dialog:
 *   ue = first 12 bytes of HMAC-MD5(key, Call-ID NUL UE-address), 24 hex digits
 * The key is random per process (RFC 2104; RFC 3261 §16.6 allows any parameters in our own
 * Record-Route URI, and the UAs must return it unchanged, §12.1.1 / §12.2.1.1). Nothing is stored
 * per dialog and nothing has to be cleaned up. Only the UE's address is bound, not its port: the
 * dialog survives a new TCP connection or a NAT rebinding of the port. A restarted P-CSCF has a
 * new key: dialogs of its UEs end with the process, like their registrations (issue 14 keeps both).
 *
 * Who may use what: a request whose top Route is our URI with a valid token, from the address the
 * token was made for. Everyone else sending us a To-tagged request from outside the trust domain
 * gets 403 (pcscf_route.c). A participant of the dialog can still send its own in-dialog requests
 * (that is what a dialog is); pcscf_route.c also requires their next hop to be the core.
 */
#include <stdio.h>
#include <string.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

#include "ims_aka.h"
#include "pcscf_context.h"

#define TOKEN_BYTES 12
#define TOKEN_PARAM "ue"

int pcscf_dialog_start(pcscf_context *ctx)
{
    return ims_random(ctx->dialog_key, sizeof(ctx->dialog_key));
}

/* hex token of (Call-ID, UE address) into out[2 * TOKEN_BYTES + 1] */
static void token_of(const pcscf_context *ctx, const char *call_id, const char *ue_host, char *out)
{
    size_t cl = strlen(call_id), hl = strlen(ue_host);
    char buf[1024];
    uint8_t mac[16];
    if (cl + 1 + hl > sizeof(buf)) {   /* a Call-ID this long (attacker): hash it first */
        uint8_t h[16];
        ims_md5(call_id, cl, h);
        ims_hex_encode(h, sizeof(h), buf);
        cl = 32;
    } else {
        memcpy(buf, call_id, cl);
    }
    buf[cl] = '\0';
    memcpy(buf + cl + 1, ue_host, hl);
    ims_hmac_md5(ctx->dialog_key, sizeof(ctx->dialog_key), buf, cl + 1 + hl, mac);
    ims_hex_encode(mac, TOKEN_BYTES, out);
}

int pcscf_dialog_record_route(const pcscf_context *ctx, const sip_t *sip, const char *ue_host, char *out,
                              size_t len)
{
    if (!sip->sip_call_id || !sip->sip_call_id->i_id || !ue_host)
        return -1;
    char token[2 * TOKEN_BYTES + 1];
    token_of(ctx, sip->sip_call_id->i_id, ue_host, token);
    size_t n = strlen(ctx->rr_uri);   /* "<sip:host:port;lr>" */
    if (n < 2 || ctx->rr_uri[n - 1] != '>')
        return -1;
    int w = snprintf(out, len, "%.*s;%s=%s>", (int)(n - 1), ctx->rr_uri, TOKEN_PARAM, token);
    return w > 0 && (size_t)w < len ? 0 : -1;
}

bool pcscf_dialog_token_ok(const pcscf_context *ctx, const url_t *route, const sip_t *sip, const char *ue_host)
{
    char got[2 * TOKEN_BYTES + 8], want[2 * TOKEN_BYTES + 1];
    if (!route || !route->url_params || !sip->sip_call_id || !sip->sip_call_id->i_id || !ue_host)
        return false;
    if (url_param(route->url_params, TOKEN_PARAM, got, sizeof(got)) == 0 || strlen(got) != 2 * TOKEN_BYTES)
        return false;
    token_of(ctx, sip->sip_call_id->i_id, ue_host, want);
    unsigned diff = 0;   /* no early exit: the time taken says nothing about the token */
    for (size_t i = 0; i < 2 * TOKEN_BYTES; i++)
        diff |= (unsigned)(got[i] ^ want[i]);
    return diff == 0;
}
