// Layouts of the shared-memory segments and the hello exchange on the control
// socket. These are the binary contract between libcoproc and coprocd, next to
// coproc.fbs (which defines the messages inside the rings).
//
// Conventions (Aeron cnc-file style):
//  - Every segment starts with a header: magic, layout version, sizes. The
//    creator fills everything else first and stores `layout_version` last with
//    a release store; a reader acquires it and refuses a mismatch, naming both
//    versions.
//  - Inside shared memory there are offsets, never pointers.
//  - The daemon never trusts anything a client can write: the client segment's
//    header fields are written by the daemon at creation and the daemon keeps
//    its own private copy of every size and offset; it never reads them back.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "coproc/base/result.h"

namespace coproc::wire {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint32_t kSegmentLayoutVersion = 1;
inline constexpr uint32_t kRegistryLayoutVersion = 2;

inline constexpr uint32_t kSegmentMagic = 0x47535043;   // "CPSG"
inline constexpr uint32_t kRegistryMagic = 0x47525043;  // "CPRG"
inline constexpr uint32_t kHelloMagic = 0x4c485043;     // "CPHL"

inline constexpr std::size_t kPageBytes = 4096;
inline constexpr std::size_t kCacheLineBytes = 64;

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4, "futex words must be 4 bytes");

// Request.id is the client's; the daemon echoes it in the Completion and reads
// one bit of it: a request whose id has this bit set wants its completion to
// signal the client's eventfd (once armed). The client sets it for the
// requests an event loop collects (COPROC_SUBMIT_COLLECT), so completions that
// a blocked thread waits for do not wake the loop.
inline constexpr uint64_t kRequestIdSignalsEventFd = uint64_t{1} << 63;

// ---------------------------------------------------------------------------
// Client segment: one per client, created by the daemon (memfd), mapped
// read-write by the daemon and by that client only.
//   [ SegmentHeader | submission ring | completion ring | arena ]
// ---------------------------------------------------------------------------
struct RingLocation {
  uint64_t offset;      // from the segment start; 64-byte aligned
  uint32_t capacity;    // slots, power of two
  uint32_t slot_bytes;  // bytes per slot
};

struct alignas(kCacheLineBytes) SegmentHeader {
  uint32_t magic;
  std::atomic<uint32_t> layout_version;  // written last (release)
  uint64_t segment_bytes;
  uint32_t client_id;
  uint32_t reserved0;
  RingLocation submission;  // client produces, daemon consumes
  RingLocation completion;  // daemon produces, client consumes
  uint64_t arena_offset;    // page aligned
  uint64_t arena_bytes;

  // The client's wake word for completions: the daemon bumps `seq` after
  // pushing completions when `sleepers` != 0 (ring/wait.h protocol). Both sides
  // may write here; a client that lies about it only delays itself.
  alignas(kCacheLineBytes) std::atomic<uint32_t> completion_seq;
  std::atomic<uint32_t> completion_sleepers;

  // Set to 1 by a client that asked for its eventfd: the daemon then also
  // signals the eventfd after pushing completions whose id carries
  // kRequestIdSignalsEventFd.
  alignas(kCacheLineBytes) std::atomic<uint32_t> eventfd_armed;
};
static_assert(sizeof(SegmentHeader) <= kPageBytes);

// ---------------------------------------------------------------------------
// Registry: one per daemon, memfd, written by the daemon only; clients and
// tools map it read-only (the memfd is sealed against new writable mappings).
//   [ RegistryHeader + DaemonInfo | model table (flatbuffer ModelTable) |
//     ModelStats[models x writers] | ClientStats[client_slots] | DeviceStats[kDeviceCount] ]
// Every offset, count and stride is fixed at creation and published with the
// header; a reader checks each area lies inside the mapping before using it.
//
// The reader's contract (the stats page; docs/operating.md, "The stats page"):
//  - Readers never lock and never write. Every live field is one atomic that
//    the daemon stores whole, so no single value is ever torn.
//  - Counters only grow; a reader sums them (several blocks) and may see two
//    fields from slightly different moments: a rate or a ratio between two
//    readings can be off by the work of that moment, never by a torn value.
//  - A client slot is reused by later clients: its identity (client id, pid,
//    uid, connected-at) and the reset of its counters are written under a
//    per-slot seqlock (ClientStats::seq), so a reader that sees the same even
//    seq before and after its reads has one client's identity and counters.
//    The seqlock uses no fences: the writer stores seq odd, every field with
//    release, then seq even with release; the reader loads seq and every
//    field with acquire, then seq again (stats::read_client).
//  - Fields written once before layout_version is released (names, version,
//    CPU list, the model table) are plain and never change afterwards.
// ---------------------------------------------------------------------------
enum class DaemonState : uint32_t { kStarting = 0, kReady = 1, kDraining = 2, kStopped = 3 };

// Threads that write ModelStats blocks and client/device counters: each
// writer owns its block or its cache line, so counters are bumped with a
// relaxed load and store, not a locked read-modify-write.
inline constexpr uint32_t kStatsWriters = 2;  // 0: the poller, 1: the batch worker

// What the daemon publishes about itself (inside the header page).
struct alignas(kCacheLineBytes) DaemonInfo {
  char version[32];                 // coprocd's version, NUL-terminated
  char cpus[192];                   // the CPUs it may run on, as "0-3,8", NUL-terminated
  char http_address[64];            // the HTTP endpoint's address ("" when off)
  uint64_t start_monotonic_ns;      // CLOCK_MONOTONIC at start: uptime = now - this
  uint32_t cpu_count;
  uint32_t max_clients;             // limits.max_clients
  // Live, written by the control loop (relaxed: standalone gauges).
  std::atomic<uint32_t> http_port;  // bound port once listening; 0 when off
  std::atomic<uint32_t> threads;    // the daemon's threads, every second
  std::atomic<uint64_t> rss_bytes;  // resident memory, every second
  std::atomic<uint64_t> clients_connected;
  std::atomic<uint64_t> clients_total;      // hellos accepted since start
  std::atomic<uint64_t> clients_untracked;  // connected while every client slot was taken
};

struct alignas(kCacheLineBytes) RegistryHeader {
  uint32_t magic;
  std::atomic<uint32_t> layout_version;  // written last (release)
  uint32_t protocol_version;
  int32_t daemon_pid;
  uint64_t epoch;           // unique per daemon start (realtime ns at start)
  uint64_t registry_bytes;
  int32_t numa_node;
  uint32_t reserved0;
  uint64_t model_table_offset;                    // fixed at creation
  std::atomic<uint64_t> model_table_bytes;        // release after the table is written
  std::atomic<uint64_t> model_table_generation;   // bumped on each publish (reload)
  uint64_t stats_offset;                          // ModelStats[stats_count], fixed at creation
  // stats_count = models x kStatsWriters: each model has stats_count / model_count consecutive
  // blocks (one per writing thread: the poller's, then the worker's), in model-table order; a
  // reader sums a model's blocks.
  uint32_t stats_count;
  uint32_t stats_stride;                          // sizeof(ModelStats) of the writer
  uint64_t client_stats_offset;                   // ClientStats[client_slots]
  uint32_t client_slots;
  uint32_t client_stats_stride;
  uint64_t device_stats_offset;                   // DeviceStats[device_count]: cpu, then gpu
  uint32_t device_count;
  uint32_t device_stats_stride;

  alignas(kCacheLineBytes) std::atomic<uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC, daemon timer
  std::atomic<uint32_t> state;                                  // DaemonState

  // The poller's sleep announcement for the doorbell (ring/wait.h): written by
  // the daemon only, so no client can stop the others from waking the poller.
  alignas(kCacheLineBytes) std::atomic<uint32_t> poller_sleepers;

  alignas(kCacheLineBytes) DaemonInfo daemon;
};
static_assert(sizeof(RegistryHeader) <= kPageBytes);

// Histograms are log-linear (HDR style): four buckets per power of two, so a
// bucket is at most a quarter of its lower edge wide and a percentile read
// from it is off by at most 25%, at any scale from nanoseconds to minutes.
// Bucket b holds the integers v with upper(b - 1) < v <= upper(b): inclusive
// upper edges, as Prometheus's `le`. The edges run 1, 2, 3, 4, 5, 6, 7, 8,
// 10, 12, 14, 16, 20, 24, 28, 32, 40, ...; v = 0 falls in bucket 0; the last
// bucket also takes everything above it.
inline constexpr uint32_t kHistogramSubBuckets = 4;
// coproc.fb.Status values: the wire statuses of the status table (coproc/base/status.def).
inline constexpr uint32_t kStatusCount = kErrorCodeCount;
inline constexpr uint32_t kBatchSizeBuckets = 64;   // rows: edges up to 2^17
inline constexpr uint32_t kLatencyBuckets = 160;    // ns: edges up to 2^41 ns (36 min)
inline constexpr uint32_t kPriorityCount = 4;

// Index of the bucket holding v.
inline uint32_t histogram_bucket(uint64_t v, uint32_t buckets) {
  const uint64_t x = v == 0 ? 0 : v - 1;
  uint32_t b;
  if (x < kHistogramSubBuckets) {
    b = static_cast<uint32_t>(x);
  } else {
    const uint32_t e = 63 - static_cast<uint32_t>(__builtin_clzll(x));  // x in [2^e, 2^(e+1))
    b = (e - 1) * kHistogramSubBuckets + static_cast<uint32_t>((x >> (e - 2)) & 3);
  }
  return b < buckets ? b : buckets - 1;
}

// The largest value bucket b holds (its inclusive upper edge).
inline uint64_t histogram_bucket_upper(uint32_t b) {
  const uint32_t next = b + 1;
  if (next < kHistogramSubBuckets) return next;
  const uint32_t e = next / kHistogramSubBuckets + 1;
  const uint64_t sub = next % kHistogramSubBuckets;
  return (kHistogramSubBuckets + sub) << (e - 2);
}

// The smallest value bucket b holds (0 for bucket 0).
inline uint64_t histogram_bucket_lower(uint32_t b) { return b == 0 ? 0 : histogram_bucket_upper(b - 1) + 1; }

// How a model's batches pick a device (the model's `device` key).
enum class DeviceMode : uint64_t { kCpu = 0, kGpu = 1, kAuto = 2 };

// Per-model counters. Each field has one writer at a time: counters in block
// k are written by writer k; queue_depth by whichever thread holds the
// dispatcher's lock; the settings once at start; the rates by the control loop
// (block 0 carries the gauges, settings and rates; a reader takes them from
// block 0 and sums the rest).
// Books that always balance (tested): accepted + rejected_queue_full +
// rejected_invalid == sum(completed) + dropped_client_gone, once idle.
struct alignas(kCacheLineBytes) ModelStats {
  std::atomic<uint64_t> accepted;                        // admitted to the queue or run at once
  std::atomic<uint64_t> completed[kStatusCount];         // Completions sent, by status
  std::atomic<uint64_t> rejected_queue_full;             // answered RESOURCE_EXHAUSTED at admission
  std::atomic<uint64_t> rejected_invalid;                // failed verification or shape checks
  std::atomic<uint64_t> expired;                         // DEADLINE_EXCEEDED without running
  std::atomic<uint64_t> cancelled;                       // CANCELLED without running
  std::atomic<uint64_t> dropped_client_gone;             // queued work of a client that died
  std::atomic<uint64_t> queue_depth[kPriorityCount];     // gauge, by priority
  std::atomic<uint64_t> batches;
  std::atomic<uint64_t> batch_rows;                      // sum: mean batch size = batch_rows / batches
  std::atomic<uint64_t> batch_size_histogram[kBatchSizeBuckets];
  // Per request: receipt by the poller to the start of its batch.
  std::atomic<uint64_t> queue_ns_histogram[kLatencyBuckets];
  // Per batch: the model's run.
  std::atomic<uint64_t> exec_ns_histogram[kLatencyBuckets];
  // Per OK request: receipt by the poller to its Completion pushed (end to end in the daemon).
  std::atomic<uint64_t> e2e_ns_histogram[kLatencyBuckets];
  std::atomic<uint64_t> queue_ns_sum;
  std::atomic<uint64_t> exec_ns_sum;
  std::atomic<uint64_t> e2e_ns_sum;
  std::atomic<uint64_t> padded_elements_wasted;          // length-bucket padding
  std::atomic<uint64_t> padded_elements_total;
  std::atomic<uint64_t> batches_on_gpu;                  // of `batches`, run on the OpenCL device
  // Settings, block 0, set once at start. Batches of at least gpu_from_batch rows run on the
  // OpenCL device, smaller ones on the CPU; 0: all on the CPU. device "gpu": 1; "auto": the
  // crossover measured at load.
  std::atomic<uint64_t> gpu_from_batch;
  std::atomic<uint64_t> device_mode;                     // DeviceMode as configured
  // Rates, block 0, by the control loop each second: OK completions and batched rows per
  // second over the last interval, times 1000.
  std::atomic<uint64_t> requests_per_s_milli;
  std::atomic<uint64_t> rows_per_s_milli;
};
// A new wire status grows `completed`, which moves every field after it: readers of the
// registry layout version 2 know 11 statuses. Bump kRegistryLayoutVersion, then this number.
static_assert(kStatusCount == 11, "the stats page's layout changed: bump kRegistryLayoutVersion");

// One connected client. Slots are reused: see the seqlock contract above.
struct alignas(kCacheLineBytes) ClientStats {
  // Written by the control loop only, under the seqlock: odd while it rewrites the identity and
  // resets the counters.
  std::atomic<uint32_t> seq;
  std::atomic<uint32_t> client_id;              // 0: the slot is empty
  std::atomic<int32_t> pid;
  std::atomic<uint32_t> uid;
  std::atomic<uint64_t> connected_realtime_ns;  // CLOCK_REALTIME at the hello
  // Requests read off the client's submission ring (not cancels): the poller.
  alignas(kCacheLineBytes) std::atomic<uint64_t> requests;
  // Completions pushed onto its ring (not those dropped on overflow), written under the
  // client's completion lock (one producer at a time).
  alignas(kCacheLineBytes) std::atomic<uint64_t> completed_ok;
  std::atomic<uint64_t> completed_error;
};

inline constexpr uint32_t kDeviceCount = 2;  // 0: cpu, 1: gpu (the OpenCL device)

struct alignas(kCacheLineBytes) DeviceStats {
  char name[120];             // written at start; "" for a device the daemon does not use
  uint32_t present;           // 1 when models can run here
  uint32_t reserved0;
  // Run time and batches, by writer (its own cache line each).
  struct alignas(kCacheLineBytes) Busy {
    std::atomic<uint64_t> busy_ns;
    std::atomic<uint64_t> batches;
  } by_writer[kStatsWriters];
  // Control loop: the share of the last interval the device was busy, in parts per million, and
  // the memory it holds for the models: cpu, the weights in host memory; gpu, the OpenCL buffers
  // allocated (weights, activations, staging).
  alignas(kCacheLineBytes) std::atomic<uint64_t> busy_ppm;
  std::atomic<uint64_t> memory_bytes;
};

// ---------------------------------------------------------------------------
// Doorbell: one page shared read-write by the daemon and every client. A
// client bumps `seq` and futex-wakes it after publishing a request when the
// registry's poller_sleepers says the poller sleeps. A hostile client can only
// cause spurious wake-ups here (the poller re-checks the rings), which is no
// more than it could do by submitting requests.
// ---------------------------------------------------------------------------
struct alignas(kCacheLineBytes) Doorbell {
  std::atomic<uint32_t> seq;
};

// ---------------------------------------------------------------------------
// Hello on the control socket (unix stream socket). The client sends a
// HelloRequest; the daemon answers a HelloReply, with SCM_RIGHTS carrying
// [segment memfd, registry memfd, doorbell memfd, eventfd] when status == 0.
// An observer (HelloKind::kObserver: coproc-stat) gets [registry memfd] alone,
// no client session, and the daemon hangs up after the reply.
// ---------------------------------------------------------------------------
enum class HelloKind : uint32_t { kClient = 0, kObserver = 1 };

struct HelloRequest {
  uint32_t magic;
  uint32_t protocol_version;
  HelloKind kind;
  uint32_t reserved0;
};

inline constexpr std::size_t kHelloMessageBytes = 240;
inline constexpr int kHelloFdCount = 4;

struct HelloReply {
  uint32_t magic;
  uint32_t protocol_version;
  int32_t status;  // coproc::ErrorCode / coproc_status
  uint32_t client_id;
  uint64_t segment_bytes;
  uint64_t registry_bytes;
  char message[kHelloMessageBytes];  // NUL-terminated when status != 0
};

}  // namespace coproc::wire
