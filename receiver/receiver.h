/*
 * receiver.h — the per-member receive side: a member's Receiver (its
 * stream of each traffic class to us, deframed into that class's bounded
 * inbound queue that application threads drain, with that stream's credit
 * held back while the queue is full: one class's full queue never slows
 * another), and the
 * TentativeReceivers of authenticated peers that are not (yet) members
 * (bounded, least recently created evicted, rate limited, promoted when
 * the peer becomes a member); plus their building blocks: the deframer,
 * received-message buffers, the inbound queue, the tentative buffer.
 * The only header receiver/ exposes.
 *
 * The receiver knows no node: its owner gives it a context (rx_ctx_t:
 * configuration, transport, counters, buffer pool) and a callback table
 * (rx_cbs_t) for what goes up (messages ready, stream events).
 */
#ifndef BFTNET_RECEIVER_H
#define BFTNET_RECEIVER_H

#include <ck_pr.h>
#include <ck_ring.h>

#include "core.h"
#include "migration.h"

/* ------------------------------------------------------------ messages */
/* A received message; `from` (the sender's node ID, or "" while tentative)
 * is stored inline after the data, so it outlives membership changes. */
struct rx_block;
typedef struct rx_msg {
  struct rx_msg *next; /* intrusive link for loop-side lists */
  const char *from;
  struct rx_block *block; /* carved from a shared block, or NULL (own malloc) */
  uint32_t len;
  uint8_t cls;    /* its traffic class (kept while tentative) */
  uint8_t data[]; /* len bytes, then the NUL-terminated node ID */
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
#define RX_CARVE_MAX  1024u /* larger messages get their own buffer, from pool */
typedef struct rx_carver {
  struct rx_block *cur;
  bn_pool_t *pool; /* the owner's (may be NULL: malloc) */
} rx_carver_t;
rx_msg_t *rx_msg_carve(rx_carver_t *c, const uint8_t *data, size_t len,
                       const char *from); /* NULL on ENOMEM */
/* Drops the carver's hold on its current block. */
void rx_carver_release(rx_carver_t *c);

/* ----------------------------------------------------------- deframer */
/* uvarint(len) || bytes, fed in any split. The announced length is checked
 * against max before anything is allocated. A length in (max, skip_max] is
 * a message too large for us but not a lie: its bytes are skipped, never
 * buffered, and counted in `skipped`; the next message follows. A larger
 * length or a malformed header is a sticky error (the caller closes that
 * stream and counts it). skip_max 0 (rx_deframer_init): no skipping. */
typedef struct rx_deframer {
  size_t max;
  uint64_t skip_max;
  uint64_t skip;    /* bytes of an oversized message still to skip */
  uint64_t skipped; /* oversized messages met so far */
  uint64_t need;    /* body length of the message in progress */
  bool in_body;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  uint8_t hdr_len;
  uint8_t *body;   /* allocated once the length is known and checked */
  bn_pool_t *pool; /* where body comes from (NULL: malloc); set after init */
  size_t have;
  int err; /* sticky */
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
  uint32_t cap; /* power of 2 */
  uint64_t max_bytes;
  rx_msg_t *ovf_head, *ovf_tail; /* loop thread only */
  /* Atomic, loop writes: messages wait in the overflow list, so a consumer
   * that makes room in the ring must wake the loop to move them in (the
   * stream may not be throttled: the list can fill while credit is owed to
   * nobody, e.g. on promotion or after the stream went away). */
  int ovf_waiting;
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
/* Loop thread: moves overflow messages into the ring while it has room;
 * returns how many it moved (the application must hear of them). */
unsigned rx_inq_refill_spmc(rx_inq_t *q);
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
uint64_t rx_inq_bytes(rx_inq_t *q); /* their data bytes */

/* ---------------------------------------------------- tentative buffer */
/* A TentativeReceiver's memory: only the newest messages, bounded by count
 * and bytes; older ones are evicted (and counted, in all and per class: the
 * classes share the buffer, so a flood in one evicts the others' too) as
 * new ones arrive. A single message larger than max_bytes is evicted at
 * once. Loop thread. */
typedef struct rx_tentative_buf {
  rx_msg_t *head, *tail;
  uint32_t count, max_msgs;
  uint64_t bytes, max_bytes;
  uint64_t evicted;                         /* the sum of evicted_cls */
  uint64_t evicted_cls[BFTNET_MAX_CLASSES]; /* by each message's class (m->cls) */
} rx_tentative_buf_t;

void rx_tentative_init(rx_tentative_buf_t *t, uint32_t max_msgs, uint64_t max_bytes);
/* m->cls must be set (below BFTNET_MAX_CLASSES). */
void rx_tentative_push(rx_tentative_buf_t *t, rx_msg_t *m);
/* Evicts every buffered message (counted): the TentativeReceiver goes. */
void rx_tentative_evict_all(rx_tentative_buf_t *t);
/* Hands over every buffered message, oldest first, as a list (m->next);
 * the buffer is empty afterwards. */
rx_msg_t *rx_tentative_take(rx_tentative_buf_t *t);
void rx_tentative_free(rx_tentative_buf_t *t);

/* ------------------------------------------------------------ Receiver */

/* What the receive side tells its owner, on the loop thread. */
typedef struct rx_cbs {
  /* Messages were queued for the application, in the classes of the mask
   * (bit i: class i): at most once per loop turn (through the transport's
   * deferral), and at once for the first message of an urgent class. ud:
   * the context's. */
  void (*on_ready)(void *ud, uint32_t classes);
  /* A migration event of a member's stream to us (every type but
   * MIG_EV_READ_EOF). ud: the one given to rx_init. */
  void (*on_stream_event)(void *ud, mig_stream_t *ls, const mig_event_t *e);
} rx_cbs_t;

typedef struct rx_config {
  uint32_t max_message_size; /* checked before a body is allocated */
  /* The traffic classes (the owner's memory, outliving the context): each
   * one's inbound_max_msgs (power of 2) and inbound_max_bytes bound its
   * queue per member. Class i is the migration layer's application
   * protocol i (mig_stream_app). */
  const bftnet_class_t *classes;
  unsigned ncls;
  uint32_t tentative_max;                           /* TentativeReceivers at once (0: none) */
  uint32_t tentative_max_msgs, tentative_max_bytes; /* kept per TentativeReceiver */
  uint32_t tentative_rate;                          /* bytes/s credited to a non-member */
  /* Optional: messages go to this callback on the loop thread instead of
   * the inbound queues (bftnet_config_t's on_message and user). */
  void (*on_message)(const char *from, const uint8_t *data, size_t len, void *user);
  void (*on_message_ex)(const bftnet_msg_t *msg, void *user); /* with the class; wins */
  void *user;
  const bn_logger_t *log; /* the node's (NULL: the process default) */
} rx_config_t;

typedef struct rx_tent rx_tent_t; /* a TentativeReceiver (private) */

/* The newest stream a Receiver or TentativeReceiver took from its peer:
 * its opening ID and opener incarnation (mig_stream_opened_as). A stream
 * of the same incarnation with a lower opening ID is an older one heard of
 * late, and is refused (PROTOCOL.md §11.3). Loop thread. */
typedef struct rx_order {
  uint64_t inc, open_id;
  bool known; /* false until a stream that tells its age was taken */
} rx_order_t;

/* The receive side's node-wide state. Filled by rx_ctx_init; the owner's
 * objects must outlive it. Loop thread only, but for the per-class totals
 * (rx_class_totals, any thread). */
typedef struct rx_ctx {
  rx_config_t cfg;
  bn_transport_t *t;       /* timers, deferral, the clock */
  bn_counters_t *counters; /* the node's */
  bn_pool_t *pool;         /* message buffers (may be NULL: malloc) */
  const rx_cbs_t *cbs;
  void *ud;
  uint64_t activity;                /* bumped by every data callback (busy polling watches it) */
  rx_tent_t *tent_head, *tent_tail; /* creation order, oldest first */
  unsigned ntent;
  bn_ttimer_t *tent_timer; /* re-credits rate-limited TentativeReceivers */
  bool notify_queued;
  uint32_t ready_classes; /* the classes queued into since the last on_ready of the turn */
  uint32_t urgent;        /* the classes of the most urgent priority (when there are several) */
  /* Per class, node-wide (bftnet_class_totals): what the node counters
   * TENTATIVE_EVICTED and INBOUND_DISCARDED_REMOVED count, split by class;
   * each is bumped with its node counter, so per counter the sum over the
   * classes equals it. Atomic: the loop thread adds, any thread reads. */
  uint64_t cls_tentative_evicted[BFTNET_MAX_CLASSES];
  uint64_t cls_discarded_removed[BFTNET_MAX_CLASSES];
} rx_ctx_t;

struct rx;

/* One traffic class of a member's Receiver. Application threads use only
 * the inbound queue and the atomic counters. */
typedef struct rx_cls {
  rx_inq_t inq;               /* first: its padding keeps consumers off the rest */
  uint64_t bytes_in;          /* atomic (loop writes) */
  uint64_t tentative_evicted; /* atomic: the class's part of rx_t's */
  int throttled;              /* the loop stopped crediting: a pop must wake it */

  /* Loop thread only. */
  struct rx *r;
  unsigned idx;
  mig_stream_t *in; /* the member's stream of this class to us */
  rx_deframer_t rxd;
  size_t uncredited; /* bytes received but not yet credited (backpressure) */
} rx_cls_t;

/* One member's Receiver. Application threads use only the classes'
 * inbound queues (rx_pop_batch) and the atomic counters (rx_stats);
 * everything else belongs to the loop thread. */
typedef struct rx {
  rx_cls_t *cls; /* ncls of them, cache-line aligned; never moves */
  unsigned ncls;
  uint64_t tentative_evicted; /* atomic */
  uint64_t too_big;           /* atomic: messages above our max_message_size, skipped */

  /* Loop thread only. */
  rx_ctx_t *ctx;
  void *ud;                             /* the owner's, for the callbacks */
  const char *from;                     /* the member's node ID (the owner's memory) */
  rx_carver_t carver;                   /* small received messages share blocks */
  bn_ratelimit_t rl;                    /* its log lines */
  rx_order_t order[BFTNET_MAX_CLASSES]; /* per class: the newest stream taken; outlives it */
} rx_t;

/* Loop thread. 0 or a transport error. */
int rx_ctx_init(rx_ctx_t *ctx, const rx_config_t *cfg, bn_transport_t *t, bn_counters_t *counters,
                bn_pool_t *pool, const rx_cbs_t *cbs, void *ud) BFTNET_WUR;
/* Loop thread: frees every TentativeReceiver (their streams are released,
 * their connections left open) and the timer. */
void rx_ctx_stop(rx_ctx_t *ctx);

/* Loop thread. A member's Receiver; from (its node ID, the tag of every
 * message) is the owner's and must outlive it. 0, BFTNET_EINVAL, BFTNET_ENOMEM. */
int rx_init(rx_t *r, rx_ctx_t *ctx, void *ud, const char *from) BFTNET_WUR;
/* Loop thread: the member opened a stream of class cls to us; the newest
 * one of a class is the Receiver's (an older one is released). A stream
 * older than the newest the class took from the same incarnation of the
 * member (rx_order_t) is not taken: BFTNET_ESTATE, counted
 * (mig_stale_streams) and logged; the caller refuses it (reset). */
int rx_set_in(rx_t *r, unsigned cls, mig_stream_t *ls) BFTNET_WUR;
/* Loop thread: a peer that is not a member opened a stream of class cls to
 * us: its TentativeReceiver (new, or the one it has) takes it, and lp
 * (owner: the TentativeReceiver). BFTNET_ENOTMEMBER when tentative_max is
 * 0, BFTNET_ENOMEM, BFTNET_ESTATE for an older stream (as rx_set_in): the
 * caller refuses the stream. */
int rx_tent_open(rx_ctx_t *ctx, mig_peer_t *lp, unsigned cls, mig_stream_t *ls) BFTNET_WUR;
/* Loop thread: peer became the member of r. Its TentativeReceiver, if it
 * has one, hands over: buffered messages first, in order, then its stream
 * goes on as r's. The member's dispatcher already took the peer's
 * migration state. */
void rx_tent_promote(rx_ctx_t *ctx, const peerid_t *peer, rx_t *r);
/* Loop thread, after a wake: each class's overflow moves into the room the
 * application made (and the application is told), and a throttled stream
 * is credited again once its queue has room. */
void rx_wake(rx_t *r);
/* Loop thread: forgets the streams (their owner resets them). */
void rx_stop(rx_t *r);
/* Frees the queue (counting what was never read, per class too), the
 * deframer and the carver's block. No other thread may use r. */
void rx_destroy(rx_t *r);

/* Any application thread: up to max of the member's oldest messages of
 * class cls into out; sets *wake_loop when the loop must be woken to credit
 * the stream again. The count. */
static inline unsigned rx_pop_batch(rx_t *r, unsigned cls, rx_msg_t **out, unsigned max,
                                    bool *wake_loop) {
  rx_cls_t *k = &r->cls[cls];
  unsigned n = rx_inq_pop_batch_spmc(&k->inq, out, max);
  if (n) {
    /* The dequeue's atomic before the loads: pairs with the loop's fence
     * between setting ovf_waiting and looking for room (inq.c). */
    ck_pr_fence_atomic_load();
    if (ck_pr_load_int(&k->throttled) || ck_pr_load_int(&k->inq.ovf_waiting)) *wake_loop = true;
  }
  return n;
}
/* Any thread: fills the receive side's fields of out (delivered,
 * bytes_in, tentative_evicted, inbound_depth, discarded_too_big), summed
 * over the classes; leaves the others. */
void rx_stats(rx_t *r, bftnet_peer_stats_t *out);
/* Any thread: one class's (delivered, bytes_in, inbound_depth,
 * tentative_evicted). */
void rx_class_stats(rx_t *r, unsigned cls, bftnet_class_stats_t *out);
/* Any thread: one class's node-wide totals (rx_ctx_t's). */
void rx_class_totals(rx_ctx_t *ctx, unsigned cls, bftnet_class_totals_t *out);

#endif
