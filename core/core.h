/*
 * core.h — what every module may use: error helpers, the limits, a growable
 * byte buffer, rate-limited logging, counters, the message buffer pool and
 * the clock/RNG seam.
 * This is the only header core/ exposes to the other modules.
 */
#ifndef BFTNET_CORE_H
#define BFTNET_CORE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bftnet.h"

/* ------------------------------------------------------------- helpers */

#define BN_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define BN_ARRAY_LEN(a)                    (sizeof(a) / sizeof((a)[0]))
/* Arguments are evaluated twice: pass no side effects. */
#define BN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Internal invariants: on in every build. Never on peer bytes. */
#define BN_ASSERT(cond)                                                                            \
  do {                                                                                             \
    if (!(cond)) bn_assert_fail(#cond, __FILE__, __LINE__);                                        \
  } while (0)
_Noreturn void bn_assert_fail(const char *expr, const char *file, int line);

/* Defects the simulator's self-test injects into the real code (tests/sim):
 * compiled in only by its separate defect build (BFTNET_SIM_DEFECTS, which
 * defines bn_sim_defect, the one selected); 0 everywhere else. */
#ifdef BFTNET_SIM_DEFECTS
extern int bn_sim_defect;
#define BN_SIM_DEFECT(n) (bn_sim_defect == (n))
#else
#define BN_SIM_DEFECT(n) 0
#endif

static inline uint16_t bn_load_be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t bn_load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t bn_load_be64(const uint8_t *p) {
  return ((uint64_t)bn_load_be32(p) << 32) | bn_load_be32(p + 4);
}
static inline void bn_store_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void bn_store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void bn_store_be64(uint8_t *p, uint64_t v) {
  bn_store_be32(p, (uint32_t)(v >> 32));
  bn_store_be32(p + 4, (uint32_t)v);
}

/* -------------------------------------------------------------- limits */
/* Every size a peer can influence is checked against one of these before
 * anything is allocated. Relations between them are asserted statically. */

#define BN_NOISE_MAX_MSG         65535u /* Noise spec: max transport message */
#define BN_NOISE_TAG             16u
#define BN_NOISE_MAX_PLAINTEXT   (BN_NOISE_MAX_MSG - BN_NOISE_TAG)
#define BN_NOISE_MAX_PAYLOAD     4096u /* handshake payload we accept */
#define BN_MS_MAX_MSG            1024u /* one multistream-select message */
#define BN_MS_MAX_PROPOSALS      16u   /* proposals answered `na` per negotiation */
#define BN_UVARINT_MAX_BYTES     9u    /* multiformats unsigned-varint: 63 bits */
#define BN_YAMUX_HEADER          12u
#define BN_YAMUX_INITIAL_WINDOW  (256u * 1024u) /* yamux spec */
#define BN_YAMUX_MAX_WINDOW      (16u * 1024u * 1024u)
#define BN_YAMUX_MAX_STREAMS_CAP 65536u
#define BN_PING_SIZE             32u   /* /ipfs/ping/1.0.0 payload */
#define BN_PB_ARENA_MAX          8192u /* capped protobuf-c allocator */
#define BN_MSG_MAX_DEFAULT       (4u * 1024u * 1024u)
#define BN_MSG_MAX_CAP           (64u * 1024u * 1024u)
#define BN_MADDR_MAX_PEERID      64u /* binary multihash of a peer ID */

_Static_assert(BN_NOISE_MAX_PAYLOAD < BN_NOISE_MAX_PLAINTEXT, "payload fits a Noise message");
_Static_assert(BN_YAMUX_INITIAL_WINDOW <= BN_YAMUX_MAX_WINDOW, "yamux windows");
_Static_assert(BN_MS_MAX_MSG < BN_NOISE_MAX_PLAINTEXT, "multistream message fits a frame");
_Static_assert(BN_MSG_MAX_DEFAULT <= BN_MSG_MAX_CAP, "message limits");

/* -------------------------------------------------------------- errors */

/* True for BFTNET_E* codes (as opposed to -errno). */
static inline bool bn_is_bftnet_err(int err) {
  return err <= -30001 && err > -(30001 + BFTNET_ERRIDX_COUNT);
}

/* -------------------------------------------------------------- buffer */
/* A growable byte buffer with a read offset: data[off, len) is unread.
 * Growth beyond `limit` (if non-zero) fails with BFTNET_ETOOBIG. */
typedef struct bn_buf {
  uint8_t *data;
  size_t off;
  size_t len;
  size_t cap;
} bn_buf_t;

void bn_buf_init(bn_buf_t *b);
void bn_buf_free(bn_buf_t *b);
/* Ensures room for n more bytes after len; compacts first if that helps. */
int bn_buf_reserve(bn_buf_t *b, size_t n) BFTNET_WUR;
int bn_buf_append(bn_buf_t *b, const void *p, size_t n) BFTNET_WUR;
static inline size_t bn_buf_unread(const bn_buf_t *b) {
  return b->len - b->off;
}
static inline uint8_t *bn_buf_head(const bn_buf_t *b) {
  return b->data ? b->data + b->off : NULL; /* NULL + 0 is UB */
}
/* Marks n unread bytes as read; resets to empty when all are. */
void bn_buf_consume(bn_buf_t *b, size_t n);
void bn_buf_reset(bn_buf_t *b);

/* ----------------------------------------------------------------- log */

enum bn_log_level { BN_LOG_ERROR = 1, BN_LOG_WARN = 2, BN_LOG_INFO = 3, BN_LOG_DEBUG = 4 };

/* Where one node's log lines go: its own level (bftnet_config_t.log_level)
 * and, if set, its callback (bftnet_config_t.on_log), else stderr as
 * "bftnet <level>: <text>". Each node has its own: two nodes in a process
 * never change each other's level. The node owns it; the layers keep a
 * pointer (in their configs) that stays valid while the node lives.
 * NULL means the process default: warnings and errors to stderr. */
typedef struct bn_logger {
  int level; /* lines above it are not formatted */
  void (*cb)(int level, const char *msg, void *user);
  void *user;
} bn_logger_t;

/* Any thread. The callback runs on the calling thread (bounded text: 511
 * bytes, longer lines are cut). */
void bn_log(const bn_logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline bool bn_log_enabled(const bn_logger_t *lg, int level) {
  return level >= BN_LOG_ERROR && level <= (lg ? lg->level : BN_LOG_WARN);
}

/* A rate limiter for one log site: at most 5 lines per second; the number
 * suppressed is reported with the next line that passes. */
typedef struct bn_ratelimit {
  uint64_t window_start_ns;
  uint32_t count;
  uint32_t suppressed;
} bn_ratelimit_t;

void bn_log_rl(const bn_logger_t *lg, bn_ratelimit_t *rl, uint64_t now_ns, int level,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------ clock/RNG seam */
/* No module reads the clock or an RNG directly: they go through a seam,
 * which tests replace with a virtual clock and a seeded RNG. */
typedef struct bn_seam {
  uint64_t (*now_ns)(void *ctx);                  /* monotonic nanoseconds */
  void (*random)(void *ctx, void *buf, size_t n); /* cryptographic bytes */
  void *ctx;
} bn_seam_t;

/* The real clock (CLOCK_MONOTONIC) and libsodium's randombytes. */
const bn_seam_t *bn_seam_system(void);

/* A deterministic seam for tests: a virtual clock advanced by hand and a
 * ChaCha20 stream from a 64-bit seed (printed by failing tests). */
typedef struct bn_seam_sim {
  bn_seam_t seam;
  uint64_t now_ns;
  uint64_t seed;
  uint64_t counter;
} bn_seam_sim_t;

void bn_seam_sim_init(bn_seam_sim_t *s, uint64_t seed);

static inline uint64_t bn_now_ns(const bn_seam_t *s) {
  return s->now_ns(s->ctx);
}
static inline void bn_random(const bn_seam_t *s, void *buf, size_t n) {
  s->random(s->ctx, buf, n);
}
/* Uniform in [0, bound) (bound > 0), without modulo bias. */
uint64_t bn_random_uniform(const bn_seam_t *s, uint64_t bound);

/* ------------------------------------------------------ the world seam */
/* Everything outside the process that the node reaches beyond the clock and
 * the RNG: sockets, timers, cross-thread wakeups, deferral and the loop that
 * drives them. Every layer reaches the outside world through this table;
 * net/src/tcp_uv.c is the production implementation (libuv), and a
 * simulator can provide another and drive the real code of every layer.
 * All operations run on the loop thread, except wake_send. */

struct sockaddr;
struct sockaddr_storage;
typedef struct bn_transport bn_transport_t;
typedef struct bn_tsock bn_tsock_t;
typedef struct bn_tlistener bn_tlistener_t;
typedef struct bn_ttimer bn_ttimer_t;
typedef struct bn_twake bn_twake_t;

typedef struct bn_tsock_cbs {
  void (*on_connect)(void *ud, int status); /* dial result, once */
  /* p is the transport's scratch buffer: valid (and writable, for in-place
   * decryption) during the call only. */
  void (*on_read)(void *ud, uint8_t *p, size_t n);
  void (*on_eof)(void *ud, int err); /* 0 = orderly EOF, < 0 error; reads end */
  void (*on_drain)(void *ud);        /* a write completed: write again */
  void (*on_close)(void *ud);        /* after close: last callback */
} bn_tsock_cbs_t;

typedef void (*bn_accept_cb)(void *ud, bn_tsock_t *s);
typedef void (*bn_timer_cb)(void *ud);
typedef void (*bn_defer_cb)(void *ud);
typedef void (*bn_wake_cb)(void *ud);

/* How far one call of run() turns the loop (libuv's run modes). */
typedef enum bn_run_mode {
  BN_RUN_DEFAULT = 0, /* until nothing is left to do (every handle closed) */
  BN_RUN_ONCE,        /* one turn, blocking for an event if none is ready */
  BN_RUN_NOWAIT       /* one turn, never blocking */
} bn_run_mode_t;

/* A socket's sending side as its kernel sees it (sock_tx_info). */
typedef struct bn_tx_info {
  uint64_t queued;     /* bytes written and not yet acknowledged by the peer, sent or not */
  uint64_t acked;      /* bytes the peer acknowledged since the connection began */
  uint32_t min_rtt_us; /* the smallest round trip the kernel measured (0: none) */
  uint32_t mss;        /* the segment size it sends (0: unknown) */
} bn_tx_info_t;

typedef struct bn_transport_ops {
  int (*listen)(bn_transport_t *t, const struct sockaddr *sa, bn_accept_cb cb, void *ud,
                bn_tlistener_t **out);
  int (*listener_addr)(bn_tlistener_t *l, struct sockaddr_storage *out);
  void (*listener_close)(bn_tlistener_t *l);
  /* Starts a connect; on_connect reports the result (never synchronously). */
  int (*dial)(bn_transport_t *t, const struct sockaddr *sa, bn_tsock_t **out);
  void (*sock_set_cbs)(bn_tsock_t *s, const bn_tsock_cbs_t *cbs, void *ud);
  int (*read_start)(bn_tsock_t *s);
  /* Takes bytes from b, never copying them: what the kernel takes at once,
   * then, unless a write is still in flight, the rest, by swapping b's
   * storage for the socket's idle buffer (b comes back empty, with that
   * buffer's capacity). While a write is in flight it takes nothing more
   * (the caller keeps its bytes and writes again on on_drain) unless `all`
   * (a last write before a graceful close: it is queued behind). */
  int (*write)(bn_tsock_t *s, bn_buf_t *b, bool all);
  size_t (*write_queued)(const bn_tsock_t *s);
  int (*peer_addr)(const bn_tsock_t *s, struct sockaddr_storage *out);
  /* Closes; graceful waits for queued writes (bounded). on_close follows. */
  void (*close)(bn_tsock_t *s, bool graceful);
  int (*timer_new)(bn_transport_t *t, bn_timer_cb cb, void *ud, bn_ttimer_t **out);
  void (*timer_start)(bn_ttimer_t *tm, uint64_t timeout_ms, uint64_t repeat_ms);
  void (*timer_stop)(bn_ttimer_t *tm);
  void (*timer_free)(bn_ttimer_t *tm); /* stops; memory goes once safe */
  /* Optional (NULL: not supported): starts tm once, after timeout_us
   * microseconds (timer_start counts milliseconds). timer_start and
   * timer_stop replace it as they replace each other. */
  void (*timer_start_us)(bn_ttimer_t *tm, uint64_t timeout_us);
  /* Runs cb once, later on the loop thread, before it next blocks. */
  void (*defer)(bn_transport_t *t, bn_defer_cb cb, void *ud);
  /* A wakeup another thread can send: cb runs on the loop thread at least
   * once after each wake_send (sends coalesce, like uv_async_send). */
  int (*wake_new)(bn_transport_t *t, bn_wake_cb cb, void *ud, bn_twake_t **out);
  void (*wake_send)(bn_twake_t *w); /* any thread */
  void (*wake_free)(bn_twake_t *w); /* memory goes once safe; cb never runs after */
  /* Turns the loop; nonzero while work remains (an open handle or a
   * pending callback). Loop thread: the one thread that runs it. */
  int (*run)(bn_transport_t *t, bn_run_mode_t mode);
  /* Closes the transport's own handles, after everything created through
   * it was closed or freed. Then the owner calls its destructor. */
  void (*shutdown)(bn_transport_t *t);
  /* Optional (NULL: not supported): caps the bytes the kernel holds not yet
   * sent on s (TCP_NOTSENT_LOWAT), so what the node writes later is not
   * queued behind a deep kernel buffer. 0 or an error. */
  int (*sock_set_notsent_lowat)(bn_tsock_t *s, uint32_t bytes);
  /* Optional (NULL: not supported): what the kernel holds for s and knows
   * of its path (bn_tx_info_t); the rates and round trip only if `rates`
   * (they cost another system call). 0 or an error. */
  int (*sock_tx_info)(const bn_tsock_t *s, bool rates, bn_tx_info_t *out);
} bn_transport_ops_t;

struct bn_transport {
  const bn_transport_ops_t *ops;
  const bn_seam_t *seam; /* the clock and the RNG */
};

/* ThreadSanitizer cannot see Concurrency Kit's inline-assembly atomics:
 * where a ck protocol orders memory (ring hand-offs, epoch grace periods),
 * these annotations tell it so. They compile to nothing otherwise. */
#if defined(__SANITIZE_THREAD__)
#define BN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BN_TSAN 1
#endif
#endif
#ifdef BN_TSAN
/* The TSan runtime's interface (sanitizer/tsan_interface.h and its
 * annotation API), declared here so gcc and clang builds agree. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define BN_TSAN_ACQUIRE(p)           __tsan_acquire((void *)(p))
#define BN_TSAN_RELEASE(p)           __tsan_release((void *)(p))
#define BN_TSAN_IGNORE_BEGIN()       __tsan_ignore_thread_begin()
#define BN_TSAN_IGNORE_END()         __tsan_ignore_thread_end()
#define BN_TSAN_IGNORE_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define BN_TSAN_IGNORE_READS_END()   AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define BN_TSAN_ACQUIRE(p)           ((void)(p))
#define BN_TSAN_RELEASE(p)           ((void)(p))
#define BN_TSAN_IGNORE_BEGIN()       ((void)0)
#define BN_TSAN_IGNORE_END()         ((void)0)
#define BN_TSAN_IGNORE_READS_BEGIN() ((void)0)
#define BN_TSAN_IGNORE_READS_END()   ((void)0)
#endif

/* Wipes secrets (sodium_memzero: not optimized away). */
void bn_wipe(void *p, size_t n);

/* ------------------------------------------------------------ counters */
/* A node's counters: written by the loop thread, read from any thread. */
typedef struct bn_counters {
  uint64_t v[BFTNET_COUNTER_COUNT];
} bn_counters_t;

void bn_counter_add(bn_counters_t *c, bftnet_counter_id_t id, uint64_t n);
uint64_t bn_counter_get(const bn_counters_t *c, bftnet_counter_id_t id);

/* ---------------------------------------------------------------- pool */
/* A cache of message-sized buffers that one thread allocates and another
 * frees (send messages: the application allocates, the loop thread frees;
 * received messages: the other way round).
 *
 * Written by hand because no packaged allocator does this for a library:
 * glibc's malloc returns the memory of buffers freed on another thread to
 * the kernel (arena trimming) and faults it in again on the next
 * allocation; tuning it (mallopt) is the application's call, not a
 * library's. docs/ARCHITECTURE.md has what that cost.
 *
 * Buffers up to 64 KiB (BN_POOL_MAX), header included, come in 64 size
 * classes: 64 B steps up to 1 KiB, then eight per doubling (so at most
 * 12.5 % is wasted above 1 KiB: a 16 KiB message takes 18 KiB); larger ones
 * are plain malloc. Small buffers are pooled too: freed on the loop thread
 * and malloc'd on the application's, they kept glibc's arena lock contended.
 * A freed buffer goes back on its class's lock-free stack (ck_stack, the
 * ABA-safe MPMC form) while the pool caches at most cache_max bytes; beyond
 * that it is freed. Any thread may allocate and free.
 *
 * Lifetime: a buffer may outlive its owner's handle (a received message the
 * application keeps after bftnet_free). The pool is reference-counted by its
 * owner and by every buffer out; after bn_pool_close new frees go straight
 * to free(), and the last reference frees what is cached and the pool. */
#define BN_POOL_MIN 1024u
#define BN_POOL_MAX (64u * 1024u)
#define BN_POOL_HDR 16u /* bytes in front of every buffer (tests)*/

typedef struct bn_pool bn_pool_t;

/* NULL on ENOMEM. cache_max: bytes cached at most (0: cache nothing). */
bn_pool_t *bn_pool_new(size_t cache_max);
/* Drops the owner's reference. p may be NULL. */
void bn_pool_close(bn_pool_t *p);
/* At least n usable bytes, 16-byte aligned, or NULL on ENOMEM. p may be
 * NULL (plain malloc, still freed with bn_pool_free). */
void *bn_pool_alloc(bn_pool_t *p, size_t n);
/* mem from bn_pool_alloc (any pool, any thread), or NULL. */
void bn_pool_free(void *mem);
/* The calling thread holds back its frees of p's buffers and gives them
 * back POOL_DEFER_MAX (64) at a time: one CAS per size class and one update
 * of each counter instead of three atomic operations per buffer. For the
 * thread that frees most of a pool's buffers (the loop thread frees every
 * sent message). At most one pool per thread; BFTNET_EINVAL if the thread
 * already defers, BFTNET_ENOMEM. */
int bn_pool_defer_begin(bn_pool_t *p);
/* Gives back what the calling thread holds (nothing if it does not defer). */
void bn_pool_defer_flush(void);
/* Gives back what it holds and stops deferring; call before the thread
 * exits. A no-op if the thread does not defer. */
void bn_pool_defer_end(void);
/* Bytes cached now (approximate while other threads use the pool). */
size_t bn_pool_cached(const bn_pool_t *p);

#endif /* BFTNET_CORE_H */
