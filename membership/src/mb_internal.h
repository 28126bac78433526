/*
 * mb_internal.h — what the files of membership/ share: error text helpers
 * and the limits of the membership file. Private to the module.
 */
#ifndef BFTNET_MB_INTERNAL_H
#define BFTNET_MB_INTERNAL_H

#include "membership.h"

#define MB_FILE_MAX (4u * 1024u * 1024u) /* membership file / JSON text */
#define MB_SHOW_MAX 64u                  /* how much outside text an error quotes */
#define MB_SHOW_BUF (MB_SHOW_MAX + 4u)   /* ... plus "..." and the NUL */

/* Writes the formatted message into errbuf (NULL or errcap 0: nothing). */
void mb_errf(char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A printable, bounded copy of outside text for error messages: bytes
 * outside 0x20..0x7e become '?', more than MB_SHOW_MAX become "...". */
const char *mb_show(const char *s, size_t len, char buf[MB_SHOW_BUF]);

/* The prologue of the three table constructors (mb_table_build,
 * mb_table_from_json, mb_table_load_file), in table.c: clears errbuf, refuses
 * a NULL out, leaves *out empty (so mb_table_free accepts it whatever
 * follows), then refuses a missing input, naming it with `missing`.
 * 0 or BFTNET_EINVAL. */
int mb__table_begin(mb_table_t *out, bool has_input, const char *missing, char *errbuf,
                    size_t errcap);

/* The 1..BFTNET_MAX_ADDRS rule, shared by mb_table_build and the JSON layer
 * (which must not build a pointer array for a hostile count). */
static inline bool mb_naddrs_ok(size_t naddrs) {
  return naddrs >= 1 && naddrs <= BFTNET_MAX_ADDRS;
}

#endif
