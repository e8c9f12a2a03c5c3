/*
 * error.h -- Nova's error codes and the thread-local error detail.
 *
 * Every fallible function returns 0 on success or a negative NOVA_E... code and, on
 * failure, records a detail (code, message naming the object, errno, file:line) in
 * thread-local storage. The detail stays valid until the next failure on that thread
 * or nova_error_clear().
 */
#ifndef NOVA_ERROR_H
#define NOVA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum nova_error_code {
    NOVA_OK = 0,
#define NOVA_ERROR(name, value, user_code, message, hint) NOVA_E##name = (value),
#include "nova/error_codes.h"
#undef NOVA_ERROR
};

#define NOVA_ERROR_MESSAGE_MAX 512

typedef struct nova_error_detail {
    int code;          /* a NOVA_E... value */
    int sys_errno;     /* errno at the failure, or 0 */
    const char *file;  /* source file that set the error */
    int line;
    char message[NOVA_ERROR_MESSAGE_MAX]; /* lowercase, names the object */
} nova_error_detail;

/* The last error recorded on this thread; code is NOVA_OK when none. Never NULL. */
const nova_error_detail *nova_error_last(void);
void nova_error_clear(void);

/* Table look-ups; unknown codes give NULL (user code/hint) or "unknown error". */
const char *nova_error_user_code(int code);
const char *nova_error_message(int code);
const char *nova_error_hint(int code);
const char *nova_error_name(int code);
/* True when the code is one of the table's codes. */
int nova_error_is_known(int code);

/*
 * Formats the last error as "USER_CODE: detail (category)" into buf; returns buf.
 * When no detail was recorded for this code the category message alone is used.
 */
char *nova_error_format(int code, char *buf, unsigned long bufsize);

#ifdef __cplusplus
}
#endif
#endif
