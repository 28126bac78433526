/*
 * jsonx.h — two jansson helpers the tools share: an unsigned counter as a
 * JSON integer, and a document written to a file atomically.
 */
#ifndef BFTNET_TOOLS_JSONX_H
#define BFTNET_TOOLS_JSONX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A new JSON integer for v, saturated at INT64_MAX (JSON integers are signed). */
json_t *jsonx_u64(uint64_t v);

/* Writes doc to PATH.tmp with json_dump_file's flags, then renames it over
 * PATH, so a reader sees the old file or the whole new one. Returns 0 or
 * -errno (PATH.tmp removed). Does not take doc's reference. */
int jsonx_write_atomic(json_t *doc, const char *path, size_t flags);

#endif
