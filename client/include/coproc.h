/*
 * coproc.h: the C client API of coproc, a local inference coprocessor.
 *
 * A process links libcoproc, connects to the coprocd daemon on the same host,
 * puts input tensors into its arena (shared memory it shares with the daemon
 * only), submits requests, and reads results in place from the same arena.
 *
 * Contract
 * --------
 * Handles. coproc_client (one connection), coproc_model (a model served by
 *   the daemon; owned by its client, valid until coproc_disconnect) and
 *   coproc_request (one submitted request; owned by the caller from
 *   coproc_submit until coproc_release) are opaque.
 * Memory. Tensor data lives in the client's arena: coproc_alloc returns arena
 *   memory, and every coproc_tensor.data passed to coproc_submit/coproc_infer
 *   must lie inside it. Input buffers must stay unchanged and all buffers
 *   allocated until the request completes. Outputs are written by the daemon
 *   straight into the output buffers; read them in place, no copy.
 * Errors. Every call that can fail returns a coproc_status (COPROC_OK is 0).
 *   coproc_strerror() names a status; coproc_last_error() returns a message
 *   with context for the last failing call on the calling thread, valid until
 *   that thread's next call into the library. A request's own outcome (e.g.
 *   COPROC_ERR_DEADLINE_EXCEEDED) is returned by coproc_wait and
 *   coproc_request_status, with the daemon's message in coproc_last_error().
 * NULL. A NULL handle or required pointer gives COPROC_ERR_INVALID_ARGUMENT;
 *   a NULL options pointer means defaults; out-parameters documented as
 *   optional may be NULL.
 * Threads. All calls on one coproc_client may be made from many threads at
 *   once, except coproc_disconnect, which must be the last call on it after
 *   every other thread stopped using it. A coproc_request may be waited on by
 *   one thread at a time; coproc_request_* readers may run concurrently.
 * Daemon death. If the daemon exits or crashes, every waiting call returns
 *   COPROC_ERR_DAEMON_GONE within 100 ms, and later calls return it at once.
 *   Nothing hangs. Disconnect and connect again once a new daemon runs.
 * Options structs. Fill them with their _init() call first, then change
 *   fields: they carry their size (struct_size) so the library can grow them
 *   without breaking callers compiled against an older header.
 * Time. All times are nanoseconds; deadlines are CLOCK_MONOTONIC (see
 *   coproc_now_ns). A negative timeout waits forever; 0 only checks.
 * Dtypes. The daemon serves models whose inputs and outputs are FLOAT32,
 *   INT64, INT32 or BOOL (one byte, 0 or 1); it refuses to load others. The
 *   other coproc_dtype values exist on the wire only.
 * Outcomes are sticky. Once a request has completed, coproc_wait,
 *   coproc_poll and coproc_request_status return its outcome again as often
 *   as they are called, until coproc_release; coproc_cancel on it is a no-op
 *   that returns COPROC_OK.
 * Event loops. A client that lives in epoll, poll or libuv submits with
 *   COPROC_SUBMIT_COLLECT (and, if it likes, a user_data pointer, as libuv's
 *   req->data), watches coproc_event_fd() for readability and, when it fires,
 *   calls coproc_collect(), which hands out each such request exactly once.
 *   The fd is readable exactly while at least one of them has completed and
 *   not been collected, whenever the fd was first asked for and whichever
 *   thread of the process read the completion ring (a thread blocked in
 *   coproc_wait on its own requests takes nothing from the loop).
 */
#ifndef COPROC_H_
#define COPROC_H_

#include <stddef.h>
#include <stdint.h>

#if defined(COPROC_BUILDING_LIBRARY)
#define COPROC_EXPORT __attribute__((visibility("default")))
#else
#define COPROC_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum coproc_status {
  COPROC_OK = 0,
  /* Request outcomes reported by the daemon (same values as on the wire). */
  COPROC_ERR_INVALID_ARGUMENT = 1,
  COPROC_ERR_NOT_FOUND = 2,
  COPROC_ERR_DEADLINE_EXCEEDED = 3,
  COPROC_ERR_RESOURCE_EXHAUSTED = 4,
  COPROC_ERR_CANCELLED = 5,
  COPROC_ERR_INTERNAL = 6,
  COPROC_ERR_UNAVAILABLE = 7,
  COPROC_ERR_PERMISSION_DENIED = 8,
  COPROC_ERR_UNSUPPORTED = 9,
  COPROC_ERR_BAD_MODEL = 10,
  /* Outcomes of the client library itself. */
  COPROC_ERR_DAEMON_GONE = 64,      /* the daemon exited or crashed */
  COPROC_ERR_TIMEOUT = 65,          /* the wait ran out; the request is still in flight */
  COPROC_ERR_WOULD_BLOCK = 66,      /* the submission ring or the in-flight window is full */
  COPROC_ERR_VERSION_MISMATCH = 67, /* library and daemon speak different protocol versions */
  COPROC_ERR_CONNECT = 68,          /* no daemon at the socket, or the hello failed */
  COPROC_ERR_NO_MEMORY = 69,        /* the arena (or process memory) is exhausted */
  COPROC_ERR_IN_FLIGHT = 70         /* the request has not completed yet */
} coproc_status;

typedef enum coproc_dtype {
  COPROC_DTYPE_INVALID = 0,
  COPROC_DTYPE_FLOAT32 = 1,
  COPROC_DTYPE_FLOAT16 = 2,
  COPROC_DTYPE_INT64 = 3,
  COPROC_DTYPE_INT32 = 4,
  COPROC_DTYPE_INT8 = 5,
  COPROC_DTYPE_UINT8 = 6,
  COPROC_DTYPE_BOOL = 7
} coproc_dtype;

typedef enum coproc_priority {
  COPROC_PRIORITY_CRITICAL = 0,
  COPROC_PRIORITY_HIGH = 1,
  COPROC_PRIORITY_NORMAL = 2,
  COPROC_PRIORITY_LOW = 3
} coproc_priority;

typedef enum coproc_device { COPROC_DEVICE_CPU = 0, COPROC_DEVICE_GPU = 1 } coproc_device;

#define COPROC_MAX_RANK 8

typedef struct coproc_client coproc_client;
typedef struct coproc_model coproc_model;
typedef struct coproc_request coproc_request;

/* A tensor in the arena. For inputs, bytes is the data size; for outputs, it
 * is the capacity reserved, and rank/shape are filled in on completion by
 * coproc_infer (or read with coproc_request_output_shape). */
typedef struct coproc_tensor {
  void* data;
  uint64_t bytes;
  coproc_dtype dtype;
  int32_t rank;
  int64_t shape[COPROC_MAX_RANK];
} coproc_tensor;

/* A model's input or output as the daemon declares it; -1 marks a dynamic
 * dimension (typically the batch). name points into the client's copy of the
 * model table and lives as long as the client. */
typedef struct coproc_tensor_info {
  const char* name;
  coproc_dtype dtype;
  int32_t rank;
  int64_t shape[COPROC_MAX_RANK];
} coproc_tensor_info;

typedef struct coproc_timing {
  uint64_t queue_ns; /* from the daemon reading the request to execution start */
  uint64_t exec_ns;  /* model execution */
  uint32_t batch_size;
  coproc_device device;
} coproc_timing;

/* ---- connection -------------------------------------------------------- */

typedef struct coproc_connect_options {
  size_t struct_size;      /* set by _init */
  const char* socket_path; /* NULL: $COPROC_SOCKET, else the daemon's default path */
  int64_t spin_ns;         /* waits spin this long before sleeping; default 200000,
                            * enough to cover a request the daemon runs inline
                            * (executor.inline_max_us), so a synchronous caller
                            * does not pay a futex wake-up (tens of us on a VM).
                            * Lower it to trade latency for CPU. */
  int64_t daemon_uid;      /* the uid coprocd may run as besides root and this
                            * process's own; -1 (default): $COPROC_DAEMON_UID,
                            * else none. Before sending anything the client
                            * checks who listens at the socket (SO_PEERCRED)
                            * and refuses, with COPROC_ERR_PERMISSION_DENIED,
                            * a daemon whose uid is not root, its own, this
                            * one, or the owner of a socket directory that
                            * only root may replace (its parent is root's and
                            * writable by no one else, as /run). */
} coproc_connect_options;

COPROC_EXPORT void coproc_connect_options_init(coproc_connect_options* options);
/* Connects to the daemon. Why it fails:
 *   COPROC_ERR_CONNECT            nothing listens at the socket, or the hello
 *                                 could not be exchanged (the message says which)
 *   COPROC_ERR_PERMISSION_DENIED  the daemon does not admit this uid/gid, or the
 *                                 process listening is not one this client trusts
 *                                 (see daemon_uid above); nothing was sent to it
 *   COPROC_ERR_RESOURCE_EXHAUSTED the daemon is full: limits.max_clients clients
 *                                 are connected, too many connections wait for
 *                                 their hello (limits.max_pending_hellos, or
 *                                 _per_uid), or no segment could be made; the
 *                                 message names the limit. Try again later.
 *   COPROC_ERR_UNAVAILABLE        the daemon is shutting down
 *   COPROC_ERR_VERSION_MISMATCH   the daemon speaks another protocol version
 *   COPROC_ERR_INVALID_ARGUMENT   a bad option (path too long, bad daemon_uid)
 *   COPROC_ERR_NO_MEMORY          this process is out of memory
 * The daemon's reason is in coproc_last_error(). */
COPROC_EXPORT coproc_status coproc_connect(const coproc_connect_options* options,
                                           coproc_client** out_client);
/* Releases everything of the client. Requests still in flight are abandoned:
 * the daemon drops their results. NULL is a no-op. */
COPROC_EXPORT void coproc_disconnect(coproc_client* client);

/* The arena's size in bytes (limits.arena_bytes): what coproc_alloc can hand
 * out in all, less the allocator's bookkeeping. 0 for NULL. */
COPROC_EXPORT size_t coproc_arena_size(const coproc_client* client);
/* How many requests this client may have in flight at once (the completion
 * ring's slots, limits.ring_slots); a submit beyond it returns
 * COPROC_ERR_WOULD_BLOCK. 0 for NULL. */
COPROC_EXPORT size_t coproc_max_in_flight(const coproc_client* client);

/* A file descriptor for epoll/poll/libuv that is readable exactly while at
 * least one request submitted with COPROC_SUBMIT_COLLECT has completed and has
 * not been collected with coproc_collect(). Completions that arrived before
 * the first call count too. Level-triggered: it stays readable until
 * coproc_collect() has taken them all. Completions of requests submitted
 * without the flag (a thread blocked in coproc_wait) never make it readable.
 * Rarely it wakes a loop with nothing to collect (a completion's signal
 * landing just after a coproc_collect took it, or a collectable request
 * released before it was collected); coproc_collect() then returns 0 and
 * clears it. The library owns
 * the fd: never read, write or close it. The same fd every call. */
COPROC_EXPORT coproc_status coproc_event_fd(coproc_client* client, int* out_fd);

/* ---- models ------------------------------------------------------------- */

COPROC_EXPORT size_t coproc_model_count(const coproc_client* client);
COPROC_EXPORT coproc_status coproc_model_at(coproc_client* client, size_t index,
                                            coproc_model** out_model);
COPROC_EXPORT coproc_status coproc_model_find(coproc_client* client, const char* name,
                                              coproc_model** out_model);
COPROC_EXPORT const char* coproc_model_name(const coproc_model* model);
COPROC_EXPORT size_t coproc_model_input_count(const coproc_model* model);
COPROC_EXPORT size_t coproc_model_output_count(const coproc_model* model);
COPROC_EXPORT coproc_status coproc_model_input(const coproc_model* model, size_t index,
                                               coproc_tensor_info* out_info);
COPROC_EXPORT coproc_status coproc_model_output(const coproc_model* model, size_t index,
                                                coproc_tensor_info* out_info);
/* The model's max_batch as the daemon was configured when this client
 * connected: the most rows (dim 0) it runs together. A request with more rows
 * runs in chunks of at most this many rows, other work in between. 0 for NULL. */
COPROC_EXPORT uint32_t coproc_model_max_batch(const coproc_model* model);

/* ---- arena -------------------------------------------------------------- */

/* 64-byte aligned arena memory; COPROC_ERR_NO_MEMORY when the arena is full. */
COPROC_EXPORT coproc_status coproc_alloc(coproc_client* client, size_t bytes, void** out_ptr);
/* NULL is a no-op; memory not from coproc_alloc is refused. */
COPROC_EXPORT coproc_status coproc_free(coproc_client* client, void* ptr);

/* ---- requests ----------------------------------------------------------- */

/* coproc_submit_options.flags */
#define COPROC_SUBMIT_COLLECT 0x1u /* report the completion through coproc_collect()
                                    * and the event fd */

typedef struct coproc_submit_options {
  size_t struct_size;       /* set by _init */
  coproc_priority priority; /* default NORMAL */
  uint64_t deadline_ns;     /* absolute CLOCK_MONOTONIC; 0 = none */
  uint32_t flags;           /* COPROC_SUBMIT_*; default 0 */
  void* user_data;          /* the caller's, returned by coproc_request_user_data;
                             * default NULL */
} coproc_submit_options;

COPROC_EXPORT void coproc_submit_options_init(coproc_submit_options* options);

/* Submits asynchronously. inputs/outputs follow the model's declared order.
 * Returns COPROC_ERR_WOULD_BLOCK when the ring or the in-flight window is full
 * (nothing was sent; try again after completing some requests), and
 * COPROC_ERR_DAEMON_GONE once the daemon is known to be gone (checked when the
 * window or ring is full, so a dead daemon never reads as WOULD_BLOCK forever). */
COPROC_EXPORT coproc_status coproc_submit(coproc_client* client, const coproc_model* model,
                                          const coproc_tensor* inputs, size_t n_inputs,
                                          const coproc_tensor* outputs, size_t n_outputs,
                                          const coproc_submit_options* options,
                                          coproc_request** out_request);

/* Waits until the request completes and returns its outcome (COPROC_OK or the
 * daemon's error), or COPROC_ERR_TIMEOUT / COPROC_ERR_DAEMON_GONE. */
COPROC_EXPORT coproc_status coproc_wait(coproc_request* request, int64_t timeout_ns);

/* Waits until at least one of the n requests has completed, or the timeout.
 * *out_done (optional) receives how many of them have completed. Returns
 * COPROC_OK, COPROC_ERR_TIMEOUT or COPROC_ERR_DAEMON_GONE. */
COPROC_EXPORT coproc_status coproc_poll(coproc_client* client, coproc_request* const* requests,
                                        size_t n, int64_t timeout_ns, size_t* out_done);

/* The outcome if completed, else COPROC_ERR_IN_FLIGHT. Does not wait, but
 * reads the completion ring first (unless another thread is reading it), so a
 * loop that checks only this sees its requests complete. It does not collect:
 * an event-fd loop calls coproc_collect(). */
COPROC_EXPORT coproc_status coproc_request_status(const coproc_request* request);

/* Collects completed requests that were submitted with COPROC_SUBMIT_COLLECT,
 * oldest first: writes up to `capacity` of them to out[] and their number to
 * *out_count, and never waits. Each such request is handed out exactly once;
 * its outcome, outputs and user_data are then read as usual, and the caller
 * releases it. When *out_count < capacity every completed one was taken and
 * the event fd is quiet until the next completes; when it equals capacity,
 * call again. Waiting on a COPROC_SUBMIT_COLLECT request with coproc_wait or
 * coproc_poll works but does not collect it; releasing it before it was
 * collected means it is never handed out. Thread-safe. */
COPROC_EXPORT coproc_status coproc_collect(coproc_client* client, coproc_request** out,
                                           size_t capacity, size_t* out_count);

/* coproc_submit_options.user_data of the request; NULL for NULL. */
COPROC_EXPORT void* coproc_request_user_data(const coproc_request* request);

/* Asks the daemon to cancel. The request still completes exactly once: with
 * COPROC_ERR_CANCELLED if it had not started; if it is running, it stops
 * between two chunks (a request of more than max_batch rows) with
 * COPROC_ERR_CANCELLED, else it finishes with its normal result. On a request
 * that already completed it does nothing and returns COPROC_OK.
 * COPROC_ERR_DAEMON_GONE once the daemon is known to be gone. */
COPROC_EXPORT coproc_status coproc_cancel(coproc_request* request);

/* Frees a completed request. COPROC_ERR_IN_FLIGHT if it has not completed
 * (cancel and wait first): its buffers may still be written. Once released,
 * the handle must not be used again. */
COPROC_EXPORT coproc_status coproc_release(coproc_request* request);

COPROC_EXPORT coproc_status coproc_request_output_shape(const coproc_request* request,
                                                        size_t index, int32_t* out_rank,
                                                        int64_t out_shape[COPROC_MAX_RANK]);
COPROC_EXPORT coproc_status coproc_request_timing(const coproc_request* request,
                                                  coproc_timing* out_timing);

/* Submit, wait and release in one call; fills outputs[i].rank and shape.
 * When it returns anything but COPROC_ERR_IN_FLIGHT, the daemon is done with
 * the buffers: they may be reused or freed at once. On a timeout the request
 * is cancelled and given 100 ms more to complete:
 *   COPROC_ERR_TIMEOUT    it completed (cancelled, or finished after all) in
 *                         that time; don't use the outputs.
 *   COPROC_ERR_IN_FLIGHT  it had still not completed (a stopped or overloaded
 *                         daemon). The library frees it when its completion
 *                         arrives; until then the daemon may still write its
 *                         outputs once, so keep the output buffers allocated
 *                         and unused until coproc_disconnect.
 * COPROC_ERR_DAEMON_GONE: the daemon died; its outputs are never written. */
COPROC_EXPORT coproc_status coproc_infer(coproc_client* client, const coproc_model* model,
                                         const coproc_tensor* inputs, size_t n_inputs,
                                         coproc_tensor* outputs, size_t n_outputs,
                                         int64_t timeout_ns);

/* ---- errors and misc ---------------------------------------------------- */

COPROC_EXPORT const char* coproc_strerror(coproc_status status);
COPROC_EXPORT const char* coproc_last_error(void);
COPROC_EXPORT uint64_t coproc_now_ns(void);
COPROC_EXPORT uint32_t coproc_protocol_version(void);
COPROC_EXPORT size_t coproc_dtype_bytes(coproc_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* COPROC_H_ */
