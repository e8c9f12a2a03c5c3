/*
 * error_codes.h -- the one table of Nova's error codes (an X-macro list).
 *
 * Each row: NOVA_ERROR(NAME, value, "USER_CODE", "message", "hint").
 *   NAME       becomes the C constant NOVA_E<NAME> (always negative; 0 is success);
 *   USER_CODE  is the stable code people see and search for (BACKUP_001 ...);
 *   message    names the category of failure; the thread-local detail names the object;
 *   hint       says what a person can do next.
 * Values are part of the library ABI: never renumber a row, only append.
 * The user's codes (BACKUP_001 ... INTEGRITY_002) come from DESIGN.md.
 */
NOVA_ERROR(INTERNAL, -1, "GENERAL_001", "internal error",
           "this is a bug in nova; please report it with the log file")
NOVA_ERROR(NOMEM, -2, "GENERAL_002", "out of memory",
           "free memory or lower the number of worker threads")
NOVA_ERROR(INVALID, -3, "GENERAL_003", "invalid argument",
           "check the command line or the API call")
NOVA_ERROR(CANCELLED, -4, "GENERAL_004", "operation cancelled",
           "run the command again to finish the work")
NOVA_ERROR(UNSUPPORTED, -5, "GENERAL_005", "operation not supported",
           "this build or backend does not support the operation")
NOVA_ERROR(IO, -6, "IO_001", "input/output error",
           "check the disk and the file named in the message")
NOVA_ERROR(BACKEND, -10, "BACKUP_001", "storage backend unavailable",
           "check that the storage location exists and is reachable, then retry")
NOVA_ERROR(NOSPACE, -11, "BACKUP_002", "insufficient space",
           "free space on the repository's storage or run 'nova prune'")
NOVA_ERROR(ACCESS, -12, "BACKUP_003", "access denied",
           "check the permissions or credentials for the object named")
NOVA_ERROR(REFUSED, -13, "BACKUP_001", "storage backend refused the request",
           "check the credentials (access key and secret, SAS, account key or key file), "
           "the bucket or container and the region for the endpoint named; nova does not "
           "retry a refusal")
NOVA_ERROR(BACKUP_NOT_FOUND, -20, "RECOVERY_001", "backup not found",
           "run 'nova list' to see the backups this repository holds")
NOVA_ERROR(TIMEOUT, -21, "RECOVERY_002", "recovery timeout",
           "raise the timeout or check the storage backend's speed")
NOVA_ERROR(CHECKSUM, -30, "INTEGRITY_001", "checksum mismatch",
           "run 'nova check --read-data' and restore the object from another copy")
NOVA_ERROR(CORRUPT, -31, "INTEGRITY_002", "corruption detected",
           "run 'nova check' to find what is affected, then repair from another copy")
NOVA_ERROR(NOTFOUND, -40, "STORAGE_001", "object not found",
           "run 'nova check' to see whether the repository is incomplete")
NOVA_ERROR(EXISTS, -41, "STORAGE_002", "object already exists",
           "objects are immutable; this is expected only for duplicate writes")
NOVA_ERROR(CONFIG, -50, "CONFIG_001", "invalid configuration",
           "fix the key named in the message; see README.md for the configuration keys")
NOVA_ERROR(PASSWORD, -60, "KEY_001", "wrong passphrase",
           "no key slot opens with this passphrase; check NOVA_PASSWORD or --password-file")
NOVA_ERROR(CRYPTO, -61, "KEY_002", "cryptographic library failure",
           "check the OpenSSL installation")
NOVA_ERROR(VERSION, -70, "REPO_001", "unsupported repository format version",
           "use a newer nova to open this repository")
NOVA_ERROR(LOCKED, -71, "REPO_002", "repository is locked",
           "wait for the other operation to finish or remove a stale lock with 'nova unlock'")
NOVA_ERROR(NO_REPO, -72, "REPO_003", "repository not found",
           "check --repo or NOVA_REPOSITORY, or create one with 'nova init'")
