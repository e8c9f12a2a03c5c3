/*
 * test_http.c -- the libcurl HTTP client (src/storage/http.c) against the scripted server.
 *
 * Covers: bodies and headers both ways, what curl must not add (form Content-Type,
 * Expect), HEAD, throttling answers (429, 503 SlowDown) followed by success, the status
 * table, truncated bodies, dropped and reset connections, a timeout, a refused
 * connection, secrets kept out of messages, SigV4 headers, many threads on one client and
 * percent-encoding. Skips (with a message) when python3 is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_support.h"
#include "test_support.h"

#include "common/err.h"
#include "storage/http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static scripted_http server;
static int server_missing;

static int group_setup(void **state)
{
    (void)state;
    server_missing = scripted_http_start(&server);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    scripted_http_stop(&server);
    return 0;
}

typedef struct fixture {
    nova_http_client *client;
    nova_http_response response;
    char url[256];
} fixture;

static int setup(void **state)
{
    fixture *f;
    if (!server_missing)
        scripted_http_reset(&server);
    f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nova_http_client_new(&f->client, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_http_response_free(&f->response);
    nova_http_client_free(f->client);
    free(f);
    return 0;
}

#define NEED_SERVER()                                                                              \
    do {                                                                                           \
        if (server_missing)                                                                        \
            skip();                                                                                \
    } while (0)

static int perform(fixture *f, const char *method, const char *path, const void *body,
                   size_t body_len)
{
    nova_http_request request = {0};
    scripted_http_url(&server, f->url, sizeof(f->url), path);
    request.method = method;
    request.url = f->url;
    request.body = body;
    request.body_len = body_len;
    request.what = "test object 'o'";
    return nova_http_perform(f->client, &request, &f->response);
}

static int status_error(fixture *f)
{
    nova_http_request request = {0};
    request.url = f->url;
    request.what = "test object 'o'";
    return nova_http_status_error(&request, &f->response);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- plain requests ------------------------------------------------------------------- */

static void test_get_body_and_headers(void **state)
{
    fixture *f = *state;
    char value[64];
    NEED_SERVER();
    scripted_http_add(&server, "[{\"method\":\"GET\",\"path\":\"^/b/obj$\",\"status\":200,"
                               "\"headers\":{\"ETag\":\"\\\"abc\\\"\",\"X-Thing\":\"  v  \"},"
                               "\"body\":\"hello world\"}]");
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 200);
    assert_int_equal(f->response.body.len, 11);
    assert_memory_equal(f->response.body.data, "hello world", 11);
    assert_int_equal(status_error(f), 0);
    assert_int_equal(nova_http_header_get(&f->response, "etag", value, sizeof(value)), 0);
    assert_string_equal(value, "\"abc\"");
    assert_int_equal(nova_http_header_get(&f->response, "X-THING", value, sizeof(value)), 0);
    assert_string_equal(value, "v");
    assert_int_equal(nova_http_header_get(&f->response, "content-length", value, sizeof(value)),
                     0);
    assert_string_equal(value, "11");
    assert_int_equal(nova_http_header_get(&f->response, "missing", value, sizeof(value)),
                     NOVA_ENOTFOUND);
    assert_int_equal(nova_http_header_get(&f->response, "etag", value, 3), NOVA_EINVALID);
}

static void test_put_sends_exact_body_and_headers(void **state)
{
    fixture *f = *state;
    nova_http_header headers[] = {{"X-Amz-Meta-One", "1"}, {"X-Empty", ""}};
    nova_http_request request = {0};
    uint8_t body[3000];
    json_t *log, *entry;
    NEED_SERVER();
    test_fill_random(body, sizeof(body), 7);
    scripted_http_add(&server, "[{\"method\":\"PUT\",\"status\":200}]");
    scripted_http_url(&server, f->url, sizeof(f->url), "/b/put%20me?x=1");
    request.method = "PUT";
    request.url = f->url;
    request.headers = headers;
    request.header_count = 2;
    request.body = body;
    request.body_len = sizeof(body);
    assert_int_equal(nova_http_perform(f->client, &request, &f->response), 0);
    assert_int_equal(f->response.status, 200);

    log = scripted_http_log(&server);
    entry = scripted_http_log_entry(log, 0);
    assert_non_null(entry);
    assert_string_equal(json_string_value(json_object_get(entry, "method")), "PUT");
    assert_string_equal(scripted_http_log_path(entry), "/b/put%20me?x=1");
    assert_int_equal(json_integer_value(json_object_get(entry, "body_len")), sizeof(body));
    assert_string_equal(scripted_http_log_header(entry, "x-amz-meta-one"), "1");
    assert_string_equal(scripted_http_log_header(entry, "x-empty"), "");
    assert_string_equal(scripted_http_log_header(entry, "content-length"), "3000");
    assert_null(scripted_http_log_header(entry, "content-type"));
    assert_null(scripted_http_log_header(entry, "expect"));
    json_decref(log);
}

static void test_empty_put_and_post(void **state)
{
    fixture *f = *state;
    json_t *log;
    NEED_SERVER();
    scripted_http_add(&server, "[{\"status\":200,\"times\":0}]");
    assert_int_equal(perform(f, "PUT", "/b/empty", NULL, 0), 0);
    assert_int_equal(perform(f, "POST", "/b/obj?uploads=", NULL, 0), 0);
    assert_int_equal(perform(f, "DELETE", "/b/obj", NULL, 0), 0);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 3);
    assert_string_equal(scripted_http_log_header(scripted_http_log_entry(log, 0),
                                                 "content-length"), "0");
    assert_string_equal(json_string_value(json_object_get(scripted_http_log_entry(log, 1),
                                                          "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(scripted_http_log_entry(log, 2),
                                                          "method")), "DELETE");
    json_decref(log);
}

static void test_head_has_headers_no_body(void **state)
{
    fixture *f = *state;
    char value[32];
    NEED_SERVER();
    scripted_http_add(&server, "[{\"method\":\"HEAD\",\"status\":200,\"body_size\":12345}]");
    assert_int_equal(perform(f, "HEAD", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 200);
    assert_int_equal(f->response.body.len, 0);
    assert_int_equal(nova_http_header_get(&f->response, "content-length", value, sizeof(value)),
                     0);
    assert_string_equal(value, "12345");
}

/* ---- throttling and the status table -------------------------------------------------- */

static void test_throttled_then_success(void **state)
{
    fixture *f = *state;
    const char *message;
    NEED_SERVER();
    scripted_http_add(&server,
                      "[{\"status\":429,\"headers\":{\"Retry-After\":\"0\"},\"body\":\"slow\"},"
                      "{\"status\":503,\"body\":\"<?xml version=\\\"1.0\\\"?><Error><Code>SlowDown"
                      "</Code><Message>Please reduce your request rate.</Message></Error>\"},"
                      "{\"status\":200,\"body\":\"done\"}]");
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 429);
    assert_int_equal(status_error(f), NOVA_EBACKEND);

    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 503);
    assert_int_equal(status_error(f), NOVA_EBACKEND);
    message = nova_error_last()->message;
    assert_non_null(strstr(message, "SlowDown: Please reduce your request rate."));
    assert_non_null(strstr(message, server.base_url));
    assert_non_null(strstr(message, "test object 'o'"));
    assert_non_null(strstr(message, "503"));

    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 200);
    assert_int_equal(status_error(f), 0);
    assert_memory_equal(f->response.body.data, "done", 4);
}

static void test_status_table(void **state)
{
    static const struct {
        int status;
        int code;
    } table[] = {
        {200, 0}, {204, 0}, {206, 0}, {301, NOVA_EBACKEND}, {400, NOVA_EINVALID},
        {401, NOVA_EACCESS}, {403, NOVA_EACCESS}, {404, NOVA_ENOTFOUND}, {408, NOVA_EBACKEND},
        {409, NOVA_EEXISTS}, {412, NOVA_EEXISTS}, {416, NOVA_EINVALID}, {429, NOVA_EBACKEND},
        {500, NOVA_EBACKEND}, {502, NOVA_EBACKEND}, {503, NOVA_EBACKEND}, {507, NOVA_ENOSPACE},
    };
    fixture *f = *state;
    (void)state;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:1/b/o?sig=SECRETSIG");
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        f->response.status = table[i].status;
        assert_int_equal(status_error(f), table[i].code);
        if (table[i].code)
            assert_null(strstr(nova_error_last()->message, "SECRETSIG"));
    }
}

static void test_service_error_from_json_and_header(void **state)
{
    fixture *f = *state;
    NEED_SERVER();
    scripted_http_add(&server,
                      "[{\"status\":403,\"headers\":{\"x-ms-error-code\":\"AuthenticationFailed\"}},"
                      "{\"status\":401,\"body\":\"{\\\"error\\\":{\\\"code\\\":401,\\\"message\\\":"
                      "\\\"Invalid Credentials\\\"}}\"}]");
    assert_int_equal(perform(f, "HEAD", "/b/obj", NULL, 0), 0);
    assert_int_equal(status_error(f), NOVA_EACCESS);
    assert_non_null(strstr(nova_error_last()->message, "AuthenticationFailed"));
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(status_error(f), NOVA_EACCESS);
    assert_non_null(strstr(nova_error_last()->message, "Invalid Credentials"));
}

/* ---- faults ------------------------------------------------------------------------------ */

static void test_truncated_body(void **state)
{
    fixture *f = *state;
    NEED_SERVER();
    scripted_http_add(&server, "[{\"action\":\"truncate\",\"body_size\":100000,\"truncate_at\":"
                               "40000},{\"status\":200,\"body\":\"after\"}]");
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, "truncated"));
    assert_non_null(strstr(nova_error_last()->message, server.base_url));
    /* the client is still usable */
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 200);
    assert_int_equal(f->response.body.len, 5);
}

static void test_dropped_connection(void **state)
{
    fixture *f = *state;
    NEED_SERVER();
    scripted_http_add(&server, "[{\"action\":\"drop\"},{\"action\":\"reset\"},{\"status\":204}]");
    assert_int_equal(perform(f, "PUT", "/b/obj", "abc", 3), NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, "test object 'o'"));
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), NOVA_EBACKEND);
    assert_int_equal(perform(f, "GET", "/b/obj", NULL, 0), 0);
    assert_int_equal(f->response.status, 204);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    nova_http_options options = NOVA_HTTP_OPTIONS_INIT;
    nova_http_client *slow_client;
    nova_http_request request = {0};
    uint64_t start;
    NEED_SERVER();
    options.request_timeout_ms = 300;
    assert_int_equal(nova_http_client_new(&slow_client, &options), 0);
    scripted_http_add(&server, "[{\"delay\":3,\"status\":200,\"body\":\"late\"}]");
    scripted_http_url(&server, f->url, sizeof(f->url), "/b/slow");
    request.method = "GET";
    request.url = f->url;
    request.what = "slow object";
    start = now_ms();
    assert_int_equal(nova_http_perform(slow_client, &request, &f->response), NOVA_EBACKEND);
    assert_true(now_ms() - start < 2500);
    assert_non_null(strstr(nova_error_last()->message, "timed out"));
    nova_http_client_free(slow_client);
}

static void test_connection_refused_names_endpoint(void **state)
{
    fixture *f = *state;
    nova_http_request request = {0};
    char expected[64];
    int port = scripted_http_dead_port();
    snprintf(f->url, sizeof(f->url), "http://user:pw@127.0.0.1:%d/bucket/obj?X-Sig=TOPSECRET",
             port);
    snprintf(expected, sizeof(expected), "http://127.0.0.1:%d", port);
    request.method = "GET";
    request.url = f->url;
    request.what = "s3 object 'obj'";
    request.aws_sigv4 = "aws:amz:us-east-1:s3";
    request.userpwd = "AKID:VERYSECRET";
    assert_int_equal(nova_http_perform(f->client, &request, &f->response), NOVA_EBACKEND);
    assert_non_null(strstr(nova_error_last()->message, expected));
    assert_non_null(strstr(nova_error_last()->message, "s3 object 'obj'"));
    assert_null(strstr(nova_error_last()->message, "TOPSECRET"));
    assert_null(strstr(nova_error_last()->message, "VERYSECRET"));
    assert_null(strstr(nova_error_last()->message, "pw@"));
}

/* ---- signing ------------------------------------------------------------------------------ */

static void test_sigv4_headers(void **state)
{
    fixture *f = *state;
    nova_http_header headers[] = {
        {"x-amz-content-sha256",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}};
    nova_http_request request = {0};
    json_t *log, *entry;
    const char *auth;
    NEED_SERVER();
    scripted_http_add(&server, "[{\"status\":200}]");
    scripted_http_url(&server, f->url, sizeof(f->url), "/bucket/key?list-type=2&prefix=a");
    request.method = "GET";
    request.url = f->url;
    request.headers = headers;
    request.header_count = 1;
    request.aws_sigv4 = "aws:amz:eu-west-3:s3";
    request.userpwd = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    assert_int_equal(nova_http_perform(f->client, &request, &f->response), 0);
    log = scripted_http_log(&server);
    entry = scripted_http_log_entry(log, 0);
    auth = scripted_http_log_header(entry, "authorization");
    assert_non_null(auth);
    assert_non_null(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    assert_non_null(strstr(auth, "/eu-west-3/s3/aws4_request"));
    assert_non_null(strstr(auth, "x-amz-content-sha256"));
    assert_null(strstr(auth, "wJalrXUtnFEMI"));
    assert_non_null(scripted_http_log_header(entry, "x-amz-date"));
    json_decref(log);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct worker {
    nova_http_client *client;
    int id;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    char url[256], path[64];
    uint8_t body[512];

    for (int i = 0; i < 20; i++) {
        nova_http_request request = {0};
        test_fill_random(body, sizeof(body), (uint64_t)(w->id * 100 + i));
        snprintf(path, sizeof(path), "/b/t%d/%d", w->id, i);
        scripted_http_url(&server, url, sizeof(url), path);
        request.method = "PUT";
        request.url = url;
        request.body = body;
        request.body_len = sizeof(body);
        if (nova_http_perform(w->client, &request, &response) != 0 || response.status != 200 ||
            response.body.len != sizeof(body) || memcmp(response.body.data, body, sizeof(body)))
            w->failures++;
    }
    nova_http_response_free(&response);
    return NULL;
}

static void test_threads_share_a_client(void **state)
{
    fixture *f = *state;
    pthread_t threads[4];
    worker workers[4];
    NEED_SERVER();
    scripted_http_add(&server, "[{\"echo\":true,\"times\":0}]");
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){f->client, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].failures, 0);
    }
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void expect_encoding(const char *text, int keep_slash, const char *expected)
{
    nova_buf out = NOVA_BUF_INIT;
    assert_int_equal(nova_http_percent_encode(&out, text, keep_slash), 0);
    assert_int_equal(out.len, strlen(expected));
    assert_memory_equal(out.data, expected, out.len);
    nova_buf_free(&out);
}

static void test_percent_encode(void **state)
{
    (void)state;
    expect_encoding("", 0, "");
    expect_encoding("AZaz09-._~", 0, "AZaz09-._~");
    expect_encoding("a/b c", 1, "a/b%20c");
    expect_encoding("a/b c", 0, "a%2Fb%20c");
    expect_encoding("x+y=z&\xc3\xa9", 0, "x%2By%3Dz%26%C3%A9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_sends_exact_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_put_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_has_headers_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_error_from_json_and_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_names_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_a_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_percent_encode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
