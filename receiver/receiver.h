/*
 * receiver.h — the receive side's building blocks (seed 003's Receiver and
 * TentativeReceiver): the deframer, received-message buffers, the bounded
 * per-member inbound queue that application threads drain, and the
 * TentativeReceiver's bounded buffer. The only header receiver/ exposes.
 */
#ifndef BFTNET_RECEIVER_H
#define BFTNET_RECEIVER_H

#include <ck_ring.h>

#include "net.h"
#include "core.h"

/* ------------------------------------------------------------ messages */
/* A received message; `from` (the sender's node ID, or "" while tentative)
 * is stored inline after the data, so it outlives membership changes. */
struct rx_block;
typedef struct rx_msg {
  struct rx_msg *next; /* intrusive link for loop-side lists */
  const char *from;
  struct rx_block *block; /* carved from a shared block, or NULL (own malloc) */
  uint32_t len;
  uint8_t data[];      /* len bytes, then the NUL-terminated node ID */
} rx_msg_t;

rx_msg_t *rx_msg_new(const uint8_t *data, size_t len, const char *from); /* NULL on ENOMEM */
/* The same from a buffer pool (pool may be NULL). */
rx_msg_t *rx_msg_new_pool(bn_pool_t *pool, const uint8_t *data, size_t len, const char *from);
/* Re-labels a tentative message with its node ID on promotion (may move it). */
rx_msg_t *rx_msg_set_from(rx_msg_t *m, const char *from);
/* Any thread. */
void rx_msg_free(rx_msg_t *m);

/* Small messages carved from shared blocks: one allocation per
 * RX_BLOCK_SIZE bytes instead of one per message. The loop thread allocates
 * and an application thread frees (bftnet_msg_release), which sent every
 * per-message malloc through the allocator's slow, locked cross-thread path;
 * a block is freed when its last message is (an atomic count). Blocks come
 * from the node's pool (core.h, "pool"): with their header and the pool's they fill
 * exactly one 16 KiB class. Cost: a message the application keeps pins its
 * block, so the memory a member's queued messages hold is at most
 * RX_BLOCK_SIZE per queued message. The carver belongs to the loop thread. */
#define RX_BLOCK_SIZE (16u * 1024u - 64u)
#define RX_CARVE_MAX 1024u /* larger messages get their own buffer, from pool */
typedef struct rx_carver {
  struct rx_block *cur;
  bn_pool_t *pool; /* the owner's (may be NULL: malloc) */
} rx_carver_t;
rx_msg_t *rx_msg_carve(rx_carver_t *c, const uint8_t *data, size_t len, const char *from); /* NULL on ENOMEM */
/* Drops the carver's hold on its current block. */
void rx_carver_release(rx_carver_t *c);

/* ----------------------------------------------------------- deframer */
/* uvarint(len) || bytes, fed in any split. The announced length is checked
 * against max before anything is allocated; an oversized or malformed
 * header is a sticky error (the caller closes that stream and counts it). */
typedef struct rx_deframer {
  size_t max;
  uint64_t need;  /* body length of the message in progress */
  bool in_body;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  uint8_t hdr_len;
  uint8_t *body;  /* allocated once the length is known and checked */
  bn_pool_t *pool; /* where body comes from (NULL: malloc); set after init */
  size_t have;
  int err;        /* sticky */
} rx_deframer_t;

void rx_deframer_init(rx_deframer_t *d, size_t max);
void rx_deframer_free(rx_deframer_t *d);
/* Emits each complete message through cb (the bytes are valid during the
 * call; the callback copies them or takes them via rx_msg_new). Consumes
 * all of p unless an error occurs. Returns 0, BFTNET_ETOOBIG, BFTNET_EPROTO
 * (bad varint) or BFTNET_ENOMEM. Zero-length messages are legal. */
typedef void (*rx_emit_fn)(void *ud, const uint8_t *msg, size_t len);
int rx_deframer_feed(rx_deframer_t *d, const uint8_t *p, size_t n, rx_emit_fn cb, void *ud);

/* ------------------------------------------------------- inbound queue */
/* Per member. Produced by the loop thread, consumed by any number of
 * application threads (ck_ring SPMC). Limits are soft by exactly one yamux
 * window: the loop stops crediting the sender's stream once the queue is
 * over a limit (rx_inq_over), so at most one window of messages more can
 * arrive; those wait in a loop-side overflow list and move into the ring
 * as it drains (rx_inq_refill_spmc). */
typedef struct rx_inq {
  ck_ring_t ring;
  ck_ring_buffer_t *buf;
  uint32_t cap;            /* power of 2 */
  uint64_t max_bytes;
  rx_msg_t *ovf_head, *ovf_tail; /* loop thread only */
  /* The depth is pushed - taken, in messages and in data bytes. Each side
   * writes only its own counters, on its own cache line, so a message costs
   * no shared read-modify-write; the consumers add a whole batch at once. */
  char pad0[64];
  uint64_t in_msgs, in_bytes; /* loop thread writes (atomic stores): all pushed */
  char pad1[64];
  uint64_t out_msgs, out_bytes; /* atomic adds by consumers: all taken */
  uint64_t delivered;           /* atomic: taken, or handed to on_message */
  char pad2[64];
} rx_inq_t;

int rx_inq_init(rx_inq_t *q, uint32_t cap, uint64_t max_bytes) BFTNET_WUR;
/* Frees every queued message; returns how many. No concurrent use. */
size_t rx_inq_destroy(rx_inq_t *q);
/* Loop thread: appends m (ring if it fits behind the overflow, else the
 * overflow list). Never fails. */
void rx_inq_push_spmc(rx_inq_t *q, rx_msg_t *m);
/* Loop thread: moves overflow messages into the ring while it has room. */
void rx_inq_refill_spmc(rx_inq_t *q);
/* Any application thread: the oldest message in the ring, or NULL. */
rx_msg_t *rx_inq_pop_spmc(rx_inq_t *q);
/* Any application thread: up to max oldest messages into out, in order;
 * returns how many. The counters move once for the batch. */
unsigned rx_inq_pop_batch_spmc(rx_inq_t *q, rx_msg_t **out, unsigned max);
/* True while count >= cap - 1 or bytes >= max_bytes (stop crediting). */
bool rx_inq_over(rx_inq_t *q);
/* Messages in ring + overflow. Exact on the loop thread; elsewhere it may
 * overestimate (pushes and takes between its two loads), never underflow. */
uint32_t rx_inq_depth(rx_inq_t *q);
uint64_t rx_inq_bytes(rx_inq_t *q);  /* their data bytes */

/* ---------------------------------------------------- tentative buffer */
/* A TentativeReceiver's memory: only the newest messages, bounded by count
 * and bytes; older ones are evicted (and counted) as new ones arrive. A
 * single message larger than max_bytes is evicted at once. Loop thread. */
typedef struct rx_tentative_buf {
  rx_msg_t *head, *tail;
  uint32_t count, max_msgs;
  uint64_t bytes, max_bytes;
  uint64_t evicted;
} rx_tentative_buf_t;

void rx_tentative_init(rx_tentative_buf_t *t, uint32_t max_msgs, uint64_t max_bytes);
void rx_tentative_push(rx_tentative_buf_t *t, rx_msg_t *m);
/* Hands over every buffered message, oldest first, as a list (m->next);
 * the buffer is empty afterwards. */
rx_msg_t *rx_tentative_take(rx_tentative_buf_t *t);
void rx_tentative_free(rx_tentative_buf_t *t);

#endif
