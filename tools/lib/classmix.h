/*
 * classmix.h — the traffic class mix of bftnet-replica and bftnet-cluster
 * (--classes): which classes a replica configures and what load it sends
 * in each. Pure: parsing and formatting, no I/O.
 *
 * Syntax: classes separated by ',', each NAME[:KEY=VALUE[;KEY=VALUE...]]:
 *   prio=P         priority, 0 the most urgent (default 0)
 *   size=BYTES     bytes per message, >= 16 (default 64)
 *   rate=R|max     messages/s to each peer (default 100); max = flat out:
 *                  the ring is kept full and the class's drop policy drops
 *                  what the link cannot carry
 *   policy=drop-oldest|keep-latest   (default drop-oldest)
 *   keys=N         keep-latest: messages carry keys 1..N in turn (default 0:
 *                  no key)
 *   ring=N         send ring per peer, messages, a power of 2 (default 4096,
 *                  halved for large messages to at most 16 MiB per peer)
 * e.g. 'vote:prio=0;size=64;rate=100,block:prio=1;size=1048576;rate=max'.
 * The order is the class index: the first class is class 0.
 */
#ifndef BFTNET_TOOLS_CLASSMIX_H
#define BFTNET_TOOLS_CLASSMIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bftnet.h"

#define CLASSMIX_RING_BYTES (16u << 20) /* default ring: at most this much queued per peer */

typedef struct classmix_class {
  char name[BFTNET_CLASS_NAME_MAX];
  uint8_t prio;
  size_t size;
  double rate; /* messages/s per peer; 0 = max */
  bftnet_policy_t policy;
  uint32_t keys;
  uint32_t ring; /* messages, a power of 2 */
} classmix_class_t;

typedef struct classmix {
  classmix_class_t c[BFTNET_MAX_CLASSES];
  size_t n; /* 0: no --classes (one class, as without the option) */
} classmix_t;

/* Parses spec into *m. 0, or -1 with the reason in err. */
int classmix_parse(const char *spec, classmix_t *m, char *err, size_t errlen);
/* "vote 64 B at 100/s, block 1048576 B flat out" (cut at len). */
void classmix_describe(const classmix_t *m, char *buf, size_t len);

#endif
