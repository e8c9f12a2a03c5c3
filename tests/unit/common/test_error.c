/* test_error.c -- the error table, the thread-local detail and errno mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "storage/storage.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static void test_user_codes_from_design(void **state)
{
    (void)state;
    assert_string_equal(nova_error_user_code(NOVA_EBACKEND), "BACKUP_001");
    assert_string_equal(nova_error_user_code(NOVA_EREFUSED), "BACKUP_001");
    assert_false(nova_storage_error_transient(NOVA_EREFUSED));
    assert_string_equal(nova_error_user_code(NOVA_ENOSPACE), "BACKUP_002");
    assert_string_equal(nova_error_user_code(NOVA_EACCESS), "BACKUP_003");
    assert_string_equal(nova_error_user_code(NOVA_EBACKUP_NOT_FOUND), "RECOVERY_001");
    assert_string_equal(nova_error_user_code(NOVA_ETIMEOUT), "RECOVERY_002");
    assert_string_equal(nova_error_user_code(NOVA_ECHECKSUM), "INTEGRITY_001");
    assert_string_equal(nova_error_user_code(NOVA_ECORRUPT), "INTEGRITY_002");
    assert_string_equal(nova_error_message(NOVA_EBACKEND), "storage backend unavailable");
    assert_string_equal(nova_error_message(NOVA_ENOSPACE), "insufficient space");
}

static void test_table_is_complete_and_unique(void **state)
{
    static const int codes[] = {
#define NOVA_ERROR(name, value, user_code, message, hint) (value),
#include "nova/error_codes.h"
#undef NOVA_ERROR
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        assert_true(nova_error_is_known(codes[i]));
        assert_non_null(nova_error_user_code(codes[i]));
        assert_non_null(nova_error_hint(codes[i]));
        assert_true(strlen(nova_error_hint(codes[i])) > 10);
        for (size_t j = i + 1; j < n; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            /* one alias: refused credentials are BACKUP_001 like an unreachable backend,
             * but a code of their own so that nobody retries them */
            if (codes[i] == NOVA_EBACKEND && codes[j] == NOVA_EREFUSED)
                continue;
            assert_string_not_equal(nova_error_user_code(codes[i]),
                                    nova_error_user_code(codes[j]));
        }
    }
    assert_false(nova_error_is_known(-9999));
    assert_null(nova_error_user_code(-9999));
    assert_string_equal(nova_error_message(-9999), "unknown error");
    assert_string_equal(nova_error_name(NOVA_OK), "OK");
}

static void test_detail_and_format(void **state)
{
    char buf[256];
    int rc;
    (void)state;
    nova_error_clear();
    assert_int_equal(nova_error_last()->code, NOVA_OK);
    rc = nova_fail(NOVA_ECORRUPT, "pack '%s': header truncated", "ab12");
    assert_int_equal(rc, NOVA_ECORRUPT);
    assert_int_equal(nova_error_last()->code, NOVA_ECORRUPT);
    assert_string_equal(nova_error_last()->message, "pack 'ab12': header truncated");
    assert_non_null(strstr(nova_error_last()->file, "test_error.c"));
    nova_error_format(rc, buf, sizeof(buf));
    assert_string_equal(buf, "INTEGRITY_002: pack 'ab12': header truncated (corruption detected)");
    /* a code with no matching detail falls back to the category message */
    nova_error_format(NOVA_ENOSPACE, buf, sizeof(buf));
    assert_string_equal(buf, "BACKUP_002: insufficient space");
}

static void test_errno_detail(void **state)
{
    (void)state;
    nova_fail_errno(NOVA_EIO, ENOENT, "unable to open '%s'", "x");
    assert_int_equal(nova_error_last()->sys_errno, ENOENT);
    assert_string_equal(nova_error_last()->message,
                        "unable to open 'x': No such file or directory");
    assert_int_equal(nova_error_from_errno(ENOSPC), NOVA_ENOSPACE);
    assert_int_equal(nova_error_from_errno(EDQUOT), NOVA_ENOSPACE);
    assert_int_equal(nova_error_from_errno(EACCES), NOVA_EACCESS);
    assert_int_equal(nova_error_from_errno(ENOENT), NOVA_ENOTFOUND);
    assert_int_equal(nova_error_from_errno(EEXIST), NOVA_EEXISTS);
    assert_int_equal(nova_error_from_errno(EBADF), NOVA_EIO);
}

static void *set_in_thread(void *arg)
{
    (void)arg;
    nova_fail(NOVA_ETIMEOUT, "thread detail");
    return NULL;
}

static void test_detail_is_thread_local(void **state)
{
    pthread_t thread;
    (void)state;
    nova_fail(NOVA_EACCESS, "main detail");
    assert_int_equal(pthread_create(&thread, NULL, set_in_thread, NULL), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(nova_error_last()->code, NOVA_EACCESS);
    assert_string_equal(nova_error_last()->message, "main detail");
}

static void test_long_message_truncated_safely(void **state)
{
    char big[2000];
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    nova_fail_errno(NOVA_EIO, EIO, "%s", big);
    assert_int_equal(strlen(nova_error_last()->message), NOVA_ERROR_MESSAGE_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_codes_from_design),
        cmocka_unit_test(test_table_is_complete_and_unique),
        cmocka_unit_test(test_detail_and_format),
        cmocka_unit_test(test_errno_detail),
        cmocka_unit_test(test_detail_is_thread_local),
        cmocka_unit_test(test_long_message_truncated_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
