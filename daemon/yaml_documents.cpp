#include "yaml_documents.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <vector>

namespace netmond {

namespace {

// Records where each document starts and where its root node is, and nothing else.
class DocumentMarks final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts, roots;

  void OnDocumentStart(const YAML::Mark& mark) override {
    starts.push_back(mark);
    want_root_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (want_root_) roots.push_back(mark);
    want_root_ = false;
  }
  bool want_root_ = false;
};

}  // namespace

YamlDocuments load_yaml_documents(const std::string& text) {
  YamlDocuments out;
  out.first = YAML::Load(text);  // one document: yaml-cpp's loop is in LoadAll only
  // A second pass over the events (yaml-cpp's node builder is not public), at most two
  // documents long.
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentMarks marks;
  if (!parser.HandleNextDocument(marks) || !parser.HandleNextDocument(marks)) return out;
  if (marks.starts.size() == 2 && marks.starts[1].pos == marks.starts[0].pos)
    out.stuck = marks.starts[1];
  else if (marks.roots.size() == 2)
    out.second = marks.roots[1];
  else
    out.second = marks.starts.back();
  return out;
}

}  // namespace netmond
