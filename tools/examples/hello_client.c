/*
 * hello_client: the smallest complete coproc client, built against the installed SDK in the
 * README's quick start (and by tests/install, which runs that quick start as written).
 *
 *   cc -o hello_client hello_client.c $(pkg-config --cflags --libs coproc)
 *   hello_client [MODEL]        (default "noop"; the socket: $COPROC_SOCKET, else the default)
 *
 * It connects to coprocd, finds a model that takes one float32 [N, 16] tensor and returns one of
 * the same shape (the bundled noop.onnx, an Identity), runs one inference on one row and checks
 * that the row came back unchanged. Exit 0 when it did, 1 with a message on stderr otherwise.
 */
#include <coproc.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { kWidth = 16 };                        /* floats per row of the model's [N, 16] */
static const int64_t kTimeoutNs = 5000000000; /* 5 s; the daemon runs noop in microseconds */

static int fail(const char* what, coproc_status status) {
  fprintf(stderr, "hello_client: %s: %s (%s)\n", what, coproc_strerror(status),
          coproc_last_error());
  return 1;
}

int main(int argc, char** argv) {
  const char* model_name = argc > 1 ? argv[1] : "noop";
  coproc_client* client = NULL;
  coproc_status status = coproc_connect(NULL, &client);
  if (status != COPROC_OK) return fail("connect", status);

  int rc = 1;
  coproc_model* model = NULL;
  float* in = NULL;
  float* out = NULL;
  if ((status = coproc_model_find(client, model_name, &model)) != COPROC_OK) {
    fail(model_name, status);
    goto done;
  }
  if ((status = coproc_alloc(client, kWidth * sizeof(float), (void**)&in)) != COPROC_OK ||
      (status = coproc_alloc(client, kWidth * sizeof(float), (void**)&out)) != COPROC_OK) {
    fail("alloc", status);
    goto done;
  }
  for (int i = 0; i < kWidth; ++i) {
    in[i] = 0.5f * (float)i - 3.0f;
    out[i] = NAN; /* so an output the daemon never wrote cannot pass */
  }
  coproc_tensor x = {in, kWidth * sizeof(float), COPROC_DTYPE_FLOAT32, 2, {1, kWidth}};
  coproc_tensor y = {out, kWidth * sizeof(float), COPROC_DTYPE_FLOAT32, 0, {0}};
  if ((status = coproc_infer(client, model, &x, 1, &y, 1, kTimeoutNs)) != COPROC_OK) {
    fail("infer", status);
    goto done;
  }
  if (y.rank != 2 || y.shape[0] != 1 || y.shape[1] != kWidth) {
    fprintf(stderr, "hello_client: %s returned rank %d [%lld, %lld], expected [1, %d]\n",
            model_name, (int)y.rank, (long long)y.shape[0], (long long)y.shape[1], kWidth);
    goto done;
  }
  if (memcmp(in, out, kWidth * sizeof(float)) != 0) {
    fprintf(stderr, "hello_client: %s changed the row: y[0] = %g, expected %g\n", model_name,
            (double)out[0], (double)in[0]);
    goto done;
  }
  printf("hello_client: %s returned the %d values it was sent\n", model_name, kWidth);
  rc = 0;

done:
  coproc_free(client, in);
  coproc_free(client, out);
  coproc_disconnect(client);
  return rc;
}
