/* test_log_buf.c -- log sinks and levels; the growable buffer; the bounds-checked reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = calloc(1, 65536);
    if (f) {
        size_t n = fread(text, 1, 65535, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

static void test_log_file_levels(void **state)
{
    char path[] = "/tmp/nova-log-XXXXXX";
    int fd = mkstemp(path);
    char *text;
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nova_log_set_file(path, NOVA_LOG_INFO), 0);
    nova_log_error("first %d", 1);
    nova_log_info("second");
    nova_log_debug("hidden");
    nova_log_shutdown();
    nova_log_error("after shutdown");
    text = read_whole(path);
    assert_non_null(strstr(text, "ERROR first 1\n"));
    assert_non_null(strstr(text, "INFO  second\n"));
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "after shutdown"));
    assert_true(text[4] == '-' && text[10] == 'T'); /* ISO 8601 timestamp */
    free(text);
    unlink(path);
}

static void test_log_levels_parse(void **state)
{
    (void)state;
    assert_int_equal(nova_log_level_parse("warn"), NOVA_LOG_WARN);
    assert_int_equal(nova_log_level_parse("DEBUG"), NOVA_LOG_DEBUG);
    assert_int_equal(nova_log_level_parse("off"), NOVA_LOG_OFF);
    assert_int_equal(nova_log_level_parse("loud"), -1);
    assert_int_equal(nova_log_level_parse(NULL), -1);
    assert_string_equal(nova_log_level_name(NOVA_LOG_TRACE), "trace");
}

static void test_log_file_unopenable(void **state)
{
    (void)state;
    assert_int_equal(nova_log_set_file("/nonexistent-dir/x.log", NOVA_LOG_INFO), NOVA_ENOTFOUND);
    assert_non_null(strstr(nova_error_last()->message, "/nonexistent-dir/x.log"));
}

static void test_long_log_line_truncated(void **state)
{
    char path[] = "/tmp/nova-log-XXXXXX";
    int fd = mkstemp(path);
    char *big = malloc(10000), *text;
    (void)state;
    close(fd);
    memset(big, 'y', 9999);
    big[9999] = '\0';
    assert_int_equal(nova_log_set_file(path, NOVA_LOG_INFO), 0);
    nova_log_warn("%s", big);
    nova_log_shutdown();
    text = read_whole(path);
    assert_true(strlen(text) < 2048);
    assert_int_equal(text[strlen(text) - 1], '\n');
    free(text);
    free(big);
    unlink(path);
}

static void test_buf(void **state)
{
    nova_buf buf = NOVA_BUF_INIT;
    (void)state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(nova_buf_append(&buf, &i, sizeof(i)), 0);
    assert_int_equal(buf.len, 4000);
    assert_true(buf.cap >= 4000);
    for (int i = 0; i < 1000; i++) {
        int v;
        memcpy(&v, buf.data + 4 * i, 4);
        assert_int_equal(v, i);
    }
    nova_buf_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_int_equal(nova_buf_resize(&buf, 10), 0);
    assert_int_equal(buf.len, 10);
    assert_int_equal(nova_buf_append(&buf, NULL, 0), 0);
    assert_int_equal(nova_buf_reserve(&buf, SIZE_MAX), NOVA_ENOMEM);
    nova_buf_free(&buf);
    assert_null(buf.data);
    nova_buf_free(&buf);
}

static void test_bytes_reader(void **state)
{
    uint8_t data[15];
    nova_reader r;
    (void)state;
    nova_put_le16(data, 0x0102);
    nova_put_le32(data + 2, 0x03040506u);
    nova_put_le64(data + 6, 0x0708090a0b0c0d0eull);
    data[14] = 0xff;
    assert_int_equal(data[0], 0x02);
    assert_int_equal(data[2], 0x06);
    r = nova_reader_make(data, sizeof(data));
    assert_int_equal(nova_read_le16(&r), 0x0102);
    assert_int_equal(nova_read_le32(&r), 0x03040506u);
    assert_true(nova_read_le64(&r) == 0x0708090a0b0c0d0eull);
    assert_int_equal(nova_read_u8(&r), 0xff);
    assert_false(r.failed);
    assert_int_equal(nova_read_u8(&r), 0);
    assert_true(r.failed);
    r = nova_reader_make(data, 3);
    assert_int_equal(nova_read_le32(&r), 0);
    assert_true(r.failed);
    assert_null(nova_read_bytes(&r, 0)); /* stays failed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_file_levels),    cmocka_unit_test(test_log_levels_parse),
        cmocka_unit_test(test_log_file_unopenable), cmocka_unit_test(test_long_log_line_truncated),
        cmocka_unit_test(test_buf),                cmocka_unit_test(test_bytes_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
