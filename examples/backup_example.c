/*
 * backup_example.c -- the Memory Backup System through the public API only.
 *
 *   backup_example REPO_DIR PATH...
 *
 * Opens the repository at REPO_DIR (creating it when there is none), backs PATH... up
 * incrementally (the first run finds no parent and runs as a full backup), and lists the
 * backups the repository holds. The passphrase comes from $NOVA_PASSWORD (default
 * "example-passphrase"). Build: cc backup_example.c $(pkg-config --cflags --libs nova).
 */
#include <nova/backup.h>
#include <nova/error.h>

#include <stdio.h>
#include <stdlib.h>

static int show_progress(const nova_progress *p, void *payload)
{
    (void)payload;
    fprintf(stderr, "\r%llu / %llu files", (unsigned long long)p->files_done,
            (unsigned long long)p->files_total);
    return 0; /* non-zero would cancel the backup */
}

static void show_file_error(const char *path, int code, const char *message, void *payload)
{
    (void)payload;
    fprintf(stderr, "\nskipped %s: %s (%s)\n", path, message, nova_error_user_code(code));
}

static int fail(const char *what, int code)
{
    char line[1024];
    fprintf(stderr, "%s: %s\n", what, nova_error_format(code, line, sizeof(line)));
    return 1;
}

int main(int argc, char **argv)
{
    const char *passphrase = getenv("NOVA_PASSWORD");
    nova_repository_options repo_options = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_backup_options options = NOVA_BACKUP_OPTIONS_INIT;
    nova_backup_filter filter = NOVA_BACKUP_FILTER_INIT;
    nova_repository *repo = NULL;
    nova_backup_info *info = NULL, **list = NULL;
    size_t count = 0;
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: %s REPO_DIR PATH...\n", argv[0]);
        return 2;
    }
    if (!passphrase)
        passphrase = "example-passphrase";
    rc = nova_repository_open(&repo, argv[1], passphrase, &repo_options);
    if (rc == NOVA_ENO_REPO)
        rc = nova_repository_init(&repo, argv[1], passphrase, &repo_options);
    if (rc < 0)
        return fail("open", rc);

    options.strategy = NOVA_STRATEGY_INCREMENTAL;
    options.paths = (const char *const *)(argv + 2);
    options.path_count = (size_t)(argc - 2);
    options.progress = show_progress;
    options.file_error = show_file_error;
    rc = nova_create_backup(repo, &options, &info);
    fputc('\n', stderr);
    if (rc < 0) {
        nova_repository_close(repo);
        return fail("backup", rc);
    }
    printf("backup %s: %s, %s, %llu new / %llu changed / %llu unchanged files, "
           "%llu bytes added\n",
           info->backup_id, nova_backup_strategy_name(info->strategy),
           nova_backup_status_name(info->status), (unsigned long long)info->files_new,
           (unsigned long long)info->files_changed, (unsigned long long)info->files_unchanged,
           (unsigned long long)info->bytes_added);
    nova_backup_info_free(info);

    filter.limit = 10;
    rc = nova_list_backups(repo, &filter, &list, &count);
    if (rc < 0) {
        nova_repository_close(repo);
        return fail("list", rc);
    }
    printf("the newest %zu backups:\n", count);
    for (size_t i = 0; i < count; i++)
        printf("  %.12s  %-12s  %-9s  %llu files\n", list[i]->backup_id,
               nova_backup_strategy_name(list[i]->strategy),
               nova_backup_status_name(list[i]->status),
               (unsigned long long)(list[i]->files_new + list[i]->files_changed +
                                    list[i]->files_unchanged));
    nova_backup_info_list_free(list, count);
    nova_repository_close(repo);
    return 0;
}
