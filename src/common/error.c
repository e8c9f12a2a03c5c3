/*
 * error.c -- the error table and the thread-local error detail.
 *
 * The table is generated from include/nova/error_codes.h, so codes, user codes,
 * messages and hints can never drift apart.
 */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct error_row {
    int code;
    const char *name;
    const char *user_code;
    const char *message;
    const char *hint;
};

static const struct error_row error_table[] = {
#define NOVA_ERROR(name, value, user_code, message, hint)                                          \
    {(value), #name, (user_code), (message), (hint)},
#include "nova/error_codes.h"
#undef NOVA_ERROR
};

static _Thread_local nova_error_detail last_error;

static const struct error_row *find_row(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == code)
            return &error_table[i];
    return NULL;
}

int nova_error_is_known(int code) { return find_row(code) != NULL; }

const char *nova_error_user_code(int code)
{
    const struct error_row *row = find_row(code);
    return row ? row->user_code : NULL;
}

const char *nova_error_message(int code)
{
    const struct error_row *row = find_row(code);
    if (code == NOVA_OK)
        return "success";
    return row ? row->message : "unknown error";
}

const char *nova_error_hint(int code)
{
    const struct error_row *row = find_row(code);
    return row ? row->hint : NULL;
}

const char *nova_error_name(int code)
{
    const struct error_row *row = find_row(code);
    if (code == NOVA_OK)
        return "OK";
    return row ? row->name : "UNKNOWN";
}

const nova_error_detail *nova_error_last(void) { return &last_error; }

void nova_error_clear(void) { memset(&last_error, 0, sizeof(last_error)); }

int nova_error_set(int code, int sys_errno, const char *file, int line, const char *fmt, ...)
{
    nova_error_detail *detail = &last_error;
    va_list ap;
    int used;

    detail->code = code;
    detail->sys_errno = sys_errno;
    detail->file = file;
    detail->line = line;
    va_start(ap, fmt);
    used = vsnprintf(detail->message, sizeof(detail->message), fmt, ap);
    va_end(ap);
    if (used < 0)
        detail->message[0] = '\0';
    else if (sys_errno != 0 && (size_t)used < sizeof(detail->message))
        snprintf(detail->message + used, sizeof(detail->message) - (size_t)used, ": %s",
                 strerror(sys_errno));
    return code;
}

int nova_error_from_errno(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NOVA_ENOSPACE;
    case EACCES:
    case EPERM:
    case EROFS:
        return NOVA_EACCESS;
    case ENOENT:
    case ENOTDIR:
        return NOVA_ENOTFOUND;
    case EEXIST:
        return NOVA_EEXISTS;
    case ENOMEM:
        return NOVA_ENOMEM;
    case ETIMEDOUT:
        return NOVA_ETIMEOUT;
    default:
        return NOVA_EIO;
    }
}

char *nova_error_format(int code, char *buf, unsigned long bufsize)
{
    const char *user_code = nova_error_user_code(code);
    const nova_error_detail *detail = nova_error_last();

    if (bufsize == 0)
        return buf;
    if (!user_code)
        user_code = "GENERAL_001";
    if (detail->code == code && detail->message[0] != '\0')
        snprintf(buf, bufsize, "%s: %s (%s)", user_code, detail->message, nova_error_message(code));
    else
        snprintf(buf, bufsize, "%s: %s", user_code, nova_error_message(code));
    return buf;
}
