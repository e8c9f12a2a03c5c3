/*
 * err.h -- setting errors inside libnova (private).
 *
 * Usage:  return nova_fail(NOVA_ECORRUPT, "pack '%s': header truncated", name);
 * nova_fail records the detail and returns the code, so a failure is one line.
 * nova_fail_errno appends strerror(errno) and keeps errno in the detail.
 */
#ifndef NOVA_COMMON_ERR_H
#define NOVA_COMMON_ERR_H

#include "nova/error.h"

int nova_error_set(int code, int sys_errno, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define nova_fail(code, ...) nova_error_set((code), 0, __FILE__, __LINE__, __VA_ARGS__)
#define nova_fail_errno(code, err, ...) nova_error_set((code), (err), __FILE__, __LINE__, __VA_ARGS__)

/* Maps an errno value to the closest NOVA_E code (ENOSPC -> NOSPACE, EACCES -> ACCESS ...). */
int nova_error_from_errno(int err);

/* Propagates a failure: evaluates expr once, returns its value when negative. */
#define NOVA_TRY(expr)                                                                             \
    do {                                                                                           \
        int nova_try_rc_ = (expr);                                                                 \
        if (nova_try_rc_ < 0)                                                                      \
            return nova_try_rc_;                                                                   \
    } while (0)

#endif
