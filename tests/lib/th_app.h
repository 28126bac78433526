/*
 * th_app.h — real bftnet nodes on 127.0.0.1 through the public API, as an
 * application runs them: the fixture messaging_test, classes_test and
 * class_loss_test share (each keeps its own array of nodes and scenarios).
 */
#ifndef TH_APP_H
#define TH_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "bftnet.h"

#define TH_APP_MAX 8 /* nodes in one membership, at most */

typedef struct th_app {
  bftnet_key_t *key;
  bftnet_t *net;
  char id[8];                 /* "r<i>" */
  char addr[BFTNET_ADDR_MAX]; /* where it listens, with /p2p/ID */
  const char *addrs[1];       /* {addr}: its address list in a membership */
} th_app_t;

/* Starts n as node "r<i>" with cfg (its key is set here) on a port of
 * 127.0.0.1 the kernel picks. keep: n was started before and stopped with
 * th_app_crash; it comes back with the same key on the same address (a
 * restarted replica). Fails the test on error. */
void th_app_start(th_app_t *n, int i, const bftnet_config_t *cfg, bool keep);
/* Frees the node and its key. */
void th_app_stop(th_app_t *n);
/* Frees the node only: its key and address stay for th_app_start(.., keep). */
void th_app_crash(th_app_t *n);
/* n's membership: nodes[idx[0..k)] (n itself may be among them). */
void th_app_connect(th_app_t *n, const th_app_t *nodes, const int *idx, int k);
/* Every node of nodes[0..k) gets the membership nodes[0..k). */
void th_app_connect_all(th_app_t *nodes, int k);

/* Big-endian 64-bit fields: the tests' sequence numbers and send times. */
static inline void th_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static inline uint64_t th_get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

#endif
