// The C ABI bridge: argument checks, the thread-local error message, and no
// exception ever crossing into C (every entry point is noexcept and catches).
// Each entry point checks what only the ABI can get wrong (NULLs, struct
// sizes, handles of another client) and forwards; the work, coproc_infer's
// cancel-and-grace included, is coproc_client's (client.cc).
#include <time.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "client_impl.h"

// coproc.h writes coproc_status out, so that the header stays self-contained for its users; here
// every enumerator is checked against the status table (coproc/base/status.def), which names the
// success status COPROC_ERR_OK as it names every other one.
#define COPROC_ERR_OK COPROC_OK
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) \
  static_assert(COPROC_ERR_##UPPER_NAME == (value),        \
                "coproc.h: COPROC_ERR_" #UPPER_NAME " differs from status.def");
#define COPROC_CLIENT_STATUS(value, UPPER_NAME)     \
  static_assert(COPROC_ERR_##UPPER_NAME == (value), \
                "coproc.h: COPROC_ERR_" #UPPER_NAME " differs from status.def");
#include "coproc/base/status.def"

namespace {

thread_local std::string t_last_error;

// The one error helper: a failing status records its message for
// coproc_last_error(); success leaves the last message alone. Passes the
// status through. The message is taken by reference, and read only here, so
// that report(client->call(&message), message) sees what the call wrote
// (argument evaluation order is unspecified).
coproc_status report(coproc_status status, const std::string& message) {
  if (status != COPROC_OK) t_last_error = message;
  return status;
}

template <class F>
coproc_status guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return report(COPROC_ERR_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return report(COPROC_ERR_INTERNAL, std::string("internal error: ") + e.what());
  }
}

// The handles and arrays of coproc_submit and coproc_infer (out_request aside); the messages are
// coproc_submit's, which coproc_infer answered with when it called it.
coproc_status check_request(const coproc_client* client, const coproc_model* model,
                            const coproc_tensor* inputs, size_t n_inputs,
                            const coproc_tensor* outputs, size_t n_outputs) {
  if (!client || !model) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "client, model or out_request is NULL");
  }
  if ((n_inputs && !inputs) || (n_outputs && !outputs)) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "inputs or outputs is NULL");
  }
  if (model->client != client) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "model belongs to another client");
  }
  return COPROC_OK;
}

}  // namespace

extern "C" {

void coproc_connect_options_init(coproc_connect_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
  options->spin_ns = 200'000;
  options->daemon_uid = -1;
}

coproc_status coproc_connect(const coproc_connect_options* options, coproc_client** out_client) {
  if (!out_client) return report(COPROC_ERR_INVALID_ARGUMENT, "out_client is NULL");
  *out_client = nullptr;
  coproc_connect_options effective;
  coproc_connect_options_init(&effective);
  if (options) {
    if (options->struct_size < offsetof(coproc_connect_options, spin_ns) + sizeof(int64_t) ||
        options->struct_size > sizeof(coproc_connect_options)) {
      return report(
          COPROC_ERR_INVALID_ARGUMENT,
          "coproc_connect_options.struct_size is not set: call coproc_connect_options_init");
    }
    std::memcpy(&effective, options, options->struct_size);
  }
  if (effective.spin_ns < 0) return report(COPROC_ERR_INVALID_ARGUMENT, "spin_ns is negative");
  if (effective.daemon_uid < -1 || effective.daemon_uid >= int64_t{UINT32_MAX}) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "daemon_uid is neither -1 nor a uid");
  }
  return guarded([&] {
    std::string message;
    return report(coproc_client::connect(effective, out_client, &message), message);
  });
}

void coproc_disconnect(coproc_client* client) { delete client; }

coproc_status coproc_event_fd(coproc_client* client, int* out_fd) {
  if (!client || !out_fd) return report(COPROC_ERR_INVALID_ARGUMENT, "client or out_fd is NULL");
  std::string message;
  return report(client->event_fd(out_fd, &message), message);
}

size_t coproc_arena_size(const coproc_client* client) {
  return client ? static_cast<size_t>(client->arena_bytes()) : 0;
}

size_t coproc_max_in_flight(const coproc_client* client) {
  return client ? client->max_in_flight() : 0;
}

size_t coproc_model_count(const coproc_client* client) {
  return client ? const_cast<coproc_client*>(client)->models().size() : 0;
}

coproc_status coproc_model_at(coproc_client* client, size_t index, coproc_model** out_model) {
  if (!client || !out_model)
    return report(COPROC_ERR_INVALID_ARGUMENT, "client or out_model is NULL");
  if (index >= client->models().size()) {
    return report(COPROC_ERR_NOT_FOUND, "model index " + std::to_string(index) + " >= " +
                                            std::to_string(client->models().size()) + " models");
  }
  *out_model = client->models()[index].get();
  return COPROC_OK;
}

coproc_status coproc_model_find(coproc_client* client, const char* name, coproc_model** out_model) {
  if (!client || !name || !out_model) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "client, name or out_model is NULL");
  }
  coproc_model* found = client->find_model(name);
  if (!found) return report(COPROC_ERR_NOT_FOUND, std::string("no model named '") + name + "'");
  *out_model = found;
  return COPROC_OK;
}

const char* coproc_model_name(const coproc_model* model) {
  return model ? model->name.c_str() : "";
}
uint32_t coproc_model_max_batch(const coproc_model* model) { return model ? model->max_batch : 0; }
size_t coproc_model_input_count(const coproc_model* model) {
  return model ? model->inputs.size() : 0;
}
size_t coproc_model_output_count(const coproc_model* model) {
  return model ? model->outputs.size() : 0;
}

static coproc_status tensor_info_at(const coproc_model* model, bool input, size_t index,
                                    coproc_tensor_info* out_info) {
  if (!model || !out_info) return report(COPROC_ERR_INVALID_ARGUMENT, "model or out_info is NULL");
  const auto& infos = input ? model->inputs : model->outputs;
  if (index >= infos.size()) {
    return report(COPROC_ERR_NOT_FOUND, std::string(input ? "input" : "output") + " index " +
                                            std::to_string(index) + " out of range");
  }
  *out_info = infos[index];
  return COPROC_OK;
}

coproc_status coproc_model_input(const coproc_model* model, size_t index, coproc_tensor_info* out) {
  return tensor_info_at(model, true, index, out);
}

coproc_status coproc_model_output(const coproc_model* model, size_t index,
                                  coproc_tensor_info* out) {
  return tensor_info_at(model, false, index, out);
}

coproc_status coproc_alloc(coproc_client* client, size_t bytes, void** out_ptr) {
  if (!client || !out_ptr) return report(COPROC_ERR_INVALID_ARGUMENT, "client or out_ptr is NULL");
  return guarded([&] {
    std::string message;
    return report(client->alloc(bytes, out_ptr, &message), message);
  });
}

coproc_status coproc_free(coproc_client* client, void* ptr) {
  if (!client) return report(COPROC_ERR_INVALID_ARGUMENT, "client is NULL");
  if (!ptr) return COPROC_OK;
  std::string message;
  return report(client->free(ptr, &message), message);
}

void coproc_submit_options_init(coproc_submit_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
  options->priority = COPROC_PRIORITY_NORMAL;
}

coproc_status coproc_submit(coproc_client* client, const coproc_model* model,
                            const coproc_tensor* inputs, size_t n_inputs,
                            const coproc_tensor* outputs, size_t n_outputs,
                            const coproc_submit_options* options, coproc_request** out_request) {
  if (!out_request)
    return report(COPROC_ERR_INVALID_ARGUMENT, "client, model or out_request is NULL");
  if (coproc_status s = check_request(client, model, inputs, n_inputs, outputs, n_outputs);
      s != COPROC_OK) {
    return s;
  }
  coproc_submit_options effective;
  coproc_submit_options_init(&effective);
  if (options) {
    if (options->struct_size < offsetof(coproc_submit_options, deadline_ns) + sizeof(uint64_t) ||
        options->struct_size > sizeof(coproc_submit_options)) {
      return report(
          COPROC_ERR_INVALID_ARGUMENT,
          "coproc_submit_options.struct_size is not set: call coproc_submit_options_init");
    }
    std::memcpy(&effective, options, options->struct_size);
  }
  *out_request = nullptr;
  return guarded([&] {
    std::string message;
    return report(client->submit(*model, inputs, n_inputs, outputs, n_outputs, effective,
                                 out_request, &message),
                  message);
  });
}

coproc_status coproc_wait(coproc_request* request, int64_t timeout_ns) {
  if (!request) return report(COPROC_ERR_INVALID_ARGUMENT, "request is NULL");
  return guarded([&] {
    std::string message;
    return report(request->client->wait(*request, timeout_ns, &message), message);
  });
}

coproc_status coproc_poll(coproc_client* client, coproc_request* const* requests, size_t n,
                          int64_t timeout_ns, size_t* out_done) {
  if (!client || (n && !requests))
    return report(COPROC_ERR_INVALID_ARGUMENT, "client or requests is NULL");
  for (size_t i = 0; i < n; ++i) {
    if (!requests[i] || requests[i]->client != client) {
      return report(COPROC_ERR_INVALID_ARGUMENT,
                    "requests[" + std::to_string(i) + "] is NULL or belongs to another client");
    }
  }
  return guarded([&] {
    std::string message;
    return report(client->poll(requests, n, timeout_ns, out_done, &message), message);
  });
}

coproc_status coproc_request_status(const coproc_request* request) {
  if (!request) return report(COPROC_ERR_INVALID_ARGUMENT, "request is NULL");
  if (!request->client->completed(*request))
    return COPROC_ERR_IN_FLIGHT;  // no message: not a failure
  return report(request->status, request->message);
}

coproc_status coproc_collect(coproc_client* client, coproc_request** out, size_t capacity,
                             size_t* out_count) {
  if (!client || !out_count || (capacity && !out)) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "client, out or out_count is NULL");
  }
  *out_count = client->collect(out, capacity);
  return COPROC_OK;
}

void* coproc_request_user_data(const coproc_request* request) {
  return request ? request->user_data : nullptr;
}

coproc_status coproc_cancel(coproc_request* request) {
  if (!request) return report(COPROC_ERR_INVALID_ARGUMENT, "request is NULL");
  return guarded([&] {
    std::string message;
    return report(request->client->cancel(*request, &message), message);
  });
}

coproc_status coproc_release(coproc_request* request) {
  if (!request) return report(COPROC_ERR_INVALID_ARGUMENT, "request is NULL");
  std::string message;
  return report(request->client->release(*request, &message), message);
}

coproc_status coproc_request_output_shape(const coproc_request* request, size_t index,
                                          int32_t* out_rank, int64_t out_shape[COPROC_MAX_RANK]) {
  if (!request || !out_rank || !out_shape) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "request, out_rank or out_shape is NULL");
  }
  std::string message;
  return report(request->client->output_shape(*request, index, out_rank, out_shape, &message),
                message);
}

coproc_status coproc_request_timing(const coproc_request* request, coproc_timing* out_timing) {
  if (!request || !out_timing) {
    return report(COPROC_ERR_INVALID_ARGUMENT, "request or out_timing is NULL");
  }
  std::string message;
  return report(request->client->timing(*request, out_timing, &message), message);
}

coproc_status coproc_infer(coproc_client* client, const coproc_model* model,
                           const coproc_tensor* inputs, size_t n_inputs, coproc_tensor* outputs,
                           size_t n_outputs, int64_t timeout_ns) {
  if (coproc_status s = check_request(client, model, inputs, n_inputs, outputs, n_outputs);
      s != COPROC_OK) {
    return s;
  }
  return guarded([&] {
    std::string message;
    return report(client->infer(*model, inputs, n_inputs, outputs, n_outputs, timeout_ns, &message),
                  message);
  });
}

const char* coproc_strerror(coproc_status status) {
  switch (status) {
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) \
  case COPROC_ERR_##UPPER_NAME:                            \
    return #UPPER_NAME;
#define COPROC_CLIENT_STATUS(value, UPPER_NAME) \
  case COPROC_ERR_##UPPER_NAME:                 \
    return #UPPER_NAME;
#include "coproc/base/status.def"
  }
  return "UNKNOWN_STATUS";
}

const char* coproc_last_error(void) { return t_last_error.c_str(); }

uint64_t coproc_now_ns(void) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint32_t coproc_protocol_version(void) { return coproc::wire::kProtocolVersion; }

size_t coproc_dtype_bytes(coproc_dtype dtype) {
  switch (dtype) {
    case COPROC_DTYPE_FLOAT32:
    case COPROC_DTYPE_INT32:
      return 4;
    case COPROC_DTYPE_FLOAT16:
      return 2;
    case COPROC_DTYPE_INT64:
      return 8;
    case COPROC_DTYPE_INT8:
    case COPROC_DTYPE_UINT8:
    case COPROC_DTYPE_BOOL:
      return 1;
    case COPROC_DTYPE_INVALID:
      return 0;
  }
  return 0;
}

}  // extern "C"
