#include "completion.h"

#include "coproc/coproc_generated.h"

namespace coproc::daemon {

bool send_completion(ClientSession& session, uint64_t id, ErrorCode code, std::string_view message,
                     std::span<const runtime::Shape> output_shapes, const CompletionTiming& timing) {
  thread_local flatbuffers::FlatBufferBuilder fbb(512);
  fbb.Clear();
  flatbuffers::Offset<flatbuffers::String> msg;
  if (!message.empty()) msg = fbb.CreateString(message.data(), message.size());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Shape>>> shapes;
  if (!output_shapes.empty()) {
    flatbuffers::Offset<fb::Shape> items[16];
    std::size_t n = std::min<std::size_t>(output_shapes.size(), 16);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = output_shapes[i];
      items[i] = fb::CreateShape(fbb, fbb.CreateVector(s.dims.data(), static_cast<std::size_t>(s.rank)));
    }
    shapes = fbb.CreateVector(items, n);
  }
  fb::Timing t(timing.queue_ns, timing.exec_ns, timing.batch_size, fb::Device::Cpu);
  fb::CompletionBuilder cb(fbb);
  cb.add_id(id);
  cb.add_status(static_cast<fb::Status>(code));
  if (!message.empty()) cb.add_message(msg);
  if (!output_shapes.empty()) cb.add_output_shapes(shapes);
  cb.add_timing(&t);
  fbb.Finish(cb.Finish());
  return session.push_completion({fbb.GetBufferPointer(), fbb.GetSize()});
}

}  // namespace coproc::daemon
