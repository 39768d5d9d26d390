/*
 * imsctl: operator CLI for the HSS provisioning REST API (hss/openapi.yaml).
 *
 *   imsctl [--api http://127.0.0.1:9090] COMMAND ...
 *     list [--after ID] [--limit N] [--reg-state registered|unregistered|not_registered]
 *                                     one page of subscriber ids (only those with an IMPU in
 *                                     that registration state)
 *     get ID                          one subscriber (secrets are never returned)
 *     create FILE.json                POST a subscriber ('-' reads stdin)
 *     update ID FILE.json             PUT (replace) a subscriber
 *     delete ID
 *     lookup IDENTITY                 which subscriber holds an IMPI / IMPU
 *     import FILE.json                {"subscribers":[...]}: PUT the existing ids, POST the new ones
 *
 * The API address can also come from the environment (IMS_API). Prints the answer's JSON body on
 * stdout. Exit codes (scripts rely on them): 0 on 2xx, 1 when the HSS answered with an error
 * (message on stderr), 2 on usage, file or connection errors.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ims_http.h"
#include "ims_strbuf.h"

#define DEFAULT_API "http://127.0.0.1:9090"
#define TIMEOUT_MS 10000

enum { EXIT_OK = 0, EXIT_HTTP = 1, EXIT_USAGE = 2 };

typedef struct {
    char host[256];
    uint16_t port;
    char base[256];          /* path prefix of the API, "" normally (a reverse proxy may add one) */
} api_addr;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imsctl [--api URL] COMMAND ...\n"
            "  list [--after ID] [--limit N] [--reg-state registered|unregistered|not_registered]\n"
            "  get ID\n"
            "  create FILE.json          ('-' = stdin)\n"
            "  update ID FILE.json\n"
            "  delete ID\n"
            "  lookup IDENTITY           (IMPI or IMPU, e.g. sip:alice@ims.lab)\n"
            "  import FILE.json          ({\"subscribers\": [...]}: create or replace each)\n"
            "URL defaults to $IMS_API, else " DEFAULT_API ".\n");
}

/* http://host[:port][/base] with host a name, IPv4 or [IPv6]. */
static int parse_api(const char *url, api_addr *a)
{
    const char *p = url, *hend, *slash;
    size_t hlen;
    unsigned long port = 80;

    memset(a, 0, sizeof(*a));
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return -1;                      /* https:// etc.: the client speaks plain HTTP only */
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(slash - p));
        if (!hend)
            return -1;
        hlen = (size_t)(hend - p - 1);
        memcpy(a->host, p + 1, hlen < sizeof(a->host) ? hlen : 0);
        hend++;
    } else {
        hend = memchr(p, ':', (size_t)(slash - p));
        if (!hend)
            hend = slash;
        hlen = (size_t)(hend - p);
        memcpy(a->host, p, hlen < sizeof(a->host) ? hlen : 0);
    }
    if (hlen == 0 || hlen >= sizeof(a->host))
        return -1;
    if (*hend == ':') {
        char *end;
        port = strtoul(hend + 1, &end, 10);
        if (end != slash || port == 0 || port > 65535)
            return -1;
    } else if (hend != slash) {
        return -1;
    }
    a->port = (uint16_t)port;
    snprintf(a->base, sizeof(a->base), "%s", slash);
    /* "http://h:1/" and "http://h:1" are the same API. */
    while (strlen(a->base) && a->base[strlen(a->base) - 1] == '/')
        a->base[strlen(a->base) - 1] = '\0';
    return 0;
}

/* Percent-encodes one path segment: everything outside RFC 3986 "unreserved" (so ':' '@' '+'
 * of sip:alice@ims.lab and tel:+1555 cannot be misread by the server). */
static void encode_segment(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *in && o + 4 < outlen; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* Reads a whole file ('-' = stdin) into a NUL-terminated buffer. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    ims_strbuf b = IMS_STRBUF_INIT;

    if (!f) {
        fprintf(stderr, "imsctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    int rc = ims_strbuf_read(&b, f);
    if (rc != 0 && b.failed)
        fprintf(stderr, "imsctl: out of memory\n");
    else if (rc != 0)
        fprintf(stderr, "imsctl: %s: read error\n", path);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        ims_strbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return ims_strbuf_take(&b);
}

/* One request. Returns the HTTP status, or -1 after printing a connection error. */
static int request(const api_addr *a, const char *method, const char *path, const char *body,
                   char **resp)
{
    char full[2048], err[256] = "";
    int status = 0;

    snprintf(full, sizeof(full), "%s%s", a->base, path);
    *resp = NULL;
    if (ims_http_client_request(a->host, a->port, method, full, "application/json", body ? body : "",
                                body ? strlen(body) : 0, TIMEOUT_MS, &status, resp, err, sizeof(err)) != 0) {
        /* the client's message already names the address */
        if (err[0])
            fprintf(stderr, "imsctl: %s\n", err);
        else
            fprintf(stderr, "imsctl: %s:%u: request failed\n", a->host, (unsigned)a->port);
        return -1;
    }
    return status;
}

/* The "error" member of an error body, else the body itself. */
static void print_error(int status, const char *what, const char *body)
{
    json_object *obj = body ? json_tokener_parse(body) : NULL;
    json_object *msg;
    const char *text = body && body[0] ? body : "(no body)";

    if (obj && json_object_object_get_ex(obj, "error", &msg))
        text = json_object_get_string(msg);
    fprintf(stderr, "imsctl: %s%sHTTP %d: %s\n", what ? what : "", what ? ": " : "", status, text);
    json_object_put(obj);
}

/* Pretty-prints a JSON body (raw text if it is not JSON); nothing for an empty body (204). */
static void print_body(const char *body)
{
    json_object *obj;

    if (!body || !body[0])
        return;
    obj = json_tokener_parse(body);
    if (obj)
        printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    else
        printf("%s\n", body);
    json_object_put(obj);
}

/* Sends one request and prints its outcome; returns the exit code. */
static int simple(const api_addr *a, const char *method, const char *path, const char *body)
{
    char *resp = NULL;
    int status = request(a, method, path, body, &resp);
    int rc;

    if (status < 0)
        return EXIT_USAGE;
    if (status >= 200 && status < 300) {
        print_body(resp);
        rc = EXIT_OK;
    } else {
        print_error(status, NULL, resp);
        rc = EXIT_HTTP;
    }
    free(resp);
    return rc;
}

/* import: GET decides between PUT (exists) and POST (new), so a re-import updates in place and
 * a conflicting IMPU still reports 409 instead of being mistaken for an existing id. */
static int import(const api_addr *a, const char *file)
{
    size_t len = 0;
    char *text = read_all(file, &len);
    json_object *root = NULL, *arr = NULL, *created, *updated, *summary;
    int rc = EXIT_USAGE;

    if (!text)
        return EXIT_USAGE;
    root = json_tokener_parse(text);
    if (!root) {
        fprintf(stderr, "imsctl: %s: invalid JSON\n", file);
        goto out;
    }
    if (json_object_is_type(root, json_type_array))
        arr = root;
    else if (!json_object_object_get_ex(root, "subscribers", &arr) || !json_object_is_type(arr, json_type_array)) {
        fprintf(stderr, "imsctl: %s: expected {\"subscribers\": [...]}\n", file);
        goto out;
    }
    summary = json_object_new_object();
    created = json_object_new_array();
    updated = json_object_new_array();
    json_object_object_add(summary, "created", created);
    json_object_object_add(summary, "updated", updated);
    rc = EXIT_OK;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *sub = json_object_array_get_idx(arr, i), *jid;
        const char *id = NULL;
        char path[1024], seg[768], what[512], *resp = NULL;
        int status;

        if (json_object_object_get_ex(sub, "id", &jid) && json_object_is_type(jid, json_type_string))
            id = json_object_get_string(jid);
        snprintf(what, sizeof(what), "%s: subscribers[%zu]%s%s%s", file, i, id ? " (" : "", id ? id : "",
                 id ? ")" : "");
        status = 404;
        if (id) {
            encode_segment(id, seg, sizeof(seg));
            snprintf(path, sizeof(path), "/api/v1/subscribers/%s", seg);
            status = request(a, "GET", path, NULL, &resp);
            free(resp);
            resp = NULL;
        }
        if (status == 200)
            status = request(a, "PUT", path, json_object_to_json_string(sub), &resp);
        else if (status == 404)
            status = request(a, "POST", "/api/v1/subscribers", json_object_to_json_string(sub), &resp);
        if (status < 0) {
            rc = EXIT_USAGE;
            break;
        }
        if (status == 200 || status == 201) {
            json_object_array_add(status == 201 ? created : updated, json_object_new_string(id ? id : "?"));
        } else {
            print_error(status, what, resp);
            rc = EXIT_HTTP;
        }
        free(resp);
        if (rc != EXIT_OK)
            break;      /* stop at the first error, like the HSS's own import */
    }
    print_body(json_object_to_json_string(summary));
    json_object_put(summary);
out:
    json_object_put(root);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    const char *api = getenv("IMS_API");
    api_addr a;
    char path[2048], seg[1536], *body = NULL;
    const char *cmd;
    size_t len;
    int i = 1, rc = EXIT_USAGE;

    if (!api || !api[0])
        api = DEFAULT_API;
    while (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
        if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
            api = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--api=", 6) == 0) {
            api = argv[i] + 6;
            i++;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (parse_api(api, &a) != 0) {
        fprintf(stderr, "imsctl: bad API URL '%s' (expected http://HOST:PORT)\n", api);
        return EXIT_USAGE;
    }
    cmd = argv[i++];
    argc -= i;
    argv += i;

    if (strcmp(cmd, "list") == 0) {
        const char *after = NULL, *limit = NULL, *reg_state = NULL;
        for (int j = 0; j < argc; j++) {
            if (strcmp(argv[j], "--after") == 0 && j + 1 < argc)
                after = argv[++j];
            else if (strcmp(argv[j], "--limit") == 0 && j + 1 < argc)
                limit = argv[++j];
            else if (strcmp(argv[j], "--reg-state") == 0 && j + 1 < argc)
                reg_state = argv[++j];
            else
                goto bad_usage;
        }
        /* The HSS checks the values (400 naming the parameter and the allowed ones). */
        snprintf(path, sizeof(path), "/api/v1/subscribers");
        const char *params[][2] = {{"after", after}, {"limit", limit}, {"reg_state", reg_state}};
        char sep = '?';
        for (size_t j = 0; j < sizeof(params) / sizeof(params[0]); j++) {
            if (!params[j][1])
                continue;
            encode_segment(params[j][1], seg, sizeof(seg));
            snprintf(path + strlen(path), sizeof(path) - strlen(path), "%c%s=%s", sep, params[j][0], seg);
            sep = '&';
        }
        rc = simple(&a, "GET", path, NULL);
    } else if ((strcmp(cmd, "get") == 0 || strcmp(cmd, "delete") == 0) && argc == 1) {
        encode_segment(argv[0], seg, sizeof(seg));
        snprintf(path, sizeof(path), "/api/v1/subscribers/%s", seg);
        rc = simple(&a, cmd[0] == 'g' ? "GET" : "DELETE", path, NULL);
    } else if (strcmp(cmd, "lookup") == 0 && argc == 1) {
        encode_segment(argv[0], seg, sizeof(seg));
        snprintf(path, sizeof(path), "/api/v1/identities/%s", seg);
        rc = simple(&a, "GET", path, NULL);
    } else if (strcmp(cmd, "create") == 0 && argc == 1) {
        if (!(body = read_all(argv[0], &len)))
            return EXIT_USAGE;
        rc = simple(&a, "POST", "/api/v1/subscribers", body);
    } else if (strcmp(cmd, "update") == 0 && argc == 2) {
        if (!(body = read_all(argv[1], &len)))
            return EXIT_USAGE;
        encode_segment(argv[0], seg, sizeof(seg));
        snprintf(path, sizeof(path), "/api/v1/subscribers/%s", seg);
        rc = simple(&a, "PUT", path, body);
    } else if (strcmp(cmd, "import") == 0 && argc == 1) {
        rc = import(&a, argv[0]);
    } else {
        goto bad_usage;
    }
    free(body);
    return rc;

bad_usage:
    usage(stderr);
    return EXIT_USAGE;
}
