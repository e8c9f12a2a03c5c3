/*
 * http.c -- the libcurl HTTP client shared by the cloud backends (see http.h).
 *
 * Invariants:
 *  - A client owns a pool of idle curl easy handles behind a mutex. A request takes one
 *    handle (or makes a new one), resets its options (curl_easy_reset keeps the live
 *    connections and the DNS cache), performs, and puts it back. So a handle is only ever
 *    used by one thread at a time, and connections are reused across requests.
 *  - A request body is sent from the caller's memory (CURLOPT_POSTFIELDS with the method
 *    named explicitly), so libcurl knows the exact bytes, sizes them with Content-Length
 *    and can hash them for SigV4. curl's default form Content-Type and "Expect:
 *    100-continue" are suppressed unless the caller sets those headers (for SigV4, see
 *    build_headers).
 *  - Error messages name the endpoint (scheme://host:port) and the request's `what`; never
 *    the query string (it may carry a SAS signature), the user name or the password.
 *  - A response is reported only when it arrived whole: a body shorter than its
 *    Content-Length, a reset connection or a timeout are NOVA_EBACKEND.
 */
#include "storage/http.h"

#include "common/err.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_POOL_MAX_IDLE 32
#define HTTP_ENDPOINT_MAX 256

struct nova_http_client {
    nova_http_options options;
    char *ca_file;
    pthread_mutex_t lock;
    CURL *idle[HTTP_POOL_MAX_IDLE];
    size_t idle_count;
};

/* ---- global initialisation -------------------------------------------------------------- */

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static int http_global_rc;

static void http_global_init(void)
{
    http_global_rc = curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

/* ---- client --------------------------------------------------------------------------------- */

int nova_http_client_new(nova_http_client **out, const nova_http_options *options)
{
    const nova_http_options defaults = NOVA_HTTP_OPTIONS_INIT;
    nova_http_client *client;

    *out = NULL;
    pthread_once(&http_global_once, http_global_init);
    if (http_global_rc < 0)
        return nova_fail(NOVA_EINTERNAL, "unable to initialise libcurl");
    client = calloc(1, sizeof(*client));
    if (!client)
        return nova_fail(NOVA_ENOMEM, "unable to allocate an http client");
    client->options = options ? *options : defaults;
    if (client->options.ca_file) {
        client->ca_file = strdup(client->options.ca_file);
        if (!client->ca_file) {
            free(client);
            return nova_fail(NOVA_ENOMEM, "unable to allocate an http client");
        }
        client->options.ca_file = client->ca_file;
    }
    if (pthread_mutex_init(&client->lock, NULL) != 0) {
        free(client->ca_file);
        free(client);
        return nova_fail(NOVA_EINTERNAL, "unable to create the http client's lock");
    }
    *out = client;
    return 0;
}

void nova_http_client_free(nova_http_client *client)
{
    if (!client)
        return;
    for (size_t i = 0; i < client->idle_count; i++)
        curl_easy_cleanup(client->idle[i]);
    pthread_mutex_destroy(&client->lock);
    free(client->ca_file);
    free(client);
}

static CURL *handle_take(nova_http_client *client)
{
    CURL *handle = NULL;

    pthread_mutex_lock(&client->lock);
    if (client->idle_count > 0)
        handle = client->idle[--client->idle_count];
    pthread_mutex_unlock(&client->lock);
    if (handle)
        curl_easy_reset(handle);
    else
        handle = curl_easy_init();
    return handle;
}

/* Returns a handle to the pool; `reusable` 0 drops it (and its connection). */
static void handle_give_back(nova_http_client *client, CURL *handle, int reusable)
{
    if (reusable) {
        pthread_mutex_lock(&client->lock);
        if (client->idle_count < HTTP_POOL_MAX_IDLE) {
            client->idle[client->idle_count++] = handle;
            handle = NULL;
        }
        pthread_mutex_unlock(&client->lock);
    }
    if (handle)
        curl_easy_cleanup(handle);
}

/* ---- small text helpers -------------------------------------------------------------------- */

/* "scheme://host[:port]" of a URL, without user info, path or query. */
static void endpoint_of(char *out, size_t out_size, const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    size_t scheme_len = scheme_end ? (size_t)(scheme_end - url) + 3 : 0;

    if (at)
        host = at + 1;
    snprintf(out, out_size, "%.*s%.*s", (int)(scheme_len > 16 ? 0 : scheme_len), url,
             (int)(end - host), host);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static int header_name_is(const char *header, const char *name)
{
    size_t len = strlen(name);
    return strncasecmp(header, name, len) == 0 && header[len] == ':';
}

static int request_has_header(const nova_http_request *request, const char *name)
{
    for (size_t i = 0; i < request->header_count; i++)
        if (strcasecmp(request->headers[i].name, name) == 0)
            return 1;
    return 0;
}

/* ---- callbacks ------------------------------------------------------------------------------ */

typedef struct transfer {
    nova_http_response *response;
    int failed_alloc;
} transfer;

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
    transfer *t = userdata;
    size_t len = size * count;

    if (nova_buf_append(&t->response->body, data, len) < 0) {
        t->failed_alloc = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata)
{
    transfer *t = userdata;
    nova_buf *headers = &t->response->headers;
    size_t len = size * count;
    size_t start, i;

    /* A new status line (after a 100 Continue or a redirect) starts a new header block. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        nova_buf_reset(headers);
        return len;
    }
    if (len <= 2 || memchr(data, ':', len) == NULL)
        return len;
    start = headers->len;
    if (nova_buf_append(headers, data, len) < 0) {
        t->failed_alloc = 1;
        return 0;
    }
    for (i = start; i < headers->len && headers->data[i] != ':'; i++)
        headers->data[i] = (uint8_t)tolower(headers->data[i]);
    return len;
}

/* ---- perform -------------------------------------------------------------------------------- */

typedef struct request_setup {
    struct curl_slist *headers;
    char *username;
    char *password;
} request_setup;

static void request_setup_free(request_setup *setup)
{
    curl_slist_free_all(setup->headers);
    free(setup->username);
    if (setup->password) {
        memset(setup->password, 0, strlen(setup->password));
        free(setup->password);
    }
}

static int append_header(request_setup *setup, const char *line)
{
    struct curl_slist *next = curl_slist_append(setup->headers, line);
    if (!next)
        return -1;
    setup->headers = next;
    return 0;
}

static int request_has_body(const nova_http_request *request)
{
    const char *method = request->method ? request->method : "GET";
    return request->body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0;
}

/*
 * Builds the header list: the caller's headers, then what replaces curl's defaults.
 * Without SigV4, curl's form Content-Type and Expect are suppressed ("Name:" lines).
 * libcurl's SigV4 signs every line of the list, suppressions included (as empty values
 * that are never sent), so a signed request gets a real Content-Type instead
 * (application/octet-stream when it has a body and the caller set none) and keeps
 * curl's Expect, which is not signed and which servers answer at once.
 */
static int build_headers(request_setup *setup, const nova_http_request *request)
{
    nova_buf line = NOVA_BUF_INIT;
    int has_type = request_has_header(request, "Content-Type");
    int rc = 0;

    for (size_t i = 0; i < request->header_count && rc == 0; i++) {
        const nova_http_header *h = &request->headers[i];
        nova_buf_reset(&line);
        if (nova_buf_append(&line, h->name, strlen(h->name)) < 0 ||
            nova_buf_append(&line, h->value[0] ? ": " : ";", h->value[0] ? 2 : 1) < 0 ||
            nova_buf_append(&line, h->value, strlen(h->value) + 1) < 0 ||
            append_header(setup, (const char *)line.data) < 0)
            rc = -1;
    }
    if (request->aws_sigv4) {
        if (rc == 0 && !has_type && request_has_body(request))
            rc = append_header(setup, "Content-Type: application/octet-stream");
    } else {
        if (rc == 0 && !has_type)
            rc = append_header(setup, "Content-Type:");
        if (rc == 0 && !request_has_header(request, "Expect"))
            rc = append_header(setup, "Expect:");
    }
    nova_buf_free(&line);
    return rc;
}

static int split_userpwd(request_setup *setup, const char *userpwd)
{
    const char *colon = strchr(userpwd, ':');
    size_t user_len = colon ? (size_t)(colon - userpwd) : strlen(userpwd);

    setup->username = strndup(userpwd, user_len);
    setup->password = strdup(colon ? colon + 1 : "");
    return setup->username && setup->password ? 0 : -1;
}

static int apply_method(CURL *h, const nova_http_request *request)
{
    const char *method = request->method ? request->method : "GET";
    CURLcode c = CURLE_OK;

    if (strcmp(method, "HEAD") == 0)
        return curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0 : -1;
    if (strcmp(method, "GET") == 0 && !request->body)
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0 : -1;
    if (request_has_body(request)) {
        const void *body = request->body ? request->body : "";
        size_t len = request->body ? request->body_len : 0;
        c = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (c == CURLE_OK)
            c = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    return c == CURLE_OK ? 0 : -1;
}

static int apply_options(CURL *h, const nova_http_client *client,
                         const nova_http_request *request, request_setup *setup, transfer *t,
                         char *errbuf)
{
    const nova_http_options *o = &client->options;
    CURLcode c = CURLE_OK;

#define SET(opt, value)                                                                            \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(h, opt, value);                                                   \
    } while (0)
    SET(CURLOPT_URL, request->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    SET(CURLOPT_TIMEOUT_MS, o->request_timeout_ms > 0 ? o->request_timeout_ms : 0L);
    if (o->low_speed_bytes > 0 && o->low_speed_seconds > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes);
        SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_seconds);
    }
    if (o->ca_file)
        SET(CURLOPT_CAINFO, o->ca_file);
    if (o->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_HTTPHEADER, setup->headers);
    if (request->aws_sigv4) {
        SET(CURLOPT_AWS_SIGV4, request->aws_sigv4);
        SET(CURLOPT_USERNAME, setup->username);
        SET(CURLOPT_PASSWORD, setup->password);
    }
#undef SET
    if (c != CURLE_OK)
        return -1;
    return apply_method(h, request);
}

/* Why no response came: a short reason in words, without the URL's query. */
static void describe_failure(char *out, size_t out_size, CURLcode code, const char *errbuf,
                             const char *url)
{
    const char *query = strchr(url, '?');
    int errbuf_safe = errbuf[0] != '\0' && !strchr(errbuf, '?') && !strchr(errbuf, '@') &&
                      !(query && strstr(errbuf, query + 1));

    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, out_size, "timed out");
        break;
    case CURLE_PARTIAL_FILE:
        snprintf(out, out_size, "response body truncated");
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(out, out_size, "connection refused or unreachable");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, out_size, "host name not resolved");
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        snprintf(out, out_size, "connection dropped");
        break;
    default:
        snprintf(out, out_size, "%s", curl_easy_strerror(code));
        break;
    }
    if (errbuf_safe) {
        size_t len = strlen(out);
        snprintf(out + len, out_size - len, " (%s)", errbuf);
    }
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = ' ';
}

int nova_http_perform(nova_http_client *client, const nova_http_request *request,
                      nova_http_response *response)
{
    char errbuf[CURL_ERROR_SIZE];
    char endpoint[HTTP_ENDPOINT_MAX];
    char reason[CURL_ERROR_SIZE + 64];
    const char *what = request->what ? request->what : "http request";
    request_setup setup = {0};
    transfer t = {response, 0};
    CURL *h = NULL;
    CURLcode code;
    int rc = 0, reusable = 0;

    errbuf[0] = '\0';
    endpoint_of(endpoint, sizeof(endpoint), request->url);
    nova_http_response_reset(response);
    h = handle_take(client);
    if (!h)
        return nova_fail(NOVA_ENOMEM, "%s at %s: unable to create a curl handle", what, endpoint);
    if (build_headers(&setup, request) < 0 ||
        (request->aws_sigv4 && split_userpwd(&setup, request->userpwd ? request->userpwd : "") < 0)) {
        rc = nova_fail(NOVA_ENOMEM, "%s at %s: unable to build the request", what, endpoint);
        goto out;
    }
    if (apply_options(h, client, request, &setup, &t, errbuf) < 0) {
        rc = nova_fail(NOVA_EINTERNAL, "%s at %s: libcurl rejected an option", what, endpoint);
        goto out;
    }
    code = curl_easy_perform(h);
    if (t.failed_alloc) {
        rc = nova_fail(NOVA_ENOMEM, "%s at %s: out of memory for the response", what, endpoint);
        goto out;
    }
    if (code != CURLE_OK) {
        describe_failure(reason, sizeof(reason), code, errbuf, request->url);
        rc = nova_fail(NOVA_EBACKEND, "%s at %s: %s", what, endpoint, reason);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response->status);
    reusable = 1;
out:
    /* Forget the request's pointers before the handle rests in the pool. */
    if (reusable) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
        curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    }
    handle_give_back(client, h, reusable);
    request_setup_free(&setup);
    return rc;
}

/* ---- responses ------------------------------------------------------------------------------ */

int nova_http_header_get(const nova_http_response *response, const char *name, char *out,
                         size_t out_size)
{
    const char *p = (const char *)response->headers.data;
    const char *end = p + response->headers.len;

    if (out_size)
        out[0] = '\0';
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        size_t name_len = strlen(name);
        if ((size_t)(line_end - p) > name_len && header_name_is(p, name)) {
            const char *v = p + name_len + 1;
            size_t len;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            len = (size_t)(line_end - v);
            while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= out_size)
                return nova_fail(NOVA_EINVALID, "http header '%s' is too long", name);
            memcpy(out, v, len);
            out[len] = '\0';
            return 0;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NOVA_ENOTFOUND;
}

/* Copies the text between <tag> and </tag> of an XML body, printable and short. */
static int xml_excerpt(char *out, size_t out_size, const nova_buf *body, const char *tag)
{
    char open[32], close[32];
    const char *text = (const char *)body->data;
    const char *start, *stop;
    size_t len = 0;

    if (!text || body->len == 0)
        return 0;
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    start = memmem(text, body->len, open, strlen(open));
    if (!start)
        return 0;
    start += strlen(open);
    stop = memmem(start, body->len - (size_t)(start - text), close, strlen(close));
    if (!stop)
        return 0;
    for (const char *p = start; p < stop && len + 1 < out_size; p++) {
        if (*p == '\n' || *p == '\r')
            break;
        out[len++] = ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) ? *p : '?';
    }
    out[len] = '\0';
    return len > 0;
}

/* The service's error code: S3/Azure XML <Code>, an x-ms-error-code header, or a JSON
 * "reason"/"message" (GCS). Empty when none. */
static void service_error(char *out, size_t out_size, const nova_http_response *response)
{
    char code[96] = "", message[160] = "";

    out[0] = '\0';
    if (xml_excerpt(code, sizeof(code), &response->body, "Code")) {
        xml_excerpt(message, sizeof(message), &response->body, "Message");
    } else if (nova_http_header_get(response, "x-ms-error-code", code, sizeof(code)) != 0) {
        const char *text = (const char *)response->body.data;
        const char *key = text ? memmem(text, response->body.len, "\"message\"", 9) : NULL;
        code[0] = '\0';
        if (key) {
            const char *q = memchr(key + 9, '"', response->body.len - (size_t)(key + 9 - text));
            size_t len = 0;
            for (const char *p = q ? q + 1 : NULL; p && p < text + response->body.len &&
                                                   *p != '"' && len + 1 < sizeof(message);
                 p++)
                message[len++] = ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) ? *p : '?';
            message[len] = '\0';
        }
    }
    if (code[0] && message[0])
        snprintf(out, out_size, " %s: %s", code, message);
    else if (code[0] || message[0])
        snprintf(out, out_size, " %s", code[0] ? code : message);
}

int nova_http_status_error(const nova_http_request *request, const nova_http_response *response)
{
    char endpoint[HTTP_ENDPOINT_MAX];
    char detail[300];
    const char *what = request->what ? request->what : "http request";
    long status = response->status;
    int code;

    if (status >= 200 && status < 300)
        return 0;
    if (status == 404)
        code = NOVA_ENOTFOUND;
    else if (status == 401 || status == 403)
        code = NOVA_EACCESS;
    else if (status == 409 || status == 412)
        code = NOVA_EEXISTS;
    else if (status == 507)
        code = NOVA_ENOSPACE;
    else if (status >= 500 || status == 429 || status == 408 || status < 200 ||
             (status >= 300 && status < 400))
        code = NOVA_EBACKEND;
    else
        code = NOVA_EINVALID;
    endpoint_of(endpoint, sizeof(endpoint), request->url);
    service_error(detail, sizeof(detail), response);
    return nova_fail(code, "%s at %s: http %ld%s", what, endpoint, status, detail);
}

void nova_http_response_reset(nova_http_response *response)
{
    response->status = 0;
    nova_buf_reset(&response->body);
    nova_buf_reset(&response->headers);
}

void nova_http_response_free(nova_http_response *response)
{
    if (!response)
        return;
    nova_buf_free(&response->body);
    nova_buf_free(&response->headers);
    response->status = 0;
}

/* ---- encoding ------------------------------------------------------------------------------- */

int nova_http_percent_encode(nova_buf *out, const char *text, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                    *p == '~' || (keep_slash && *p == '/');
        if (plain) {
            NOVA_TRY(nova_buf_append(out, p, 1));
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            NOVA_TRY(nova_buf_append(out, esc, 3));
        }
    }
    return 0;
}
