#include "config/json_text.hpp"

#include <sluice/config.hpp>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp> // basic_parser with a handler of our own

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

namespace json = boost::json;

namespace sluice::config {

namespace {

/// Finds a key given twice in one JSON object. Boost.JSON (1.81) builds
/// objects keeping the last of duplicate keys, silently: a pipeline file's
/// earlier setting would vanish unseen. So the text is read a second time,
/// by this handler of json::basic_parser, which only tracks keys.
class duplicate_key_finder {
public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  /// `root` names the option the text is the value of; empty for a file.
  explicit duplicate_key_finder(std::string root) : root_(std::move(root)) {}

  /// The option given twice (`source.subscribe`), once found.
  const std::string& duplicate() const { return duplicate_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return open(true); }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }
  bool on_array_begin(json::error_code&) { return open(false); }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    last_key_ = std::move(key_);
    key_.clear();
    if (levels_.back().keys.insert(last_key_).second) return true;
    duplicate_ = child_path();
    ec = json::error::syntax; // stops the parser here
    return false;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return value(); }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return value(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return value(); }
  bool on_double(double, json::string_view, json::error_code&) { return value(); }
  bool on_bool(bool, json::error_code&) { return value(); }
  bool on_null(json::error_code&) { return value(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  struct level {
    std::string path;
    bool object = true;
    std::set<std::string, std::less<>> keys;
    std::size_t index = 0; ///< of the next element, in an array
  };

  /// The path of the value that starts now: `parse.schema`, `x[2]`.
  std::string child_path() const {
    if (levels_.empty()) return root_;
    auto& top = levels_.back();
    if (!top.object) return top.path + "[" + std::to_string(top.index) + "]";
    return top.path.empty() ? last_key_ : top.path + "." + last_key_;
  }
  bool open(bool object) {
    levels_.push_back({child_path(), object, {}, 0});
    return true;
  }
  bool close() {
    levels_.pop_back();
    return value();
  }
  bool value() {
    if (!levels_.empty() && !levels_.back().object) ++levels_.back().index;
    return true;
  }

  std::string root_;
  std::vector<level> levels_;
  std::string key_; ///< the key being read (it may come in parts)
  std::string last_key_;
  std::string duplicate_;
};

/// The contents of every string on `line` as `*`, one per byte (quotes,
/// punctuation and layout kept, so that a caret still lines up).
std::string masked_strings(std::string_view line) {
  std::string out(line);
  bool in_string = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '"' && (i == 0 || line[i - 1] != '\\'))
      in_string = !in_string;
    else if (in_string)
      out[i] = '*';
  }
  return out;
}

} // namespace

/// A key given twice in one object of `text` (valid JSON): the option it
/// names under `root`, and where in `text` its second occurrence starts.
std::optional<std::pair<std::string, std::size_t>>
find_duplicate_key(std::string_view text, const std::string& root,
                   const json::parse_options& opts) {
  json::basic_parser<duplicate_key_finder> parser(opts, root);
  json::error_code ec;
  auto at = parser.write_some(false, text.data(), text.size(), ec);
  if (parser.handler().duplicate().empty()) return std::nullopt;
  // `at` is the end of the key: back to its opening quote.
  while (at > 0) {
    at = text.rfind('"', at - 1);
    if (at == std::string_view::npos) at = 0;
    if (at == 0 || text[at - 1] != '\\') break;
  }
  return std::pair{parser.handler().duplicate(), at};
}

const char* const given_twice =
    "given twice in the same JSON object, and only one can hold: remove the other";

/// "at line L, column C" of `offset` in `text`, with (part of) the line and a
/// caret under the character. When the file names a secret anywhere, string
/// contents are masked: a value may sit on another line than its key.
std::string position_in(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line_start = 0;
  if (offset > 0)
    if (auto nl = text.rfind('\n', offset - 1); nl != std::string_view::npos)
      line_start = nl + 1;
  auto line_no = 1 + std::count(text.begin(), text.begin() + line_start, '\n');
  auto line_end = std::min(text.find('\n', line_start), text.size());
  if (line_end > line_start && text[line_end - 1] == '\r') --line_end; // CRLF files
  // Columns count characters, not bytes (UTF-8 continuation bytes are skipped).
  auto is_continuation = [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
  };
  std::size_t column = 1;
  for (auto c : text.substr(line_start, offset - line_start))
    if (!is_continuation(c)) ++column;
  std::string out =
      "at line " + std::to_string(line_no) + ", column " + std::to_string(column);
  // Long (minified) lines: about 60 bytes either side of the error.
  auto from = offset > line_start + 60 ? offset - 60 : line_start;
  auto to = std::min(line_end, std::max(offset, from) + 60);
  while (from > line_start && is_continuation(text[from]))
    --from;
  while (to < line_end && is_continuation(text[to]))
    ++to;
  std::string excerpt(text.substr(from, to - from));
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (is_secret_property(lower)) excerpt = masked_strings(excerpt);
  // The caret keeps the line's tabs so that it stays under the character.
  std::string caret;
  for (auto c : text.substr(from, std::min(offset, line_end) - from))
    if (!is_continuation(c)) caret += c == '\t' ? '\t' : ' ';
  out += ":\n    " + std::string(from > line_start ? "..." : "") + excerpt +
         (to < line_end ? "..." : "") + "\n    " + (from > line_start ? "   " : "") +
         caret + "^";
  return out;
}

} // namespace sluice::config
