/*
 * test_azure.c -- the Azure Blob backend (src/storage/azure.c).
 *
 * Three groups:
 *  - locations, connection strings and the environment (no server);
 *  - protocol faults against the scripted HTTP server (tests/servers/scripted_http.py):
 *    throttling, truncated bodies, dropped connections, a wrong Content-MD5, refused
 *    credentials, conflicts, what goes on the wire (signature header, Content-MD5, block
 *    ids, list markers); skipped when python3 is missing;
 *  - the storage contract against azurite: needs NOVA_TEST_AZURE_ENDPOINT, _ACCOUNT and
 *    _KEY (eval "$(tests/servers/start-azure.sh)"; tests/e2e/test_cloud_azure.sh does it and
 *    runs this program); skipped with a message otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http_support.h"
#include "storage_support.h"
#include "test_support.h"

#include "nova/config.h"
#include "nova/error.h"
#include "primitives/hash.h"
#include "storage/azure.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char dev_key[] = NOVA_AZURE_DEV_KEY;

static const char *last_message(void) { return nova_error_last()->message; }

static void assert_message_has(const char *needle)
{
    if (!strstr(last_message(), needle))
        fail_msg("message '%s' lacks '%s'", last_message(), needle);
}

static void assert_message_lacks(const char *needle)
{
    if (needle && needle[0] && strstr(last_message(), needle))
        fail_msg("message '%s' shows '%s'", last_message(), needle);
}

/* ---- locations and credentials (no server) ------------------------------------------------ */

static void clear_azure_env(void)
{
    unsetenv("AZURE_STORAGE_CONNECTION_STRING");
    unsetenv("AZURE_STORAGE_ACCOUNT");
    unsetenv("AZURE_STORAGE_KEY");
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
}

static void test_location_with_connection_string_env(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    (void)state;
    clear_azure_env();
    setenv("AZURE_STORAGE_CONNECTION_STRING",
           "DefaultEndpointsProtocol=http; AccountName=devstoreaccount1;AccountKey=" NOVA_AZURE_DEV_KEY
           ";BlobEndpoint=http://127.0.0.1:10123/devstoreaccount1/;QueueEndpoint=http://x/;",
           1);
    assert_int_equal(nova_azure_location_parse(&o, "azure:backups/hosts/a1/", NULL), 0);
    assert_string_equal(o.container, "backups");
    assert_string_equal(o.prefix, "hosts/a1");
    assert_string_equal(o.endpoint, "http://127.0.0.1:10123/devstoreaccount1");
    assert_string_equal(o.account, "devstoreaccount1");
    assert_string_equal(o.key, dev_key);
    assert_null(o.sas);
    assert_int_equal(o.create, 0);
    nova_azure_options_clear(&o);
    assert_null(o.container);
    assert_null(o.key);

    assert_int_equal(nova_azure_location_parse(&o, "azure:backups", NULL), 0);
    assert_null(o.prefix);
    nova_azure_options_clear(&o);
    clear_azure_env();
}

static void test_connection_strings(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    (void)state;
    assert_int_equal(nova_azure_connection_string_parse(&o, "UseDevelopmentStorage=true"), 0);
    assert_string_equal(o.endpoint, NOVA_AZURE_DEV_ENDPOINT);
    assert_string_equal(o.account, NOVA_AZURE_DEV_ACCOUNT);
    assert_string_equal(o.key, dev_key);
    nova_azure_options_clear(&o);

    assert_int_equal(nova_azure_connection_string_parse(
                         &o, "UseDevelopmentStorage=true;BlobEndpoint=http://127.0.0.1:9/acc"), 0);
    assert_string_equal(o.endpoint, "http://127.0.0.1:9/acc");
    nova_azure_options_clear(&o);

    assert_int_equal(nova_azure_connection_string_parse(
                         &o, "accountname=prod1;ACCOUNTKEY=" NOVA_AZURE_DEV_KEY
                             ";EndpointSuffix=core.chinacloudapi.cn"), 0);
    assert_string_equal(o.endpoint, "https://prod1.blob.core.chinacloudapi.cn");
    nova_azure_options_clear(&o);

    assert_int_equal(nova_azure_connection_string_parse(
                         &o, "BlobEndpoint=https://x.example/;SharedAccessSignature=?sv=1&sig=a%2B"),
                     0);
    assert_string_equal(o.endpoint, "https://x.example");
    assert_string_equal(o.sas, "sv=1&sig=a%2B");
    assert_null(o.key);
    nova_azure_options_clear(&o);
}

static void test_connection_string_errors_hide_secrets(void **state)
{
    static const char *const bad[] = {
        "AccountName=a1",                                      /* no key or SAS */
        "AccountKey=" NOVA_AZURE_DEV_KEY,                      /* key without account */
        "AccountName=a1;AccountKey=not*base64*secretvalue",    /* malformed key */
        "AccountName=a1;AccountKey=" NOVA_AZURE_DEV_KEY ";BlobEndpoint=ftp://h/",
        "AccountName=a1;AccountKey=" NOVA_AZURE_DEV_KEY ";BlobEndpoint=http://h/?sig=secretvalue",
        "AccountName=a1;AccountKey=" NOVA_AZURE_DEV_KEY ";DefaultEndpointsProtocol=gopher",
        "AccountName=a1;justtext",
        "AccountName=bad name;AccountKey=" NOVA_AZURE_DEV_KEY,
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
        int rc = nova_azure_connection_string_parse(&o, bad[i]);
        if (rc != NOVA_ECONFIG)
            fail_msg("case %zu: got %d", i, rc);
        assert_message_lacks(dev_key);
        assert_message_lacks("secretvalue");
        nova_azure_options_clear(&o);
    }
}

static nova_config *config_from(const char *json)
{
    nova_config *c = NULL;
    if (nova_config_parse(&c, json, strlen(json), "<test>") != 0)
        fail_msg("config: %s", last_message());
    return c;
}

static void test_location_config_and_precedence(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_config *c;
    (void)state;
    clear_azure_env();
    setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
    /* account + key in the config win over the environment; the config names the container */
    c = config_from("{\"storage\":{\"azure\":{\"container\":\"cfg-box\",\"account\":\"acct9\","
                    "\"key\":\"" NOVA_AZURE_DEV_KEY "\"}}}");
    assert_int_equal(nova_azure_location_parse(&o, "azure:", c), 0);
    assert_string_equal(o.container, "cfg-box");
    assert_string_equal(o.account, "acct9");
    assert_string_equal(o.endpoint, "https://acct9.blob.core.windows.net");
    nova_azure_options_clear(&o);
    /* the location's container wins over the config's */
    assert_int_equal(nova_azure_location_parse(&o, "azure:other/p", c), 0);
    assert_string_equal(o.container, "other");
    nova_azure_options_clear(&o);
    nova_config_free(c);

    /* a config with only the container takes the credentials from the environment */
    c = config_from("{\"storage\":{\"azure\":{\"container\":\"cfg-box\"}}}");
    assert_int_equal(nova_azure_location_parse(&o, "azure:", c), 0);
    assert_string_equal(o.endpoint, NOVA_AZURE_DEV_ENDPOINT);
    nova_azure_options_clear(&o);
    nova_config_free(c);

    /* config SAS (leading '?' dropped) */
    c = config_from("{\"storage\":{\"azure\":{\"container\":\"cfg-box\",\"account\":\"acct9\","
                    "\"sas\":\"?sv=2025-11-05&sig=abc\"}}}");
    assert_int_equal(nova_azure_location_parse(&o, "azure:", c), 0);
    assert_string_equal(o.sas, "sv=2025-11-05&sig=abc");
    assert_null(o.key);
    nova_azure_options_clear(&o);
    nova_config_free(c);

    /* environment account + SAS token */
    clear_azure_env();
    setenv("AZURE_STORAGE_ACCOUNT", "envacct", 1);
    setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x", 1);
    assert_int_equal(nova_azure_location_parse(&o, "azure:box", NULL), 0);
    assert_string_equal(o.endpoint, "https://envacct.blob.core.windows.net");
    assert_string_equal(o.sas, "sv=1&sig=x");
    nova_azure_options_clear(&o);
    setenv("AZURE_STORAGE_KEY", dev_key, 1);
    assert_int_equal(nova_azure_location_parse(&o, "azure:box", NULL), 0);
    assert_string_equal(o.key, dev_key);
    assert_null(o.sas);
    nova_azure_options_clear(&o);
    clear_azure_env();
}

static void test_location_errors(void **state)
{
    static const char *const invalid[] = {
        "azure:",          "azure:/p",       "azure:ab",        "azure:Upper",
        "azure:a_b-c",     "azure:-abc",     "azure:abc-",      "azure:ab--c",
        "azure:box/../x",  "azure:box/a//b", "azure:box/a b",   "s3:box",
        "box",             "azure:box/./x",
    };
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_config *c;
    (void)state;
    clear_azure_env();
    setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        int rc = nova_azure_location_parse(&o, invalid[i], NULL);
        if (rc != NOVA_EINVALID)
            fail_msg("'%s': got %d", invalid[i], rc);
        assert_null(o.container);
    }
    clear_azure_env();
    assert_int_equal(nova_azure_location_parse(&o, "azure:box", NULL), NOVA_ECONFIG);
    assert_message_has("AZURE_STORAGE_CONNECTION_STRING");
    assert_null(o.container);
    c = config_from("{\"storage\":{\"azure\":{\"container\":\"box\",\"key\":\"" NOVA_AZURE_DEV_KEY
                    "\"}}}");
    assert_int_equal(nova_azure_location_parse(&o, "azure:", c), NOVA_ECONFIG);
    assert_message_lacks(dev_key);
    nova_config_free(c);
    c = config_from("{\"storage\":{\"azure\":{\"container\":\"box\",\"account\":\"a\","
                    "\"key\":\"secret-but-not-base64\"}}}");
    assert_int_equal(nova_azure_location_parse(&o, "azure:", c), NOVA_ECONFIG);
    assert_message_lacks("secret-but-not-base64");
    nova_config_free(c);
}

static void test_open_rejects_bad_options(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    (void)state;
    o.endpoint = "http://127.0.0.1:1/devstoreaccount1";
    o.account = "devstoreaccount1";
    o.container = "box";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_ECONFIG); /* no key, no sas */
    o.key = "@@@@";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_ECONFIG);
    o.key = dev_key;
    o.container = "BOX";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EINVALID);
    o.container = "box";
    o.prefix = "../up";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EINVALID);
    o.prefix = NULL;
    o.endpoint = "http://127.0.0.1:1/x?sig=1";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EINVALID);
    o.endpoint = "file:///etc";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EINVALID);
    assert_null(s);
    assert_int_equal(nova_storage_azure_open(&s, NULL), NOVA_EINVALID);
}

/* Nothing listens: BACKUP_001 naming the endpoint, never the key. */
static void test_open_unreachable_is_backend_error(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    char endpoint[96], hostport[64];
    int port = scripted_http_dead_port();
    (void)state;
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/devstoreaccount1", port);
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", port);
    o.endpoint = endpoint;
    o.account = "devstoreaccount1";
    o.key = dev_key;
    o.container = "box";
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EBACKEND);
    assert_null(s);
    assert_string_equal(nova_error_user_code(NOVA_EBACKEND), "BACKUP_001");
    assert_message_has(hostport);
    assert_message_lacks(dev_key);
}

/* ---- protocol faults against the scripted server ------------------------------------------- */

static scripted_http server;
static int server_missing;

static int scripted_group_setup(void **state)
{
    (void)state;
    server_missing = scripted_http_start(&server);
    return 0;
}

static int scripted_group_teardown(void **state)
{
    (void)state;
    scripted_http_stop(&server);
    return 0;
}

#define NEED_SCRIPTED()                                                                            \
    do {                                                                                           \
        if (server_missing)                                                                        \
            skip();                                                                                \
    } while (0)

#define EMPTY_LISTING "<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
#define PROBE_RULE                                                                                 \
    "{\"method\":\"GET\",\"path\":\"^/devstoreaccount1/fault\\\\?comp=list&maxresults=1&\","       \
    "\"body\":\"" EMPTY_LISTING "\"}"

/* Opens a store on the scripted server (container "fault"), answering the probe first. */
static nova_storage *scripted_open(size_t threshold, size_t block)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    char endpoint[128];

    scripted_http_reset(&server);
    scripted_http_add(&server, "[" PROBE_RULE "]");
    scripted_http_url(&server, endpoint, sizeof(endpoint), "/devstoreaccount1");
    o.endpoint = endpoint;
    o.account = "devstoreaccount1";
    o.key = dev_key;
    o.container = "fault";
    o.block_threshold = threshold;
    o.block_size = block;
    o.list_page_size = 2;
    o.http.low_speed_seconds = 5;
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open on the scripted server: %s", last_message());
    return s;
}

static void test_scripted_put_wire_format(void **state)
{
    nova_storage *s;
    json_t *log, *put;
    const char *auth;
    char md5[25];
    (void)state;
    NEED_SCRIPTED();
    s = scripted_open(0, 0);
    scripted_http_add(&server, "[{\"method\":\"PUT\",\"path\":\"^/devstoreaccount1/fault/a/b$\","
                               "\"status\":201}]");
    assert_int_equal(nova_storage_put(s, "a/b", "hello", 5), 0);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 2);
    put = scripted_http_log_entry(log, 1);
    assert_non_null(put);
    assert_int_equal(json_integer_value(json_object_get(put, "body_len")), 5);
    assert_int_equal(nova_azure_content_md5(md5, "hello", 5), 0);
    assert_string_equal(scripted_http_log_header(put, "content-md5"), md5);
    assert_string_equal(scripted_http_log_header(put, "if-none-match"), "*");
    assert_string_equal(scripted_http_log_header(put, "x-ms-blob-type"), "BlockBlob");
    assert_string_equal(scripted_http_log_header(put, "x-ms-version"), NOVA_AZURE_API_VERSION);
    assert_string_equal(scripted_http_log_header(put, "content-type"), "application/octet-stream");
    assert_non_null(scripted_http_log_header(put, "x-ms-date"));
    auth = scripted_http_log_header(put, "authorization");
    assert_non_null(auth);
    assert_int_equal(strncmp(auth, "SharedKey devstoreaccount1:", 27), 0);
    assert_int_equal(strlen(auth), 27 + 44);
    json_decref(log);
    nova_storage_free(s);
}

static void test_scripted_conflicts_are_exists(void **state)
{
    nova_storage *s;
    (void)state;
    NEED_SCRIPTED();
    s = scripted_open(0, 0);
    scripted_http_add(&server,
                      "[{\"method\":\"PUT\",\"status\":409,\"headers\":{\"x-ms-error-code\":"
                      "\"BlobAlreadyExists\"},\"body\":\"<Error><Code>BlobAlreadyExists</Code>"
                      "</Error>\"},"
                      "{\"method\":\"PUT\",\"status\":412,\"headers\":{\"x-ms-error-code\":"
                      "\"ConditionNotMet\"}}]");
    assert_int_equal(nova_storage_put(s, "x", "1", 1), NOVA_EEXISTS);
    assert_message_has("fault/x");
    assert_int_equal(nova_storage_put(s, "x", "1", 1), NOVA_EEXISTS);
    nova_storage_free(s);
}

static void test_scripted_status_mapping(void **state)
{
    nova_storage *s;
    nova_object_info info;
    nova_buf out = NOVA_BUF_INIT;
    char hostport[64];
    (void)state;
    NEED_SCRIPTED();
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", server.port);
    s = scripted_open(0, 0);
    scripted_http_add(
        &server,
        "[{\"method\":\"PUT\",\"status\":503,\"headers\":{\"x-ms-error-code\":\"ServerBusy\"}},"
        "{\"method\":\"PUT\",\"status\":429},"
        "{\"method\":\"PUT\",\"status\":500,\"body\":\"<Error><Code>InternalError</Code></Error>\"},"
        "{\"method\":\"PUT\",\"status\":400,\"headers\":{\"x-ms-error-code\":\"Md5Mismatch\"}},"
        "{\"method\":\"PUT\",\"status\":403,\"headers\":{\"x-ms-error-code\":"
        "\"AuthenticationFailed\"}},"
        "{\"method\":\"GET\",\"status\":403,\"headers\":{\"x-ms-error-code\":"
        "\"AuthorizationPermissionMismatch\"}},"
        "{\"method\":\"HEAD\",\"status\":404},"
        "{\"method\":\"DELETE\",\"status\":404,\"headers\":{\"x-ms-error-code\":\"BlobNotFound\"}},"
        "{\"method\":\"DELETE\",\"status\":409,\"headers\":{\"x-ms-error-code\":\"LeaseIdMissing\"}},"
        "{\"method\":\"GET\",\"status\":200,\"action\":\"drop\"}]");
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EBACKEND);
    assert_message_has(hostport);
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EBACKEND);
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EBACKEND);
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EIO);
    assert_message_has("Md5Mismatch");
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EREFUSED);
    assert_message_has("refused the credentials");
    assert_message_has(hostport);
    assert_message_lacks(dev_key);
    assert_int_equal(nova_storage_get(s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EACCESS);
    assert_int_equal(nova_storage_stat(s, "o", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(s, "o"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_del(s, "o"), NOVA_EIO); /* a conflict is not "exists" */
    assert_message_has("LeaseIdMissing");
    assert_int_equal(nova_storage_get(s, "o", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    assert_message_has(hostport);
    assert_int_equal(out.len, 0);
    nova_buf_free(&out);
    nova_storage_free(s);
}

static void test_scripted_download_integrity(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    char md5[25];
    char rules[1024];
    (void)state;
    NEED_SCRIPTED();
    s = scripted_open(0, 0);
    assert_int_equal(nova_azure_content_md5(md5, "payload!", 8), 0);
    snprintf(rules, sizeof(rules),
             "[{\"method\":\"GET\",\"path\":\"/good$\",\"headers\":{\"Content-MD5\":\"%s\"},"
             "\"body\":\"payload!\"},"
             "{\"method\":\"GET\",\"path\":\"/bad$\",\"headers\":{\"Content-MD5\":\"%s\"},"
             "\"body\":\"payload?\"},"
             "{\"method\":\"GET\",\"path\":\"/cut$\",\"action\":\"truncate\",\"body\":\"0123456789\"},"
             "{\"method\":\"GET\",\"path\":\"/plain$\",\"body\":\"no md5 here\"}]",
             md5, md5);
    scripted_http_add(&server, rules);
    assert_int_equal(nova_storage_get(s, "good", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 8);
    assert_int_equal(nova_storage_get(s, "bad", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ECHECKSUM);
    assert_message_has("Content-MD5");
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "cut", 0, NOVA_STORAGE_WHOLE, &out), NOVA_EBACKEND);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "plain", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 11);
    nova_buf_free(&out);
    nova_storage_free(s);
}

/* A server that ignores x-ms-range (answers 200 with everything) still yields the range;
 * a 206 longer than the range is refused; a 416 at the very end is an empty read, past it
 * corruption. */
static void test_scripted_range_fallbacks(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = scripted_open(0, 0);
    scripted_http_add(&server,
                      "[{\"method\":\"GET\",\"path\":\"/whole$\",\"body\":\"0123456789\",\"times\":2},"
                      "{\"method\":\"GET\",\"path\":\"/long$\",\"status\":206,\"body\":\"0123456789\"},"
                      "{\"method\":\"GET\",\"path\":\"/end$\",\"status\":416},"
                      "{\"method\":\"HEAD\",\"path\":\"/end$\",\"headers\":{\"Content-Length\":\"10\"},"
                      "\"times\":0}]");
    assert_int_equal(nova_storage_get(s, "whole", 3, 4, &out), 0);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "3456", 4);
    assert_int_equal(nova_storage_get(s, "whole", 8, 4, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "long", 2, 4, &out), NOVA_EIO);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "end", 10, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "end", 11, 0, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "end", 10, 0, &out), 0);
    log = scripted_http_log(&server);
    assert_string_equal(scripted_http_log_header(scripted_http_log_entry(log, 1), "x-ms-range"),
                        "bytes=3-6");
    assert_string_equal(scripted_http_log_header(scripted_http_log_entry(log, 4), "x-ms-range"),
                        "bytes=10-");
    json_decref(log);
    nova_buf_free(&out);
    nova_storage_free(s);
}

typedef struct retry_clock {
    uint64_t now;
} retry_clock;

static void fake_sleep(unsigned ms, void *payload) { ((retry_clock *)payload)->now += ms; }
static uint64_t fake_now(void *payload) { return ((retry_clock *)payload)->now; }

/* Throttling then success, through the retry wrapper: the put is reported done only once
 * the service confirmed it (201). */
static void test_scripted_throttling_then_success_with_retry(void **state)
{
    nova_storage *s, *r = NULL;
    retry_clock clock = {0};
    nova_retry_hooks hooks = {fake_sleep, fake_now, NULL, &clock};
    nova_retry_options ro = NOVA_RETRY_OPTIONS_INIT;
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    s = scripted_open(0, 0);
    ro.hooks = &hooks;
    scripted_http_add(&server, "[{\"method\":\"PUT\",\"status\":503,\"headers\":{\"Retry-After\":"
                               "\"0\",\"x-ms-error-code\":\"ServerBusy\"}},"
                               "{\"method\":\"PUT\",\"status\":429},"
                               "{\"method\":\"PUT\",\"action\":\"drop\"},"
                               "{\"method\":\"PUT\",\"status\":201}]");
    assert_int_equal(nova_storage_retry_wrap(&r, s, &ro), 0);
    assert_int_equal(nova_storage_put(r, "t", "abc", 3), 0);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 5); /* probe + 4 puts */
    json_decref(log);
    nova_storage_free(r);
}

/* Large objects: blocks with distinct fixed-width ids, URL-encoded in the URL, each with
 * its Content-MD5; then a conditional Put Block List naming them in order. */
static void test_scripted_block_upload_wire_format(void **state)
{
    nova_storage *s;
    uint8_t data[1000];
    json_t *log, *commit;
    char ids[4][64];
    (void)state;
    NEED_SCRIPTED();
    test_fill_random(data, sizeof(data), 7);
    s = scripted_open(300, 256);
    scripted_http_add(&server,
                      "[{\"method\":\"HEAD\",\"path\":\"/fault/big$\",\"status\":404},"
                      "{\"method\":\"PUT\",\"path\":\"/fault/big\\\\?comp=block&blockid=\","
                      "\"status\":201,\"times\":4},"
                      "{\"method\":\"PUT\",\"path\":\"/fault/big\\\\?comp=blocklist$\",\"status\":201},"
                      "{\"method\":\"HEAD\",\"path\":\"/fault/big$\",\"status\":200}]");
    assert_int_equal(nova_storage_put(s, "big", data, sizeof(data)), 0);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 1 + 1 + 4 + 1);
    for (size_t i = 0; i < 4; i++) {
        json_t *e = scripted_http_log_entry(log, 2 + i);
        const char *path = scripted_http_log_path(e);
        const char *id = strstr(path, "blockid=");
        char md5[25];
        size_t len = i < 3 ? 256 : 1000 - 3 * 256;
        assert_non_null(id);
        id += 8;
        assert_null(strpbrk(id, "+/="));
        assert_true(strlen(id) < sizeof(ids[i]));
        strcpy(ids[i], id);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
        if (i > 0)
            assert_int_equal(strlen(ids[i]), strlen(ids[0]));
        assert_int_equal(json_integer_value(json_object_get(e, "body_len")), len);
        assert_int_equal(nova_azure_content_md5(md5, data + i * 256, len), 0);
        assert_string_equal(scripted_http_log_header(e, "content-md5"), md5);
        assert_null(scripted_http_log_header(e, "if-none-match"));
    }
    commit = scripted_http_log_entry(log, 6);
    assert_string_equal(scripted_http_log_header(commit, "if-none-match"), "*");
    assert_string_equal(scripted_http_log_header(commit, "content-type"), "application/xml");
    {
        char whole[25];
        assert_int_equal(nova_azure_content_md5(whole, data, sizeof(data)), 0);
        assert_string_equal(scripted_http_log_header(commit, "x-ms-blob-content-md5"), whole);
    }
    json_decref(log);
    /* an existing blob is refused before any block goes up */
    assert_int_equal(nova_storage_put(s, "big", data, sizeof(data)), NOVA_EEXISTS);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 8);
    json_decref(log);
    nova_storage_free(s);
}

typedef struct name_list {
    storage_test_names names;
} name_list;

/* NextMarker goes back URL-encoded; pages are streamed; the store's prefix is removed and
 * names that are not valid object names are skipped. */
static void test_scripted_list_paging_and_marker(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    storage_test_names names = {0};
    char endpoint[128];
    json_t *log;
    char *joined;
    (void)state;
    NEED_SCRIPTED();
    scripted_http_reset(&server);
    scripted_http_add(
        &server,
        "[{\"method\":\"GET\",\"path\":\"maxresults=1&prefix=pre%2F&restype=container$\","
        "\"body\":\"" EMPTY_LISTING "\"},"
        "{\"method\":\"GET\",\"path\":\"^/devstoreaccount1/fault\\\\?comp=list&maxresults=2&"
        "prefix=pre%2Fsnap&restype=container$\",\"body\":\"<EnumerationResults><Blobs>"
        "<Blob><Name>pre/snap/1</Name><Properties><Content-Length>3</Content-Length>"
        "</Properties></Blob><Blob><Name>pre/snap/bad name</Name><Properties><Content-Length>1"
        "</Content-Length></Properties></Blob></Blobs><NextMarker>a b+c/d&amp;e</NextMarker>"
        "</EnumerationResults>\"},"
        "{\"method\":\"GET\",\"path\":\"^/devstoreaccount1/fault\\\\?comp=list&marker=a%20b%2Bc%2Fd%26e&"
        "maxresults=2&prefix=pre%2Fsnap&restype=container$\",\"body\":\"<EnumerationResults><Blobs>"
        "<Blob><Name>pre/snap/2</Name><Properties><Content-Length>4</Content-Length>"
        "</Properties></Blob></Blobs><NextMarker/></EnumerationResults>\"}]");
    scripted_http_url(&server, endpoint, sizeof(endpoint), "/devstoreaccount1");
    o.endpoint = endpoint;
    o.account = "devstoreaccount1";
    o.key = dev_key;
    o.container = "fault";
    o.prefix = "pre";
    o.list_page_size = 2;
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open: %s", last_message());
    assert_int_equal(nova_storage_list(s, "snap", storage_test_collect, &names), 0);
    storage_test_names_sort(&names);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "snap/1,snap/2");
    assert_int_equal(names.sizes[0], 3);
    assert_int_equal(names.sizes[1], 4);
    free(joined);
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(scripted_http_log_entry(log, i),
                                                            "rule")),
                         (json_int_t)i);
    json_decref(log);
    storage_test_names_free(&names);
    nova_storage_free(s);
}

/* A SAS token rides in the query and is never in messages; no Authorization header. */
static void test_scripted_sas_in_query_only(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    char endpoint[128];
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    scripted_http_reset(&server);
    scripted_http_add(&server,
                      "[{\"method\":\"GET\",\"path\":\"&restype=container&sv=2025-11-05&sig=SeCrEt%2B$\","
                      "\"body\":\"" EMPTY_LISTING "\"},"
                      "{\"method\":\"PUT\",\"path\":\"^/devstoreaccount1/fault/o\\\\?sv=2025-11-05&"
                      "sig=SeCrEt%2B$\",\"status\":403,\"headers\":{\"x-ms-error-code\":"
                      "\"AuthenticationFailed\"}}]");
    scripted_http_url(&server, endpoint, sizeof(endpoint), "/devstoreaccount1");
    o.endpoint = endpoint;
    o.container = "fault";
    o.sas = "?sv=2025-11-05&sig=SeCrEt%2B";
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open: %s", last_message());
    assert_int_equal(nova_storage_put(s, "o", "1", 1), NOVA_EREFUSED);
    assert_message_lacks("SeCrEt");
    assert_message_lacks("sig=");
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 2);
    assert_null(scripted_http_log_header(scripted_http_log_entry(log, 0), "authorization"));
    assert_null(scripted_http_log_header(scripted_http_log_entry(log, 1), "authorization"));
    json_decref(log);
    nova_storage_free(s);
}

/* Open: a missing container is NOVA_ENOTFOUND unless it may be created; other probe
 * failures are BACKUP_001. */
static void test_scripted_open_container_handling(void **state)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    nova_storage *s = NULL;
    char endpoint[128];
    json_t *log;
    (void)state;
    NEED_SCRIPTED();
    scripted_http_url(&server, endpoint, sizeof(endpoint), "/devstoreaccount1");
    o.endpoint = endpoint;
    o.account = "devstoreaccount1";
    o.key = dev_key;
    o.container = "fault";

    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"status\":404,\"headers\":"
                               "{\"x-ms-error-code\":\"ContainerNotFound\"}}]");
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_ENOTFOUND);
    assert_message_has("does not exist");

    o.create = 1;
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"status\":404},"
                               "{\"method\":\"PUT\",\"path\":\"^/devstoreaccount1/fault\\\\?restype="
                               "container$\",\"status\":409,\"headers\":{\"x-ms-error-code\":"
                               "\"ContainerAlreadyExists\"}}]");
    assert_int_equal(nova_storage_azure_open(&s, &o), 0);
    assert_string_equal(nova_storage_kind(s), "azure");
    assert_int_equal(nova_storage_features(s) & NOVA_STORAGE_ATOMIC_CREATE,
                     NOVA_STORAGE_ATOMIC_CREATE);
    nova_storage_free(s);
    s = NULL;
    log = scripted_http_log(&server);
    assert_int_equal(json_array_size(log), 2);
    json_decref(log);

    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"status\":200,\"body\":\"<html>proxy</html>\"}]");
    /* an answer that is not a listing may come from a proxy in the way: transient; a bad
     * request will not get better by waiting: refused (never retried) */
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EBACKEND);
    assert_message_has("not usable");
    scripted_http_reset(&server);
    scripted_http_add(&server, "[{\"method\":\"GET\",\"status\":400,\"headers\":"
                               "{\"x-ms-error-code\":\"InvalidHeaderValue\"}}]");
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EREFUSED);
    assert_null(s);
}

/* ---- the storage contract against azurite ------------------------------------------------ */

static char container[64];
static int azurite_missing;

static int azurite_group_setup(void **state)
{
    uint8_t random[4];
    char hex[9];
    (void)state;
    azurite_missing = !getenv("NOVA_TEST_AZURE_ENDPOINT") || !getenv("NOVA_TEST_AZURE_KEY") ||
                      !getenv("NOVA_TEST_AZURE_ACCOUNT");
    if (azurite_missing) {
        fprintf(stderr, "skip: azurite tests need NOVA_TEST_AZURE_ENDPOINT/_ACCOUNT/_KEY "
                        "(eval \"$(tests/servers/start-azure.sh)\"; or run "
                        "tests/e2e/test_cloud_azure.sh)\n");
        return 0;
    }
    if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
        abort();
    nova_hex_encode(hex, random, sizeof(random));
    snprintf(container, sizeof(container), "nova-unit-%ld-%s", (long)getpid(), hex);
    return 0;
}

#define NEED_AZURITE()                                                                             \
    do {                                                                                           \
        if (azurite_missing)                                                                       \
            skip();                                                                                \
    } while (0)

static void azurite_options(nova_azure_options *o, const char *prefix)
{
    *o = (nova_azure_options)NOVA_AZURE_OPTIONS_INIT;
    o->endpoint = getenv("NOVA_TEST_AZURE_ENDPOINT");
    o->account = getenv("NOVA_TEST_AZURE_ACCOUNT");
    o->key = getenv("NOVA_TEST_AZURE_KEY");
    o->container = container;
    o->prefix = prefix;
    o->create = 1;
}

static nova_storage *azurite_open(const char *prefix, size_t threshold, size_t block,
                                  unsigned page)
{
    nova_azure_options o;
    nova_storage *s = NULL;
    azurite_options(&o, prefix);
    o.block_threshold = threshold;
    o.block_size = block;
    o.list_page_size = page;
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open azurite container %s: %s", container, last_message());
    return s;
}

static void test_azurite_round_trip_and_immutability(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;
    (void)state;
    NEED_AZURITE();
    s = azurite_open("rt", 0, 0, 0);
    assert_int_equal(storage_test_put_text(s, "config", "{\"v\":1}"), 0);
    assert_int_equal(storage_test_put_text(s, "config", "{\"v\":2}"), NOVA_EEXISTS);
    assert_int_equal(nova_storage_get(s, "config", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.data, "{\"v\":1}", 7);
    assert_int_equal(nova_storage_stat(s, "config", &info), 0);
    assert_int_equal(info.size, 7);
    assert_int_equal(nova_storage_del(s, "config"), 0);
    assert_int_equal(nova_storage_del(s, "config"), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_stat(s, "config", &info), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(s, "config", 0, NOVA_STORAGE_WHOLE, &out), NOVA_ENOTFOUND);
    assert_int_equal(nova_storage_get(s, "config", 0, 0, &out), NOVA_ENOTFOUND);
    /* after a delete the name may be created again */
    assert_int_equal(storage_test_put_text(s, "config", "{\"v\":3}"), 0);
    assert_int_equal(nova_storage_get(s, "config", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_memory_equal(out.data, "{\"v\":3}", 7);
    nova_buf_free(&out);
    nova_storage_free(s);
}

static void test_azurite_empty_object_and_ranges(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;
    uint8_t data[1000];
    (void)state;
    NEED_AZURITE();
    s = azurite_open("ranges", 0, 0, 0);
    test_fill_random(data, sizeof(data), 11);
    assert_int_equal(nova_storage_put(s, "empty", "", 0), 0);
    assert_int_equal(nova_storage_stat(s, "empty", &info), 0);
    assert_int_equal(info.size, 0);
    assert_int_equal(nova_storage_get(s, "empty", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "empty", 0, 0, &out), 0);
    assert_int_equal(nova_storage_get(s, "empty", 1, 0, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "empty", 0, 1, &out), NOVA_ECORRUPT);

    assert_int_equal(nova_storage_put(s, "obj", data, sizeof(data)), 0);
    assert_int_equal(nova_storage_get(s, "obj", 0, 10, &out), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, data, 10);
    assert_int_equal(nova_storage_get(s, "obj", 990, 10, &out), 0);
    assert_memory_equal(out.data, data + 990, 10);
    assert_int_equal(nova_storage_get(s, "obj", 10, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 990);
    assert_memory_equal(out.data, data + 10, 990);
    assert_int_equal(nova_storage_get(s, "obj", 1000, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "obj", 1000, 0, &out), 0);
    assert_int_equal(nova_storage_get(s, "obj", 995, 10, &out), NOVA_ECORRUPT);
    assert_int_equal(out.len, 0);
    assert_int_equal(nova_storage_get(s, "obj", 1001, NOVA_STORAGE_WHOLE, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "obj", 1001, 0, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "obj", 5000, 5, &out), NOVA_ECORRUPT);
    assert_int_equal(nova_storage_get(s, "missing", 5, 5, &out), NOVA_ENOTFOUND);
    nova_buf_free(&out);
    nova_storage_free(s);
}

static void test_azurite_block_upload(void **state)
{
    nova_storage *s;
    nova_buf out = NOVA_BUF_INIT;
    nova_object_info info;
    size_t len = 200 * 1024 + 123;
    uint8_t *data;
    (void)state;
    NEED_AZURITE();
    data = malloc(len);
    assert_non_null(data);
    test_fill_random(data, len, 21);
    s = azurite_open("blocks", 64 * 1024, 16 * 1024, 0);
    assert_int_equal(nova_storage_put(s, "packs/big", data, len), 0);
    assert_int_equal(nova_storage_stat(s, "packs/big", &info), 0);
    assert_int_equal(info.size, len);
    assert_int_equal(nova_storage_get(s, "packs/big", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, data, len);
    /* a range across a block boundary */
    assert_int_equal(nova_storage_get(s, "packs/big", 16 * 1024 - 7, 100, &out), 0);
    assert_memory_equal(out.data, data + 16 * 1024 - 7, 100);
    assert_int_equal(nova_storage_put(s, "packs/big", data, len), NOVA_EEXISTS);
    assert_int_equal(nova_storage_put(s, "packs/big", data, 10), NOVA_EEXISTS);
    /* exactly the threshold goes as one Put Blob, one byte more as blocks */
    assert_int_equal(nova_storage_put(s, "packs/at", data, 64 * 1024), 0);
    assert_int_equal(nova_storage_put(s, "packs/over", data, 64 * 1024 + 1), 0);
    assert_int_equal(nova_storage_get(s, "packs/over", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 64 * 1024 + 1);
    assert_memory_equal(out.data, data, out.len);
    /* a small object may not replace a block blob either way round */
    assert_int_equal(nova_storage_put(s, "packs/at", data, len), NOVA_EEXISTS);
    nova_buf_free(&out);
    free(data);
    nova_storage_free(s);
}

typedef struct racer {
    nova_storage *s;
    pthread_barrier_t *barrier;
    const char *name;
    size_t len;
    uint64_t seed;
    int rc;
} racer;

static void *race_put(void *arg)
{
    racer *r = arg;
    uint8_t *data = malloc(r->len);
    if (!data)
        abort();
    test_fill_random(data, r->len, r->seed);
    pthread_barrier_wait(r->barrier);
    r->rc = nova_storage_put(r->s, r->name, data, r->len);
    free(data);
    return NULL;
}

/* Racing creators of one name: exactly one wins, the others see NOVA_EEXISTS, and the
 * blob holds the winner's bytes -- for Put Blob and for block uploads. */
static void race_one(nova_storage *s, const char *name, size_t len)
{
    enum { RACERS = 6 };
    pthread_t threads[RACERS];
    racer racers[RACERS];
    pthread_barrier_t barrier;
    nova_buf out = NOVA_BUF_INIT;
    int winners = 0, winner = -1;
    uint8_t *want;

    pthread_barrier_init(&barrier, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (racer){s, &barrier, name, len, 100 + (uint64_t)i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, race_put, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < RACERS; i++) {
        if (racers[i].rc == 0) {
            winners++;
            winner = i;
        } else if (racers[i].rc != NOVA_EEXISTS) {
            fail_msg("racer %d: %d", i, racers[i].rc);
        }
    }
    assert_int_equal(winners, 1);
    want = malloc(len);
    assert_non_null(want);
    test_fill_random(want, len, racers[winner].seed);
    assert_int_equal(nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, want, len);
    free(want);
    nova_buf_free(&out);
}

static void test_azurite_racing_creators(void **state)
{
    nova_storage *s;
    (void)state;
    NEED_AZURITE();
    s = azurite_open("race", 32 * 1024, 8 * 1024, 0);
    race_one(s, "locks/small", 1000);
    race_one(s, "locks/blocks", 100 * 1024);
    nova_storage_free(s);
}

static void test_azurite_listing(void **state)
{
    nova_storage *s, *other, *root;
    storage_test_names names = {0};
    char name[64], *joined;
    (void)state;
    NEED_AZURITE();
    s = azurite_open("repo/one", 0, 0, 4);
    other = azurite_open("repo/one-twin", 0, 0, 0);
    for (int i = 0; i < 11; i++) {
        snprintf(name, sizeof(name), "data/%02x/pack%d", i * 23, i);
        assert_int_equal(nova_storage_put(s, name, name, strlen(name)), 0);
    }
    assert_int_equal(storage_test_put_text(s, "snapshots/s1", "s1"), 0);
    assert_int_equal(storage_test_put_text(other, "data/00/elsewhere", "x"), 0);

    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 12);
    assert_true(storage_test_names_find(&names, "snapshots/s1") >= 0);
    assert_true(storage_test_names_find(&names, "data/00/pack0") >= 0);
    assert_int_equal(names.sizes[storage_test_names_find(&names, "data/00/pack0")], 13);
    assert_int_equal(storage_test_names_find(&names, "data/00/elsewhere"), -1);
    storage_test_names_free(&names);
    memset(&names, 0, sizeof(names));

    assert_int_equal(nova_storage_list(s, "data/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 11);
    storage_test_names_free(&names);
    memset(&names, 0, sizeof(names));

    assert_int_equal(nova_storage_list(s, "snap", storage_test_collect, &names), 0);
    joined = storage_test_names_join(&names);
    assert_string_equal(joined, "snapshots/s1");
    free(joined);
    storage_test_names_free(&names);
    memset(&names, 0, sizeof(names));

    assert_int_equal(nova_storage_list(s, "nothing/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 0);

    /* the callback stops the listing (in the middle of the second page) */
    names.stop_after = 6;
    names.stop_code = 77;
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 77);
    assert_int_equal(names.count, 6);
    storage_test_names_free(&names);
    memset(&names, 0, sizeof(names));

    /* a store at the container's root sees both prefixes as plain names */
    root = azurite_open(NULL, 0, 0, 5);
    assert_int_equal(nova_storage_list(root, "repo/", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 13);
    assert_true(storage_test_names_find(&names, "repo/one-twin/data/00/elsewhere") >= 0);
    storage_test_names_free(&names);
    nova_storage_free(root);
    nova_storage_free(other);
    nova_storage_free(s);
}

typedef struct worker {
    nova_storage *s;
    int id;
    int failures;
} worker;

static void *mixed_worker(void *arg)
{
    worker *w = arg;
    nova_buf out = NOVA_BUF_INIT;
    uint8_t data[3000];
    char name[64];

    for (int i = 0; i < 15; i++) {
        size_t len = 100 + (size_t)(i * 190);
        test_fill_random(data, len, (uint64_t)(w->id * 1000 + i));
        snprintf(name, sizeof(name), "t%d/o%d", w->id, i);
        if (nova_storage_put(w->s, name, data, len) != 0)
            w->failures++;
        else if (nova_storage_get(w->s, name, 0, NOVA_STORAGE_WHOLE, &out) != 0 ||
                 out.len != len || memcmp(out.data, data, len) != 0)
            w->failures++;
        else if (i % 3 == 0 && nova_storage_del(w->s, name) != 0)
            w->failures++;
    }
    nova_buf_free(&out);
    return NULL;
}

static void test_azurite_threads_share_one_store(void **state)
{
    enum { WORKERS = 4 };
    pthread_t threads[WORKERS];
    worker workers[WORKERS];
    storage_test_names names = {0};
    nova_storage *s;
    (void)state;
    NEED_AZURITE();
    s = azurite_open("threads", 2000, 512, 7);
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker){s, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, mixed_worker, &workers[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].failures, 0);
    }
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, WORKERS * 10);
    storage_test_names_free(&names);
    nova_storage_free(s);
}

/* A wrong key: BACKUP_001 naming the endpoint, never the key. */
static void test_azurite_wrong_key(void **state)
{
    nova_azure_options o;
    nova_storage *s = NULL;
    char wrong[sizeof(dev_key)];
    (void)state;
    NEED_AZURITE();
    memcpy(wrong, dev_key, sizeof(dev_key));
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    azurite_options(&o, "wrongkey");
    o.key = wrong;
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EREFUSED);
    assert_null(s);
    assert_message_has(getenv("NOVA_TEST_AZURE_PORT") ? getenv("NOVA_TEST_AZURE_PORT")
                                                       : "127.0.0.1");
    assert_message_lacks(wrong);
    assert_message_lacks(dev_key);
    /* a missing container is not created without create */
    azurite_options(&o, NULL);
    o.container = "nova-never-created";
    o.create = 0;
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_ENOTFOUND);
    assert_message_has("does not exist");
}

/* An account SAS, made here the way the portal makes one. */
static char *account_sas(const char *account, const char *key_b64, const char *permissions)
{
    nova_buf key = NOVA_BUF_INIT, sig = NOVA_BUF_INIT, out = NOVA_BUF_INIT;
    char to_sign[512];
    nova_id mac;

    snprintf(to_sign, sizeof(to_sign), "%s\n%s\nb\nsco\n\n2099-01-01T00:00:00Z\n\n\n%s\n\n",
             account, permissions, NOVA_AZURE_API_VERSION);
    assert_int_equal(nova_azure_base64_decode(&key, key_b64, strlen(key_b64)), 0);
    assert_int_equal(nova_hmac_sha256(&mac, key.data, key.len, to_sign, strlen(to_sign)), 0);
    assert_int_equal(nova_azure_base64_encode(&sig, mac.bytes, sizeof(mac.bytes)), 0);
    assert_int_equal(nova_buf_append(&sig, "", 1), 0);
    snprintf(to_sign, sizeof(to_sign), "sv=%s&ss=b&srt=sco&sp=%s&se=2099-01-01T00%%3A00%%3A00Z&sig=",
             NOVA_AZURE_API_VERSION, permissions);
    assert_int_equal(nova_buf_append(&out, to_sign, strlen(to_sign)), 0);
    assert_int_equal(nova_http_percent_encode(&out, (const char *)sig.data, 0), 0);
    assert_int_equal(nova_buf_append(&out, "", 1), 0);
    nova_buf_free(&key);
    nova_buf_free(&sig);
    return (char *)out.data;
}

static void test_azurite_sas(void **state)
{
    nova_azure_options o;
    nova_storage *s = NULL;
    nova_buf out = NOVA_BUF_INIT;
    storage_test_names names = {0};
    char *sas, *read_only, *p;
    (void)state;
    NEED_AZURITE();
    sas = account_sas(getenv("NOVA_TEST_AZURE_ACCOUNT"), getenv("NOVA_TEST_AZURE_KEY"),
                      "rwdlac");
    azurite_options(&o, "sas");
    o.key = NULL;
    o.account = NULL;
    o.sas = sas;
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open with SAS: %s", last_message());
    assert_int_equal(storage_test_put_text(s, "a", "via sas"), 0);
    assert_int_equal(storage_test_put_text(s, "a", "again"), NOVA_EEXISTS);
    assert_int_equal(nova_storage_get(s, "a", 0, NOVA_STORAGE_WHOLE, &out), 0);
    assert_int_equal(out.len, 7);
    assert_int_equal(nova_storage_list(s, "", storage_test_collect, &names), 0);
    assert_int_equal(names.count, 1);
    assert_int_equal(nova_storage_del(s, "a"), 0);
    nova_storage_free(s);
    s = NULL;

    /* a read-only (r+l) token: reads work, writes are refused with a clear code */
    read_only = account_sas(getenv("NOVA_TEST_AZURE_ACCOUNT"), getenv("NOVA_TEST_AZURE_KEY"),
                            "rl");
    o.sas = read_only;
    o.create = 0;
    if (nova_storage_azure_open(&s, &o) != 0)
        fail_msg("open with read-only SAS: %s", last_message());
    assert_int_equal(storage_test_put_text(s, "b", "no"), NOVA_EACCESS);
    assert_message_has("AuthorizationPermissionMismatch");
    assert_message_lacks("sig=");
    nova_storage_free(s);
    s = NULL;

    /* a tampered signature: refused (BACKUP_001), and the token is in no message */
    p = strstr(sas, "sig=") + 4;
    *p = *p == 'A' ? 'B' : 'A';
    o.sas = sas;
    assert_int_equal(nova_storage_azure_open(&s, &o), NOVA_EREFUSED);
    assert_message_lacks(p);
    assert_message_lacks("sig=");
    free(sas);
    free(read_only);
    storage_test_names_free(&names);
    nova_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_location_with_connection_string_env),
        cmocka_unit_test(test_connection_strings),
        cmocka_unit_test(test_connection_string_errors_hide_secrets),
        cmocka_unit_test(test_location_config_and_precedence),
        cmocka_unit_test(test_location_errors),
        cmocka_unit_test(test_open_rejects_bad_options),
        cmocka_unit_test(test_open_unreachable_is_backend_error),
    };
    const struct CMUnitTest scripted[] = {
        cmocka_unit_test(test_scripted_put_wire_format),
        cmocka_unit_test(test_scripted_conflicts_are_exists),
        cmocka_unit_test(test_scripted_status_mapping),
        cmocka_unit_test(test_scripted_download_integrity),
        cmocka_unit_test(test_scripted_range_fallbacks),
        cmocka_unit_test(test_scripted_throttling_then_success_with_retry),
        cmocka_unit_test(test_scripted_block_upload_wire_format),
        cmocka_unit_test(test_scripted_list_paging_and_marker),
        cmocka_unit_test(test_scripted_sas_in_query_only),
        cmocka_unit_test(test_scripted_open_container_handling),
    };
    const struct CMUnitTest azurite[] = {
        cmocka_unit_test(test_azurite_round_trip_and_immutability),
        cmocka_unit_test(test_azurite_empty_object_and_ranges),
        cmocka_unit_test(test_azurite_block_upload),
        cmocka_unit_test(test_azurite_racing_creators),
        cmocka_unit_test(test_azurite_listing),
        cmocka_unit_test(test_azurite_threads_share_one_store),
        cmocka_unit_test(test_azurite_wrong_key),
        cmocka_unit_test(test_azurite_sas),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("azure-offline", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("azure-scripted", scripted, scripted_group_setup,
                                          scripted_group_teardown);
    failed += cmocka_run_group_tests_name("azure-azurite", azurite, azurite_group_setup, NULL);
    return failed;
}
