/* test_config.c -- the JSON configuration: the user's keys, and errors that name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "nova/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static nova_config *parse_ok(const char *json)
{
    nova_config *config = NULL;
    int rc = nova_config_parse(&config, json, strlen(json), "test.json");
    if (rc != 0)
        fail_msg("unexpected error: %s", nova_error_last()->message);
    return config;
}

static void expect_error(const char *json, const char *fragment)
{
    nova_config *config = (nova_config *)1;
    int rc = nova_config_parse(&config, json, strlen(json), "test.json");
    assert_int_equal(rc, NOVA_ECONFIG);
    assert_null(config);
    if (!strstr(nova_error_last()->message, fragment))
        fail_msg("message '%s' lacks '%s'", nova_error_last()->message, fragment);
}

static void test_full_user_config(void **state)
{
    (void)state;
    nova_config *c = parse_ok(
        "{\"backup_dir\": \"/b\", \"recovery_dir\": \"/r\", \"integrity_dir\": \"/i\","
        " \"retention_days\": 7, \"compression\": \"zstd:5\", \"log_level\": \"debug\","
        " \"storage\": {\"local_path\": \"/repo\","
        "   \"s3\": {\"bucket\": \"bk\", \"region\": \"eu-west-1\", \"endpoint\": \"http://127.0.0.1:1\","
        "            \"credentials\": {\"aws_access_key_id\": \"AK\", \"aws_secret_access_key\": \"SK\"}},"
        "   \"azure\": {\"container\": \"c\", \"connection_string\": \"cs\"},"
        "   \"gcs\": {\"bucket\": \"g\", \"credentials_file\": \"/k.json\"}},"
        " \"rpo_targets\": {\"critical\": 300, \"normal\": \"4h\"},"
        " \"rto_targets\": {\"critical\": \"15m\"},"
        " \"monitor_files\": [\"/a.json\", \"/b.json\"]}");
    assert_string_equal(c->backup_dir, "/b");
    assert_string_equal(c->recovery_dir, "/r");
    assert_string_equal(c->integrity_dir, "/i");
    assert_int_equal(c->retention_days, 7);
    assert_string_equal(c->compression, "zstd:5");
    assert_string_equal(c->storage.local_path, "/repo");
    assert_true(c->storage.s3.present);
    assert_string_equal(c->storage.s3.bucket, "bk");
    assert_string_equal(c->storage.s3.region, "eu-west-1");
    assert_string_equal(c->storage.s3.access_key_id, "AK");
    assert_string_equal(c->storage.s3.secret_access_key, "SK");
    assert_true(c->storage.azure.present);
    assert_string_equal(c->storage.azure.connection_string, "cs");
    assert_true(c->storage.gcs.present);
    assert_string_equal(c->storage.gcs.credentials_file, "/k.json");
    assert_int_equal(c->rpo_target_count, 2);
    assert_string_equal(c->rpo_targets[0].name, "critical");
    assert_int_equal(c->rpo_targets[0].seconds, 300);
    assert_int_equal(c->rpo_targets[1].seconds, 4 * 3600);
    assert_int_equal(c->rto_target_count, 1);
    assert_int_equal(c->rto_targets[0].seconds, 900);
    assert_int_equal(c->monitor_file_count, 2);
    assert_string_equal(c->monitor_files[1], "/b.json");
    nova_config_free(c);
}

static void test_defaults(void **state)
{
    nova_config *c = parse_ok("{}");
    (void)state;
    assert_int_equal(c->retention_days, NOVA_CONFIG_DEFAULT_RETENTION_DAYS);
    assert_null(c->storage.local_path);
    assert_false(c->storage.s3.present);
    nova_config_free(c);
    assert_int_equal(nova_config_new_default(&c), 0);
    assert_int_equal(c->retention_days, 30);
    nova_config_free(c);
    nova_config_free(NULL);
}

static void test_unknown_keys_named(void **state)
{
    (void)state;
    expect_error("{\"retention_dayz\": 3}", "unknown key 'retention_dayz'");
    expect_error("{\"storage\": {\"s3\": {\"bucket\": \"b\", \"buckt\": 1}}}",
                 "unknown key 'storage.s3.buckt'");
    expect_error("{\"storage\": {\"s3\": {\"bucket\": \"b\", \"credentials\": "
                 "{\"aws_access_key_id\": \"a\", \"aws_secret_access_key\": \"s\", \"x\": 1}}}}",
                 "unknown key 'storage.s3.credentials.x'");
}

static void test_wrong_types_named(void **state)
{
    (void)state;
    expect_error("{\"retention_days\": \"30\"}", "key 'retention_days' must be an integer, not a string");
    expect_error("{\"retention_days\": 1.5}", "key 'retention_days' must be an integer");
    expect_error("{\"retention_days\": -1}", "key 'retention_days' must not be negative");
    expect_error("{\"backup_dir\": 5}", "key 'backup_dir' must be a string, not an integer");
    expect_error("{\"storage\": []}", "key 'storage' must be an object, not an array");
    expect_error("{\"monitor_files\": [\"a\", 3]}", "key 'monitor_files[1]' must be a string");
    expect_error("{\"monitor_files\": \"a\"}", "key 'monitor_files' must be an array");
    expect_error("{\"rpo_targets\": {\"x\": \"soon\"}}", "key 'rpo_targets.x' is not a duration");
    expect_error("{\"rpo_targets\": {\"x\": true}}", "key 'rpo_targets.x' must be a duration");
    expect_error("{\"log_level\": \"loud\"}", "key 'log_level' must be one of");
    expect_error("{\"storage\": {\"local_path\": null}}", "must be a string, not null");
}

static void test_missing_required_named(void **state)
{
    (void)state;
    expect_error("{\"storage\": {\"s3\": {\"region\": \"r\"}}}",
                 "missing required key 'storage.s3.bucket'");
    expect_error("{\"storage\": {\"s3\": {\"bucket\": \"b\", \"credentials\": "
                 "{\"aws_access_key_id\": \"a\"}}}}",
                 "missing required key 'storage.s3.credentials.aws_secret_access_key'");
    expect_error("{\"storage\": {\"azure\": {}}}", "missing required key 'storage.azure.container'");
    expect_error("{\"storage\": {\"gcs\": {}}}", "missing required key 'storage.gcs.bucket'");
}

static void test_malformed_json(void **state)
{
    (void)state;
    expect_error("{\"backup_dir\": ", "config 'test.json' line 1");
    expect_error("[1, 2]", "top level must be a JSON object");
    expect_error("{\"a\": 1, \"a\": 2}", "duplicate");
    expect_error("", "config 'test.json'");
}

static void test_secrets_never_in_messages(void **state)
{
    (void)state;
    expect_error("{\"storage\": {\"s3\": {\"bucket\": \"b\", \"credentials\": "
                 "{\"aws_access_key_id\": \"a\", \"aws_secret_access_key\": 42}}}}",
                 "aws_secret_access_key");
    expect_error("{\"storage\": {\"azure\": {\"container\": \"c\", \"key\": \"TOPSECRET\", \"zz\": 1}}}",
                 "unknown key");
    assert_null(strstr(nova_error_last()->message, "TOPSECRET"));
}

static void test_durations(void **state)
{
    uint64_t s = 0;
    (void)state;
    assert_int_equal(nova_duration_parse(&s, "90"), 0);
    assert_int_equal(s, 90);
    assert_int_equal(nova_duration_parse(&s, "90s"), 0);
    assert_int_equal(s, 90);
    assert_int_equal(nova_duration_parse(&s, "15m"), 0);
    assert_int_equal(s, 900);
    assert_int_equal(nova_duration_parse(&s, "2d"), 0);
    assert_int_equal(s, 172800);
    assert_int_equal(nova_duration_parse(&s, "1w"), 0);
    assert_int_equal(s, 604800);
    assert_int_equal(nova_duration_parse(&s, "m"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, "5x"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, "5mm"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, "-5"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, "99999999999999999999"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, "9999999999999999999w"), NOVA_EINVALID);
    assert_int_equal(nova_duration_parse(&s, NULL), NOVA_EINVALID);
}

static void test_storage_knobs(void **state)
{
    nova_config *c = parse_ok("{}");
    (void)state;
    assert_int_equal(c->storage.connections, 0); /* the backend's default */
    assert_int_equal(c->storage.retry_deadline_seconds, NOVA_CONFIG_DEFAULT_RETRY_DEADLINE);
    nova_config_free(c);
    c = parse_ok("{\"storage\": {\"connections\": 16, \"retry_deadline\": \"5m\"}}");
    assert_int_equal(c->storage.connections, 16);
    assert_int_equal(c->storage.retry_deadline_seconds, 300);
    nova_config_free(c);
    c = parse_ok("{\"storage\": {\"retry_deadline\": 0}}");
    assert_int_equal(c->storage.retry_deadline_seconds, 0); /* no retries */
    nova_config_free(c);
    expect_error("{\"storage\": {\"connections\": 65}}",
                 "key 'storage.connections' must be 0");
    expect_error("{\"storage\": {\"connections\": -1}}",
                 "key 'storage.connections' must not be negative");
    expect_error("{\"storage\": {\"connections\": \"8\"}}",
                 "key 'storage.connections' must be an integer");
    expect_error("{\"storage\": {\"retry_deadline\": \"soon\"}}",
                 "key 'storage.retry_deadline' is not a duration");
    expect_error("{\"storage\": {\"retry_deadline\": \"2d\"}}",
                 "key 'storage.retry_deadline' is longer than a day");
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/nova-config-XXXXXX";
    nova_config *c = NULL;
    int fd = mkstemp(path);
    FILE *f;
    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("{\"retention_days\": 12}", f);
    fclose(f);
    assert_int_equal(nova_config_load_file(&c, path), 0);
    assert_int_equal(c->retention_days, 12);
    nova_config_free(c);
    unlink(path);
    assert_int_equal(nova_config_load_file(&c, path), NOVA_ECONFIG);
    assert_non_null(strstr(nova_error_last()->message, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_user_config),  cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unknown_keys_named), cmocka_unit_test(test_wrong_types_named),
        cmocka_unit_test(test_missing_required_named), cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_secrets_never_in_messages), cmocka_unit_test(test_durations),
        cmocka_unit_test(test_storage_knobs), cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
