/* A plain C99 program that includes coproc.h and calls every function of the
 * API against a real coprocd it starts itself. Compiled with -std=c99
 * -pedantic -Werror, so the header stays C-clean. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coproc.h"

static int g_failed = 0;
static int g_passed = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      ++g_passed;                                                                     \
    } else {                                                                          \
      ++g_failed;                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, \
              #cond, coproc_last_error());                                            \
    }                                                                                 \
  } while (0)

static pid_t start_daemon(const char* socket_path) {
  char noop[512], mlp[512];
  snprintf(noop, sizeof(noop), "noop=%s/noop.onnx", COPROC_TEST_MODELS_DIR);
  snprintf(mlp, sizeof(mlp), "mlp=%s/mlp.onnx", COPROC_TEST_MODELS_DIR);
  pid_t pid = fork();
  if (pid == 0) {
    execl(COPROC_TEST_BIN_DIR "/coprocd", "coprocd", "--socket", socket_path, "--model", noop,
          "--model", mlp, "--log-level", "warn", (char*)NULL);
    _exit(127);
  }
  return pid;
}

static coproc_client* connect_with_retry(const char* socket_path) {
  coproc_connect_options options;
  coproc_client* client = NULL;
  int i;
  coproc_connect_options_init(&options);
  options.socket_path = socket_path;
  for (i = 0; i < 3000; ++i) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    if (coproc_connect(&options, &client) == COPROC_OK) return client;
    nanosleep(&pause, NULL);
  }
  return NULL;
}

int main(void) {
  char dir[] = "/tmp/coproc-c-test-XXXXXX";
  char socket_path[256];
  pid_t daemon;
  coproc_client* client;
  coproc_model* model = NULL;
  coproc_model* by_index = NULL;
  coproc_tensor_info info;
  coproc_tensor in, out;
  coproc_request* request = NULL;
  coproc_request* collected[4];
  size_t n_collected = 0;
  coproc_submit_options submit_options;
  coproc_timing timing;
  int32_t rank = 0;
  int64_t shape[COPROC_MAX_RANK];
  size_t done = 0;
  int event_fd = -1;
  int status = 0;
  int i;
  float* x;

  if (!mkdtemp(dir)) return 2;
  snprintf(socket_path, sizeof(socket_path), "%s/coprocd.sock", dir);
  daemon = start_daemon(socket_path);
  client = connect_with_retry(socket_path);
  CHECK(client != NULL);
  if (!client) {
    kill(daemon, SIGKILL);
    return 1;
  }

  CHECK(coproc_protocol_version() == 1);
  CHECK(strcmp(coproc_strerror(COPROC_ERR_DAEMON_GONE), "DAEMON_GONE") == 0);
  CHECK(coproc_now_ns() > 0);
  CHECK(coproc_dtype_bytes(COPROC_DTYPE_FLOAT32) == 4);

  CHECK(coproc_model_count(client) == 2);
  CHECK(coproc_model_at(client, 0, &by_index) == COPROC_OK);
  CHECK(coproc_model_at(client, 7, &by_index) == COPROC_ERR_NOT_FOUND);
  CHECK(coproc_model_find(client, "noop", &model) == COPROC_OK);
  CHECK(strcmp(coproc_model_name(model), "noop") == 0);
  CHECK(coproc_model_input_count(model) == 1);
  CHECK(coproc_model_output_count(model) == 1);
  CHECK(coproc_model_input(model, 0, &info) == COPROC_OK && info.rank == 2 && info.shape[1] == 16);
  CHECK(coproc_model_output(model, 0, &info) == COPROC_OK && strcmp(info.name, "y") == 0);
  CHECK(coproc_event_fd(client, &event_fd) == COPROC_OK && event_fd >= 0);
  CHECK(coproc_arena_size(client) > 0);
  CHECK(coproc_max_in_flight(client) > 0);
  CHECK(coproc_model_max_batch(model) > 0);

  memset(&in, 0, sizeof(in));
  memset(&out, 0, sizeof(out));
  in.dtype = out.dtype = COPROC_DTYPE_FLOAT32;
  in.rank = out.rank = 2;
  in.shape[0] = out.shape[0] = 1;
  in.shape[1] = out.shape[1] = 16;
  in.bytes = out.bytes = 16 * sizeof(float);
  CHECK(coproc_alloc(client, in.bytes, &in.data) == COPROC_OK);
  CHECK(coproc_alloc(client, out.bytes, &out.data) == COPROC_OK);
  x = (float*)in.data;
  for (i = 0; i < 16; ++i) x[i] = (float)i * 1.5f;

  coproc_submit_options_init(&submit_options);
  submit_options.priority = COPROC_PRIORITY_HIGH;
  CHECK(coproc_submit(client, model, &in, 1, &out, 1, &submit_options, &request) == COPROC_OK);
  CHECK(coproc_poll(client, &request, 1, 5000000000LL, &done) == COPROC_OK && done == 1);
  CHECK(coproc_wait(request, 5000000000LL) == COPROC_OK);
  CHECK(coproc_request_status(request) == COPROC_OK);
  CHECK(memcmp(in.data, out.data, in.bytes) == 0);
  CHECK(coproc_request_output_shape(request, 0, &rank, shape) == COPROC_OK && rank == 2 &&
        shape[1] == 16);
  CHECK(coproc_request_timing(request, &timing) == COPROC_OK && timing.batch_size == 1);
  CHECK(coproc_cancel(request) == COPROC_OK); /* already done: a no-op */
  CHECK(coproc_wait(request, 0) == COPROC_OK); /* the outcome again */
  CHECK(coproc_request_user_data(request) == NULL);
  CHECK(coproc_release(request) == COPROC_OK);

  /* The event-loop way: collect what completed, with its user_data. */
  submit_options.flags = COPROC_SUBMIT_COLLECT;
  submit_options.user_data = &in;
  CHECK(coproc_submit(client, model, &in, 1, &out, 1, &submit_options, &request) == COPROC_OK);
  CHECK(coproc_wait(request, 5000000000LL) == COPROC_OK); /* waiting does not collect */
  CHECK(coproc_collect(client, collected, 4, &n_collected) == COPROC_OK && n_collected == 1 &&
        collected[0] == request && coproc_request_user_data(collected[0]) == &in);
  CHECK(coproc_release(request) == COPROC_OK);
  CHECK(coproc_collect(client, collected, 4, &n_collected) == COPROC_OK && n_collected == 0);

  out.rank = 0;
  CHECK(coproc_infer(client, model, &in, 1, &out, 1, 5000000000LL) == COPROC_OK);
  CHECK(out.rank == 2 && out.shape[0] == 1);

  CHECK(coproc_submit(NULL, model, &in, 1, &out, 1, NULL, &request) == COPROC_ERR_INVALID_ARGUMENT);
  CHECK(strlen(coproc_last_error()) > 0);
  CHECK(coproc_free(client, in.data) == COPROC_OK);
  CHECK(coproc_free(client, out.data) == COPROC_OK);
  CHECK(coproc_free(client, out.data) == COPROC_ERR_INVALID_ARGUMENT);
  coproc_disconnect(client);

  kill(daemon, SIGTERM);
  waitpid(daemon, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  rmdir(dir);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
