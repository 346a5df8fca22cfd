#include "reference_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace coproc::runtime::testing {
namespace {

std::vector<float> read_floats(const std::string& path, std::size_t count) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<float> data(count);
  file.read(reinterpret_cast<char*>(data.data()),
            static_cast<std::streamsize>(count * sizeof(float)));
  if (static_cast<std::size_t>(file.gcount()) != count * sizeof(float)) {
    throw std::runtime_error("short read from " + path);
  }
  return data;
}

RefTensor parse_tensor(std::istringstream& line) {
  RefTensor t;
  std::string file;
  std::size_t rank = 0;
  line >> t.name >> file >> rank;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    int64_t dim = 0;
    line >> dim;
    t.dims.push_back(dim);
    count *= static_cast<std::size_t>(dim);
  }
  t.data = read_floats(models_dir() + "/ref/" + file, count);
  return t;
}

}  // namespace

std::string models_dir() { return COPROC_MODELS_DIR; }

std::string model_path(const std::string& file) { return models_dir() + "/" + file; }

std::vector<RefCase> load_cases(const std::string& stem) {
  std::ifstream manifest(models_dir() + "/ref/manifest.txt");
  if (!manifest) throw std::runtime_error("no manifest in " + models_dir() + "/ref");
  std::vector<RefCase> cases;
  bool wanted = false;
  std::string text;
  while (std::getline(manifest, text)) {
    std::istringstream line(text);
    std::string kind;
    line >> kind;
    if (kind == "case") {
      RefCase c;
      line >> c.id >> c.model_file;
      wanted = c.model_file == stem + ".onnx";
      if (wanted) cases.push_back(std::move(c));
    } else if (wanted && kind == "input") {
      cases.back().inputs.push_back(parse_tensor(line));
    } else if (wanted && kind == "output") {
      cases.back().outputs.push_back(parse_tensor(line));
    }
  }
  return cases;
}

double relative_error(std::span<const float> got, std::span<const float> want) {
  double scale = kAbsoluteFloor;
  for (const float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    // NaN compares false: make it the worst error there is.
    worst = diff <= worst ? worst : (std::isnan(diff) ? INFINITY : diff);
  }
  return worst / scale;
}

}  // namespace coproc::runtime::testing
