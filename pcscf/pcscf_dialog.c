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
 * dialog survives a new TCP connection or a NAT rebinding of the port.
 *
 * The key (issue 14): by default random per process, so a restarted P-CSCF refuses (403) every
 * in-dialog request of the calls it had record-routed, a BYE included. With pcscf.key_file it is
 * derived from a secret in that file (created with random bytes, mode 0600, when absent), so a
 * P-CSCF restarted with the same file (a host path, a Kubernetes Secret) accepts the tokens it gave
 * before. The file and not the state store: whoever holds the key can mint tokens, i.e. have us
 * relay in-dialog requests into the core, and Redis is shared and often unauthenticated; the same
 * secret also seals our store records (pcscf_bindrecord.h), which keeping it in the store would
 * defeat. Derived keys: HMAC-MD5(secret, "dialog") for tokens, HMAC-MD5(secret, "store") for
 * records; the secret and the keys are never logged.
 *
 * Who may use what: a request whose top Route is our URI with a valid token, from the address the
 * token was made for. Everyone else sending us a To-tagged request from outside the trust domain
 * gets 403 (pcscf_route.c). A participant of the dialog can still send its own in-dialog requests
 * (that is what a dialog is); pcscf_route.c also requires their next hop to be the core.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

#include "ims_aka.h"
#include "ims_log.h"
#include "pcscf_context.h"

#define TOKEN_BYTES 12
#define TOKEN_PARAM "ue"

#define SECRET_BYTES 32

/* A new secret into path (O_EXCL: two P-CSCFs starting at once do not overwrite each other's). */
static int create_secret(const char *path, uint8_t *secret, char *err, size_t errlen)
{
    char hex[2 * SECRET_BYTES + 2];
    if (ims_random(secret, SECRET_BYTES)) {
        snprintf(err, errlen, "no random bytes (getrandom)");
        return -1;
    }
    ims_hex_encode(secret, SECRET_BYTES, hex);
    strcat(hex, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "pcscf.key_file %s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(hex);
    bool ok = write(fd, hex, n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        snprintf(err, errlen, "pcscf.key_file %s: cannot write", path);
        return -1;
    }
    IMS_INFO("pcscf", "pcscf.key_file %s created with a new secret", path);
    return 0;
}

static int read_secret(const char *path, uint8_t *secret, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return create_secret(path, secret, err, errlen);
    if (fd < 0) {
        snprintf(err, errlen, "pcscf.key_file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[2 * SECRET_BYTES + 8] = "";
    struct stat st;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    bool loose = fstat(fd, &st) == 0 && (st.st_mode & 077);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    size_t len = strlen(buf);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (ims_hex_decode(buf, secret, SECRET_BYTES)) {
        snprintf(err, errlen, "pcscf.key_file %s: not %d hex digits", path, 2 * SECRET_BYTES);
        return -1;
    }
    if (loose)
        IMS_WARN("pcscf", "pcscf.key_file %s is readable by group or others (chmod 600)", path);
    return 0;
}

int pcscf_dialog_start(pcscf_context *ctx, char *err, size_t errlen)
{
    uint8_t secret[SECRET_BYTES];
    const char *path = ctx->cfg.pcscf.key_file;
    if (path && *path) {
        if (read_secret(path, secret, err, errlen))
            return -1;
    } else if (ims_random(secret, sizeof(secret))) {
        snprintf(err, errlen, "no random bytes for the Record-Route token key (getrandom)");
        return -1;
    }
    ims_hmac_md5(secret, sizeof(secret), "dialog", 6, ctx->dialog_key);
    ims_hmac_md5(secret, sizeof(secret), "store", 5, ctx->record_key);
    memset(secret, 0, sizeof(secret));
    return 0;
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
