// data/jsonl.cpp: streaming JSONL reader and atomic JSONL writer (see jsonl.h).
//
// Invariant: after the input is exhausted, stats.lines = stats.records +
// stats.skipped, and every message about a line starts with "<source>:<line>:".
// The writer never leaves a half-written <path>: the rename is the commit point.
// Reference: https://jsonlines.org; RFC 8259 (each line is one JSON text).
#include "data/jsonl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace crucible::data {

namespace {

// A blank line (only JSON whitespace) is not a record.
bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

// Drops the " (at file:line[, rank r])" that crucible::fail() appends, so that a
// reason reads as the user's message only.
std::string strip_location(std::string msg) {
  if (auto at = msg.rfind(" (at "); at != std::string::npos && !msg.empty() && msg.back() == ')')
    msg.resize(at);
  return msg;
}

constexpr const char* kSkipHint = " (fix the line, or set skip_bad_lines to skip and count bad lines)";

}  // namespace

void JsonlOptions::validate() const {
  CRUCIBLE_USER_CHECK(reasons_kept >= 0, "jsonl: reasons_kept must be >= 0, got ", reasons_kept);
}

JsonlReader::JsonlReader(std::unique_ptr<std::istream> in, std::string source, JsonlOptions opts)
    : in_(std::move(in)), source_(std::move(source)), opts_(opts) {
  opts_.validate();
}

JsonlReader JsonlReader::open(const std::string& path, JsonlOptions opts) {
  CRUCIBLE_USER_CHECK(!std::filesystem::is_directory(path), path, ": is a directory, expected a JSONL file");
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  CRUCIBLE_USER_CHECK(in->is_open(), path, ": cannot open: ", std::strerror(errno),
                      " (expected a JSONL file, one JSON object per line)");
  return JsonlReader(std::move(in), path, opts);
}

JsonlReader JsonlReader::from_string(std::string text, std::string source, JsonlOptions opts) {
  return JsonlReader(std::make_unique<std::istringstream>(std::move(text)), std::move(source), opts);
}

void JsonlReader::bad_line(std::string_view why_with_location) {
  if (!opts_.skip_bad_lines) CRUCIBLE_FAIL(why_with_location, kSkipHint);
  ++stats_.skipped;
  if (static_cast<int>(stats_.skip_reasons.size()) < opts_.reasons_kept)
    stats_.skip_reasons.emplace_back(why_with_location);
}

bool JsonlReader::next(JsonlRecord& out) {
  while (std::getline(*in_, buf_)) {
    ++line_;
    if (is_blank(buf_)) continue;
    ++stats_.lines;
    if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
    json::Value v;
    try {
      v = json::parse(buf_, source_);
    } catch (const Error& e) {
      // json::parse saw one line, so it says "<source>:1:<col>: ..."; put the real line in.
      std::string msg = strip_location(e.what());
      const std::string first = source_ + ":1:";
      if (msg.rfind(first, 0) == 0)
        msg = source_ + ":" + std::to_string(line_) + ":" + msg.substr(first.size());
      else
        msg = source_ + ":" + std::to_string(line_) + ": " + msg;
      bad_line(msg);
      continue;
    }
    if (!v.is_object()) {
      bad_line(detail::concat(source_, ':', line_, ": expected a JSON object, got ",
                                     json::kind_name(v.kind())));
      continue;
    }
    ++stats_.records;
    out.value = std::move(v);
    out.line = line_;
    return true;
  }
  CRUCIBLE_USER_CHECK(!in_->bad(), source_, ": read failed after line ", line_, ": ", std::strerror(errno));
  return false;
}

void JsonlReader::reject(const JsonlRecord& record, std::string_view why) {
  --stats_.records;
  bad_line(detail::concat(source_, ':', record.line, ": ", strip_location(std::string(why))));
}

// ---------------------------------------------------------------------------- writer

std::string jsonl_line(const json::Value& v) {
  CRUCIBLE_CHECK(v.is_object(), "a JSONL line must be an object, got ", json::kind_name(v.kind()));
  std::string s = json::dump(v, -1);
  s += '\n';
  return s;
}

JsonlWriter::JsonlWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CRUCIBLE_USER_CHECK(fd_ >= 0, tmp_, ": cannot create: ", std::strerror(errno),
                      " (does the directory exist and is it writable?)");
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void JsonlWriter::write(const json::Value& object) {
  CRUCIBLE_CHECK(!committed_, path_, ": write after commit");
  pending_ += jsonl_line(object);
  ++lines_;
  if (pending_.size() >= (std::size_t{1} << 20)) flush();
}

void JsonlWriter::flush() {
  const char* p = pending_.data();
  std::size_t n = pending_.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    CRUCIBLE_USER_CHECK(w > 0, tmp_, ": write failed: ", w < 0 ? std::strerror(errno) : "no progress");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  pending_.clear();
}

void JsonlWriter::commit() {
  CRUCIBLE_CHECK(!committed_, path_, ": committed twice");
  flush();
  CRUCIBLE_USER_CHECK(::fsync(fd_) == 0, tmp_, ": fsync failed: ", std::strerror(errno));
  const int rc = ::close(fd_);
  fd_ = -1;
  CRUCIBLE_USER_CHECK(rc == 0, tmp_, ": close failed: ", std::strerror(errno));
  CRUCIBLE_USER_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename ", tmp_, " to ", path_, ": ",
                      std::strerror(errno));
  committed_ = true;
  // NOTE: the new directory entry is durable only once the directory is fsynced;
  // best effort, as some filesystems refuse fsync on a directory.
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_jsonl(const std::string& path, const std::vector<json::Value>& objects) {
  JsonlWriter w(path);
  for (const json::Value& o : objects) w.write(o);
  w.commit();
}

}  // namespace crucible::data
