/*
 * fault_spec.h — the parser of bftnet-cluster's `--faults SPEC`.
 *
 * Pure: no I/O, no allocation, no clock. A SPEC is a comma-separated list
 * of faults, each `kind[:key=value;key=value...]`, e.g.
 *
 *   cut:every=2s,blackhole:at=10s;for=3s;link=r1-r2,kill:at=12s;replica=r3;restart=2s
 *
 * The grammar, every kind and key, and what the cluster does for each are
 * in docs/FAULTS.md; the short version:
 *
 *   cut        every=DUR and/or at=DUR [for=DUR] [link=L | replica=R]
 *   blackhole  at=DUR for=DUR (link=L | replica=R)
 *   partition  at=DUR for=DUR replica=R
 *   latency    ms=MS [jitter=MS] [link=L | replica=R] [at=DUR] [for=DUR]
 *   kill       at=DUR replica=R [restart=DUR]
 *   members    at=DUR [add=R] [remove=R]            (at least one of them)
 *   failover   at=DUR replica=R [back=DUR]          (back: absolute, > at)
 *
 * DUR is a decimal number with a unit: 500ms, 2s, 1.5s, 2m. MS is a
 * millisecond count, bare (20) or as a DUR (20ms). R is r0, r1, ...; a link
 * L is rA-rB (A != B, unordered: it names both proxies, A->B and B->A).
 * Times (at, back) count from the moment the cluster has started its
 * initial replicas. Blanks around items, keys and values are ignored.
 *
 * Errors: functions return 0 or -EINVAL and then write one line into
 * errbuf (if errbuf && errlen) naming the item (1-based) and the key, e.g.
 *   fault 3 "blackhole": unknown key "fro" (blackhole takes at, for, link, replica)
 */
#ifndef BFTNET_TOOLS_FAULT_SPEC_H
#define BFTNET_TOOLS_FAULT_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define FAULT_SPEC_LEN_MAX    4096       /* bytes in a SPEC */
#define FAULT_SPEC_FAULTS_MAX 64         /* items in a SPEC */
#define FAULT_REPLICA_MAX     1000       /* replica names r0 .. r999 */
#define FAULT_DURATION_MAX_MS 604800000u /* one week */
#define FAULT_LATENCY_MAX_MS  600000u    /* latency and jitter (= proxy's) */
#define FAULT_FOREVER         UINT64_MAX /* for_ms: until the run ends */
#define FAULT_NEVER           UINT64_MAX /* restart_ms, back_ms: never */
#define FAULT_NONE            (-1)       /* no replica */
/* Longest text fault_format() writes for one fault, NUL included. */
#define FAULT_FORMAT_MAX 160

typedef enum {
  FAULT_CUT,       /* reset the connections on the scope's links */
  FAULT_BLACKHOLE, /* silently stall the scope's links */
  FAULT_PARTITION, /* isolate a replica: cut + refuse its links */
  FAULT_LATENCY,   /* add delay (+/- jitter) on the scope's links */
  FAULT_KILL,      /* SIGKILL a replica, maybe restart it */
  FAULT_MEMBERS,   /* membership change (add/remove), delivered by SIGHUP */
  FAULT_FAILOVER   /* a replica's preferred path goes down (and back) */
} fault_kind_t;

typedef enum {
  FAULT_SCOPE_ALL,    /* every link */
  FAULT_SCOPE_LINK,   /* the link between replicas a and b (a < b) */
  FAULT_SCOPE_REPLICA /* replica a (for link faults: every link touching it) */
} fault_scope_kind_t;

typedef struct fault_scope {
  fault_scope_kind_t kind;
  int a, b; /* replica indices; FAULT_NONE where unused */
} fault_scope_t;

/* One parsed fault. Fields not used by a kind hold their defaults
 * (0, FAULT_FOREVER, FAULT_NEVER, FAULT_NONE, scope ALL). */
typedef struct fault {
  fault_kind_t kind;
  unsigned item;       /* 1-based position in the SPEC, for messages */
  fault_scope_t scope; /* cut/blackhole/latency: the links; partition,
                          kill, failover: REPLICA a = the replica */
  uint64_t at_ms;      /* start (cut: first cut; default every, or 0) */
  uint64_t for_ms;     /* duration; FAULT_FOREVER if open-ended */
  uint64_t every_ms;   /* cut: period; 0 = a single cut at at_ms */
  uint32_t latency_ms; /* latency: per direction, per chunk */
  uint32_t jitter_ms;  /* latency: +/- uniform jitter */
  uint64_t restart_ms; /* kill: restart this long after the kill; FAULT_NEVER */
  uint64_t back_ms;    /* failover: absolute time the path returns; FAULT_NEVER */
  int add, remove;     /* members: replica indices or FAULT_NONE */
} fault_t;

/* Parses spec into out[0..max). On success returns 0 and sets *count (an
 * empty or blank spec is 0 faults). On error returns -EINVAL, sets *count
 * to 0, writes the message into errbuf; out's contents are then
 * unspecified. More than max (or FAULT_SPEC_FAULTS_MAX) items is an error. */
int fault_spec_parse(const char *spec, fault_t *out, size_t max, size_t *count, char *errbuf,
                     size_t errlen);

/* Checks every replica index in f[0..n) against the cluster's size:
 * nreplicas counts every replica slot the run uses (the initial ones and
 * those a members fault adds). 0 or -EINVAL with a message. */
int fault_spec_check(const fault_t *f, size_t n, unsigned nreplicas, char *errbuf, size_t errlen);

/* 1 if the link between replicas i and j (i != j, either order) is in the
 * scope, else 0. For a REPLICA scope: every link touching it. */
int fault_scope_has_link(const fault_scope_t *scope, int i, int j);

/* The kind's SPEC name ("cut", ...), or "?" */
const char *fault_kind_name(fault_kind_t kind);

/* Writes f back as a canonical SPEC item (parsing it yields f again, item
 * aside) into buf, truncated and NUL-terminated; returns what snprintf
 * returns (the full length). */
int fault_format(const fault_t *f, char *buf, size_t len);

#endif
