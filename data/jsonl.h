// data/jsonl.h: JSON Lines (https://jsonlines.org) reading and atomic writing.
//
// A JSONL file holds one JSON object per line. The reader streams a file (or a
// string, for tests and fuzzing) line by line; blank lines are ignored; a final
// line without '\n' counts; a '\r' before '\n' is dropped. Every problem with a
// line, whether bad JSON, not an object, or a field the caller rejects, is an
// error that names "<file>:<line>". With skip_bad_lines the line is skipped and
// counted instead, and the first few reasons are kept for the run's report.
// The writer writes "<path>.tmp", fsyncs it and renames it over <path>, so a
// reader never sees half a file.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace crucible::data {

struct JsonlOptions {
  bool skip_bad_lines = false;  // false: the first bad line is an error; true: skip it and count it
  int reasons_kept = 8;         // how many skip reasons JsonlStats keeps (the first ones)
  void validate() const;
};

struct JsonlStats {
  std::int64_t lines = 0;    // non-blank lines read
  std::int64_t records = 0;  // lines accepted (lines = records + skipped once the file is read)
  std::int64_t skipped = 0;  // bad lines skipped (skip_bad_lines only)
  std::vector<std::string> skip_reasons;  // the first `reasons_kept`, each "<file>:<line>: <why>"
};

// Thrown by a record converter for a line whose fields are wrong. `what()` is the
// reason without the location ("key 'answer' is missing"); the reader adds it.
class BadRecord : public Error {
 public:
  using Error::Error;
};

// One accepted line.
struct JsonlRecord {
  json::Value value;      // always an object
  std::int64_t line = 0;  // 1-based physical line in the source
};

class JsonlReader {
 public:
  // Opens a file; a missing or unreadable file is an error naming the path.
  static JsonlReader open(const std::string& path, JsonlOptions opts = {});
  // Reads JSONL from memory; `source` names it in messages.
  static JsonlReader from_string(std::string text, std::string source, JsonlOptions opts = {});

  // The next line that parses as a JSON object; false at the end of the input.
  // A bad line throws Error "<source>:<line>:<col>: ..." or, when skipping, is counted.
  bool next(JsonlRecord& out);

  // Reports that an accepted record turned out bad (a missing or wrong-typed key):
  // throws Error "<source>:<line>: <why>" or, when skipping, moves it from records
  // to skipped.
  void reject(const JsonlRecord& record, std::string_view why);

  // Reads every record through `convert(const json::Value&, std::int64_t line)`,
  // which returns one item or throws BadRecord; bad records go through reject().
  template <typename T, typename Convert>
  std::vector<T> read_all(Convert&& convert) {
    std::vector<T> out;
    JsonlRecord rec;
    while (next(rec)) {
      try {
        out.push_back(convert(rec.value, rec.line));
      } catch (const BadRecord& e) {
        reject(rec, e.what());
      }
    }
    return out;
  }

  const JsonlStats& stats() const { return stats_; }
  const std::string& source() const { return source_; }

 private:
  JsonlReader(std::unique_ptr<std::istream> in, std::string source, JsonlOptions opts);
  void bad_line(std::string_view why_with_location);

  std::unique_ptr<std::istream> in_;
  std::string source_;
  JsonlOptions opts_;
  JsonlStats stats_;
  std::int64_t line_ = 0;
  std::string buf_;
};

// The line that JsonlWriter writes for `v` (compact JSON + '\n'); v must be an object.
std::string jsonl_line(const json::Value& v);

// Writes "<path>.tmp" and renames it over <path> on commit(); a writer dropped
// before commit() removes its temporary file and leaves <path> untouched.
class JsonlWriter {
 public:
  explicit JsonlWriter(std::string path);
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  ~JsonlWriter();

  void write(const json::Value& object);
  void commit();  // flush, fsync, close, rename, fsync the directory (best effort)
  std::int64_t lines() const { return lines_; }
  const std::string& path() const { return path_; }

 private:
  void flush();

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::int64_t lines_ = 0;
  std::string pending_;
};

// Convenience: writes every object atomically.
void write_jsonl(const std::string& path, const std::vector<json::Value>& objects);

}  // namespace crucible::data
