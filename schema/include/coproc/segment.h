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

namespace coproc::wire {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint32_t kSegmentLayoutVersion = 1;
inline constexpr uint32_t kRegistryLayoutVersion = 1;

inline constexpr uint32_t kSegmentMagic = 0x47535043;   // "CPSG"
inline constexpr uint32_t kRegistryMagic = 0x47525043;  // "CPRG"
inline constexpr uint32_t kHelloMagic = 0x4c485043;     // "CPHL"

inline constexpr std::size_t kPageBytes = 4096;
inline constexpr std::size_t kCacheLineBytes = 64;

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4, "futex words must be 4 bytes");

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
  // signals the eventfd after pushing completions.
  alignas(kCacheLineBytes) std::atomic<uint32_t> eventfd_armed;
};
static_assert(sizeof(SegmentHeader) <= kPageBytes);

// ---------------------------------------------------------------------------
// Registry: one per daemon, memfd, written by the daemon only; clients and
// tools map it read-only (the memfd is sealed against new writable mappings).
//   [ RegistryHeader | model table (flatbuffer ModelTable) ]
// ---------------------------------------------------------------------------
enum class DaemonState : uint32_t { kStarting = 0, kReady = 1, kDraining = 2, kStopped = 3 };

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
  // stats_count = models x writers: each model has stats_count / model_count consecutive blocks
  // (one per writing thread: the poller's, then the worker's), in model-table order; a reader
  // sums a model's blocks.
  uint32_t stats_count;
  uint32_t stats_stride;                          // sizeof(ModelStats) of the writer

  alignas(kCacheLineBytes) std::atomic<uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC, daemon timer
  std::atomic<uint32_t> state;                                  // DaemonState

  // The poller's sleep announcement for the doorbell (ring/wait.h): written by
  // the daemon only, so no client can stop the others from waking the poller.
  alignas(kCacheLineBytes) std::atomic<uint32_t> poller_sleepers;
};
static_assert(sizeof(RegistryHeader) <= kPageBytes);

// Per-model counters in the registry, written by the daemon with relaxed
// atomics (each field is one atomic: a reader never sees a torn value, but
// two fields read one after the other may be from slightly different
// moments; that is the contract, documented for tools). Histograms are log2:
// bucket b counts values v with floor(log2(v)) == b (v = 0 in bucket 0).
inline constexpr uint32_t kStatusCount = 11;        // coproc.fb.Status values
inline constexpr uint32_t kBatchSizeBuckets = 16;   // rows: 1, 2-3, 4-7, ... >= 2^15
inline constexpr uint32_t kLatencyBuckets = 40;     // ns: up to 2^40 ns (18 min)
inline constexpr uint32_t kPriorityCount = 4;

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
  std::atomic<uint64_t> queue_ns_histogram[kLatencyBuckets];
  std::atomic<uint64_t> exec_ns_histogram[kLatencyBuckets];
  std::atomic<uint64_t> queue_ns_sum;
  std::atomic<uint64_t> exec_ns_sum;
  std::atomic<uint64_t> padded_elements_wasted;          // length-bucket padding
  std::atomic<uint64_t> padded_elements_total;
  std::atomic<uint64_t> batches_on_gpu;                  // of `batches`, run on the OpenCL device
  // Where batches run, set once at start (writer block 0 only): batches of at least this many
  // rows run on the OpenCL device, smaller ones on the CPU; 0: all on the CPU. device "gpu": 1;
  // "auto": the crossover measured at load.
  std::atomic<uint64_t> gpu_from_batch;
};

inline uint32_t log2_bucket(uint64_t v, uint32_t buckets) {
  uint32_t b = v == 0 ? 0 : 63 - static_cast<uint32_t>(__builtin_clzll(v));
  return b < buckets ? b : buckets - 1;
}

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
